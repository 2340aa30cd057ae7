// The approvals inbox: pending requests first, each with everything the
// approver needs to decide. Reloads when the audit stream shows an approval
// being requested or resolved, and every 10 s in case the stream is down.
import { useCallback, useEffect, useState } from 'react';
import { api } from '../../api/client.ts';
import type { ActivityEvent, User } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { canResolveApprovals } from '../../common/roles.ts';
import { useEventStream } from '../../hooks/use-event-stream.ts';
import { approvalsChanged } from '../../hooks/use-pending-count.ts';
import { useLoad } from '../../hooks/use-load.ts';
import { useSettled } from '../../hooks/use-settled.ts';
import { ApprovalCard } from './ApprovalCard.tsx';

const POLL_MS = 10_000;
/** How long the approve, withdraw and revoke buttons wait after cards come, go, move or say something else: the second click of a double click, or a click as a new request pushes the cards down or a card's quorum fills in, must not approve the card that slid under the pointer, nor approve what a card said a moment before. */
const SETTLE_MS = 1_000;

/** `user`: who is signed in, whose own approvals the cards say are given, and whose roles say whether the cards offer to answer. */
export function Approvals({ user }: { user: User }) {
  const [showAll, setShowAll] = useState(false);
  const approvals = useLoad(async () => {
    // The history comes a page at a time, the newest first: pending requests are asked for on their own so none is left out.
    const [pending, recent] = await Promise.all([api.approvals('pending'), showAll ? api.approvals('all') : []]);
    approvalsChanged();
    return [...pending, ...recent.filter((a) => !pending.some((p) => p.id === a.id))];
  }, [showAll]);
  const { reload } = approvals;

  useEffect(() => {
    const timer = setInterval(reload, POLL_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const onRecord = useCallback((event: ActivityEvent) => event.action.startsWith('approval.') && reload(), [reload]);
  useEventStream<ActivityEvent>(api.activityStreamUrl({}), 'record', onRecord);

  const list = approvals.data ?? [];
  const sorted = [...list].sort((a, b) => Number(b.status === 'pending') - Number(a.status === 'pending') || b.createdAtMs - a.createdAtMs);
  const { region, settled } = useSettled(SETTLE_MS);

  return (
    <section aria-labelledby="approvals-title" ref={region}>
      <div className="page-head">
        <h1 id="approvals-title">Approvals</h1>
        <label className="inline">
          <input type="checkbox" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} /> Show resolved (the latest 200)
        </label>
      </div>
      <ErrorNote error={approvals.error} />
      {approvals.data && sorted.length === 0 && <p className="muted">Nothing is waiting for approval.</p>}
      <ul className="cards">
        {sorted.map((approval) => (
          <li key={approval.id}>
            <ApprovalCard approval={approval} me={user.name} mayResolve={canResolveApprovals(user)} settled={settled} onResolved={reload} />
          </li>
        ))}
      </ul>
    </section>
  );
}
