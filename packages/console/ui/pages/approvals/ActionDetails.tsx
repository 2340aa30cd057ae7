import { useMemo, useState } from 'react';
import type { ApprovalAction } from '../../api/types.ts';
import { formatMoney, lookAlikes, oddSpaces, shortHash, visible } from '../../format.ts';
import { boundScriptOf, chained, envNames, paymentOf, scriptLines, type BoundScript } from './action.ts';

/**
 * Each field of the action an agent or node chose that does not read as what
 * it is, and why: characters beyond ASCII (what reads as `example.com` or
 * "ACME GmbH" may be spelled with Cyrillic or Greek letters), and spaces the
 * page does not show (at either end, or several in a row). Else the approver
 * would approve another host or payee than the one they read.
 */
function LookAlikes({ fields }: { fields: Array<[string, string | null | undefined]> }) {
  const found = fields.flatMap(([field, text]) => {
    const notes = [...lookAlikes(text), ...oddSpaces(text)];
    return notes.length === 0 ? [] : [{ field, notes }];
  });
  if (found.length === 0) return null;
  return (
    <div className="error look-alikes">
      Check these before approving: letters beyond ASCII can pass for others, and spaces at either end or in a row do not show.
      <ul>
        {found.map(({ field, notes }) => (
          <li key={field}>
            {field}: <span className="mono">{notes.join(', ')}</span>
          </li>
        ))}
      </ul>
    </div>
  );
}

/**
 * What the script an approval binds holds, as its node read it to hash it: folded until the approver opens it (a
 * script may run to thousands of lines), each line numbered and spelled out (scriptLines); what the node did not
 * send, or sent as no text, is said instead.
 */
function ScriptText({ preview }: { preview: BoundScript['preview'] }) {
  const text = preview?.text;
  // Read once per script, not at each second the card's countdown draws it again; its lines drawn only while open:
  // 64 KiB of line breaks would otherwise be 65,536 elements on the page, open or not.
  const lines = useMemo(() => (text === undefined ? [] : scriptLines(text)), [text]);
  // Its spaces show in a fixed-width font, unlike a field's; a letter passing for another does not.
  const beyondAscii = useMemo(() => (text === undefined ? [] : lookAlikes(text)), [text]);
  const [open, setOpen] = useState(false);
  if (!preview) return <div className="muted">Its node sent no copy of it to read here: read it on the node before approving.</div>;
  if (text === undefined) return <div className="muted">It is not text ({preview.bytes.toLocaleString()} bytes): not shown.</div>;
  return (
    <details className="script-text" onToggle={(event) => setOpen(event.currentTarget.open)}>
      <summary>
        Read it: {lines.length.toLocaleString()} line{lines.length === 1 ? '' : 's'}, {preview.bytes.toLocaleString()} bytes
        {preview.truncated && ' (only the first 64 KiB are shown)'}
      </summary>
      {beyondAscii.length > 0 && <div className="error look-alikes">Letters beyond ASCII in it, which can pass for others: {beyondAscii.join(', ')}</div>}
      {open && (
        <pre>
          {lines.map((line, i) => (
            <span key={i} className="line">
              <span className="line-number">{i + 1}</span>
              {line}
              {'\n'}
            </span>
          ))}
        </pre>
      )}
    </details>
  );
}

/** Everything the approver is shown about the exact action, as a definition list; the agent's text goes through visible(), and any of it beyond ASCII or with spaces that do not show is named below. */
export function ActionDetails({ action }: { action: ApprovalAction }) {
  const env = envNames(action.env);
  const commands = chained(action.commands);
  const payment = paymentOf(action);
  const otherFields = payment ? payment.rest : (action.context ?? action.params ?? {});
  const node = action.node ?? action.nodeId;
  const policies = Array.isArray(action.policies) ? action.policies : [];
  const argv = Array.isArray(action.argv) ? action.argv.map(String) : [];
  const script = boundScriptOf(action);
  const chosen: Array<[string, string | null | undefined]> = [
    ['who asks', action.principal],
    ['node', node],
    ...argv.map((arg, i): [string, string] => [`argument ${i + 1}`, arg]),
    ['working directory', action.cwd],
    ['script', script?.path],
    ['environment', env.join(' ')],
    ['action', action.cedarAction ?? action.command],
    ['currency', payment?.currency],
    ['payee', payment?.payee],
    ['parameters', Object.keys(otherFields).length > 0 ? JSON.stringify(otherFields) : ''],
  ];
  return (
    <>
      <dl className="facts">
        <dt>Who asks</dt>
        <dd className="mono">{visible(action.principal ?? 'unknown')}</dd>
        {node && (
          <>
            <dt>Node</dt>
            <dd className="mono">{visible(node)}</dd>
          </>
        )}
        {Array.isArray(action.argv) && (
          <>
            <dt>Arguments</dt>
            <dd>
              <ol className="argv">
                {action.argv.map((arg, i) => (
                  <li key={i} className="mono">
                    {visible(String(arg))}
                  </li>
                ))}
              </ol>
            </dd>
          </>
        )}
        {commands.length > 1 && (
          <>
            <dt>Every command</dt>
            <dd>
              <ul>
                {commands.map((c, i) => (
                  <li key={i} className="mono">
                    {c}
                  </li>
                ))}
              </ul>
            </dd>
          </>
        )}
        {action.cwd && (
          <>
            <dt>Working directory</dt>
            <dd className="mono">{visible(action.cwd)}</dd>
          </>
        )}
        {script && (
          <>
            {/* What the digest binds beside the argv: allowing covers the file as it is now, and a run of it rewritten asks again. */}
            <dt>Script</dt>
            <dd className="script">
              <span className="mono">{visible(script.path)}</span>{' '}
              <span className="mono" title={`sha256:${script.sha256}`}>
                sha256:{shortHash(script.sha256)}
              </span>
              <span className="muted"> — approved for what it holds now; changed, it is asked for again</span>
              <ScriptText preview={script.preview} />
            </dd>
          </>
        )}
        {env.length > 0 && (
          <>
            <dt>Environment</dt>
            <dd className="mono">{visible(env.join(' '))}</dd>
          </>
        )}
        {(action.cedarAction || action.command) && (
          <>
            <dt>Action</dt>
            <dd className="mono">{visible(action.cedarAction ?? action.command ?? '')}</dd>
          </>
        )}
        {payment && (
          <>
            <dt>Amount</dt>
            <dd className="amount">{formatMoney(payment.amount, payment.currency)}</dd>
          </>
        )}
        {payment?.payee !== undefined && (
          <>
            <dt>Payee</dt>
            <dd className="payee">{visible(payment.payee)}</dd>
          </>
        )}
        {Object.keys(otherFields).length > 0 && (
          <>
            <dt>Parameters</dt>
            <dd className="mono small">{visible(JSON.stringify(otherFields))}</dd>
          </>
        )}
        <dt>Why it asks</dt>
        <dd>
          {policies.length > 0 && <span className="mono">{visible(policies.join(', '))}: </span>}
          {typeof action.reason === 'string' ? visible(action.reason) : <span className="muted">no reason given</span>}
        </dd>
      </dl>
      <LookAlikes fields={chosen} />
    </>
  );
}
