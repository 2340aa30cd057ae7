#!/usr/bin/env node
// `corral <noun> <verb>`: human output by default, --json for machines.
import { Command, CommanderError } from 'commander';
import { EXIT } from './exit-codes.ts';
import { CliFailure, outputBroken, printable, watchOutput } from './output.ts';

const program = new Command('corral')
  .description('Run AI agents inside a company: identity, policy, containment, approval, proof.')
  .option('--state-dir <dir>', 'state directory (default: $CORRAL_STATE_DIR or ~/.corral)')
  .enablePositionalOptions()
  .showHelpAfterError()
  // Help and usage errors go through watchOutput too, `corral run`'s included (which otherwise tells its own output's
  // failures apart): `corral run --help | head -1` threw an EPIPE's stack trace, exit 1.
  .configureOutput({
    writeOut: (text) => {
      watchOutput();
      process.stdout.write(text);
    },
    writeErr: (text) => {
      watchOutput();
      process.stderr.write(text);
    },
  })
  .exitOverride();

/** The command commander reached last; once it has read its options, its own --json says how a failure is printed. */
let reached: Command = program;

// Each command family registers itself; keep one line per family, in the order help lists them.
type Register = (program: Command) => void;
const FAMILIES: Record<string, () => Promise<Register>> = {
  run: async () => (await import('./commands/run.ts')).registerRun,
  doctor: async () => (await import('./commands/doctor.ts')).registerDoctor,
  agents: async () => (await import('./commands/agents.ts')).registerAgents,
  tokens: async () => (await import('./commands/tokens.ts')).registerTokens,
  identity: async () => (await import('./commands/identity.ts')).registerIdentity,
  policy: async () => (await import('./commands/policy.ts')).registerPolicy,
  audit: async () => (await import('./commands/audit.ts')).registerAudit,
  gateway: async () => (await import('./commands/gateway.ts')).registerGateway,
  nodes: async () => (await import('./commands/nodes.ts')).registerNodes,
  approvals: async () => (await import('./commands/approvals.ts')).registerApprovals,
  node: async () => (await import('./commands/node.ts')).registerNode,
  up: async () => (await import('./commands/up.ts')).registerUp,
  users: async () => (await import('./commands/users.ts')).registerUsers,
};

try {
  // Only the family being run is loaded (a contained run never pays for the gateway's code);
  // help, an unknown command or none at all load every family, so commander can list them.
  const named = commandWord(process.argv.slice(2));
  // `corral run` tells its own output's failures apart (exit 141, the summary, the record): every other command shares one way.
  if (named !== 'run') watchOutput();
  const load = named !== undefined && Object.hasOwn(FAMILIES, named) ? [FAMILIES[named]!] : Object.values(FAMILIES);
  for (const register of await Promise.all(load.map((family) => family()))) register(program);
  acceptStateDirAfterCommand(program);
  checkRequiredAfterUnknown(program);
  followDispatch(program);
  await program.parseAsync(process.argv);
} catch (error) {
  const code = exitCodeFor(error);
  // The failure could not be told in full: a full disk under `> file` says so, exit 3, whichever comes first.
  process.exitCode = outputBroken() ? EXIT.environment : code;
}

/**
 * `--state-dir` after the command words (`corral audit verify --state-dir X`)
 * as well as before them: every leaf command takes it too, and
 * optsWithGlobals() hands the commands whichever was given.
 */
function acceptStateDirAfterCommand(command: Command): void {
  if (command.commands.length > 0) return command.commands.forEach(acceptStateDirAfterCommand);
  if (!command.options.some((o) => o.long === '--state-dir')) command.option('--state-dir <dir>', 'state directory (default: $CORRAL_STATE_DIR or ~/.corral)');
}

/**
 * Required options checked once every option given is known to be one:
 * commander checks them first, so `corral run --polciy p.yaml` said that
 * --policy was not given, and not that --polciy is no option (and which is).
 */
function checkRequiredAfterUnknown(command: Command): void {
  if (command.commands.length > 0) return command.commands.forEach(checkRequiredAfterUnknown);
  const required = command.options.filter((o) => o.mandatory);
  if (required.length === 0) return;
  for (const o of required) o.mandatory = false;
  command.hook('preAction', () => {
    const missing = required.find((o) => command.getOptionValue(o.attributeName()) === undefined);
    if (missing) command.error(`error: required option '${missing.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
  });
}

/** Follows commander down the command words, into `reached`. */
function followDispatch(command: Command): void {
  command.hook('preSubcommand', (_parent, sub) => void (reached = sub));
  command.commands.forEach(followDispatch);
}

/**
 * Whether the failure goes out as a JSON document: the command was given
 * --json as its own option — not as an argument it passes on (`corral run
 * -- tool --json`). Commander stops reading options at one it does not know,
 * so for its own errors a --json among the words before `--` counts too.
 */
function jsonRequested(error: unknown): boolean {
  if (reached.opts().json === true) return true;
  if (!(error instanceof CommanderError)) return false;
  const args = process.argv.slice(2);
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).includes('--json');
}

/** The command word: the first argument that is neither a global option nor its value. */
function commandWord(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--state-dir') i++;
    else if (!arg.startsWith('--state-dir=')) return arg.startsWith('-') ? undefined : arg;
  }
  return undefined;
}

/** A message for the terminal: its lines kept, what else they hold made printable (a message may quote what an agent sent). */
function lines(message: string): string {
  return message.split('\n').map(printable).join('\n');
}

function exitCodeFor(error: unknown): number {
  const json = jsonRequested(error);
  if (error instanceof CommanderError) {
    // Commander already printed the message (or help/version, which exit 0).
    if (error.exitCode === 0) return EXIT.ok;
    if (json) printJsonError(cliCode(EXIT.usage), error.message.replace(/^error: /, ''));
    return EXIT.usage;
  }
  if (error instanceof CliFailure) {
    process.stderr.write(`corral: ${lines(error.message)}${error.code ? ` [${error.code}]` : ''}\n`);
    if (json) printJsonError(error.code ?? cliCode(error.exitCode), error.message);
    return error.exitCode;
  }
  const coded = error as { code?: unknown; message?: unknown };
  if (typeof coded?.code === 'string' && typeof coded.message === 'string') {
    // A package's coded error: its message is written for users. The audit log's are one line each, and may quote
    // what a record holds (a name in a damaged record): a line feed in it is escaped too, so it cannot print a line
    // of its own ("ok: … verified") under corral's.
    process.stderr.write(`corral: ${coded.code.startsWith('AUDIT_') ? printable(coded.message) : lines(coded.message)} [${coded.code}]\n`);
    if (json) printJsonError(coded.code, coded.message);
    return exitCodeOfCode(coded.code);
  }
  process.stderr.write(`corral: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
  if (json) printJsonError('INTERNAL', String((error as Error)?.message ?? error));
  return EXIT.internal;
}

/**
 * The code of a failure the command line itself found (no package's coded
 * error behind it), by its exit code; each reads back to that exit code
 * through exitCodeOfCode.
 */
function cliCode(exitCode: number): 'CLI_BAD_ARGUMENT' | 'CLI_UNAVAILABLE' | 'CLI_FAILED' {
  if (exitCode === EXIT.usage) return 'CLI_BAD_ARGUMENT';
  if (exitCode === EXIT.environment) return 'CLI_UNAVAILABLE';
  return 'CLI_FAILED';
}

/** What a package's error code means for the exit code: a request that names nothing or is malformed, a host that lacks what is needed (a store that cannot be opened or written among it), or a check that failed. */
function exitCodeOfCode(code: string): number {
  if (/_(BAD_ARGUMENT|PARAMS_INVALID|NOT_FOUND|INPUT_INVALID|CONFIG_INVALID|EXPORT_MALFORMED|SURFACE_INVALID)$/.test(code)) return EXIT.usage;
  if (/_(UNAVAILABLE|STORE_FAILED|STORE_FOREIGN|STORE_BUSY|SIGN_IN_BUSY|STORE_SYMLINK|STATE_DIR_UNSAFE)$/.test(code)) return EXIT.environment;
  return EXIT.failed;
}

/** With --json, a failure is a JSON document on stdout too, for the program reading it. */
function printJsonError(code: string, message: string): void {
  process.stdout.write(`${JSON.stringify({ error: { code, message } })}\n`);
}
