// The policy decision for a `system.run`: one Cedar request per command that
// will run (packages/policy), combined so that the strictest wins. A command
// the analysis cannot see through is denied; a decision point that throws
// (no policy loaded, unreachable) denies.
import type { Decider, Decision } from '@corral/policy';
import { isSystemProgram, programName, SYSTEM_DIRS, type CanonicalRun } from './canonical.ts';
import type { NamedRule } from './rules.ts';
import { cut } from '../well-formed.ts';

/**
 * The decision point a gateway decides with: a Decider, and, when its set
 * can be replaced by another process while the gateway runs (PolicyControl),
 * `decider()`: the decider for one action, given at once, or once the set it
 * noticed is compiled off the gateway's thread — to be used in the tick it
 * is given (see deciderFor).
 */
export interface GatewayDecider extends Decider {
  decider?(): Decider | Promise<Decider>;
}

/**
 * The decider to decide one action with (decideRun, decideNamed), after
 * waiting for the set `decider` noticed to be compiled (GatewayDecider):
 * use it at once. With nothing to wait for it costs one resolved promise.
 * Rejects only as `decider.decider()` does (PolicyControl's never does).
 */
export async function deciderFor(decider: GatewayDecider): Promise<Decider> {
  return (await decider.decider?.()) ?? decider;
}

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

// How argv[0] becomes the Cedar resource. A bare name (`rm`, found on the
// node's PATH, which a request cannot change: canonical.ts makes a PATH
// setting opaque) and a path in a standard system directory (`/bin/rm`,
// `/usr/bin/rm`) are one program to policy, `Command::"rm"`. Any other
// absolute path (`/tmp/evil/echo`) stays literal, so a permit for `echo`
// never admits a program placed elsewhere, and a permit is never looser than
// it was. A relative path (`./tool`, `bin/tool`) names the file the node runs:
// the one in the working directory the command is decided in, so it is that
// absolute path (`/srv/app/tool` for `./tool` in /srv/app, without `.` and
// empty parts), and a permit for one folder's tool admits no other folder's;
// from a working directory not known (none, or relative), it stays as
// written. Forbids must catch every spelling, so each other spelling of the
// program (argv[0] as sent, that absolute path, the path with `.`, empty
// parts and `..` read by name, its file name, the file name in each system
// directory) is asked as well, and a forbid any of them satisfies denies the
// command; permits those requests satisfy count for nothing.

/**
 * The Cedar resource id for a program as argv[0] spells it, run in the
 * working directory `cwd` (null, or omitted: not known), and the other
 * spellings whose forbids also apply to it (see above).
 */
export function commandResource(program: string, cwd: string | null = null): { id: string; spellings: string[] } {
  const name = programName(program);
  const relative = program.includes('/') && !program.startsWith('/');
  // The file the node runs, by a path whose `.` and empty parts are dropped (the kernel reads them so); `..` is kept, as a symlink before it decides where it leads.
  const path = relative && cwd?.startsWith('/') === true ? cleanPath(`${cwd}/${program}`, false) : program;
  const id = isSystemProgram(path) ? name : path;
  const spellings = new Set([program, path, cleanPath(path, false), cleanPath(path, true), name, ...SYSTEM_DIRS.map((d) => `${d}/${name}`)]);
  spellings.delete(id);
  if (name === '') spellings.clear();
  return { id, spellings: [...spellings] };
}

/** An absolute `path` without `.` and empty parts, and with `byName`, `..` dropping the part before it; a relative path as it is. */
function cleanPath(path: string, byName: boolean): string {
  if (!path.startsWith('/')) return path;
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..' && byName) out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/**
 * The Cedar context of one command: its argv as a set (`context.argv`), and
 * as one string with every argument on a line of its own,
 * `"\n" + argv.join("\n") + "\n"` (`context.commandLine`), so that `like`
 * can look inside every argument: `context.commandLine like "*\n.ssh/*"`;
 * the requested working directory (`context.cwd`), when there is one; and
 * where and what (`at`).
 */
export function commandContext(argv: readonly string[], cwd: string | null, at: ActionSite = {}): Record<string, unknown> {
  return { argv: [...argv], commandLine: `\n${argv.join('\n')}\n`, ...(cwd !== null ? { cwd } : {}), ...siteContext(at) };
}

/**
 * Where a node command would run and the exact action it is: the node
 * (`context.node`, a Node entity, so a policy can name a machine or, through
 * entities.json, its groups: `context.node in Group::"prod"`) and the action
 * digest (`context.digest`, what an allow-always grant matches).
 */
export interface ActionSite {
  node?: string;
  digest?: string;
}

function siteContext(at: ActionSite): Record<string, unknown> {
  return { ...(at.node ? { node: { __entity: { type: 'Node', id: at.node } } } : {}), ...(at.digest ? { digest: at.digest } : {}) };
}

/**
 * Decides a canonical run. `decider` is the policy decision point (it may
 * throw); `at` (the node, the action digest) goes into each request's
 * context. Never throws.
 */
export function decideRun(decider: Decider, principal: PrincipalRef, run: CanonicalRun, at: ActionSite = {}): RunDecision {
  if (run.opaque) return { decision: 'deny', reason: `cannot tell what would run: ${run.opaqueReason ?? 'opaque command'}`, quorum: 0, policies: [], commands: run.commands.map((argv) => ({ argv, decision: 'deny' })) };
  const commands: RunDecision['commands'] = [];
  const policies = new Set<string>();
  let quorum = 0;
  let verdict: RunDecision['decision'] = 'allow';
  let reason = 'every command is allowed';
  // A shell looked through may start after a cd or be handed to git: its forbids are asked in every working directory of the run.
  const folders = [...new Set(run.cwds?.flat() ?? [run.cwd])];
  for (const argv of run.wrappers) {
    let forbidden: Decision | undefined;
    try {
      forbidden = forbidOf(folders.flatMap((cwd) => decisions(decider, principal, argv, cwd, at)));
    } catch (error) {
      return { decision: 'deny', reason: undecided(error), quorum: 0, policies: [], commands: run.commands.map((c) => ({ argv: c, decision: 'deny' })) };
    }
    if (forbidden) return { decision: 'deny', reason: `${argv[0]}: ${forbidden.reason}`, quorum: 0, policies: [...forbidden.policies], commands: run.commands.map((c) => ({ argv: c, decision: 'deny' })) };
  }
  for (const [index, argv] of run.commands.entries()) {
    let decision: Decision;
    try {
      // Once a cd has run, in every working directory the command may run in (CanonicalRun.cwds): the strictest decision.
      decision = strictest((run.cwds?.[index] ?? [run.cwd]).map((cwd) => decideCommand(decisions(decider, principal, argv, cwd, at))));
    } catch (error) {
      return { decision: 'deny', reason: undecided(error), quorum: 0, policies: [...policies], commands: [...commands, { argv, decision: 'deny' }] };
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

/** The strictest of one command's decisions in several working directories: a deny, else the ask with the largest quorum, else an allow; the policies of all. */
function strictest(decided: Decision[]): Decision {
  const rank = (d: Decision): number => (d.decision === 'deny' ? 2 : d.decision === 'ask' ? 1 : 0);
  let chosen = decided[0]!;
  for (const d of decided.slice(1)) {
    if (rank(d) > rank(chosen) || (d.decision === 'ask' && chosen.decision === 'ask' && (d.quorum ?? 1) > (chosen.quorum ?? 1))) chosen = d;
  }
  if (decided.length === 1) return chosen;
  return { ...chosen, policies: [...new Set(decided.flatMap((d) => (d.decision === chosen.decision ? d.policies : [])))] };
}

/**
 * One command's decision from its decisions (see `decisions`): the request on
 * its resource, unless a forbid denies one of its other spellings.
 */
function decideCommand([decision, ...others]: Decision[]): Decision {
  if (decision!.decision === 'deny') return decision!;
  return forbidOf(others) ?? decision!;
}

/**
 * The forbid among a program's decisions that denies it, if one does: what a
 * shell looked through is checked against, as it needs no permit.
 */
function forbidOf(decided: Decision[]): Decision | undefined {
  // With no approval in the context, a deny that names policies is a forbid (satisfied, or not evaluable).
  return decided.find((d) => d.decision === 'deny' && d.policies.length > 0);
}

/**
 * The decisions on one command: its request on its resource first, then on
 * each other spelling of its program (see commandResource), asked of the
 * decision point at once. Throws what the decider throws.
 */
function decisions(decider: Decider, principal: PrincipalRef, argv: string[], requested: string | null, at: ActionSite): Decision[] {
  // The folder as a policy reads it, `/srv/app` however it is written (`/srv//app/.`, `/srv/app/`): the node runs the command there.
  const cwd = requested === null ? null : cleanPath(requested, false);
  const { id, spellings } = commandResource(argv[0]!, cwd);
  const input = { principal: { type: principal.type, id: principal.id }, action: 'system.run', context: commandContext(argv, cwd, at) };
  return decider.decideEach(input, [id, ...spellings].map((resource) => ({ type: 'Command', id: resource })));
}

/**
 * The verdict once the node's own policy asks a human (it may only make a
 * decision stricter): an allow becomes an ask saying why; a deny stays a
 * deny, an ask keeps its quorum.
 */
export function nodeAsked(verdict: RunDecision, why: string): RunDecision {
  if (verdict.decision !== 'allow') return verdict;
  return { ...verdict, decision: 'ask', quorum: Math.max(1, verdict.quorum), reason: `the node asks a human: ${cut(why, 300)}` };
}

/**
 * Why a decision point that threw denies: when no policy set may decide (none
 * loaded, one not yet composed with the identity store, an activation left
 * unrecorded), its own words, which say what to do; anything else, that it
 * could not decide.
 */
function undecided(error: unknown): string {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (e?.code === 'POLICY_NOT_LOADED' && typeof e.message === 'string') return `the policy decision point could not decide: ${cut(e.message, 300)}`;
  return 'the policy decision point could not decide';
}

/**
 * Decides a named command (`payment.create`): one Cedar request whose action
 * is the command's name, on the rule's resource, with the context the rule
 * takes from the snapshotted params. A request the schema refuses, or a
 * decision point that throws, denies. Never throws.
 */
export function decideNamed(decider: Decider, principal: PrincipalRef, rule: NamedRule, params: Record<string, unknown>, at: ActionSite): RunDecision {
  let decision: Decision;
  try {
    [decision] = decider.decideEach({ principal: { type: principal.type, id: principal.id }, action: rule.action, context: { ...rule.context(params), ...siteContext(at) } }, [rule.resource]) as [Decision];
  } catch (error) {
    return { decision: 'deny', reason: undecided(error), quorum: 0, policies: [], commands: [] };
  }
  return { decision: decision.decision, reason: decision.reason, quorum: decision.decision === 'ask' ? Math.max(1, decision.quorum ?? 1) : 0, policies: [...decision.policies], commands: [] };
}
