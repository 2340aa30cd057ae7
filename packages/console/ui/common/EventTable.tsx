// Audit events as a dense table, shared by live activity and the audit explorer.
// What an agent or node chose (who, the action, the resource, the summary with
// its arguments) goes through visible(), and any of it beyond ASCII or with
// spaces that do not show is named under it, as on the approvals page.
import type { ActivityEvent } from '../api/types.ts';
import { formatTime, shortHash, summaryToCheck, visible } from '../format.ts';
import { EffectBadge } from './EffectBadge.tsx';
import { LookAlikeNote } from './LookAlikeNote.tsx';

/** Who acted, as the gateway named them (not yet through visible()). */
function actorOf(event: ActivityEvent): string {
  const name = event.actor.name ?? event.actor.id;
  const who = `${event.actor.kind}:${name}`;
  const behalf = event.actor.onBehalfOf;
  return behalf ? `${who} for ${behalf.kind}:${behalf.id}` : who;
}

function outcomeText(event: ActivityEvent): string {
  if (!event.outcome) return '';
  return event.outcome.exitCode === undefined ? event.outcome.status : `${event.outcome.status} (exit ${event.outcome.exitCode})`;
}

export function EventTable({ events, caption, onOpen }: { events: ActivityEvent[]; caption: string; onOpen?: (seq: number) => void }) {
  return (
    <table className="grid">
      <caption className="visually-hidden">{caption}</caption>
      <thead>
        <tr>
          <th scope="col">Seq</th>
          <th scope="col">Time</th>
          <th scope="col">Actor</th>
          <th scope="col">Action</th>
          <th scope="col">Resource</th>
          <th scope="col">Effect</th>
          <th scope="col">Node</th>
          <th scope="col">Outcome</th>
          <th scope="col">Summary</th>
        </tr>
      </thead>
      <tbody>
        {events.map((event) => (
          <tr key={event.seq} data-seq={event.seq}>
            <td className="num">
              {onOpen ? (
                <button type="button" className="link" onClick={() => onOpen(event.seq)} aria-label={`Open record ${event.seq}`}>
                  {event.seq}
                </button>
              ) : (
                event.seq
              )}
            </td>
            <td className="nowrap">{formatTime(event.time)}</td>
            <td>
              {visible(actorOf(event))}
              <LookAlikeNote text={actorOf(event)} />
            </td>
            <td className="mono">
              {visible(event.action)}
              <LookAlikeNote text={event.action} />
            </td>
            <td className="mono" title={visible(event.resource.id)}>
              {visible(`${event.resource.kind}:${shortHash(event.resource.id)}`)}
              <LookAlikeNote text={`${event.resource.kind}:${event.resource.id}`} />
            </td>
            <td>
              <EffectBadge effect={event.effect} />
            </td>
            <td className="mono" title={event.node ? visible(event.node) : undefined}>
              {event.node ? visible(shortHash(event.node)) : ''}
            </td>
            <td>{visible(outcomeText(event))}</td>
            <td className="summary">
              {visible(event.summary)}
              <LookAlikeNote text={summaryToCheck(event.summary)} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
