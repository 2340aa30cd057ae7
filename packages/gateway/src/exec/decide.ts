// The policy decision for a `system.run`: one Cedar request per command that
// will run (packages/policy), combined so that the strictest wins. A command
// the analysis cannot see through is denied; a decision point that throws
// (no policy loaded, unreachable) denies.
import type { Decision } from '@corral/policy';
import type { CanonicalRun } from './canonical.ts';
import type { NamedRule } from './rules.ts';

export interface RunDecision {
  decision: 'allow' | 'deny' | 'ask';
  reason: string;
  /** Distinct approvers needed when `ask`. */
  quorum: number;
  /** Policies that decided, over all commands. */
  policies: string[];
  /** The decision for each command, in order. */
  commands: Array<{ argv: string[]; decision: 'allow' | 'deny' | 'ask' }>;
}

/** A principal as Cedar names it: `Human::"alice"`, `Agent::"invoice-bot"`. */
export interface PrincipalRef {
  type: 'Human' | 'Agent' | 'Node';
  id: string;
}

/**
 * Decides a canonical run. `decide` is the policy decision point's `decide`
 * (it may throw); `digest` (the action digest) goes into each request's
 * context, where an allow-always grant matches it. Never throws.
 */
export function decideRun(decide: (input: unknown) => Decision, principal: PrincipalRef, run: CanonicalRun, digest?: string): RunDecision {
  if (run.opaque) return { decision: 'deny', reason: `cannot tell what would run: ${run.opaqueReason ?? 'opaque command'}`, quorum: 0, policies: [], commands: run.commands.map((argv) => ({ argv, decision: 'deny' })) };
  const commands: RunDecision['commands'] = [];
  const policies = new Set<string>();
  let quorum = 0;
  let verdict: RunDecision['decision'] = 'allow';
  let reason = 'every command is allowed';
  for (const argv of run.commands) {
    let decision: Decision;
    try {
      decision = decide({ principal: { type: principal.type, id: principal.id }, action: 'system.run', resource: { type: 'Command', id: argv[0]! }, context: { argv, ...(digest ? { digest } : {}) } });
    } catch {
      return { decision: 'deny', reason: 'the policy decision point could not decide', quorum: 0, policies: [...policies], commands: [...commands, { argv, decision: 'deny' }] };
    }
    commands.push({ argv, decision: decision.decision });
    for (const id of decision.policies) policies.add(id);
    if (decision.decision === 'deny') {
      verdict = 'deny';
      reason = `${argv[0]}: ${decision.reason}`;
    } else if (decision.decision === 'ask' && verdict !== 'deny') {
      verdict = 'ask';
      reason = `${argv[0]}: ${decision.reason}`;
      quorum = Math.max(quorum, decision.quorum ?? 1);
    }
  }
  return { decision: verdict, reason, quorum: verdict === 'ask' ? Math.max(1, quorum) : 0, policies: [...policies], commands };
}

/**
 * Decides a named command (`payment.create`): one Cedar request whose action
 * is the command's name, on the rule's resource, with the context the rule
 * takes from the snapshotted params. A request the schema refuses, or a
 * decision point that throws, denies. Never throws.
 */
export function decideNamed(decide: (input: unknown) => Decision, principal: PrincipalRef, rule: NamedRule, params: Record<string, unknown>, digest: string): RunDecision {
  let decision: Decision;
  try {
    decision = decide({ principal: { type: principal.type, id: principal.id }, action: rule.action, resource: rule.resource, context: { ...rule.context(params), digest } });
  } catch {
    return { decision: 'deny', reason: 'the policy decision point could not decide', quorum: 0, policies: [], commands: [] };
  }
  return { decision: decision.decision, reason: decision.reason, quorum: decision.decision === 'ask' ? Math.max(1, decision.quorum ?? 1) : 0, policies: [...decision.policies], commands: [] };
}
