import { api } from '../../api/client.ts';
import type { NodeEntry, PairingRequest } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { useAction } from '../../hooks/use-action.ts';
import { formatTime, visible } from '../../format.ts';
import type { Loaded } from '../../hooks/use-load.ts';
import { nameNotes } from './name-notes.ts';

/**
 * Nodes asking to be paired, and paired nodes asking for more commands: a
 * node is sent no command until an admin approves it here. Each row shows
 * what approving grants — for a paired node, the commands it adds — and what
 * in its name could pass for another node's (`nodes`: every node known).
 * `settled` false keeps Approve and Reject disabled (the rows just moved or changed).
 */
export function PairingRequests({ admin, pending, nodes, settled, onDecided }: { admin: boolean; pending: Loaded<PairingRequest[]>; nodes: readonly NodeEntry[]; settled: boolean; onDecided: () => void }) {
  const action = useAction(onDecided);
  if (pending.data && pending.data.length === 0 && !action.error) return null;

  return (
    <>
      <h2>Pairing requests</h2>
      <ErrorNote error={pending.error ?? action.error} />
      <table className="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Node id</th>
            <th scope="col">Platform</th>
            <th scope="col">Address</th>
            <th scope="col">Commands</th>
            <th scope="col">Asked</th>
            {admin && <th scope="col">Decision</th>}
          </tr>
        </thead>
        <tbody>
          {(pending.data ?? []).map((request) => {
            const notes = nameNotes(request, nodes);
            return (
              <tr key={request.requestId}>
                <th scope="row">
                  {visible(request.displayName)}
                  {notes.length > 0 && <span className="error look-alikes small">Check the name: {notes.join('; ')}</span>}
                </th>
                <td className="mono small">{request.nodeId.slice(0, 16)}</td>
                <td>{visible(request.platform)}</td>
                <td className="mono">{visible(request.remoteIp) || '-'}</td>
                <td className="mono small">{requested(request)}</td>
                <td className="nowrap">{formatTime(request.ts)}</td>
                {admin && (
                  <td className="actions">
                    <button type="button" className="primary" disabled={action.busy || !settled} onClick={() => void action.run(() => api.approvePairing(request.requestId))}>
                      Approve
                    </button>
                    <button type="button" className="danger" disabled={action.busy || !settled} onClick={() => void action.run(() => api.rejectPairing(request.requestId))}>
                      Reject
                    </button>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

/** What approving grants: every command for a new node; for a paired one, those it adds (+). */
function requested(request: PairingRequest): string {
  const shown = request.paired ? request.commands.filter((c) => !request.approvedCommands.includes(c)).map((c) => `+${c}`) : request.commands;
  return visible(shown.join(', ')) || 'no commands';
}
