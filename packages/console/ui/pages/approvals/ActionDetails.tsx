import type { ApprovalAction } from '../../api/types.ts';
import { formatMoney, visible } from '../../format.ts';
import { chained, envNames, paymentOf } from './action.ts';

/** Everything the approver is shown about the exact action, as a definition list; the agent's text goes through visible(). */
export function ActionDetails({ action }: { action: ApprovalAction }) {
  const env = envNames(action.env);
  const commands = chained(action.commands);
  const payment = paymentOf(action);
  const otherFields = payment ? payment.rest : (action.context ?? action.params ?? {});
  const node = action.node ?? action.nodeId;
  const policies = Array.isArray(action.policies) ? action.policies : [];
  return (
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
          <dd>{visible(payment.payee)}</dd>
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
  );
}
