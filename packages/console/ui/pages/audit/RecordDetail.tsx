// One audit record in full, with its Merkle inclusion proof against the
// latest signed checkpoint that covers it.
import { useEffect, useRef } from 'react';
import { api } from '../../api/client.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { lookAlikes, visible } from '../../format.ts';
import { useLoad } from '../../hooks/use-load.ts';

/**
 * The lines of a record holding characters beyond ASCII, each with those
 * characters named: what an agent or node chose (an argument, a payee) may be
 * spelled with Cyrillic or Greek letters that read as the ASCII ones, so an
 * auditor would read `https://exаmple.com` as example.com.
 */
function LinesBeyondAscii({ lines }: { lines: string[] }) {
  const found = lines.flatMap((line, i) => {
    const named = lookAlikes(line);
    return named.length === 0 ? [] : [{ number: i + 1, line: line.trim(), named }];
  });
  if (found.length === 0) return null;
  return (
    <div className="error look-alikes">
      These lines hold characters beyond ASCII, which can pass for other letters:
      <ul>
        {found.map(({ number, line, named }) => (
          <li key={number} className="mono">
            {line} — {named.join(', ')}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** `value` as indented JSON, a line at a time through visible(): JSON escapes control characters but writes a bidi override or a zero-width space as it is. */
function jsonLines(value: unknown): string[] {
  return (typeof value === 'string' ? value : (JSON.stringify(value, null, 2) ?? '')).split('\n').map(visible);
}

export function RecordDetail({ seq, onClose }: { seq: number; onClose: () => void }) {
  const detail = useLoad(() => api.auditRecord(seq), [seq]);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [seq]);
  const proof = detail.data?.proof;
  const lines = detail.data ? jsonLines(detail.data.record) : [];

  return (
    <section className="card detail" aria-labelledby="record-title">
      <header>
        <h2 id="record-title" ref={heading} tabIndex={-1}>
          Record {seq}
        </h2>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </header>
      <ErrorNote error={detail.error} />
      {detail.loading && !detail.data && <p className="muted">Loading…</p>}
      {detail.data && proof && (
        <div className="columns">
          <div>
            <h3>Record</h3>
            <pre className="json">{lines.join('\n')}</pre>
            <LinesBeyondAscii lines={lines} />
          </div>
          <div>
            <h3>
              Inclusion proof{' '}
              <span className={`badge ${proof.verified ? 'badge-allow' : 'badge-deny'}`}>{proof.verified ? 'proof verified' : 'proof does not verify'}</span>
            </h3>
            <dl className="facts">
              <dt>Leaf index</dt>
              <dd className="mono">{proof.leafIndex}</dd>
              <dt>Tree size</dt>
              <dd className="mono">{proof.treeSize}</dd>
              <dt>Root hash</dt>
              <dd className="mono small">{proof.rootHash}</dd>
              <dt>Path</dt>
              <dd>
                <ol className="mono small">
                  {proof.path.map((hash, i) => (
                    <li key={i}>{hash}</li>
                  ))}
                </ol>
              </dd>
            </dl>
            <h3>Signed checkpoint</h3>
            <pre className="json">{jsonLines(proof.checkpoint).join('\n')}</pre>
          </div>
        </div>
      )}
    </section>
  );
}
