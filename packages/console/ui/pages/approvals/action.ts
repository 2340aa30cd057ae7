// Reading an approval's action as people should see it. Arguments are shown
// quoted the way a POSIX shell would need them, so spaces and quotes inside an
// argument cannot make two commands look alike.
import type { ApprovalAction } from '../../api/types.ts';

const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  if (PLAIN.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

export function commandLine(argv: readonly unknown[]): string {
  return argv.map((a) => shellQuote(String(a))).join(' ');
}

/** The headline: the command line, else the Cedar action, else the protocol command. */
export function actionTitle(action: ApprovalAction): string {
  if (Array.isArray(action.argv) && action.argv.length > 0) return commandLine(action.argv);
  return action.cedarAction ?? action.command ?? 'action';
}

/** Environment variable names only, whether the gateway sends a list or an object. */
export function envNames(env: ApprovalAction['env']): string[] {
  if (Array.isArray(env)) return env.map(String);
  if (env && typeof env === 'object') return Object.keys(env);
  return [];
}

/** Chained commands (`a | b`, `a && b`) as command lines. */
export function chained(commands: unknown[] | undefined): string[] {
  if (!Array.isArray(commands)) return [];
  return commands.map((c) => (Array.isArray(c) ? commandLine(c) : typeof c === 'object' && c !== null && Array.isArray((c as { argv?: unknown }).argv) ? commandLine((c as { argv: unknown[] }).argv) : String(c)));
}
