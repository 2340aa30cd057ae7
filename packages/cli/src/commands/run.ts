import type { Command } from 'commander';
import type { AuditLog } from '@corral/audit';
import type { ContainError as ContainErrorClass, Runner, RunResult, SandboxPlan } from '@corral/contain/runner';
import { constants as osConstants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EXIT } from '../exit-codes.ts';
import { CliFailure, printable, printJson } from '../output.ts';
import { hiddenState, privateFolder, stateDir } from '../state-dir.ts';
import { DigestingSink, interruptedRunEvent, notStartedRunEvent, runEvent, unrecordable } from './run-record.ts';

// Validated policies, remembered by digest: running an unchanged policy skips its parser and schema.
const POLICY_CACHE = 'policy-cache';

/** `corral run --policy FILE [--json] -- CMD ARGS...`: one command, contained. */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run one command inside a container defined by a policy')
    .requiredOption('-p, --policy <file>', 'container policy (YAML or JSON)')
    .option('--json', "print one summary object on stdout at the end (the command's own output goes to stderr)")
    .option('--no-audit', 'do not record the run in the audit log of the state directory')
    .argument('<command...>', 'the command and its arguments (put them after --)')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Exit codes: the command's own exit status, whatever it is (128 + N when signal N ended it), or
Corral's own, which a command may also exit with itself:
  124 timeout: it ran past process.timeoutMs and its whole tree was killed
  125 a limit (memory, processes, output) stopped it
  126 refused: the host cannot enforce what the policy asks (or build a sandbox of that many paths and
      variables), or a granted path changed as it started
  127 the command does not exist inside the sandbox
  130 Ctrl-C stopped it (143: SIGTERM, 129: a hang-up, 131: Ctrl-\\); the run is recorded all the same
  141 corral's output was closed (corral run … | head): the command was stopped
    2 the policy is invalid (file, line and field are printed), or the command line is too long to record
      or to hand to a sandbox (over 65,536 words or 2 MiB, or a word of 128 KiB)
    3 the host cannot contain anything (see 'corral doctor') or the sandbox could not be set up (the
      attempt is recorded); or the audit log cannot be opened, or a record or the output cannot be
      written (the message says whether the command ran)
Without --json, a 'corral:' line on stderr says why when the status is Corral's (none for 129-131,
141 and 143, as a shell prints none).
With --json, the summary's exitReason is "command" when the status is the command's own, else
"timeout", "limit", "not-found", "interrupted" or "output-closed"; any other failure of Corral's is
an error document {"error": {"code", "message"}} instead of a summary.`,
    )
    .action(async (argv: string[], opts: { policy: string; json?: boolean; audit: boolean }, command: Command) => {
      // Loaded on use: other commands do not pay for the sandbox and the audit log.
      const { loadPolicyFile, planSandbox, policyDigestOf, Runner } = await import('@corral/contain/runner');
      const state = stateDir(command.optsWithGlobals<{ stateDir?: string }>().stateDir);
      const file = resolve(opts.policy);
      // The state directory (audit log, its signing key, the policy cache) is out of every sandbox's reach, but for its process workspaces.
      const { dir, exposed, others } = hiddenState(state);
      // Written to only once this user's alone, the state directory and the cache in it: one another user owns could have
      // a link put where the cache writes, and have the file it names overwritten. One that cannot be made goes uncached.
      const cacheDir = join(state, POLICY_CACHE);
      const cached = (await privateFolder(state)) && (await privateFolder(cacheDir));
      const loaded = await refuseBadPolicy(() => loadPolicyFile(file, dirname(file), cached ? { cacheDir } : {}));
      let plan: SandboxPlan;
      try {
        plan = planSandbox(loaded, process.env, { stateDir: dir, exposed, otherStateDirs: others });
      } catch (error) {
        // A protection the host cannot enforce is refused, and that decision is on record as an attempt that did not start.
        const code = (error as { code?: unknown }).code;
        if (!opts.audit || typeof code !== 'string' || !REFUSALS.has(code) || unrecordable(argv, file, policyDigestOf(loaded.policy), [])) throw asCliFailure(error);
        const audit = await openAudit(state);
        try {
          throw await notStarted(error, argv, file, policyDigestOf(loaded.policy), audit);
        } finally {
          await audit.close().catch(() => undefined);
        }
      }
      const tooLarge = opts.audit ? unrecordable(argv, file, plan.policyDigest, plan.warnings) : undefined;
      if (tooLarge) throw new CliFailure(`the run cannot be recorded in the audit log: ${tooLarge}; nothing ran. Pass long data through a file or standard input, or run with --no-audit to run without a record.`, EXIT.usage);
      // From here on the policy is loaded and the run can be recorded: a failure before the command
      // starts, or an interrupt, is recorded as an attempt that did not start, once the audit log is open.
      // Ctrl-C, SIGTERM, a hang-up (the terminal closed) or Ctrl-\ stops the command, never corral: one
      // before the command starts (as the sandbox sets up, as the log opens), a second one, or one while
      // the run is recorded and the log sealed, would otherwise end this process with the run unrecorded.
      const interrupts = new Interrupts();
      let runner: Runner | undefined;
      let cannotStart: unknown;
      try {
        runner = new Runner();
      } catch (error) {
        cannotStart = error;
      }
      // The command reads a pipe the runner feeds from corral's standard input, never that descriptor
      // itself: a terminal or socket there is also writable, a way past the output limit and the record.
      const stdin = process.stdin.isTTY || !opts.json ? 'inherit' : 'ignore';
      // The sandbox sets itself up while the audit log loads and opens; the command is handed
      // to it only once the log can record the run. A sandbox that cannot be started ahead is
      // started cold by the run, which then reports why.
      const warming = runner?.keepWarm(plan, 1).catch(() => undefined);
      // Loading the audit log's modules holds this thread: let the sandbox get past the part of its
      // start that needs it (the spawn and the cgroup handshake) first, so it sets up meanwhile.
      await runner?.started();
      let audit: AuditLog | undefined;
      // Output that cannot be written (`corral run … | head`, a full disk) stops the command (see
      // runContained), never corral: what is printed after that (warnings, an error) goes nowhere.
      let stdoutFailure: string | undefined;
      process.stdout.on('error', (error: NodeJS.ErrnoException) => void (stdoutFailure ??= error.code ?? 'EIO'));
      process.stderr.on('error', () => undefined);
      try {
        audit = opts.audit ? await openAudit(state) : undefined;
        await warming;
        if (runner === undefined) throw await notStarted(cannotStart, argv, file, plan.policyDigest, audit);
        // A signal that came while this thread was busy (opening the log reads it synchronously) reaches
        // its listener only when the event loop next polls: let it, before deciding to start the command.
        await new Promise((resolve) => setImmediate(resolve));
        if (interrupts.signal) throw await interruptedBeforeStart(interrupts.signal, argv, file, plan.policyDigest, audit);
        const { result, outputFailure } = await runContained(runner, plan, argv, file, { json: opts.json === true, stdin }, audit, interrupts);
        for (const warning of result.warnings) process.stderr.write(`corral: warning: ${warning}\n`);
        const status = exitStatus(result, interrupts.signal, outputFailure === 'EPIPE');
        if (opts.json) {
          printJson(summary(result, argv, file, status));
          // A failed write is told on a later turn. A reader that went away is no failure of the run's.
          await new Promise((resolve) => setImmediate(resolve));
          if (stdoutFailure !== undefined && stdoutFailure !== 'EPIPE') throw new CliFailure(`the summary could not be written (${stdoutFailure}); the run is recorded`, EXIT.environment);
        } else for (const line of describeRefusals(result, argv)) process.stderr.write(`corral: ${line}\n`);
        process.exitCode = status.code;
        if (outputFailure !== undefined && outputFailure !== 'EPIPE') {
          const what = result.exitCode === null ? 'so it was stopped' : 'and what it wrote is incomplete';
          throw new CliFailure(`the command's output could not be written (${outputFailure}), ${what}; the run is recorded`, EXIT.environment);
        }
      } finally {
        // Both wind down at once: the sandbox's cgroups are removed while the audit log seals its checkpoint.
        const closed = await Promise.allSettled([runner?.close(), audit?.close()]);
        interrupts.end();
        for (const outcome of closed) if (outcome.status === 'rejected') throw outcome.reason;
      }
    });
}

/**
 * Runs the command, streaming its output, and records the run (or Corral's
 * refusal to start it). When corral's own output fails under it (a
 * pipeline's reader that went away, a full disk), the command is stopped, as
 * a shell pipeline's writer would be by SIGPIPE, and the run recorded all the same.
 */
async function runContained(
  runner: Runner,
  plan: SandboxPlan,
  argv: string[],
  file: string,
  io: { json: boolean; stdin: 'inherit' | 'ignore' },
  audit: AuditLog | undefined,
  interrupts: Interrupts,
): Promise<{ result: RunResult; outputFailure: string | undefined }> {
  const stdout = new DigestingSink(io.json ? process.stderr : process.stdout);
  const stderr = new DigestingSink(process.stderr);
  let stop: (() => void) | undefined;
  stdout.onTargetClosed = stderr.onTargetClosed = () => stop?.();
  let result: RunResult;
  try {
    const proc = runner.spawn(plan, argv, { stdin: io.stdin, stdout, stderr });
    stop = () => proc.kill();
    // One run: no sandbox is started ahead for a next one.
    void runner.keepWarm(plan, 0);
    interrupts.onSignal = () => proc.kill();
    try {
      result = await proc.result;
    } finally {
      interrupts.onSignal = undefined;
    }
  } catch (error) {
    throw await notStarted(error, argv, file, plan.policyDigest, audit);
  }
  const outputFailure = stdout.targetFailure ?? stderr.targetFailure;
  const closed = outputFailure === 'EPIPE' ? 'its output was closed' : outputFailure && `its output could not be written (${outputFailure})`;
  try {
    await audit?.append(runEvent(argv, file, result, { stdout: stdout.digest(), stderr: stderr.digest() }, interrupts.signal ? `interrupted (${interrupts.signal})` : closed));
  } catch (error) {
    // Too late to not run it: say plainly that it ran, and how it ended, with no record of it.
    const ended = result.exitCode === null ? `was stopped (${result.signal ?? 'killed'})` : `exited ${result.exitCode}`;
    const { code, message } = error as { code?: unknown; message?: unknown };
    throw new CliFailure(`the command ran and ${ended}, but its run could not be recorded in the audit log: ${String(message)}`, EXIT.environment, typeof code === 'string' ? code : undefined);
  }
  return { result, outputFailure };
}

async function openAudit(dir: string): Promise<AuditLog> {
  try {
    // The writer alone (@corral/audit/log), not the readers, verifier and exports beside it.
    const { openAuditLog } = await import('@corral/audit/log');
    // One run, a record or two: the log's writer and checkpointer threads would cost more to start than the run.
    return await openAuditLog({ stateDir: dir, oneShot: true });
  } catch (error) {
    const reason = (error as Error).message;
    throw new CliFailure(`cannot open the audit log in ${dir}: ${reason}\nFix the state directory (--state-dir or CORRAL_STATE_DIR), or run with --no-audit to run without a record.`, EXIT.environment);
  }
}

/**
 * Records that `argv` did not start, for `error` (a refusal, a sandbox that
 * could not be set up, any other failure before the command ran), and returns
 * what to throw: the failure as corral reports it, or, when the audit log
 * cannot record the attempt, a failure that says so, exiting EXIT.environment.
 */
async function notStarted(error: unknown, argv: string[], file: string, policyDigest: string, audit: AuditLog | undefined): Promise<unknown> {
  const failure = asCliFailure(error);
  const { code, message } = error as { code?: unknown; message?: unknown };
  const reason = typeof code === 'string' ? code : 'INTERNAL';
  try {
    await audit?.append(notStartedRunEvent(argv, file, policyDigest, { code: reason, message: String(message ?? error), refused: REFUSALS.has(reason) }));
  } catch (auditError) {
    const { code: auditCode, message: auditMessage } = auditError as { code?: unknown; message?: unknown };
    const said = String(message ?? error);
    const ran = /not started/.test(said) ? '' : '; the command was not started';
    return new CliFailure(`${said}${ran}, and the attempt could not be recorded in the audit log: ${String(auditMessage)}`, EXIT.environment, typeof auditCode === 'string' ? auditCode : undefined);
  }
  return failure;
}

/**
 * Records that `argv` was stopped by `signal` before it started, and returns
 * what to throw: the interrupt, exiting 128 + the signal's number (130 for
 * Ctrl-C), or, when the audit log cannot record it, a failure that says so.
 */
async function interruptedBeforeStart(signal: NodeJS.Signals, argv: string[], file: string, policyDigest: string, audit: AuditLog | undefined): Promise<CliFailure> {
  const said = `interrupted (${signal}) before the command started; nothing ran`;
  try {
    await audit?.append(interruptedRunEvent(argv, file, policyDigest, signal));
  } catch (auditError) {
    const { code, message } = auditError as { code?: unknown; message?: unknown };
    return new CliFailure(`${said}, and the attempt could not be recorded in the audit log: ${String(message)}`, EXIT.environment, typeof code === 'string' ? code : undefined);
  }
  return new CliFailure(said, 128 + osConstants.signals[signal]);
}

/**
 * Corral's refusals to start a command it was given: the host cannot enforce the policy, or a path it grants
 * changed between planning and starting the sandbox (a symlink planted, a path removed). Each is recorded as a deny.
 */
const REFUSALS: ReadonlySet<string> = new Set(['CONTAIN_UNENFORCEABLE', 'CONTAIN_PATH_CHANGED']);

async function refuseBadPolicy<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw asCliFailure(error);
  }
}

/** A ContainError as the failure corral reports, its exit code chosen by its code; any other error as it is. */
function asCliFailure(error: unknown): unknown {
  if ((error as Error)?.name !== 'ContainError') return error;
  const { code: reason, message } = error as ContainErrorClass;
  const code =
    reason === 'CONTAIN_POLICY_INVALID' || reason === 'CONTAIN_POLICY_UNREADABLE' || reason === 'CONTAIN_PATH_UNRESOLVABLE' || reason === 'CONTAIN_BAD_COMMAND'
      ? EXIT.usage
      : REFUSALS.has(reason)
        ? EXIT.refused
        : EXIT.environment;
  return new CliFailure(message, code, reason);
}

// Each would end corral at once by default, the command's sandbox with it, and the run unrecorded.
const STOPPING: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

/** SIGINT, SIGTERM, SIGHUP and SIGQUIT while corral run is under way: the first is kept, each stops the command if one runs. */
class Interrupts {
  signal: NodeJS.Signals | undefined;
  onSignal: (() => void) | undefined;
  readonly #listener = (signal: NodeJS.Signals): void => {
    this.signal ??= signal;
    this.onSignal?.();
  };

  constructor() {
    for (const signal of STOPPING) process.on(signal, this.#listener);
  }

  end(): void {
    for (const signal of STOPPING) process.off(signal, this.#listener);
  }
}

/**
 * Whose exit status corral run ends with: the command's own (`command`: its
 * exit code, or 128 + a signal it got from elsewhere than Corral), whatever
 * its number, or Corral's, for the reason named. The numbers overlap (a
 * command may exit 124–127 itself): --json's `exitReason` tells them apart.
 */
type ExitReason = 'command' | 'timeout' | 'limit' | 'not-found' | 'interrupted' | 'output-closed';

/**
 * The exit status of a run that started: a limit's, not-found's, the
 * command's own, or 128 + the signal that ended it: the one sent to corral
 * (130 for Ctrl-C), or SIGPIPE when corral's own output was closed, when
 * Corral stopped it for that.
 */
function exitStatus(result: RunResult, interrupted: NodeJS.Signals | undefined, outputClosed: boolean): { code: number; reason: ExitReason } {
  if (result.limitsHit.includes('timeout')) return { code: EXIT.timeout, reason: 'timeout' };
  if (result.limitsHit.length > 0) return { code: EXIT.limit, reason: 'limit' };
  if (result.notFound) return { code: EXIT.notFound, reason: 'not-found' };
  if (result.exitCode !== null) return { code: result.exitCode, reason: 'command' };
  if (interrupted) return { code: 128 + osConstants.signals[interrupted], reason: 'interrupted' };
  if (outputClosed) return { code: 128 + osConstants.signals.SIGPIPE, reason: 'output-closed' };
  return { code: 128 + (osConstants.signals[result.signal as NodeJS.Signals] ?? osConstants.signals.SIGKILL), reason: 'command' };
}

/** What Corral did to the run, one line each, for a person: each exit status of Corral's own has one (an interrupt's excepted, as a shell's). */
function describeRefusals(result: RunResult, argv: string[]): string[] {
  const lines = result.refused.map((r) => (r.kind === 'network' ? `refused network ${r.host}:${r.port} (${r.reason})` : `stopped: ${r.detail}`));
  if (result.notFound) lines.push(`${printable(argv[0] ?? '')} was not found inside the sandbox`);
  return lines;
}

function summary(result: RunResult, argv: string[], policyFile: string, status: { code: number; reason: ExitReason }): Record<string, unknown> {
  return {
    command: argv,
    policy: { file: policyFile, digest: result.policyDigest },
    exitCode: status.code,
    exitReason: status.reason,
    exit: result.exitCode,
    signal: result.signal,
    notFound: result.notFound,
    durationMs: Math.round(result.durationMs * 1000) / 1000,
    peakMemoryBytes: result.peakMemoryBytes,
    limitsHit: result.limitsHit,
    refused: result.refused,
    connections: result.connections,
    ingress: result.ingress,
    output: { stdoutBytes: result.stdoutBytes, stderrBytes: result.stderrBytes },
    warnings: result.warnings,
  };
}
