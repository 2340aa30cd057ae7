// Taking back what an approval allowed, from its card: one allowed and not
// yet used is withdrawn with a reason (its run is refused, its standing grant
// withdrawn with it); the standing grant of one allowed always and used is
// revoked (the next identical command asks again).
import { useState } from 'react';
import { api, ApiError } from '../../api/client.ts';
import type { Approval, GrantWithdrawal } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { visible } from '../../format.ts';
import { ReasonForm } from './ReasonForm.tsx';

/** What this card did: said on it after the list reloads with the approval's new status. */
type Done = { kind: 'withdrawn'; grant: GrantWithdrawal | undefined } | { kind: 'revoked' } | { kind: 'no-grant' };

/** The grant a withdrawal answers, when it names one in a shape the card knows (older gateways name none). */
function grantOf(answer: { grant?: unknown }): GrantWithdrawal | undefined {
  const grant = answer.grant as Partial<GrantWithdrawal> | null | undefined;
  if (typeof grant !== 'object' || grant === null) return undefined;
  if (grant.status !== 'revoked' && grant.status !== 'failed') return undefined;
  return { id: String(grant.id), status: grant.status, ...(typeof grant.code === 'string' ? { code: grant.code } : {}) };
}

/** A refusal (4xx: nothing was done) led by what was not done; the gateway's code kept. Anything else as it came: whether the gateway acted is not known. */
function notDone(what: string, failure: unknown): Error {
  if (!(failure instanceof ApiError) || failure.status < 400 || failure.status >= 500) return failure as Error;
  return new ApiError(failure.status, { error: failure.error, code: failure.code, message: `${what}: ${failure.message}` });
}

/** What the card did, in words: a grant's file left in the policy set is said with the command that takes it out. */
function DoneNote({ done, id }: { done: Done; id: string }) {
  if (done.kind === 'revoked') {
    return (
      <p className="notice" role="status">
        Standing grant revoked: the next identical command asks for approval again.
      </p>
    );
  }
  if (done.kind === 'no-grant') {
    return (
      <p className="notice" role="status">
        No standing grant for this approval (already revoked, or never made).
      </p>
    );
  }
  const { grant } = done;
  if (grant?.status === 'failed') {
    return (
      <p className="notice" role="status">
        Withdrawn: its run is refused. Its standing grant's file stayed in the policy set{grant.code ? ` (${visible(grant.code)})` : ''}; it allows nothing, and <span className="mono">corral approvals revoke {visible(id)}</span> removes it.
      </p>
    );
  }
  return (
    <p className="notice" role="status">
      Withdrawn: its run is refused.
      {grant && ` Its standing grant was withdrawn too: the next identical command asks again${grant.code ? ` (the audit log did not record the revocation: ${visible(grant.code)})` : ''}.`}
    </p>
  );
}

/**
 * The Withdraw… and Revoke standing grant… controls of a resolved card, for
 * someone who may resolve approvals; the card keeps it mounted while it shows,
 * so what was done is still said once the approval's status changes. `settled`
 * false keeps the buttons that open them, and the one that revokes, disabled
 * (the cards just moved or changed).
 */
export function TakeBack({ approval, settled, onResolved }: { approval: Approval; settled: boolean; onResolved: () => void }) {
  const [step, setStep] = useState<'withdraw' | 'revoke'>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  const [done, setDone] = useState<Done>();
  const withdrawable = !done && approval.status === 'allowed';
  // An older gateway does not say whether the grant stands: offered, and its 404 says when it does not.
  const revocable = !done && approval.decision === 'allow-always' && approval.status === 'used' && (approval.standingGrant === undefined || approval.standingGrant === 'made');

  /** Runs `change`; a refusal stays on the card with its form open, as filled in. The list reloads either way: a refusal means the card is out of date. */
  async function act(what: string, change: () => Promise<Done>) {
    setBusy(true);
    setError(undefined);
    try {
      setDone(await change());
      setStep(undefined);
    } catch (failure) {
      setError(notDone(what, failure));
    } finally {
      setBusy(false);
      onResolved();
    }
  }

  function withdraw(reason: string) {
    void act('Not withdrawn', async () => ({ kind: 'withdrawn', grant: grantOf(await api.withdraw(approval.id, reason)) }));
  }

  function revoke() {
    void act('Not revoked', async () => {
      try {
        await api.revokeGrant(approval.id);
        return { kind: 'revoked' };
      } catch (failure) {
        if (failure instanceof ApiError && failure.status === 404 && failure.error === 'not_found') return { kind: 'no-grant' };
        throw failure;
      }
    });
  }

  return (
    <>
      <ErrorNote error={error} />
      {done && <DoneNote done={done} id={approval.id} />}
      {withdrawable && step !== 'withdraw' && (
        <div className="actions">
          <button type="button" className="danger" disabled={busy || !settled} onClick={() => setStep('withdraw')}>
            Withdraw…
          </button>
          <span className="muted small">Allowed and not yet used: withdrawing refuses its run, and any standing grant it made.</span>
        </div>
      )}
      {withdrawable && step === 'withdraw' && <ReasonForm verb="Withdraw" gerund="withdrawing" busy={busy} onSubmit={withdraw} onCancel={() => setStep(undefined)} />}
      {revocable && step !== 'revoke' && (
        <div className="actions">
          <button type="button" className="danger" disabled={busy || !settled} onClick={() => setStep('revoke')}>
            Revoke standing grant…
          </button>
        </div>
      )}
      {revocable && step === 'revoke' && (
        <div className="actions" role="group" aria-label="Revoke the standing grant">
          <span>Revoke the standing grant this approval made? The next identical command will ask for approval again.</span>
          <button type="button" className="danger" disabled={busy || !settled} onClick={revoke}>
            Revoke standing grant
          </button>
          <button type="button" autoFocus onClick={() => setStep(undefined)}>
            Cancel
          </button>
        </div>
      )}
    </>
  );
}
