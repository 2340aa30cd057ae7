// Reading an approval's action as people should see it. Arguments are shown
// quoted the way a POSIX shell would need them, so spaces and quotes inside an
// argument cannot make two commands look alike, and characters that draw
// nothing or reorder the line are spelled out.
import type { ApprovalAction } from '../../api/types.ts';
import { visible } from '../../format.ts';

const PLAIN = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shellQuote(arg: string): string {
  if (PLAIN.test(arg)) return arg;
  if (visible(arg) === arg) return `'${arg.replaceAll("'", `'\\''`)}'`;
  // ANSI-C quoting (POSIX.1-2024 $'…'): backslashes and quotes escaped first, so only visible() writes an escape.
  return `$'${visible(arg.replace(/[\\']/g, '\\$&'))}'`;
}

export function commandLine(argv: readonly unknown[]): string {
  return argv.map((a) => shellQuote(String(a))).join(' ');
}

/** The headline: the command line, else the Cedar action, else the protocol command. */
export function actionTitle(action: ApprovalAction): string {
  if (Array.isArray(action.argv) && action.argv.length > 0) return commandLine(action.argv);
  return visible(action.cedarAction ?? action.command ?? 'action');
}

export interface Payment {
  amount: number;
  currency: string | undefined;
  payee: string | undefined;
  /** Every other field of the params or context, shown as given. */
  rest: Record<string, unknown>;
}

/** The money in an action (`payment.create` and the like): amount in cents from its context or params. */
export function paymentOf(action: ApprovalAction): Payment | undefined {
  const fields = action.context ?? action.params;
  if (!fields || typeof fields.amount !== 'number') return undefined;
  const { amount, currency, payee, ...rest } = fields;
  return { amount, currency: typeof currency === 'string' ? currency : undefined, payee: typeof payee === 'string' ? payee : undefined, rest };
}

/** What the gateway says of a run that runs code its argv does not show (`python3 -c …`): absent from a run that does not, and from older gateways. */
export interface RunsCode {
  program: string;
  via: string;
  reason: string;
}

/** The action's runsCode when the gateway sent one in the shape it has. */
export function runsCodeOf(action: ApprovalAction): RunsCode | undefined {
  const runs = action.runsCode;
  if (runs === null || typeof runs !== 'object') return undefined;
  const { program, via, reason } = runs as Record<string, unknown>;
  return typeof program === 'string' && typeof via === 'string' && typeof reason === 'string' ? { program, via, reason } : undefined;
}

/**
 * Whether the gateway makes a standing grant when the action is allowed always: its `allowAlways` where it sends one;
 * else, as older gateways decided, for any action but one that runs code its argv does not show (`runs`, runsCodeOf's).
 */
export function allowAlwaysOf(action: ApprovalAction, runs: RunsCode | undefined): boolean {
  return typeof action.allowAlways === 'boolean' ? action.allowAlways : runs === undefined;
}

/** The script file a run's approval is bound to by its content (the gateway's action.mutableFileOperand, as its node prepared the run). */
export interface BoundScript {
  /** The file as the node resolved it: the node's text, shown through visible(). */
  path: string;
  /** SHA-256 of what the file held when the approval was asked for, 64 hex digits. */
  sha256: string;
  /**
   * What the node read it to hold (action.scriptPreview): its size, whether only its first 64 KiB are here, and those as
   * text — none when they are no text; no preview at all from an upstream node or an older gateway.
   */
  preview?: { bytes: number; truncated: boolean; text?: string };
}

/** The action's bound script when the gateway sent one in the shape it has: absent from a run that binds no file, and from older gateways. */
export function boundScriptOf(action: ApprovalAction): BoundScript | undefined {
  const operand = action.mutableFileOperand;
  if (operand === null || typeof operand !== 'object') return undefined;
  const { path, sha256 } = operand as Record<string, unknown>;
  if (typeof path !== 'string' || typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
  const preview = previewOf(action.scriptPreview);
  return { path, sha256, ...(preview ? { preview } : {}) };
}

function previewOf(given: unknown): BoundScript['preview'] {
  if (given === null || typeof given !== 'object') return undefined;
  const { bytes, truncated, text } = given as Record<string, unknown>;
  if (typeof bytes !== 'number' || typeof truncated !== 'boolean' || (text !== undefined && typeof text !== 'string')) return undefined;
  return { bytes, truncated, ...(typeof text === 'string' ? { text } : {}) };
}

/**
 * A script's text as an approver must read it, line by line: each line through visible() (a carriage return, a
 * bidirectional override, a zero-width character spelled out), its tabs kept as the indentation they are.
 */
export function scriptLines(text: string): string[] {
  const lines = text.split('\n');
  // A file's last line break ends its last line: no empty line after it.
  if (lines.length > 1 && lines.at(-1) === '') lines.pop();
  return lines.map((line) => line.split('\t').map(visible).join('\t'));
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
  return commands.map((c) => (Array.isArray(c) ? commandLine(c) : typeof c === 'object' && c !== null && Array.isArray((c as { argv?: unknown }).argv) ? commandLine((c as { argv: unknown[] }).argv) : visible(String(c))));
}
