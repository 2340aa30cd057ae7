// The decisions recorded in the audit log, as @corral/policy's `replay`
// reads them. A governed node command (`node.invoke.decide`) is judged again
// the way it was decided — the run made canonical from its recorded argv,
// each command asked under each spelling of its program, the strictest
// answer winning (decide.ts) — so a candidate is compared with the decision
// as a whole. Every other record that carries a decision on one of the
// schema's actions is one Cedar request.
import { toAuditRecord, type AuditEvent, type AuditStore } from '@corral/audit';
import { corralSchema, type RecordedDecision, type ReplayVerdict } from '@corral/policy';
import { answeredByGrant } from '../approvals/grants.ts';
import { canonicalRun } from './canonical.ts';
import { commandContext, commandResource, decideNamed, decideRun, nodeAsked, type ActionSite, type PrincipalRef, type RunDecision } from './decide.ts';
import { governanceOf } from './rules.ts';

const CEDAR_PRINCIPAL: Record<string, PrincipalRef['type']> = { agent: 'Agent', human: 'Human', node: 'Node' };

function timeContext(event: AuditEvent): { epoch: number; hour: number; weekday: number } {
  const at = new Date(event.time);
  return { epoch: Math.floor(at.getTime() / 1000), hour: at.getUTCHours(), weekday: at.getUTCDay() };
}

const isText = (v: unknown): v is string => typeof v === 'string';

/**
 * The allow-always grant of the candidate that would answer an ask on an
 * action digest, if one would (recorded, not withdrawn), as the gateway's
 * PolicyGrants.covering answers for the set in force.
 */
export type StandingGrant = (digest: string) => string | undefined;

/**
 * The replayable decision one record holds, or undefined. `names` maps agent
 * ids to the names Cedar knows them by; `standing` finds the candidate's
 * grant for a governed command's digest, which answers its ask as it would
 * live.
 */
export function recordedDecision(seq: number, event: AuditEvent, names: ReadonlyMap<string, string>, standing?: StandingGrant): RecordedDecision | undefined {
  const effect = event.decision?.effect;
  const type = CEDAR_PRINCIPAL[event.actor.kind];
  if (!effect || !type) return undefined;
  const principal: PrincipalRef = { type, id: event.actor.kind === 'agent' ? (names.get(event.actor.id) ?? event.actor.id) : event.actor.id };
  if (event.action === 'node.invoke.decide') {
    // A run's allow that names its approval (its own record, when the approval's was refused or unconfirmed):
    // what policy answered is the ask recorded before it, which is replayed.
    if (event.decision?.approval !== undefined) return undefined;
    return commandDecision(seq, event, principal, effect, standing);
  }
  if (!corralSchema().actions.get(event.action)?.principalTypes.length) return undefined;
  const recorded = event.details?.context;
  const context: Record<string, unknown> = recorded && typeof recorded === 'object' && !Array.isArray(recorded) ? { ...recorded } : {};
  context.time ??= timeContext(event);
  const kind = event.resource.kind;
  return { ref: seq, at: event.time, request: { principal, action: event.action, resource: { type: kind.charAt(0).toUpperCase() + kind.slice(1), id: event.resource.id }, context }, decision: effect };
}

/**
 * A governed node command as the gateway decided it (see invoke.ts's
 * decision record): a run from its argv, working directory and environment
 * names, or a named command from its checked params. A command no rule
 * governs was refused without a policy decision, and is not replayed.
 */
function commandDecision(seq: number, event: AuditEvent, principal: PrincipalRef, effect: RecordedDecision['decision'], standing: StandingGrant | undefined): RecordedDecision | undefined {
  const details = event.details ?? {};
  const command = details.command;
  const governance = isText(command) ? governanceOf(command) : undefined;
  const site: ActionSite = { ...(event.node ? { node: event.node } : {}), ...(isText(details.digest) ? { digest: details.digest } : {}) };
  // The node's own policy asked a human: it made an allow an ask, and does so again.
  const nodeAsks = isText(details.nodeAsks) ? details.nodeAsks : undefined;
  // Then, as live, a standing grant for exactly this action answers the ask (the node's too).
  const grant = site.digest !== undefined ? standing?.(site.digest) : undefined;
  const asNodeAsks = (verdict: RunDecision): ReplayVerdict => answeredByGrant(nodeAsks === undefined ? verdict : nodeAsked(verdict, nodeAsks), grant);
  // An ask records how many distinct approvers it needed (records from before that say nothing of it).
  const quorum = effect === 'ask' && Number.isSafeInteger(details.quorum) && (details.quorum as number) >= 1 ? { quorum: details.quorum as number } : {};
  const base = { ref: seq, at: event.time, decision: effect, ...quorum };
  if (governance?.kind === 'named') {
    const { rule } = governance;
    let params: Record<string, unknown>;
    try {
      params = rule.params(details.params);
    } catch {
      return undefined;
    }
    return { ...base, request: { principal, action: rule.action, resource: rule.resource, context: rule.context(params) }, judge: (decider) => asNodeAsks(decideNamed(decider, principal, rule, params, site)) };
  }
  if (governance?.kind !== 'run') return undefined;
  const argv = details.argv;
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every(isText)) return undefined;
  const cwd = isText(details.cwd) ? details.cwd : null;
  // Only the names of the environment are recorded, never its values: what makes a run opaque is which variables it sets.
  const env = Object.fromEntries((Array.isArray(details.envKeys) ? details.envKeys.filter(isText) : []).map((k) => [k, '']));
  let run: ReturnType<typeof canonicalRun>;
  try {
    run = canonicalRun({ command: argv, ...(cwd !== null ? { cwd } : {}), env });
  } catch {
    return undefined;
  }
  return {
    ...base,
    request: { principal, action: 'system.run', resource: { type: 'Command', id: commandResource(argv[0]!, cwd).id }, context: commandContext(argv, cwd, site) },
    judge: (decider) => asNodeAsks(decideRun(decider, principal, run, site)),
  };
}

/** The recorded decisions among the last `limit` records of `store` (all of them by default), oldest first; `standing` as recordedDecision takes it. */
export async function* auditHistory(store: AuditStore, names: ReadonlyMap<string, string>, limit = Number.POSITIVE_INFINITY, standing?: StandingGrant): AsyncGenerator<RecordedDecision> {
  const head = await store.head();
  for await (const rows of store.scan(Math.max(0, head.size - limit), head.size, 500)) {
    for (const row of rows) {
      const { seq, event } = toAuditRecord(row);
      const recorded = recordedDecision(seq, event, names, standing);
      if (recorded) yield recorded;
    }
  }
}
