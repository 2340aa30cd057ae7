// One audit record in full, with its Merkle inclusion proof against the
// latest signed checkpoint that covers it.
import { useEffect, useRef } from 'react';
import { api } from '../../api/client.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { visible } from '../../format.ts';
import { useLoad } from '../../hooks/use-load.ts';

export function RecordDetail({ seq, onClose }: { seq: number; onClose: () => void }) {
  const detail = useLoad(() => api.auditRecord(seq), [seq]);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [seq]);
  const proof = detail.data?.proof;

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
            <pre className="json">{JSON.stringify(detail.data.record, null, 2).split('\n').map(visible).join('\n')}</pre>
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
            <pre className="json">{typeof proof.checkpoint === 'string' ? proof.checkpoint : JSON.stringify(proof.checkpoint, null, 2)}</pre>
          </div>
        </div>
      )}
    </section>
  );
}
