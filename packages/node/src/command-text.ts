// The command text of a `system.run.prepare` plan. Upstream's exec tool shows
// it to the humans who approve the run and sends it back as the run's
// `rawCommand`, with the plan itself (`systemRunPlan`); its gateway then lets
// a node's ask be answered by that approval. So the text must say what the
// argv runs, as upstream's own node host requires ("rawCommand does not match
// command"), and the plan must be the run's.
import { NodeError } from './errors.ts';
import { systemProgram } from './local-policy.ts';

/** The shells whose `-c TEXT` form upstream's exec tool sends (`/bin/sh -lc TEXT` on Linux), shown as their TEXT. */
const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash']);

/** An argv on one line, quoted as upstream quotes it (formatExecCommand): an argument holding whitespace or `"` in double quotes, `""` for an empty one. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map((arg) => (arg === '' ? '""' : /\s|"/.test(arg) ? `"${arg.replace(/"/g, '\\"')}"` : arg)).join(' ');
}

/**
 * TEXT of `SHELL -c TEXT` (options clustered with `c`, as `-lc`), or
 * undefined for any other argv: also for a program named like a shell
 * elsewhere than the system's own (`/tmp/x/sh`), which runs as itself,
 * whatever TEXT says.
 */
function shellText(argv: readonly string[]): string | undefined {
  const program = argv[0]!.slice(argv[0]!.lastIndexOf('/') + 1);
  return argv.length === 3 && SHELLS.has(program) && systemProgram(argv[0]!) && /^-[A-Za-z]*c[A-Za-z]*$/.test(argv[1]!) ? argv[2] : undefined;
}

/**
 * The text a plan shows for `argv` (a canonical, non-empty argv): the
 * caller's `rawCommand`, trimmed, when it is that argv formatted, or the TEXT
 * of a shell's `-c TEXT`; the argv formatted when there is none. Throws
 * NODE_REQUEST_INVALID for a text that says something else.
 */
export function planText(argv: readonly string[], rawCommand: unknown): string {
  const formatted = formatArgv(argv);
  if (rawCommand === undefined || rawCommand === null || (typeof rawCommand === 'string' && rawCommand.trim() === '')) return formatted;
  const text = typeof rawCommand === 'string' ? rawCommand.trim() : undefined;
  if (text !== undefined && (text === formatted || text === shellText(argv)?.trim())) return text;
  throw new NodeError('NODE_REQUEST_INVALID', 'rawCommand does not match command: it must be the argv (quoted as upstream quotes it) or the text its shell runs');
}

/**
 * Refuses a `system.run` whose params name another command than the one it
 * runs (`run`, of upstream agent `agent`): a `rawCommand` that is not its
 * argv (planText), or a `systemRunPlan` (the plan of system.run.prepare its
 * approvers were shown, which upstream's gateway checks an approval against)
 * of another argv, cwd, command text or agent. An approval of that plan says
 * nothing about the argv that would run. Throws NODE_REQUEST_INVALID.
 */
export function refuseOtherPlan(run: { argv: readonly string[]; cwd: string | null }, agent: string | undefined, params: { rawCommand?: unknown; systemRunPlan?: unknown }): void {
  planText(run.argv, params.rawCommand);
  const plan = params.systemRunPlan;
  if (plan === undefined || plan === null) return;
  const other = (what: string) => new NodeError('NODE_REQUEST_INVALID', `systemRunPlan does not match the run: ${what}`);
  if (typeof plan !== 'object' || Array.isArray(plan)) throw other('it must be the plan system.run.prepare gave');
  const p = plan as { argv?: unknown; cwd?: unknown; commandText?: unknown; agentId?: unknown };
  if (!Array.isArray(p.argv) || p.argv.length !== run.argv.length || p.argv.some((word, i) => word !== run.argv[i])) throw other('its argv is not the command');
  if ((p.cwd ?? null) !== run.cwd) throw other('its cwd is not the run\'s');
  if (p.commandText !== undefined && p.commandText !== null) planText(run.argv, p.commandText);
  if (p.agentId !== undefined && p.agentId !== null && p.agentId !== agent) throw other('it names another agent');
}
