import { useState } from 'react';
import { api } from '../../api/client.ts';
import type { Agent } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { LookAlikeNote } from '../../common/LookAlikeNote.tsx';
import { useAction } from '../../hooks/use-action.ts';
import { formatTime, visible } from '../../format.ts';
import { useLoad } from '../../hooks/use-load.ts';

/** `settled` false keeps Resume disabled (the page just changed, or its window came to the front): one click on it lifts the kill switch. */
export function AgentsTable({ admin, settled }: { admin: boolean; settled: boolean }) {
  const agents = useLoad(() => api.agents(), []);
  const action = useAction(agents.reload);
  const [suspending, setSuspending] = useState<string | null>(null);
  const [reason, setReason] = useState('');

  function suspendRow(agent: Agent) {
    if (suspending !== agent.name) {
      return (
        <button type="button" className="danger" onClick={() => setSuspending(agent.name)}>
          Suspend…
        </button>
      );
    }
    return (
      <form
        className="inline-form"
        onSubmit={(event) => {
          event.preventDefault();
          // Refused, the form stays as filled in: pressing Suspend again is all it takes.
          void action.run(() => api.suspendAgent(agent.name, reason.trim())).then((done) => {
            if (!done) return;
            setSuspending(null);
            setReason('');
          });
        }}
      >
        <label>
          Reason
          <input value={reason} onChange={(e) => setReason(e.target.value)} required autoFocus />
        </label>
        <button type="submit" className="danger" disabled={action.busy || reason.trim() === ''}>
          Suspend {visible(agent.name)}
        </button>
        <button type="button" onClick={() => setSuspending(null)}>
          Cancel
        </button>
      </form>
    );
  }

  return (
    <>
      <h2>Agents</h2>
      <ErrorNote error={agents.error ?? action.error} />
      {agents.data && agents.data.length === 0 && <p className="muted">No agents.</p>}
      {agents.data && agents.data.length > 0 && (
        <table className="grid">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Process</th>
              <th scope="col">Owner</th>
              <th scope="col">Status</th>
              <th scope="col">Scopes</th>
              <th scope="col">Running</th>
              <th scope="col">Created</th>
              {admin && <th scope="col">Kill switch</th>}
            </tr>
          </thead>
          <tbody>
            {agents.data.map((agent) => (
              <tr key={agent.id}>
                <th scope="row">{visible(agent.name)}</th>
                <td>{visible(agent.process)}</td>
                <td>
                  {visible(agent.owner)}
                  <LookAlikeNote text={agent.owner} />
                </td>
                <td>
                  <span className={`status status-${agent.status}`}>{agent.status}</span>
                </td>
                <td className="mono small">{visible(agent.scopes.join(' '))}</td>
                <td className="num">{agent.running}</td>
                <td className="nowrap">{formatTime(agent.createdAt)}</td>
                {admin && (
                  <td>
                    {agent.status === 'suspended' ? (
                      <button type="button" disabled={action.busy || !settled} onClick={() => void action.run(() => api.resumeAgent(agent.name))}>
                        Resume
                      </button>
                    ) : (
                      suspendRow(agent)
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
