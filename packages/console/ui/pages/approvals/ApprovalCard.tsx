// One approval request: the exact action, who asks, which policy asked and
// why, quorum progress, the time left, and the three ways to answer (two for
// one the gateway makes no standing grant for: a command that runs code
// Corral cannot see, unless it is one script bound by its content); once
// allowed, the ways to take it back (TakeBack).
import { useState } from 'react';
import { api } from '../../api/client.ts';
import type { Approval } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { LookAlikeNote } from '../../common/LookAlikeNote.tsx';
import { formatCountdown, formatMoney, formatTime, visible } from '../../format.ts';
import { useNow } from '../../hooks/use-now.ts';
import { ActionDetails } from './ActionDetails.tsx';
import { actionTitle, allowAlwaysOf, boundScriptOf, paymentOf, runsCodeOf } from './action.ts';
import { ReasonForm } from './ReasonForm.tsx';
import { TakeBack } from './TakeBack.tsx';

/**
 * `settled` false keeps the approve buttons, and those that take an approval back, disabled (the cards just moved or changed).
 * `me` is the signed-in approver's name, as the gateway lists approvers: once
 * they have approved a request that waits for others, the card says so and
 * offers no Approve again (the gateway counts each approver once, so a second
 * click would count for nothing while it looked like an approval); Deny stays.
 * `mayResolve` false (a role without approvals.resolve) shows no way to answer or take back.
 */
export function ApprovalCard({ approval, me, mayResolve, settled, onResolved }: { approval: Approval; me: string; mayResolve: boolean; settled: boolean; onResolved: () => void }) {
  const now = useNow();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const [denying, setDenying] = useState(false);
  const pending = approval.status === 'pending' && approval.expiresAtMs > now;
  // The gateway marks it expired on its next read; the card says so the moment the countdown ends.
  const status = approval.status === 'pending' && !pending ? 'expired' : approval.status;
  const titleId = `approval-${approval.id}`;
  const payment = paymentOf(approval.action);
  const runs = runsCodeOf(approval.action);
  const script = boundScriptOf(approval.action);
  const always = allowAlwaysOf(approval.action, runs);
  const approvedByMe = approval.approvers.includes(me);
  const waitingFor = Math.max(0, approval.quorum - approval.approvers.length);

  async function act(run: () => Promise<unknown>) {
    setBusy(true);
    setError(undefined);
    try {
      await run();
      onResolved();
    } catch (failure) {
      setError(failure as Error);
    } finally {
      setBusy(false);
    }
  }

  return (
    <article className={`card approval approval-${status}`} aria-labelledby={titleId} data-approval={approval.id}>
      <header>
        <h2 id={titleId} className="mono">
          {actionTitle(approval.action)}
        </h2>
        {payment && <span className="amount">{formatMoney(payment.amount, payment.currency)}</span>}
        <span className={`status status-${status}`}>{status}</span>
      </header>
      {runs && (
        <div className="error runs-code" id={`${titleId}-runs-code`}>
          <strong>Runs code Corral cannot see.</strong> {visible(runs.reason)}. Read every argument before approving.{' '}
          {script && 'Approving covers the script as it is now only (its SHA-256 below): changed, it is asked for again. '}
          {!always && 'It can be approved once only: the gateway makes no standing grant for code it cannot see.'}
        </div>
      )}
      <ActionDetails action={approval.action} />
      <dl className="facts">
        {approval.status === 'denied' ? (
          <>
            {/* Whoever denied or withdrew it is listed last, after any who had approved: not a count toward the quorum. */}
            <dt>Decided by</dt>
            <dd>
              {visible(approval.approvers.join(', '))}
              <LookAlikeNote text={approval.approvers.join(', ')} label="Check who decided" />
            </dd>
          </>
        ) : (
          <>
            <dt>Quorum</dt>
            <dd>
              <progress max={approval.quorum} value={approval.approvers.length} aria-hidden="true" />{' '}
              <span className="quorum">
                {approval.approvers.length} of {approval.quorum}
              </span>
              {approval.approvers.length > 0 && <span className="muted"> — {visible(approval.approvers.join(', '))}</span>}
              {/* An approver's name may be an address their single sign-on vouched for, spelled to read as a colleague's. */}
              <LookAlikeNote text={approval.approvers.join(', ')} label="Check who approved" />
            </dd>
          </>
        )}
        <dt>Requested</dt>
        <dd>{formatTime(approval.createdAtMs)}</dd>
        {approval.status === 'pending' ? (
          <>
            <dt>Expires in</dt>
            <dd className="countdown" aria-label={`expires ${formatTime(approval.expiresAtMs)}`} data-ticks>
              {formatCountdown(approval.expiresAtMs - now)}
            </dd>
          </>
        ) : (
          <>
            <dt>Resolved</dt>
            <dd>
              {approval.decision ?? approval.status} {formatTime(approval.resolvedAtMs)}
              {approval.reason ? ` — ${visible(approval.reason)}` : ''}
            </dd>
          </>
        )}
        {approval.standingGrant && (
          <>
            <dt>Standing grant</dt>
            <dd className="standing-grant">{approval.standingGrant === 'made' ? 'in force: this exact action runs again without asking' : 'withdrawn: this exact action asks again'}</dd>
          </>
        )}
        <dt>Digest</dt>
        <dd className="mono small">{approval.digest}</dd>
      </dl>
      <ErrorNote error={error} />
      {mayResolve && approval.status !== 'pending' && <TakeBack approval={approval} settled={settled} onResolved={onResolved} />}
      {mayResolve && pending && !denying && (
        <div className="actions">
          {approvedByMe ? (
            <span className="mine">
              You approved this: it waits for {waitingFor} more approver{waitingFor === 1 ? '' : 's'}.
            </span>
          ) : (
            <>
              <button type="button" className="primary" disabled={busy || !settled} onClick={() => void act(() => api.approve(approval.id, 'allow-once'))} aria-describedby={runs ? `${titleId}-runs-code` : undefined}>
                Approve once
              </button>
              {always && (
                <button type="button" disabled={busy || !settled} onClick={() => void act(() => api.approve(approval.id, 'allow-always'))} aria-describedby={runs ? `${titleId}-runs-code ${titleId}-always` : `${titleId}-always`}>
                  Approve always
                </button>
              )}
            </>
          )}
          <button type="button" className="danger" disabled={busy} onClick={() => setDenying(true)}>
            Deny…
          </button>
          {always && !approvedByMe && (
            <span id={`${titleId}-always`} className="muted small">
              Approve always lets this exact action run again without asking{script ? ', while the script holds what it holds now' : ''}.
            </span>
          )}
        </div>
      )}
      {mayResolve && pending && denying && <ReasonForm verb="Deny" gerund="denying" busy={busy} onSubmit={(reason) => void act(() => api.deny(approval.id, reason))} onCancel={() => setDenying(false)} />}
    </article>
  );
}
