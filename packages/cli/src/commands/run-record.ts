import { createHash, type Hash } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { Writable } from 'node:stream';
import type { AuditEventInput } from '@corral/audit';
import type { RunResult } from '@corral/contain';

// An audit event holds at most 64 KiB: a run with more connections records the first ones and the counts.
const MAX_RECORDED_CONNECTIONS = 100;

/**
 * A sink that passes output on and keeps its SHA-256, so the audit record can
 * name what the command wrote. When the target fails (its reader went away:
 * `corral run … | head`), the output is hashed and dropped from then on, and
 * `onTargetClosed` is told once: the sink never stalls on a target that will
 * not drain, and never leaves the target's error unhandled.
 */
export class DigestingSink extends Writable {
  readonly #hash: Hash = createHash('sha256');
  readonly #target: NodeJS.WritableStream;
  #closed = false;
  #waiting: (() => void) | undefined;
  onTargetClosed: (() => void) | undefined;

  constructor(target: NodeJS.WritableStream) {
    super();
    this.#target = target;
    target.on('error', this.#failed);
  }

  readonly #failed = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#release();
    this.onTargetClosed?.();
  };

  #release(): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.();
  }

  /** Whether the target failed, so some of the output went nowhere. */
  get targetClosed(): boolean {
    return this.#closed;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#hash.update(chunk);
    if (this.#closed || this.#target.write(chunk)) return done();
    this.#waiting = () => done();
    this.#target.once('drain', () => this.#release());
  }

  digest(): string {
    return `sha256:${this.#hash.copy().digest('hex')}`;
  }
}

/** The invoking user, as the actor of a local `corral run`. */
export function localActor(): AuditEventInput['actor'] {
  return { kind: 'human', id: `${userInfo().username}@${hostname()}` };
}

/**
 * The audit event for one contained run: the policy digest, the command,
 * the exit, every refusal observed and the network connections; `stoppedBecause`
 * when Corral stopped the command for another reason than a limit.
 */
export function runEvent(argv: string[], policyFile: string, result: RunResult, outputs: { stdout: string; stderr: string }, stoppedBecause?: string): AuditEventInput {
  const refusedNetwork = result.refused.filter((r) => r.kind === 'network');
  const failed = result.exitCode !== 0 || result.limitsHit.length > 0 || result.notFound;
  const stopped = [...result.limitsHit, ...(stoppedBecause && result.exitCode === null ? [stoppedBecause] : [])];
  return {
    actor: localActor(),
    action: 'run.exec',
    resource: { kind: 'command', id: argv[0] ?? '' },
    decision: { effect: 'allow', policies: [`container:sha256:${result.policyDigest}`], reason: `contained by ${policyFile}` },
    context: {
      inputs: { policy: `sha256:${result.policyDigest}`, argv: `sha256:${createHash('sha256').update(JSON.stringify(argv)).digest('hex')}` },
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
      connections: result.connections.slice(0, MAX_RECORDED_CONNECTIONS).map((c) => ({
        host: c.host,
        port: c.port,
        address: c.address ?? null,
        allowed: c.allowed,
        reason: c.reason ?? null,
        bytesSent: c.bytesSent,
        bytesReceived: c.bytesReceived,
      })),
      connectionCount: result.connections.length,
      warnings: result.warnings,
    },
    node: hostname(),
  };
}

/** The audit event for a run Corral refused to start (the host cannot enforce the policy). */
export function refusedRunEvent(argv: string[], policyFile: string, policyDigest: string | undefined, reason: string): AuditEventInput {
  return {
    actor: localActor(),
    action: 'run.exec',
    resource: { kind: 'command', id: argv[0] ?? '' },
    decision: { effect: 'deny', ...(policyDigest ? { policies: [`container:sha256:${policyDigest}`] } : {}), reason: reason.slice(0, 4000) },
    outcome: { status: 'failure', detail: 'not started' },
    details: { argv, policyFile },
    node: hostname(),
  };
}
