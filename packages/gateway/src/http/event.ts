// An audit record summarised for people: the `Event` of the activity feed and
// the audit explorer's list (docs/http-api.md).
import type { AuditRecord } from '@corral/audit';
import { commandLine } from '../exec/command-line.ts';
import { cut } from '../well-formed.ts';

export interface ActivityEvent {
  seq: number;
  time: string;
  actor: { kind: string; id: string; name?: string; onBehalfOf?: { kind: string; id: string } };
  action: string;
  resource: { kind: string; id: string };
  effect: 'allow' | 'deny' | 'ask' | null;
  policies: string[];
  approval: string | null;
  node: string | null;
  outcome: { status: string; exitCode?: number } | null;
  summary: string;
}

/** `names` maps agent ids to their names (the log records agents by id). */
export function toEvent(record: AuditRecord, names: ReadonlyMap<string, string> = new Map()): ActivityEvent {
  const e = record.event;
  const name = e.actor.kind === 'agent' ? names.get(e.actor.id) : undefined;
  const actor = { kind: e.actor.kind, id: e.actor.id, ...(name ? { name } : {}), ...(e.actor.onBehalfOf ? { onBehalfOf: { kind: e.actor.onBehalfOf.kind, id: e.actor.onBehalfOf.id } } : {}) };
  const outcome = e.outcome ? { status: e.outcome.status, ...(e.outcome.exitCode !== undefined ? { exitCode: e.outcome.exitCode } : {}) } : null;
  return {
    seq: record.seq,
    time: e.time,
    actor,
    action: e.action,
    resource: { kind: e.resource.kind, id: e.resource.id },
    effect: e.decision?.effect ?? null,
    policies: e.decision?.policies ?? [],
    approval: e.decision?.approval ?? null,
    node: e.node ?? null,
    outcome,
    summary: summarise(record, name),
  };
}

function summarise(record: AuditRecord, name: string | undefined): string {
  const e = record.event;
  const who = `${e.actor.kind} ${name ?? e.actor.id}`;
  const argv = Array.isArray(e.details?.argv) ? commandLine(e.details.argv as unknown[]) : undefined;
  // Agents are recorded by id; the records about them carry the name people know.
  const target = typeof e.details?.name === 'string' ? e.details.name : e.resource.id;
  const what = argv ? `${e.action} ${argv}` : `${e.action} ${e.resource.kind} ${target}`;
  const effect = e.decision ? `: ${e.decision.effect}${e.decision.reason ? ` (${e.decision.reason})` : ''}` : '';
  const outcome = e.outcome ? ` → ${e.outcome.status}${e.outcome.exitCode !== undefined ? ` exit ${e.outcome.exitCode}` : ''}` : '';
  return clipped(`${who} ${what}${effect}${outcome}`, SUMMARY_MAX);
}

/** The longest summary, in UTF-16 code units. */
const SUMMARY_MAX = 300;

/** `text` cut to at most `max` code units, marked with … when cut (a command line's end must not look like all of it), never inside a surrogate pair. */
function clipped(text: string, max: number): string {
  return text.length <= max ? text : `${cut(text, max - 1)}…`;
}

/** Whether an event passes the activity filters; `agent` lists the agent's id and name (records use either). */
export function matchesFilter(event: ActivityEvent, filter: { agent?: readonly string[] | null; node?: string | null; effect?: string | null }): boolean {
  if (filter.agent && !(event.actor.kind === 'agent' && filter.agent.includes(event.actor.id))) return false;
  if (filter.node && event.node !== filter.node) return false;
  if (filter.effect && event.effect !== filter.effect) return false;
  return true;
}
