import { api } from '../../api/client.ts';
import type { NodeEntry } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { useAction } from '../../hooks/use-action.ts';
import { formatTime, visible } from '../../format.ts';
import type { Loaded } from '../../hooks/use-load.ts';
import { nameNotes } from './name-notes.ts';

/**
 * Paired and known nodes, with the agents each may ask the control plane for
 * (named with `corral nodes agents`) and any other name a node gives itself
 * since it was paired; `nodes` is loaded by the page, which also reloads it
 * when a pairing is decided. A name another node also has, or that holds
 * characters beyond ASCII or spaces that do not show, is pointed out under it,
 * so Revoke is not pressed on the row of a node that only reads as the one meant.
 * `settled` false keeps Revoke disabled (the rows just moved or changed).
 */
export function NodesTable({ admin, nodes, settled }: { admin: boolean; nodes: Loaded<NodeEntry[]>; settled: boolean }) {
  const action = useAction(nodes.reload);

  return (
    <>
      <h2>Nodes</h2>
      <ErrorNote error={nodes.error ?? action.error} />
      {nodes.data && nodes.data.length === 0 && <p className="muted">No nodes.</p>}
      {nodes.data && nodes.data.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Node id</th>
              <th scope="col">Platform</th>
              <th scope="col">Connected</th>
              <th scope="col">Pairing</th>
              <th scope="col">Commands</th>
              <th scope="col">Asks for agents</th>
              <th scope="col">Address</th>
              <th scope="col">Last seen</th>
              {admin && <th scope="col">Revoke</th>}
            </tr>
          </thead>
          <tbody>
            {nodes.data.map((node) => {
              const notes = nameNotes(node, nodes.data ?? []);
              return (
                <tr key={node.nodeId}>
                  <th scope="row">
                    {visible(node.displayName)}
                    {notes.length > 0 && <span className="error look-alikes small">Check the name: {notes.join('; ')}</span>}
                    {node.claimedDisplayName !== undefined && <span className="muted small claimed-name">calls itself {visible(node.claimedDisplayName)}</span>}
                  </th>
                  <td className="mono small" title={node.nodeId}>
                    {node.nodeId.slice(0, 16)}
                  </td>
                  <td>{visible(node.platform)}</td>
                  <td>{node.connected ? 'yes' : 'no'}</td>
                  <td>
                    <span className={`status status-${node.status ?? (node.paired ? 'paired' : 'pending')}`}>{node.status ?? (node.paired ? 'paired' : 'not paired')}</span>
                  </td>
                  <td className="mono small">{visible(node.commands.join(' '))}</td>
                  <td className="mono small">{visible(node.agents.join(' ')) || '-'}</td>
                  <td className="mono">{visible(node.remoteIp)}</td>
                  {/* A node asking to pair asks again every few seconds: the time moves on, and Revoke does not wait for that. */}
                  <td className="nowrap" data-ticks>
                    {formatTime(node.lastSeenMs)}
                  </td>
                  {admin && (
                    <td>
                      {node.paired && (
                        <button type="button" className="danger" disabled={action.busy || !settled} onClick={() => void action.run(() => api.revokeNode(node.nodeId))} aria-label={`Revoke ${visible(node.displayName)} (${node.nodeId.slice(0, 16)})`}>
                          Revoke
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </>
  );
}
