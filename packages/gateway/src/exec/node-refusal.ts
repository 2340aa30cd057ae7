// `corral.run.refused`: a Corral node serving another gateway (upstream
// OpenClaw) tells its control plane of a `system.run` it refused on its own,
// before asking (its local policy, a working directory or container policy it
// cannot use, a program the sandbox could have planted, an approval receipt it
// does not take, its own policy file it cannot read), so that the control plane's audit log holds that decision
// too. It is the node's word alone: the record's action, node and `by` are
// fixed here, every value the node sends is checked and bounded, and text is
// kept as data (JSON escapes its control characters; nothing reads it as
// anything else).
import type { AuditEventInput } from '@corral/audit';
import { GatewayError } from '../errors.ts';

/** The action of a node's own refusal's record. */
export const NODE_REFUSE_ACTION = 'node.invoke.refuse';

/** The most words of a refused run's argv a node may send (it sends the first ones, marked `truncated`). */
export const MAX_REFUSED_ARGV = 64;
/** The most characters of one word of that argv, of its cwd, and of the node's reason. */
export const MAX_REFUSED_WORD = 1024;
export const MAX_REFUSED_CWD = 1024;
export const MAX_REFUSED_REASON = 1000;
/** The most environment variable names, and the longest. */
export const MAX_REFUSED_ENV_KEYS = 64;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** The most bytes the run's argv, cwd and env names may take as JSON (the audit log takes an event of at most 64 KiB). */
export const MAX_REFUSED_RUN_BYTES = 32 * 1024;
/**
 * The codes a node refuses a run with (packages/node's NodeErrorCode for a
 * refused run); NODE_INTERNAL when it failed on its own (its policy file
 * cannot be read), whose reason is the node's words for what failed, never
 * its files (its own log holds those).
 */
const CODES = new Set(['NODE_RUN_DENIED', 'NODE_CONTAINMENT_UNAVAILABLE', 'NODE_INTERNAL']);
/** The local policy's rules (packages/node's LocalRule) a refusal may name. */
const RULES = new Set(['security-deny', 'allowlist-miss', 'approval-required']);
/** The longest name of an agent of the node's gateway a refusal carries (the node cuts longer ones). */
export const MAX_UPSTREAM_AGENT = 200;
/** A Corral agent name, as the node's agent map holds one. */
const AGENT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** A node's refusal, checked: snapshot of what it sent. */
export interface NodeRefusal {
  argv: string[];
  cwd: string | null;
  envKeys: string[];
  agentId: string | undefined;
  /** An agent of the node's gateway its map does not name (then no agentId): its name there, the node's word. */
  upstreamAgent: string | undefined;
  code: string;
  rule: string | undefined;
  reason: string;
  truncated: boolean;
}

function invalid(message: string): GatewayError {
  return new GatewayError('GATEWAY_PARAMS_INVALID', message, { wire: { code: 'INVALID_REQUEST', message } });
}

/**
 * Snapshots and checks the params of `corral.run.refused`: `command` (the
 * argv, 1..MAX_REFUSED_ARGV strings of at most MAX_REFUSED_WORD characters,
 * the first not empty), `cwd` (absent, null, or a path of at most
 * MAX_REFUSED_CWD), `envKeys` (at most MAX_REFUSED_ENV_KEYS variable names),
 * `agentId` (absent, or a Corral agent name), `upstreamAgent` (absent, or
 * instead of agentId the name of an agent of the node's gateway its map does
 * not name, 1..MAX_UPSTREAM_AGENT characters), `code` (NODE_RUN_DENIED,
 * NODE_CONTAINMENT_UNAVAILABLE or NODE_INTERNAL), `rule` (absent, or a local
 * policy rule, with NODE_RUN_DENIED alone),
 * `reason` (1..MAX_REFUSED_REASON characters), `truncated` (absent or a
 * boolean); argv, cwd and env names together at most MAX_REFUSED_RUN_BYTES
 * as JSON; no text holding a lone surrogate (the audit log takes none). Throws GATEWAY_PARAMS_INVALID (wire INVALID_REQUEST).
 */
export function nodeRefusal(raw: unknown): NodeRefusal {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('params must be an object');
  const p = raw as Record<string, unknown>;
  const { command, cwd, envKeys, agentId, upstreamAgent, code, rule, reason, truncated } = p;
  if (!Array.isArray(command) || command.length === 0 || command.length > MAX_REFUSED_ARGV) throw invalid(`command must be an argv of 1 to ${MAX_REFUSED_ARGV} words`);
  const argv = [...(command as unknown[])];
  if (!argv.every((w) => typeof w === 'string' && w.length <= MAX_REFUSED_WORD && w.isWellFormed())) throw invalid(`each word of command must be a string of at most ${MAX_REFUSED_WORD} characters`);
  if (argv[0] === '') throw invalid('command must name a program');
  if (!(cwd === undefined || cwd === null || (typeof cwd === 'string' && cwd.length > 0 && cwd.length <= MAX_REFUSED_CWD && cwd.isWellFormed()))) throw invalid(`cwd must be a path of at most ${MAX_REFUSED_CWD} characters`);
  if (!(envKeys === undefined || (Array.isArray(envKeys) && envKeys.length <= MAX_REFUSED_ENV_KEYS))) throw invalid(`envKeys must list at most ${MAX_REFUSED_ENV_KEYS} names`);
  const keys = [...((envKeys ?? []) as unknown[])];
  if (!keys.every((k) => typeof k === 'string' && ENV_NAME.test(k))) throw invalid('envKeys must be environment variable names');
  if (!(agentId === undefined || (typeof agentId === 'string' && AGENT_NAME.test(agentId)))) throw invalid('agentId must be a Corral agent name');
  if (!(upstreamAgent === undefined || (typeof upstreamAgent === 'string' && upstreamAgent.length > 0 && upstreamAgent.length <= MAX_UPSTREAM_AGENT && upstreamAgent.isWellFormed()))) throw invalid(`upstreamAgent must be a name of 1 to ${MAX_UPSTREAM_AGENT} characters`);
  if (agentId !== undefined && upstreamAgent !== undefined) throw invalid('a refusal names a Corral agent (agentId) or an unmapped agent of its gateway (upstreamAgent), not both');
  if (typeof code !== 'string' || !CODES.has(code)) throw invalid('code must be NODE_RUN_DENIED, NODE_CONTAINMENT_UNAVAILABLE or NODE_INTERNAL');
  if (!(rule === undefined || (typeof rule === 'string' && RULES.has(rule)))) throw invalid('rule must be a local policy rule');
  // Only the local policy's own refusal names one of its rules: a run refused for any other reason was decided by none of them.
  if (rule !== undefined && code !== 'NODE_RUN_DENIED') throw invalid('rule goes with NODE_RUN_DENIED alone');
  if (typeof reason !== 'string' || reason.length === 0 || reason.length > MAX_REFUSED_REASON || !reason.isWellFormed()) throw invalid(`reason must be 1 to ${MAX_REFUSED_REASON} characters`);
  if (!(truncated === undefined || typeof truncated === 'boolean')) throw invalid('truncated must be a boolean');
  const run = { argv: argv as string[], cwd: (cwd ?? null) as string | null, envKeys: keys as string[] };
  if (Buffer.byteLength(JSON.stringify(run)) > MAX_REFUSED_RUN_BYTES) throw invalid(`the run must take at most ${MAX_REFUSED_RUN_BYTES} bytes`);
  return { ...run, agentId: agentId as string | undefined, upstreamAgent: upstreamAgent as string | undefined, code, rule: rule as string | undefined, reason, truncated: truncated === true };
}

/**
 * The record of node `nodeId`'s refusal: actor `actor` (the agent the run was
 * for, as this gateway knows it, else the node), a deny with the node's
 * reason, `details.by: 'node'`.
 */
export function refusalRecord(nodeId: string, actor: AuditEventInput['actor'], refusal: NodeRefusal): AuditEventInput {
  return {
    actor,
    action: NODE_REFUSE_ACTION,
    resource: { kind: 'command', id: refusal.argv[0]! },
    node: nodeId,
    decision: { effect: 'deny', reason: refusal.reason },
    details: {
      by: 'node',
      code: refusal.code,
      ...(refusal.rule !== undefined ? { rule: refusal.rule } : {}),
      command: 'system.run',
      argv: refusal.argv,
      cwd: refusal.cwd,
      envKeys: refusal.envKeys,
      ...(refusal.upstreamAgent !== undefined ? { upstreamAgent: refusal.upstreamAgent } : {}),
      ...(refusal.truncated ? { truncated: true } : {}),
    },
  };
}
