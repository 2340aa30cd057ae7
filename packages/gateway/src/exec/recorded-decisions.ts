// The decisions recorded in the audit log, as @corral/policy's `replay`
// reads them: each governed command the gateway decided (`node.invoke.decide`,
// one Cedar `system.run` request per command), and every other record that
// carries a decision on one of the schema's actions. A run of several
// commands that was denied or asked is left out: the log keeps only its
// combined decision, not which command decided it.
import { toAuditRecord, type AuditEvent, type AuditStore } from '@corral/audit';
import { corralSchema, type RecordedDecision } from '@corral/policy';

const CEDAR_PRINCIPAL: Record<string, string> = { agent: 'Agent', human: 'Human', node: 'Node' };

function timeContext(event: AuditEvent): { epoch: number; hour: number; weekday: number } {
  const at = new Date(event.time);
  return { epoch: Math.floor(at.getTime() / 1000), hour: at.getUTCHours(), weekday: at.getUTCDay() };
}

/** The requests one record holds (none when it holds no replayable decision). */
function recordedDecisions(seq: number, event: AuditEvent, names: ReadonlyMap<string, string>): RecordedDecision[] {
  const effect = event.decision?.effect;
  const type = CEDAR_PRINCIPAL[event.actor.kind];
  if (!effect || !type) return [];
  const principal = { type, id: event.actor.kind === 'agent' ? (names.get(event.actor.id) ?? event.actor.id) : event.actor.id };
  if (event.action === 'node.invoke.decide') {
    const commands = Array.isArray(event.details?.commands) ? event.details.commands.filter((c): c is string[] => Array.isArray(c) && c.length > 0 && c.every((a) => typeof a === 'string')) : [];
    if (commands.length === 0 || (commands.length > 1 && effect !== 'allow')) return [];
    return commands.map((argv) => ({ ref: seq, at: event.time, request: { principal, action: 'system.run', resource: { type: 'Command', id: argv[0]! }, context: { argv, time: timeContext(event) } }, decision: effect }));
  }
  if (!corralSchema().actions.get(event.action)?.principalTypes.length) return [];
  const recorded = event.details?.context;
  const context: Record<string, unknown> = recorded && typeof recorded === 'object' && !Array.isArray(recorded) ? { ...recorded } : {};
  context.time ??= timeContext(event);
  const kind = event.resource.kind;
  return [{ ref: seq, at: event.time, request: { principal, action: event.action, resource: { type: kind.charAt(0).toUpperCase() + kind.slice(1), id: event.resource.id }, context }, decision: effect }];
}

/** The recorded decisions among the last `limit` records, oldest first. */
export async function* auditHistory(store: AuditStore, limit: number, names: ReadonlyMap<string, string>): AsyncGenerator<RecordedDecision> {
  const head = await store.head();
  for await (const rows of store.scan(Math.max(0, head.size - limit), head.size, 500)) {
    for (const row of rows) {
      const { seq, event } = toAuditRecord(row);
      yield* recordedDecisions(seq, event, names);
    }
  }
}
