import { createHash, type Hash } from 'node:crypto';
import { hostname } from 'node:os';
import { Writable } from 'node:stream';
import type { AuditEventInput } from '@corral/audit';
import type { ConnectionRecord, RunResult } from '@corral/contain';
import { accountName } from '../account.ts';

// An audit event holds at most 64 KiB: a run with more connections lists this many (the refused first) and the counts.
const MAX_RECORDED_CONNECTIONS = 100;
/** @corral/audit's MAX_EVENT_BYTES, here so that checking a run against it loads nothing of that package. */
export const MAX_RECORD_BYTES = 64 * 1024;
// What the log adds to the event (its time), with room to spare.
const LOG_ROOM = 256;
// Room kept, when a command is checked before it runs, for what its run adds: exit, limits, refusals, warnings.
// The connections are left out of the record, from the last, until it fits.
const RESULT_ROOM = 8 * 1024;
// The audit log's limit on a text member: resource.id (the command's name) and decision.reason (the policy file's).
const MAX_TEXT = 4096;
const NO_OUTPUT = `sha256:${createHash('sha256').digest('hex')}`;

/**
 * A sink that passes output on and keeps its SHA-256, so the audit record can
 * name what the command wrote. When the target fails (its reader went away:
 * `corral run … | head`; a full disk), the output is hashed and dropped from then on, and
 * `onTargetClosed` is told once: the sink never stalls on a target that will
 * not drain, and never leaves the target's error unhandled.
 */
export class DigestingSink extends Writable {
  readonly #hash: Hash = createHash('sha256');
  readonly #target: NodeJS.WritableStream;
  #failure: string | undefined;
  #waiting: (() => void) | undefined;
  onTargetClosed: (() => void) | undefined;

  constructor(target: NodeJS.WritableStream) {
    super();
    this.#target = target;
    target.on('error', this.#failed);
  }

  readonly #failed = (error: NodeJS.ErrnoException): void => {
    if (this.#failure !== undefined) return;
    this.#failure = error.code ?? 'EIO';
    this.#release();
    this.onTargetClosed?.();
  };

  #release(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  /** The error code of the target's failure (EPIPE: its reader went away), when it failed: some of the output went nowhere. */
  get targetFailure(): string | undefined {
    return this.#failure;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#hash.update(chunk);
    if (this.#failure !== undefined || this.#target.write(chunk)) return done();
    this.#waiting = () => done();
    this.#target.once('drain', () => this.#release());
  }

  digest(): string {
    return `sha256:${this.#hash.copy().digest('hex')}`;
  }
}

/**
 * Why the record of running `argv` under `policyFile` could not be written
 * (the audit log refuses an event over MAX_RECORD_BYTES, a command name or
 * policy path over 4096 characters), or undefined. Checked before the command
 * runs: a run whose record cannot be written must not happen.
 */
export function unrecordable(argv: string[], policyFile: string, policyDigest: string, warnings: string[]): string | undefined {
  if ((argv[0] ?? '').length > MAX_TEXT) return `the command's name is longer than ${MAX_TEXT} characters`;
  if (`contained by ${policyFile}`.length > MAX_TEXT) return `the policy file's path is longer than ${MAX_TEXT - 'contained by '.length} characters`;
  const ran: RunResult = { exitCode: 0, signal: null, notFound: false, durationMs: 0, warm: false, peakMemoryBytes: 0, limitsHit: [], refused: [], connections: [], connectionsDropped: 0, ingress: [], warnings, policyDigest, stdoutBytes: 0, stderrBytes: 0 };
  const bytes = eventBytes(runEvent(argv, policyFile, ran, { stdout: NO_OUTPUT, stderr: NO_OUTPUT }));
  const room = MAX_RECORD_BYTES - LOG_ROOM - RESULT_ROOM;
  if (bytes > room) return `its record would take ${bytes} bytes, and a record of a run holds at most ${room} before its results`;
  return undefined;
}

function eventBytes(event: AuditEventInput): number {
  return Buffer.byteLength(JSON.stringify(event));
}

/** The invoking user, as the actor of a local `corral run`. */
export function localActor(): AuditEventInput['actor'] {
  return { kind: 'human', id: `${accountName()}@${hostname()}` };
}

/**
 * The audit event for one contained run: the policy digest, the command,
 * the exit, every refusal observed and the network connections; `stoppedBecause`
 * when Corral stopped the command for another reason than a limit.
 */
export function runEvent(argv: string[], policyFile: string, result: RunResult, outputs: { stdout: string; stderr: string }, stoppedBecause?: string): AuditEventInput {
  let room = MAX_RECORDED_CONNECTIONS;
  let event = runEventOf(argv, policyFile, result, outputs, listedConnections(result.connections, room), stoppedBecause);
  // A run whose connections' names are long: fewer are listed (connectionCount says how many there were).
  while (room > 0 && eventBytes(event) > MAX_RECORD_BYTES - LOG_ROOM) event = runEventOf(argv, policyFile, result, outputs, listedConnections(result.connections, (room >>= 1)), stoppedBecause);
  return event;
}

/**
 * At most `room` of the run's connections, for its record: the refused ones first, then the allowed,
 * each the earliest first; listed in the order they came. What the command was kept from reaching is
 * what a reader of the record looks for: taken in order alone, a hundred allowed connections made
 * first would leave its refused attempts out, counted but never named.
 */
function listedConnections(connections: readonly ConnectionRecord[], room: number): ConnectionRecord[] {
  const refused = connections.filter((c) => !c.allowed);
  const kept = new Set([...refused, ...connections.filter((c) => c.allowed)].slice(0, room));
  return connections.filter((c) => kept.has(c));
}

function runEventOf(argv: string[], policyFile: string, result: RunResult, outputs: { stdout: string; stderr: string }, listed: readonly ConnectionRecord[], stoppedBecause?: string): AuditEventInput {
  const refusedNetwork = result.refused.filter((r) => r.kind === 'network');
  const failed = result.exitCode !== 0 || result.limitsHit.length > 0 || result.notFound;
  const stopped = [...result.limitsHit, ...(stoppedBecause && result.exitCode === null ? [stoppedBecause] : [])];
  return {
    actor: localActor(),
    action: 'run.exec',
    resource: { kind: 'command', id: argv[0] ?? '' },
    decision: { effect: 'allow', policies: [`container:sha256:${result.policyDigest}`], reason: `contained by ${policyFile}` },
    context: {
      inputs: { policy: `sha256:${result.policyDigest}`, argv: argvDigest(argv) },
      outputs,
    },
    outcome: { status: failed ? 'failure' : 'success', ...(result.exitCode === null ? {} : { exitCode: result.exitCode }), ...(stopped.length ? { detail: `stopped: ${stopped.join(', ')}` } : {}) },
    details: {
      argv,
      policyFile,
      signal: result.signal,
      notFound: result.notFound,
      durationMs: Math.round(result.durationMs),
      peakMemoryBytes: result.peakMemoryBytes,
      limitsHit: result.limitsHit,
      refused: result.refused.filter((r) => r.kind === 'limit').map((r) => ({ ...r })),
      refusedConnections: refusedNetwork.length,
      connections: listed.map((c) => ({
        host: c.host,
        port: c.port,
        address: c.address ?? null,
        allowed: c.allowed,
        reason: c.reason ?? null,
        bytesSent: c.bytesSent,
        bytesReceived: c.bytesReceived,
      })),
      connectionCount: result.connections.length + result.connectionsDropped,
      warnings: result.warnings,
    },
    node: hostname(),
  };
}

/**
 * The audit event for a run that never started, after its policy was loaded:
 * Corral refused it (`refused`: the host cannot enforce the policy, a granted
 * path changed), recorded as a deny giving the reason; or its sandbox could not
 * be set up (bubblewrap missing or failing, the egress proxy), recorded as the
 * policy's allow. Either way the outcome is a failure naming `code`, with no
 * exit code, and the command is recorded as a run's record has it.
 */
export function notStartedRunEvent(argv: string[], policyFile: string, policyDigest: string, why: { code: string; message: string; refused: boolean }): AuditEventInput {
  // The message is cut to what the record has room for: the command line fits (see unrecordable), its words are never cut.
  let length = MAX_REASON;
  let event = notStartedEventOf(argv, policyFile, policyDigest, why, length);
  while (length > 0 && eventBytes(event) > MAX_RECORD_BYTES - LOG_ROOM) event = notStartedEventOf(argv, policyFile, policyDigest, why, (length >>= 1));
  return event;
}

// The longest reason recorded for a run that did not start, in characters (decision.reason holds at most MAX_TEXT).
const MAX_REASON = 2000;

function notStartedEventOf(argv: string[], policyFile: string, policyDigest: string, why: { code: string; message: string; refused: boolean }, length: number): AuditEventInput {
  const code = why.code.slice(0, 200);
  const message = why.message.slice(0, length);
  return {
    actor: localActor(),
    action: 'run.exec',
    resource: { kind: 'command', id: argv[0] ?? '' },
    decision: { effect: why.refused ? 'deny' : 'allow', policies: [`container:sha256:${policyDigest}`], reason: why.refused ? message : `contained by ${policyFile}` },
    context: { inputs: { policy: `sha256:${policyDigest}`, argv: argvDigest(argv) } },
    outcome: { status: 'failure', detail: `not started: ${code}` },
    details: { argv, policyFile, error: why.refused ? { code } : { code, message } },
    node: hostname(),
  };
}

/**
 * The audit event for a run stopped by `signal` (Ctrl-C: SIGINT) after its
 * policy was loaded and before the command started: the policy's allow, an
 * outcome of failure, `not started: interrupted (SIGNAL)`, no exit code, and
 * the signal in the details.
 */
export function interruptedRunEvent(argv: string[], policyFile: string, policyDigest: string, signal: NodeJS.Signals): AuditEventInput {
  return {
    actor: localActor(),
    action: 'run.exec',
    resource: { kind: 'command', id: argv[0] ?? '' },
    decision: { effect: 'allow', policies: [`container:sha256:${policyDigest}`], reason: `contained by ${policyFile}` },
    context: { inputs: { policy: `sha256:${policyDigest}`, argv: argvDigest(argv) } },
    outcome: { status: 'failure', detail: `not started: interrupted (${signal})` },
    details: { argv, policyFile, signal },
    node: hostname(),
  };
}

function argvDigest(argv: string[]): string {
  return `sha256:${createHash('sha256').update(JSON.stringify(argv)).digest('hex')}`;
}
