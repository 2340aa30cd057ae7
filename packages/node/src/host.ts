// `corral node run`: a node host speaking OpenClaw's node role to a gateway
// (Corral's or upstream's). It keeps its Ed25519 device key in its state
// directory, waits while the gateway holds it as a pending pairing request,
// and serves `system.run` (local policy, then the sandbox — never
// uncontained), `system.which`, and `system.execApprovals.get|set`.
import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { ContainError, DISPLAY_VARIABLES, planSandbox, Runner, validatePolicy, type LoadedPolicy, type Mount, type PlanOptions, type SandboxPlan } from '@corral/contain';
import { actionDigest, canonicalRun, GatewayClient, GatewayError, INVOKE_CANCEL_EVENT, INVOKE_RELEASE_EVENT, SCRIPT_PREVIEW_CAP, verifyCommandReceipt, type ApprovalReceipt, type CanonicalRun, type RunRequest, type WireError } from '@corral/gateway';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { corralAgentFor, requestingAgent, type AgentMap } from './agent-map.ts';
import { AgentRuns } from './agent-runs.ts';
import { FIRST_BACKOFF_MS, jitteredWait, nextCeiling } from './backoff.ts';
import { OutputHead } from './output-head.ts';
import { planText, refuseOtherPlan } from './command-text.ts';
import { createOnce, privateStateDir, readStateFile } from './whole-files.ts';
import { approvedContent, planOperand, previewOfBound, snapshotOperand, type BoundFile, type FileOperand } from './file-operand.ts';
import { DeviceTokens } from './device-tokens.ts';
import { TakenReceipts } from './taken-receipts.ts';
import { NodeError } from './errors.ts';
import { allowlistSubjects, LocalPolicy, localAllows, MAX_LOCAL_POLICY_BYTES, SYSTEM_BIN_DIRS, type LocalPolicyFile, type LocalRule, type LocalVerdict } from './local-policy.ts';
import { refuseWritableLoadPaths, refuseWritablePrograms, writableBy } from './sandbox-path.ts';
import { refuseWritableStartupFiles } from './startup-files.ts';
import { refuseWritableGitConfig } from './git-config.ts';
import { refuseWritableSshConfig } from './ssh-config.ts';
import { NODE_LOCK, lockStateDir } from './state-lock.ts';
import { shown } from './untrusted-text.ts';

export const DEVICE_FILE = 'node-device.json';
/** The gateway's approval-receipt key, pinned on first use. */
export const RECEIPT_KEY_FILE = 'gateway-receipt-key.pem';
/** Output kept per stream (upstream's OUTPUT_CAP). */
export const OUTPUT_CAP = 200_000;
/**
 * The most `system.run` a node serves at once, waiting for a decision or
 * running; more are refused as UNAVAILABLE, not queued: each holds its params,
 * a sandbox and that sandbox's output.
 */
export const MAX_RUNS = 32;
/**
 * What a gateway may leave unacknowledged of the node's answers (each a
 * `node.invoke.result` request it has not answered, timed out ones included):
 * how many, and how many characters of payload and message. Past either it is
 * not reading them, and each one more would wait in the connection's send
 * buffer for ever: the node closes that connection instead (and reconnects
 * after its backoff). Room for far more answers than a gateway has reason
 * to leave waiting at once, and for the MAX_RUNS largest results (two streams
 * of OUTPUT_CAP bytes, JSON-escaped: about 2.4 million characters each).
 */
export const MAX_UNACKNOWLEDGED_ANSWERS = 4096;
export const MAX_UNACKNOWLEDGED_CHARS = 128 * 1024 * 1024;
/** What the node serves; upstream's exec tool needs `system.run.prepare` before any `system.run` on a node. */
export const NODE_COMMANDS = ['system.run', 'system.run.prepare', 'system.which', 'system.execApprovals.get', 'system.execApprovals.set'];

/** The sandbox a command gets when its agent's profile names none: shell runtime, no network, nothing writable but its own /tmp. */
export const DEFAULT_CONTAINER_POLICY = { version: 1, runtime: ['shell'], network: { egress: 'none' }, process: { timeoutMs: 60_000 } };

export interface NodeHostOptions {
  /** `ws://host:port`. */
  gateway: string;
  /**
   * The shared gateway token. Needed until the gateway has paired this node
   * and given it a device token (kept in `stateDir`); after that the node
   * connects with the device token when no shared token is given.
   */
  token?: string;
  name?: string;
  /** Holds the device key and the local policy; no sandbox sees it. */
  stateDir: string;
  /**
   * A directory holding `stateDir` that no sandbox sees either: `corral up`
   * names its whole state directory (its keys, tokens and databases beside
   * the node's), and in `exposed` the folders of it a container policy may
   * still grant (its process workspaces); in `others`, Corral's other state
   * directories on this host (the default one), kept out whole. Default:
   * `stateDir` alone.
   */
  hiddenState?: { dir: string; exposed: string[]; others?: string[] };
  /**
   * Container policies by Corral agent name (`*` for any other), as parsed
   * documents; relative paths are taken from `baseDir`, and `source` names
   * the file it was read from (a sandbox may never write it). A policy's
   * `environment.pass` also names the variables a request may set.
   */
  containerPolicies?: Record<string, { policy: unknown; baseDir: string; source?: string }>;
  /** Injected runner (tests); default: a new Runner. */
  runner?: Runner;
  /**
   * Called with what the host does: connected; waiting for pairing;
   * disconnected, unreachable or refused for now (it retries in `retryInMs`);
   * stopped, when the gateway refused it in a way retrying cannot fix (`detail`
   * is the gateway's code, `stopped` then rejects).
   */
  onStatus?: (status: NodeStatus) => void;
  /**
   * The Corral control plane this node asks before running a `system.run`
   * that arrives from another gateway (upstream OpenClaw). Unreachable, or
   * not yet paired there: the command is denied. `agents` maps upstream agent
   * ids to Corral agent names; a command from an agent it does not name is denied.
   */
  controlPlane?: { url: string; token?: string; agents?: AgentMap };
  /** Told of every request the gateway sends, before it is handled. */
  onRequest?: (request: { id: string; command: string }) => void;
  /**
   * Told of every request that failed for a reason of the node's own (a
   * NodeError NODE_INTERNAL, the error its cause), of which the gateway was
   * told only that code. Default: a line on stderr.
   */
  onFailure?: (failure: { id: string; command: string; error: NodeError }) => void;
  /**
   * Longest wait between reconnects (default 30 s, as upstream). The wait
   * before each reconnect is drawn at random between 250 ms and a ceiling that
   * doubles after each failed attempt up to this (full jitter: nodes restarted
   * together do not come back in lockstep).
   */
  maxBackoffMs?: number;
  /** The random source of those waits, a number in [0, 1) per draw (tests); default Math.random. */
  random?: () => number;
  /**
   * Sandboxes kept started ahead for each agent's profile (default 1, at most
   * 8 each, for at most 8 profiles; 0: none), so that a run skips the
   * sandbox's start-up. A run whose sandbox differs in anything (its own cwd
   * or environment, a path that changed since) starts one of its own.
   */
  warmSandboxes?: number;
}

export interface NodeStatus {
  state: 'connected' | 'pending-pairing' | 'disconnected' | 'unreachable' | 'refused' | 'stopped';
  /** The gateway's code (details.code when it gave one), the device id while pending, or why it is unreachable. */
  detail?: string;
  /** When the host tries again. */
  retryInMs?: number;
  /**
   * Absent: the gateway this node serves. `control-plane`: the control plane
   * (connected, disconnected, waiting for pairing, unreachable or refused),
   * tried again at the first command that needs it after `retryInMs`; every
   * such command is denied until it answers.
   */
  target?: 'control-plane';
}

/**
 * Refusals retrying cannot fix, by `error.details.code` — upstream's own
 * client stops reconnecting on these (its reconnect policy): credentials the
 * gateway rejects, a device proof it rejects (`DEVICE_AUTH_*`), a protocol it
 * does not speak. A pairing still waiting (PAIRING_REQUIRED, not revoked) and
 * anything marked `retryable` are retried.
 */
const FINAL_REFUSALS = new Set(['AUTH_TOKEN_MISMATCH', 'AUTH_TOKEN_MISSING', 'AUTH_BOOTSTRAP_TOKEN_INVALID', 'AUTH_PASSWORD_MISSING', 'AUTH_PASSWORD_MISMATCH', 'AUTH_DEVICE_TOKEN_MISMATCH', 'AUTH_SCOPE_MISMATCH', 'AUTH_UNAUTHORIZED', 'DEVICE_IDENTITY_REQUIRED', 'PROTOCOL_MISMATCH', 'CLIENT_VERSION_MISMATCH']);

/**
 * The code of a connect refusal that retrying cannot fix, and what to do
 * about it; undefined for one worth retrying (or no refusal at all).
 */
export function finalRefusal(wire: WireError | undefined): { code: string; hint: string } | undefined {
  if (wire === undefined || wire.retryable === true) return undefined;
  const details = typeof wire.details === 'object' && wire.details !== null ? (wire.details as { code?: unknown; reason?: unknown }) : {};
  const code = typeof details.code === 'string' ? shown(details.code, 64) : undefined;
  if (code === 'PAIRING_REQUIRED' && details.reason === 'revoked') return { code, hint: 'an operator revoked this node\'s pairing; to pair a new one, remove its device key (node-device.json in the state directory) and run again' };
  if (code === undefined || !(FINAL_REFUSALS.has(code) || code.startsWith('DEVICE_AUTH_'))) return undefined;
  if (code.startsWith('AUTH_')) return { code, hint: 'check the gateway token (--token or CORRAL_GATEWAY_TOKEN)' };
  if (code === 'PROTOCOL_MISMATCH' || code === 'CLIENT_VERSION_MISMATCH') return { code, hint: 'this gateway does not speak protocol 3 or 4' };
  return { code, hint: "the gateway rejected this node's device proof (check this machine's clock, and the device key in the state directory)" };
}

/**
 * Reads the device key, creating it (mode 0600, in a state directory made
 * this user's alone, 0700: privateStateDir) the first time, whole and once
 * however many nodes start at once. Throws NODE_DEVICE_INVALID when it cannot
 * be read, made or parsed, when another user owns the state directory or may
 * write it, and when the key is another user's or others may read it.
 */
export function loadOrCreateDevice(stateDir: string): DeviceIdentity {
  const path = join(stateDir, DEVICE_FILE);
  const unusable = (error: unknown) => new NodeError('NODE_DEVICE_INVALID', `the device key in ${path} cannot be read or made (${(error as { code?: string }).code ?? 'error'}): the state directory must be a folder this user can write`, { cause: error });
  try {
    privateStateDir(stateDir, 'NODE_DEVICE_INVALID');
  } catch (error) {
    if (error instanceof NodeError) throw error;
    throw unusable(error);
  }
  let text: string;
  try {
    text = createOnce(path, () => `${JSON.stringify(createDeviceIdentity())}\n`, 'NODE_DEVICE_INVALID', true).text;
  } catch (error) {
    if (error instanceof NodeError) throw new NodeError('NODE_DEVICE_INVALID', `the device key ${error.message}: restore it (this user's, mode 600), or remove it to make a new identity (which an operator must pair again)`, { cause: error });
    throw unusable(error);
  }
  const damaged = `the device key in ${path} is damaged: restore it, or remove it to make a new identity (which an operator must pair again)`;
  let raw: Partial<DeviceIdentity> | null;
  try {
    raw = JSON.parse(text) as Partial<DeviceIdentity> | null;
  } catch (error) {
    throw new NodeError('NODE_DEVICE_INVALID', damaged, { cause: error });
  }
  if (typeof raw?.deviceId !== 'string' || typeof raw.publicKey !== 'string' || typeof raw.privateKeyPem !== 'string') throw new NodeError('NODE_DEVICE_INVALID', `${damaged}; it lacks deviceId, publicKey or privateKeyPem`);
  return { deviceId: raw.deviceId, publicKey: raw.publicKey, privateKeyPem: raw.privateKeyPem };
}

/** A run the control plane allowed: the decision's digest, and the approval that allowed it, if one did. */
interface Authorization {
  /** What the control plane names this run by: the report must carry it. */
  runId: string;
  digest: string;
  /** The approval's receipt as the control plane sent it, not yet checked, and the run it was asked about (what it must be for). */
  approval?: { receipt: unknown; params: Record<string, unknown> };
  /** The script file the decision was bound to by its content (the one the node offered): the run must run that content. */
  bound?: FileOperand;
}

interface InvokeRequest {
  id: string;
  nodeId: string;
  command: string;
  paramsJSON?: string | null;
  timeoutMs?: number | null;
}

export class NodeHost {
  readonly device: DeviceIdentity;
  readonly policy: LocalPolicy;
  readonly #options: NodeHostOptions;
  readonly #runner: Runner;
  readonly #ownsRunner: boolean;
  /** What every plan hides: the state directory, and what of it a policy may grant. */
  readonly #hidden: PlanOptions;
  readonly #policies = new Map<string, LoadedPolicy>();
  readonly #agentRuns = new AgentRuns();
  readonly #deviceTokens: DeviceTokens;
  readonly #warmPlans: SandboxPlan[] = [];
  /** Held runs waiting for their gateway to say their decision is durable, by invoke id. */
  readonly #releases = new Map<string, { client: GatewayClient; settle: (ok: boolean) => void }>();
  /** Invokes being served, by request id: the gateway that sent one may cancel it (its caller left); it going away stops them too. */
  readonly #invokes = new Map<string, { client: GatewayClient; cancel: AbortController }>();
  /** The answers each gateway connection has not acknowledged yet, and their characters (MAX_UNACKNOWLEDGED_ANSWERS). */
  readonly #unacknowledged = new WeakMap<GatewayClient, { answers: number; chars: number }>();
  /** The approval receipts this node has taken, until they lapse, kept across its restarts: none is taken twice. */
  readonly #takenReceipts: TakenReceipts;
  #client: GatewayClient | undefined;
  #governance: Promise<GatewayClient> | undefined;
  /** The last failed attempt to reach the control plane, and until when no other is made. */
  #governanceFailed: { until: number; waitMs: number; error: unknown; pairing: boolean; asks: number[] } | undefined;
  /** `system.run` requests being served (at most MAX_RUNS). */
  #runs = 0;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  readonly #done = Promise.withResolvers<void>();
  /** Gives the state directory back (its lock, NODE_LOCK). */
  readonly #unlock: () => void;

  constructor(options: NodeHostOptions) {
    if (!/^wss?:\/\//.test(options.gateway)) throw new NodeError('NODE_CONFIG_INVALID', '--gateway must be a ws:// or wss:// URL');
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token === '')) throw new NodeError('NODE_CONFIG_INVALID', 'the gateway token must not be empty');
    if (options.warmSandboxes !== undefined && !(Number.isInteger(options.warmSandboxes) && options.warmSandboxes >= 0 && options.warmSandboxes <= 8)) throw new NodeError('NODE_CONFIG_INVALID', 'warmSandboxes must be a whole number from 0 to 8');
    const hidden = options.hiddenState;
    if (hidden !== undefined && !inside(options.stateDir, hidden.dir)) throw new NodeError('NODE_CONFIG_INVALID', 'hiddenState.dir must hold stateDir');
    // An exposed folder holding the node's own state would show its device key.
    if (hidden?.exposed.some((e) => !inside(e, hidden.dir) || inside(options.stateDir, e))) throw new NodeError('NODE_CONFIG_INVALID', 'hiddenState.exposed must lie inside hiddenState.dir and outside stateDir');
    this.#hidden = hidden === undefined ? { stateDir: options.stateDir } : { stateDir: hidden.dir, exposed: hidden.exposed, otherStateDirs: hidden.others ?? [] };
    this.#options = options;
    this.device = loadOrCreateDevice(options.stateDir);
    // One process per state directory: two with one device key would replace each other's gateway connection, each drop
    // stopping the other's runs. Taken once the directory is made private (above), given back by close().
    this.#unlock = lockStateDir(options.stateDir, NODE_LOCK, 'corral node');
    try {
      this.#deviceTokens = new DeviceTokens(options.stateDir);
      this.#takenReceipts = new TakenReceipts(options.stateDir);
      // A control plane at the gateway's own address is that gateway: the node never connects to it twice.
      const controlPlaneUrl = options.controlPlane?.url === options.gateway ? undefined : options.controlPlane?.url;
      for (const [url, token, what] of [[options.gateway, options.token, 'gateway'], [controlPlaneUrl, options.controlPlane?.token, 'control plane']] as const) {
        if (url !== undefined && token === undefined && this.#deviceTokens.get(url) === undefined) {
          throw new NodeError('NODE_CONFIG_INVALID', `a ${what} token is needed to reach ${gatewayHost(url)} the first time: once it has paired this node, the node reconnects with the device token it gives`);
        }
      }
      this.policy = new LocalPolicy(options.stateDir);
      this.#ownsRunner = options.runner === undefined;
      this.#runner = options.runner ?? new Runner();
      const policies = options.containerPolicies ?? { '*': { policy: DEFAULT_CONTAINER_POLICY, baseDir: options.stateDir } };
      for (const [agent, { policy, baseDir, source }] of Object.entries(policies)) {
        const loaded = { policy: validatePolicy(policy), source: source ?? `<${agent}>`, baseDir };
        planSandbox(loaded, process.env, this.#hidden); // paths that cannot be used fail at start, not at the first command
        this.#policies.set(agent, loaded);
      }
      if (!this.#policies.has('*')) this.#policies.set('*', { policy: validatePolicy(DEFAULT_CONTAINER_POLICY), source: '<default>', baseDir: options.stateDir });
    } catch (error) {
      // Made no host: nothing will close it.
      this.#unlock();
      throw error;
    }
    this.#done.promise.catch(() => {}); // read through `stopped`
  }

  /**
   * Settles once the host stops: resolves after `close()`; rejects with
   * NODE_CONFIG_INVALID (its cause the gateway's refusal) when the gateway
   * refused this node in a way retrying cannot fix (see finalRefusal), after
   * which it no longer reconnects.
   */
  get stopped(): Promise<void> {
    return this.#done.promise;
  }

  /**
   * Connects and keeps reconnecting (with backoff) until `close()`. Resolves
   * once the first connection is up; rejects as `stopped` does when the
   * gateway refuses this node for good before that.
   */
  start(): Promise<void> {
    // Announce this node to the control plane early, so it can be paired there before its first command.
    if (this.#governed()) void this.#controlPlane().catch(() => {});
    this.#keepWarm();
    const connected = Promise.withResolvers<void>();
    this.#done.promise.catch((error: unknown) => connected.reject(error));
    this.#loop = this.#run(connected.resolve).then(
      () => this.#done.resolve(),
      (error: unknown) => this.#done.reject(error),
    );
    return connected.promise;
  }

  /** Resolves once every profile's warm sandboxes are ready (again, after runs took some); rejects with the runner's reason when they cannot be made. */
  warmed(): Promise<void> {
    const size = this.#options.warmSandboxes ?? 1;
    return Promise.all(this.#warmPlans.map((plan) => this.#runner.keepWarm(plan, size))).then(() => undefined);
  }

  /** Whether a connection is up. */
  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** Stops serving and gives the state directory back (its lock): another node may start on it then. */
  async close(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    try {
      await this.#client?.close();
      const governance = await this.#governance?.catch(() => undefined);
      await governance?.close();
      await this.#loop;
      if (this.#loop === undefined) this.#done.resolve();
      for (const plan of this.#warmPlans.splice(0)) void this.#runner.keepWarm(plan, 0).catch(() => undefined);
      if (this.#ownsRunner) await this.#runner.close();
    } finally {
      this.#unlock();
    }
  }

  /**
   * Keeps `warmSandboxes` ready for each profile, planned as a run with no cwd
   * or environment of its own plans it. A profile the runner cannot keep
   * warm (no launcher on this host, more than 8 profiles) runs cold.
   */
  #keepWarm(): void {
    const size = this.#options.warmSandboxes ?? 1;
    if (size === 0) return;
    for (const loaded of [...this.#policies.values()].slice(0, 8)) {
      let plan: SandboxPlan;
      try {
        plan = planSandbox(loaded, passFromHost(loaded.policy.environment.pass), this.#hidden);
      } catch {
        continue; // its runs are refused with the reason when they come
      }
      this.#warmPlans.push(plan);
      void this.#runner.keepWarm(plan, size).catch(() => undefined);
    }
  }

  async #run(firstConnected: () => void): Promise<void> {
    const maxBackoff = this.#options.maxBackoffMs ?? 30_000;
    const random = this.#options.random ?? Math.random;
    const floor = Math.min(FIRST_BACKOFF_MS, maxBackoff);
    // The ceiling of the next wait; the wait itself is drawn below it, at least `floor`.
    let backoff = floor;
    let wait = jitteredWait(backoff, floor, random);
    while (!this.#stopped) {
      try {
        const client = await GatewayClient.connect({
          url: this.#options.gateway,
          ...this.#credentials(this.#options.gateway, this.#options.token),
          role: 'node',
          device: this.device,
          client: { id: 'node-host', mode: 'node', displayName: this.#options.name ?? 'corral-node', version: '0.1.0', platform: process.platform },
          commands: NODE_COMMANDS,
          // Holds a governed run until the Corral gateway releases it (other gateways never ask).
          caps: [INVOKE_RELEASE_EVENT, SCRIPT_PREVIEW_CAP],
          minProtocol: 3,
          maxProtocol: 4,
        });
        if (this.#stopped) {
          await client.close();
          break;
        }
        this.#client = client;
        this.#keepDeviceToken(this.#options.gateway, client);
        const connectedAt = performance.now();
        client.on('node.invoke.request', (payload) => void this.#serve(client, payload as InvokeRequest));
        client.on(INVOKE_RELEASE_EVENT, (payload) => {
          const p = payload as { id?: unknown; ok?: unknown } | undefined;
          const held = typeof p?.id === 'string' ? this.#releases.get(p.id) : undefined;
          if (held?.client === client) held.settle(p!.ok === true);
        });
        // The caller left: a run not started never starts, one running is stopped (upstream's node.invoke.cancel).
        client.on(INVOKE_CANCEL_EVENT, (payload) => {
          const p = payload as { invokeId?: unknown; nodeId?: unknown } | undefined;
          const invoke = typeof p?.invokeId === 'string' ? this.#invokes.get(p.invokeId) : undefined;
          if (invoke?.client !== client || (p!.nodeId !== undefined && p!.nodeId !== this.device.deviceId)) return;
          invoke.cancel.abort();
          const held = this.#releases.get(p!.invokeId as string);
          if (held?.client === client) held.settle(false);
        });
        // A gateway gone before it released a run: that run never starts. One gone while its runs go on has told their callers they
        // failed, and no result can reach it now: each is stopped as its cancel stops it (run on, one the caller sent again ran twice).
        void client.closed.then(() => {
          for (const held of [...this.#releases.values()]) if (held.client === client) held.settle(false);
          for (const invoke of this.#invokes.values()) if (invoke.client === client) invoke.cancel.abort();
        });
        this.#agentRuns.watch(client);
        // A gateway that approves this node's command surface while it is connected
        // (upstream's second pairing stage) serves it on the next connection.
        client.on('node.pair.resolved', (payload) => {
          const p = payload as { nodeId?: unknown; decision?: unknown } | undefined;
          if (p?.nodeId === this.device.deviceId && p.decision === 'approved') void client.close();
        });
        this.#options.onStatus?.({ state: 'connected' });
        firstConnected();
        const { code } = await client.closed;
        this.#client = undefined;
        // Only a connection that held starts the backoff over: one the gateway ends at once (closing it, or
        // saying "approved" each time) is retried later and later, never in a loop.
        if (performance.now() - connectedAt >= maxBackoff) {
          backoff = floor;
          wait = jitteredWait(backoff, floor, random);
        }
        if (!this.#stopped) this.#options.onStatus?.({ state: 'disconnected', detail: `close ${code}`, retryInMs: wait });
      } catch (error) {
        const wire = error instanceof GatewayError ? error.wire : undefined;
        const final = finalRefusal(wire);
        // A device token the gateway no longer takes is forgotten: the next start asks for the shared token.
        if (final?.code.startsWith('AUTH_') && this.#options.token === undefined) this.#deviceTokens.set(this.#options.gateway, undefined);
        if (final !== undefined && !this.#stopped) {
          this.#stopped = true;
          this.#options.onStatus?.({ state: 'stopped', detail: final.code });
          throw new NodeError('NODE_CONFIG_INVALID', `the gateway at ${gatewayHost(this.#options.gateway)} refused this node: ${final.code} (${shown(wire!.message || wire!.code, 200)}); retrying cannot fix this: ${final.hint}`, { cause: error });
        }
        const retryInMs = wait;
        if (wire?.code === 'NOT_PAIRED') this.#options.onStatus?.({ state: 'pending-pairing', detail: this.device.deviceId, retryInMs });
        else if (wire !== undefined) this.#options.onStatus?.({ state: 'refused', detail: refusalCode(wire), retryInMs });
        else this.#options.onStatus?.({ state: 'unreachable', detail: unreachableReason(error), retryInMs });
      }
      if (this.#stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      backoff = nextCeiling(backoff, maxBackoff);
      wait = jitteredWait(backoff, floor, random);
    }
  }

  async #serve(client: GatewayClient, request: InvokeRequest): Promise<void> {
    if (typeof request?.id !== 'string' || typeof request.command !== 'string') return;
    this.#options.onRequest?.({ id: request.id, command: request.command });
    // The same id again from the gateway still waiting for its answer: nothing is run, and nothing answered, for it.
    // Answered, the gateway would take that answer for the first request's; run, it would run a second command under one id.
    if (this.#invokes.get(request.id)?.client === client) return;
    if (request.command !== 'system.run') return this.#respond(client, request);
    // Refused before its params are read: a flood holds no sandbox, and no memory, per request.
    if (this.#runs >= MAX_RUNS) return this.#answer(client, request, { ok: false, error: { code: 'UNAVAILABLE', message: `the node is busy: ${MAX_RUNS} commands are running or waiting for their decision` } });
    this.#runs += 1;
    try {
      await this.#respond(client, request);
    } finally {
      this.#runs -= 1;
    }
  }

  async #respond(client: GatewayClient, request: InvokeRequest): Promise<void> {
    const timeoutMs = invokeTimeout(request.timeoutMs);
    // A policy change larger than any policy the node writes is refused unread: reading and checking one as large as a frame
    // (32 MiB) held the node for seconds, and a gigabyte of memory, before it found that.
    if (request.command === 'system.execApprovals.set' && typeof request.paramsJSON === 'string' && request.paramsJSON.length > MAX_LOCAL_POLICY_BYTES) {
      return this.#answer(client, request, { ok: false, error: { code: 'INVALID_REQUEST', message: `a policy change must take at most ${MAX_LOCAL_POLICY_BYTES} characters` } });
    }
    let params: Record<string, unknown> = {};
    try {
      const parsed: unknown = request.paramsJSON ? JSON.parse(request.paramsJSON) : {};
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) params = parsed as Record<string, unknown>;
    } catch {
      return this.#answer(client, request, { ok: false, error: { code: 'INVALID_REQUEST', message: 'paramsJSON is not JSON' } });
    }
    // Registered before anything is awaited: the release may follow the request at once.
    const release = request.command === 'system.run' && params.awaitRelease === true ? this.#released(client, request.id, timeoutMs) : undefined;
    // The warm sandbox a run takes is replaced once its result is answered, not while the answer is on its way.
    const answered = Promise.withResolvers<void>();
    const cancel = new AbortController();
    this.#invokes.set(request.id, { client, cancel });
    let result: { ok: boolean; payloadJSON?: string; error?: { code: string; message: string } };
    try {
      const payload = await this.#handle(request.command, params, request.id, timeoutMs, release, answered.promise, cancel.signal);
      result = { ok: true, payloadJSON: JSON.stringify(payload) };
    } catch (error) {
      const expected = (error instanceof NodeError && error.code !== 'NODE_INTERNAL') || (error instanceof GatewayError && error.code === 'GATEWAY_PARAMS_INVALID') || typeof (error as { wireCode?: unknown })?.wireCode === 'string';
      if (expected) {
        const code = error instanceof NodeError ? (error.code === 'NODE_POLICY_CHANGE_REFUSED' || error.code === 'NODE_POLICY_INVALID' || error.code === 'NODE_REQUEST_INVALID' ? 'INVALID_REQUEST' : error.code === 'NODE_POLICY_CHANGE_BUSY' ? 'UNAVAILABLE' : 'SYSTEM_RUN_DENIED') : error instanceof GatewayError ? 'INVALID_REQUEST' : (error as { wireCode: string }).wireCode;
        // Upstream's refusal text first (gateways read `SYSTEM_RUN_DENIED: approval required` as the node asking a human), the node's own code after.
        const message = code === 'SYSTEM_RUN_DENIED' ? `SYSTEM_RUN_DENIED: ${(error as Error).message} [${(error as NodeError).code}]` : (error as Error).message;
        result = { ok: false, error: { code, message } };
      } else {
        // Anything else is the node's own failure (a file it cannot use…), whose message names its files: the gateway gets the code, the log the error.
        this.#failed(request, error instanceof NodeError ? error : new NodeError('NODE_INTERNAL', `${request.command} failed inside the node`, { cause: error }));
        result = { ok: false, error: { code: 'UNAVAILABLE', message: 'NODE_INTERNAL: the node could not serve this request; its own log says why' } };
      }
    } finally {
      // A release never waited for (the run refused first) waits no more: it held its entry and timer up to the run's timeout, a day.
      if (release !== undefined && this.#releases.get(request.id)?.client === client) this.#releases.get(request.id)!.settle(false);
      // Served once its answer is on its way: the gateway may use its id again as soon as it has the answer. Only its own
      // entry: another gateway connection's request may use the same id meanwhile.
      if (this.#invokes.get(request.id)?.cancel === cancel) this.#invokes.delete(request.id);
    }
    try {
      await this.#answer(client, request, result);
    } finally {
      answered.resolve();
    }
  }

  /** Tells onFailure (by default stderr) of a request that failed for a reason of the node's own; a hook that throws is ignored. */
  #failed(request: InvokeRequest, error: NodeError): void {
    const failure = { id: request.id, command: request.command, error };
    try {
      if (this.#options.onFailure) return this.#options.onFailure(failure);
      const cause = error.cause as { message?: unknown; code?: unknown } | undefined;
      const why = typeof cause?.message === 'string' ? cause.message : String(cause);
      // The request's id and command are the gateway's words, and a message may quote a request: one printable line.
      process.stderr.write(`corral node: ${shown(request.command, 80)} ${shown(request.id, 80)} failed [${error.code}]: ${shown(why, 2000)}${typeof cause?.code === 'string' ? ` (${shown(cause.code, 40)})` : ''}\n`);
    } catch {
      // The answer to the gateway does not wait on, or fail with, the log.
    }
  }

  async #handle(command: string, params: Record<string, unknown>, invokeId: string, timeoutMs: number | undefined, release: Promise<boolean> | undefined, answered: Promise<void>, cancelled: AbortSignal): Promise<unknown> {
    switch (command) {
      case 'system.which':
        return { bins: which(params.bins) };
      case 'system.execApprovals.get':
        return this.policy.snapshot();
      case 'system.execApprovals.set':
        this.policy.replace(params.file, params.baseHash);
        return this.policy.snapshot();
      case 'system.run.prepare':
        return this.#prepare(params);
      case 'system.run':
        return this.#systemRun(params, invokeId, timeoutMs, release, answered, cancelled);
      default:
        throw Object.assign(new Error('command not supported'), { wireCode: 'UNAVAILABLE' });
    }
  }

  /**
   * `system.run.prepare`: the plan upstream's exec tool binds before it sends
   * `system.run` — the argv, cwd, command text and requester exactly as they
   * will be decided, and this node's policy as upstream's `execPolicy`. Runs
   * nothing and decides nothing: the decision is made when `system.run` comes.
   * A run of one local file (`python3 build.py`, `./deploy.sh`) has the plan
   * bind it by its content (`mutableFileOperand`, file-operand.ts), which
   * `system.run` checks before it runs; one whose file cannot be bound is
   * refused (NODE_RUN_DENIED), as upstream refuses it.
   */
  #prepare(params: Record<string, unknown>): unknown {
    const run = canonicalRun({ command: params.command as string[], cwd: (params.cwd as string | undefined) ?? null });
    const agentId = requestingAgent(params);
    // What upstream shows its approvers: never a text the argv does not run.
    const commandText = planText(run.argv, params.rawCommand);
    const { security, ask } = this.#policyNow().defaults;
    // One the agent's sandbox would open as another file by that word (or not at all) is refused now, unread, before anyone is asked about it.
    const bound = snapshotOperand(run.argv, run.cwd, () => this.#mountsFor(agentId, run.cwd));
    return {
      // No operand is no member at all: upstream's gateway takes a plan whose mutableFileOperand is null as no plan, and its exec fails.
      plan: { argv: run.argv, cwd: run.cwd, commandText, agentId: agentId ?? null, sessionKey: typeof params.sessionKey === 'string' ? params.sessionKey : null, ...(bound !== null ? { mutableFileOperand: bound.operand } : {}) },
      // Only a Corral gateway asks (SCRIPT_PREVIEW_CAP): what its approvers read of the script, from the bytes hashed.
      ...(bound?.preview !== undefined && params.scriptPreview === true ? { scriptPreview: bound.preview } : {}),
      execPolicy: { security, ask: ask ?? 'off' },
      // Corral grants come from its own policy and approvals, never from upstream's allow-always.
      allowAlwaysCoverage: { complete: false, patterns: [] },
    };
  }

  /**
   * The mounts of the sandbox a run asked for by `upstreamAgent` (as the
   * request names it) from `cwd` would get, or undefined when they cannot be
   * planned now: system.run refuses that run in any case.
   */
  #mountsFor(upstreamAgent: string | undefined, cwd: string | null): readonly Mount[] | undefined {
    try {
      const agent = upstreamAgent !== undefined && this.#governed() ? corralAgentFor(this.#options.controlPlane!.agents ?? {}, upstreamAgent) : upstreamAgent;
      const loaded = (agent !== undefined ? this.#policies.get(agent) : undefined) ?? this.#policies.get('*')!;
      return planSandbox(cwd === null ? loaded : { ...loaded, policy: { ...loaded.policy, workingDirectory: cwd } }, {}, this.#hidden).mounts;
    } catch {
      return undefined;
    }
  }

  /**
   * The local policy as its file holds it now, for a run or a prepare. A file
   * the node cannot use is its own failure, not the caller's mistake: thrown
   * as NODE_INTERNAL, of which the gateway hears only the code (the file's
   * error names the node's state directory, which no sandbox sees).
   */
  #policyNow(): LocalPolicyFile {
    try {
      return this.policy.current;
    } catch (error) {
      throw new NodeError('NODE_INTERNAL', "the node's local policy cannot be read", { cause: error });
    }
  }

  /**
   * Whether the gateway that sent invoke `id` says its decision is durable:
   * false when it says it is not, when it goes away first, or after the
   * request's timeout (default 30 s).
   */
  #released(client: GatewayClient, id: string, timeoutMs: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      const settle = (ok: boolean) => {
        clearTimeout(timer);
        if (this.#releases.get(id)?.settle === settle) this.#releases.delete(id);
        resolve(ok);
      };
      const timer = setTimeout(() => settle(false), timeoutMs ?? 30_000);
      this.#releases.set(id, { client, settle });
    });
  }

  async #systemRun(params: Record<string, unknown>, invokeId: string, timeoutMs: number | undefined, release: Promise<boolean> | undefined, answered: Promise<void>, cancelled: AbortSignal): Promise<unknown> {
    const upstreamAgent = requestingAgent(params);
    // Serving another gateway, the agent is the mapped Corral agent; serving Corral's own, it already is one.
    let agent: string | undefined;
    try {
      agent = upstreamAgent !== undefined && this.#governed() ? corralAgentFor(this.#options.controlPlane!.agents ?? {}, upstreamAgent) : upstreamAgent;
    } catch (error) {
      // An agent the map does not name: the control plane records it as the node's, with the upstream name beside it (never as
      // the Corral agent that name may also be).
      if (error instanceof NodeError && isArgv(params.command)) {
        const asked = { argv: params.command, cwd: typeof params.cwd === 'string' ? params.cwd : null, env: isPlainRecord(params.env) ? params.env : {} };
        void this.#tellRefusal({ ...refusedRun(asked, undefined, error, undefined), upstreamAgent: upstreamAgent!.slice(0, REFUSED_UPSTREAM_AGENT).toWellFormed() });
      }
      throw error;
    }
    const loaded = (agent !== undefined ? this.#policies.get(agent) : undefined) ?? this.#policies.get('*')!;
    const { env, dropped } = allowedEnv(params.env, loaded.policy.environment.pass);
    const run = canonicalRun({ command: params.command as string[], cwd: (params.cwd as string | undefined) ?? null, env });
    // An `env NAME=value` prefix in the argv sets variables as the request's env does: what the sandbox gets is kept to the same names.
    const prefixed = allowedEnv(run.env, loaded.policy.environment.pass);
    dropped.push(...prefixed.dropped);
    if (run.opaque) {
      const refusal = new NodeError('NODE_RUN_DENIED', `cannot tell what would run: ${run.opaqueReason}`);
      // Governed, the control plane is asked all the same, so that its audit log holds the refusal (its own
      // reading of the run denies it at once, never asking a human); the node refuses whatever it answers.
      if (this.#governed()) await this.#recordRefusal(run, agent, timeoutMs, refusal);
      throw refusal;
    }
    // The node is its own gate: its ask needs the gateway's word that a human approved this run.
    const claimed = approvalClaimed(params);
    let policy: LocalPolicyFile;
    let local: LocalVerdict;
    let plan: SandboxPlan;
    // What the node refuses here, before it asks, the control plane records when one governs (told, never waited for),
    // a policy file it cannot read (NODE_INTERNAL) included.
    let localRule: LocalRule | undefined;
    // The file the approved plan bound by its content, checked right before the run starts.
    let operand: FileOperand | null;
    try {
      // What approvers were shown (the prepared plan, its text) is what runs, or nothing does: an approval of it is of this argv alone.
      refuseOtherPlan(run, upstreamAgent, params);
      operand = planOperand(params.systemRunPlan, run.argv);
      // One reading of the policy for the checks made now, in one go: they never see two versions of it.
      policy = this.#policyNow();
      local = localAllows(policy, allowlistSubjects(run), agent, claimed);
      // Governed, the control plane's approval (its receipt, checked below) may be the one the local policy asks for.
      if (!local.allowed && !(local.rule === 'approval-required' && this.#governed())) {
        localRule = local.rule;
        throw new NodeError('NODE_RUN_DENIED', local.reason);
      }
      // A receipt in the request was issued for this request alone.
      if (params.approvalReceipt !== undefined) {
        await this.#checkReceipt(params.approvalReceipt, params, invokeId);
        policy = this.#policyNow(); // read again: it may have changed while the receipt was checked
      }
      // A requested working directory must lie inside what the agent's container grants; planned before any approval is asked for.
      if (run.cwd !== null && !isAbsolute(run.cwd)) throw new NodeError('NODE_RUN_DENIED', 'cwd must be an absolute path');
      try {
        // The node's state directory (its device key, its policy) is never the sandbox's to see.
        plan = planSandbox(run.cwd === null ? loaded : { ...loaded, policy: { ...loaded.policy, workingDirectory: run.cwd } }, { ...passFromHost(loaded.policy.environment.pass), ...prefixed.env }, this.#hidden);
      } catch (error) {
        if (run.cwd !== null && error instanceof ContainError && error.code === 'CONTAIN_PATH_UNRESOLVABLE') throw new NodeError('NODE_RUN_DENIED', `cwd ${run.cwd.slice(0, 200)} is not inside what the agent's container policy grants`, { cause: error });
        throw new NodeError('NODE_CONTAINMENT_UNAVAILABLE', `not run: the container policy cannot be used (${(error as { code?: string }).code ?? 'error'})`, { cause: error });
      }
      // The node's policy may be a link to one kept elsewhere (managed for many nodes): where a run could write it, one run could open
      // the node's own gate for the next. Its state directory, the link's, is hidden from every sandbox; where the link leads is not.
      if (writableBy(plan, this.policy.path) === 'grant') throw new NodeError('NODE_CONTAINMENT_UNAVAILABLE', "not run: the agent's container policy grants read-write the folder where the node's local policy is kept (its policy file links there), so a run could rewrite it; keep that policy outside what a sandbox may write");
      // What the allowlist lets run is what it names: never a program, startup file or library the sandbox could have put in its place.
      refusePlanted(policy, run, plan);
    } catch (error) {
      if (this.#governed() && error instanceof NodeError) void this.#tellRefusal(refusedRun(run, agent, error, localRule));
      throw error;
    }
    const controller = new AbortController();
    const timer = timeoutMs !== undefined ? setTimeout(() => controller.abort(), timeoutMs) : undefined;
    const stop = () => controller.abort();
    cancelled.addEventListener('abort', stop, { once: true });
    const runId = typeof params.runId === 'string' ? params.runId : randomUUID();
    const untrack = this.#agentRuns.track(runId, [upstreamAgent, agent], controller);
    let authorization: Authorization | undefined;
    let receipt: ApprovalReceipt | undefined;
    let result;
    // Only what is passed on is kept, as it comes (OUTPUT_CAP per stream).
    const stdout = new OutputHead(OUTPUT_CAP);
    const stderr = new OutputHead(OUTPUT_CAP);
    try {
      // Nothing runs before its decision is durable: the control plane answers once it is, and Corral's gateway releases a held run once it is.
      // Its own policy asking a human, the node has the control plane ask one (which makes an allow an ask, never looser).
      const askHuman = local.rule === 'approval-required' ? local.reason : undefined;
      if (this.#governed()) {
        authorization = await this.#authorizeUnlessCancelled(run, agent, timeoutMs, askHuman, cancelled, operand !== null ? { operand, preview: previewOfBound(operand, run.argv, run.cwd, plan.mounts) } : offeredOperand(run, plan.mounts));
        if (authorization.bound) operand = authorization.bound;
        // Checked here, not inside #authorize: a receipt the node does not take is its refusal of a run allowed, reported as such.
        if (authorization.approval) receipt = await this.#checkReceipt(authorization.approval.receipt, authorization.approval.params, authorization.runId);
      }
      const confirmed = release === undefined || (await release);
      if (cancelled.aborted) throw new NodeError('NODE_RUN_DENIED', NOT_RUN_CANCELLED);
      if (!confirmed) throw new NodeError('NODE_RUN_DENIED', 'the gateway did not confirm that its decision was recorded');
      // Checked again right before it runs: the policy may have been tightened meanwhile. Asked by the node, the control plane
      // allows only what a human approved: this once (its receipt), or always (the grant an approval made, which has no receipt of its own).
      // Both checks read the policy as it is now, once, with nothing awaited between them and the run's start.
      policy = this.#policyNow();
      const final = localAllows(policy, allowlistSubjects(run), agent, claimed || receipt !== undefined || (askHuman !== undefined && authorization !== undefined));
      if (!final.allowed) throw new NodeError('NODE_RUN_DENIED', final.reason);
      refusePlanted(policy, run, plan);
      // An approval of a script is of what it held when it was prepared: nothing else runs under it, and the sandbox is given the bytes checked.
      const pinned = operand !== null ? [approvedContent(operand, run.argv, run.cwd, plan.mounts)] : undefined;
      // A run of an agent's profile as it stands (no cwd or environment of its own) takes the sandbox kept warm for it.
      result = await this.#runner.run(plan, run.argv, { signal: controller.signal, refillAfter: answered, stdout, stderr, ...(pinned ? { pinned } : {}) });
    } catch (error) {
      const refusal = error instanceof ContainError ? new NodeError('NODE_CONTAINMENT_UNAVAILABLE', `not run: containment unavailable (${error.code})`, { cause: error }) : error;
      // The control plane allowed this run: its audit log hears why the node did not run it, as the caller does.
      if (authorization) await this.#report(authorization, null, '', reportedError(refusal));
      throw refusal;
    } finally {
      clearTimeout(timer);
      cancelled.removeEventListener('abort', stop);
      untrack();
    }
    const stoppedForCaller = cancelled.aborted && result.exitCode === null;
    const timedOut = !stoppedForCaller && (controller.signal.aborted || result.limitsHit.includes('timeout'));
    if (authorization) await this.#report(authorization, result.exitCode, `${stdout.text}\u0000${stderr.text}`);
    return {
      exitCode: result.exitCode,
      timedOut,
      success: result.exitCode === 0 && !timedOut,
      stdout: stdout.text,
      stderr: stderr.text,
      truncated: stdout.truncated || stderr.truncated,
      error: stoppedForCaller ? 'cancelled: the caller left' : result.notFound ? 'command not found' : null,
      runId,
      contained: { policyDigest: result.policyDigest, refused: result.refused.length, connections: result.connections.length + result.connectionsDropped, durationMs: result.durationMs, warm: result.warm, ...(agent !== undefined ? { agent } : {}), ...(dropped.length > 0 ? { envDropped: dropped } : {}) },
    };
  }

  /**
   * A run an approval allowed carries the signed receipt of the Corral
   * gateway that decides this node's runs (the control plane when one
   * governs, else the serving gateway): it must verify under the receipt key
   * this node pinned the first time it saw one (RECEIPT_KEY_FILE), for exactly
   * the command `params` describe and the run `runId` (the request's id, or
   * the control plane's runId), within its minute (the clock skew allowed
   * for), and never have been taken before by this node, before a restart
   * too (TakenReceipts): a receipt copied from the audit log or from an
   * earlier run gets nothing. Checked before anything runs; taken once it verifies,
   * whatever becomes of the run. Returns the receipt checked. Throws
   * NODE_RUN_DENIED.
   */
  async #checkReceipt(receipt: unknown, params: Record<string, unknown>, runId: string): Promise<ApprovalReceipt> {
    try {
      const path = join(this.#options.stateDir, RECEIPT_KEY_FILE);
      let pinned: string | undefined;
      try {
        pinned = readStateFile(path, 'NODE_RUN_DENIED');
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
      }
      if (pinned === undefined) {
        const signer = this.#governed() ? await this.#controlPlane() : this.#client!;
        const key = (await signer.request('corral.receipt.key', {})) as { publicKey?: unknown };
        // Only a key is pinned: anything else would refuse every approved run from now on.
        if (typeof key.publicKey !== 'string' || key.publicKey.length > 4096 || createPublicKey(key.publicKey).asymmetricKeyType !== 'ed25519') throw new NodeError('NODE_RUN_DENIED', 'the gateway has no receipt key');
        // Two approved runs may both get here first: the key pinned is the one written first, for both.
        pinned = createOnce(path, () => key.publicKey as string, 'NODE_RUN_DENIED').text;
      }
      // One clock for both: a receipt verified as it lapses must not be taken a moment later, once forgotten.
      const nowMs = Date.now();
      const checked = verifyCommandReceipt(receipt, pinned, { nodeId: this.device.deviceId, command: 'system.run', params, runId }, nowMs);
      this.#takenReceipts.take(checked, nowMs);
      return checked;
    } catch (error) {
      throw new NodeError('NODE_RUN_DENIED', `the approval receipt is not taken (${(error as { code?: string }).code ?? 'error'})`, { cause: error });
    }
  }

  /** Whether commands from the serving gateway must also be decided by a separate Corral control plane. */
  #governed(): boolean {
    return this.#options.controlPlane !== undefined && this.#options.controlPlane.url !== this.#options.gateway;
  }

  #controlPlane(): Promise<GatewayClient> {
    const cp = this.#options.controlPlane!;
    // Within the backoff after a failed attempt, the command is denied on that failure: a flood of commands is no flood of connections.
    const failed = this.#governanceFailed;
    if (!this.#governance && failed !== undefined && performance.now() < failed.until) return Promise.reject(failed.error);
    if (!this.#governance) {
      const connecting = GatewayClient.connect({ url: cp.url, ...this.#credentials(cp.url, cp.token), role: 'node', device: this.device, client: { id: 'node-host', mode: 'node', displayName: this.#options.name ?? 'corral-node', version: '0.1.0', platform: process.platform }, commands: [], connectTimeoutMs: 5_000 });
      this.#governance = connecting;
      const target = 'control-plane';
      connecting.then(
        (client) => {
          this.#governanceFailed = undefined;
          const connectedAt = performance.now();
          this.#keepDeviceToken(cp.url, client);
          this.#agentRuns.watch(client);
          this.#options.onStatus?.({ state: 'connected', target });
          void client.closed.then(({ code }) => {
            if (this.#governance === connecting) this.#governance = undefined;
            if (this.#stopped) return;
            // Closed before it held, it counts as a failed attempt: a control plane that takes each connection and drops it at
            // once is connected to again after a growing wait, as one that refuses it is, never at every command.
            const now = performance.now();
            const retryInMs = now - connectedAt < CONTROL_PLANE_MAX_BACKOFF_MS ? nextControlPlaneWait(failed) : undefined;
            if (retryInMs !== undefined) this.#governanceFailed = { until: now + retryInMs, waitMs: retryInMs, error: new NodeError('NODE_RUN_DENIED', 'control plane unreachable: it closed the connection at once'), pairing: false, asks: [] };
            this.#options.onStatus?.({ state: 'disconnected', detail: `close ${code}`, target, ...(retryInMs !== undefined ? { retryInMs } : {}) });
          });
        },
        (error: unknown) => {
          if (this.#governance === connecting) this.#governance = undefined;
          // Tried again at the next command, which is denied meanwhile: the operator must hear why.
          const wire = error instanceof GatewayError ? error.wire : undefined;
          const final = finalRefusal(wire);
          // Waiting to be paired, it asks again at the next command (the one right after an operator paired it runs), yet at
          // most CONTROL_PLANE_PAIRING_ASKS times a second, never at every command: the gateway it serves chooses how many come.
          const pairing = wire?.code === 'NOT_PAIRED' && final === undefined;
          const now = performance.now();
          const asks = pairing ? [...(failed?.pairing ? failed.asks : []), now].filter((at) => now - at < 1_000).slice(-CONTROL_PLANE_PAIRING_ASKS) : [];
          const retryInMs = pairing ? (asks.length < CONTROL_PLANE_PAIRING_ASKS ? 0 : asks[0]! + 1_000 - now) : nextControlPlaneWait(failed);
          this.#governanceFailed = { until: now + retryInMs, waitMs: retryInMs, error, pairing, asks };
          if (this.#stopped) return;
          // A device token it no longer takes is forgotten: the next start asks for the control plane's token.
          if (final?.code.startsWith('AUTH_') && cp.token === undefined) this.#deviceTokens.set(cp.url, undefined);
          if (pairing) this.#options.onStatus?.({ state: 'pending-pairing', detail: this.device.deviceId, target });
          else this.#options.onStatus?.(wire !== undefined ? { state: 'refused', detail: final?.code ?? refusalCode(wire), retryInMs, target } : { state: 'unreachable', detail: unreachableReason(error), retryInMs, target });
        },
      );
    }
    return this.#governance;
  }

  /** What the node connects to `url` with: the shared token when it was given one, else the device token that gateway gave it. */
  #credentials(url: string, token: string | undefined): { token: string } | { deviceToken: string } {
    if (token !== undefined) return { token };
    return { deviceToken: this.#deviceTokens.get(url) ?? '' };
  }

  /** Keeps the device token a gateway gave in hello-ok, for connecting without the shared token next time. */
  #keepDeviceToken(url: string, client: GatewayClient): void {
    const issued = (client.hello.auth as { deviceToken?: unknown } | undefined)?.deviceToken;
    if (typeof issued === 'string' && issued !== '') this.#deviceTokens.set(url, issued);
  }

  /**
   * Asks the control plane (saying why, when the node's own policy asks a
   * human); anything but an allow (unreachable, not paired, denied, no
   * approval) denies. An allow an approval gave carries the control plane's
   * receipt, for exactly this run: the caller checks it (#checkReceipt)
   * before anything runs, once it holds the authorization its report needs.
   */
  async #authorize(run: { argv: string[]; cwd: string | null; env: Record<string, string> }, mapped: string | undefined, timeoutMs: number | undefined, askHuman: string | undefined, offered: BoundFile | null): Promise<Authorization> {
    try {
      const client = await this.#controlPlane();
      const params = { command: run.argv, ...(run.cwd !== null ? { cwd: run.cwd } : {}), env: run.env };
      const answer = (await client.request('corral.run.authorize', { command: 'system.run', params, ...(mapped ? { agentId: mapped } : {}), ...(timeoutMs ? { timeoutMs } : {}), ...(askHuman ? { askHuman } : {}), ...(offered ? { mutableFileOperand: offered.operand, ...(offered.preview ? { scriptPreview: offered.preview } : {}) } : {}) }, { timeoutMs: (timeoutMs ?? 30_000) + 5_000 })) as { decision?: string; runId?: unknown; digest?: string; approvalId?: unknown; approvalReceipt?: unknown; mutableFileOperand?: unknown };
      if (answer.decision !== 'allow' || typeof answer.digest !== 'string' || typeof answer.runId !== 'string') throw new NodeError('NODE_RUN_DENIED', `control plane answered ${typeof answer.decision === 'string' ? answer.decision.slice(0, 40) : 'without a decision'}`);
      // An allow is for what it names by its digest: one on another run, agent or node (another request's answer) allows nothing here.
      // Bound to the script the node offered, it is of that content, which is then what runs; bound to any other, it allows nothing.
      const bound = offered !== null && answer.mutableFileOperand !== undefined ? offered.operand : undefined;
      if (answer.digest !== decisionDigest(params, mapped, this.device.deviceId, bound)) throw new NodeError('NODE_RUN_DENIED', 'control plane answered with its decision on another run');
      const decided = { runId: answer.runId, digest: answer.digest, ...(bound ? { bound } : {}) };
      if (answer.approvalId === undefined && answer.approvalReceipt === undefined) return decided;
      // The receipt of an approval bound to the script covers that file as well, as a plan carries it.
      return { ...decided, approval: { receipt: answer.approvalReceipt, params: bound ? { ...params, systemRunPlan: { argv: run.argv, cwd: run.cwd, mutableFileOperand: bound } } : params } };
    } catch (error) {
      if (error instanceof NodeError) throw error;
      const wire = error instanceof GatewayError ? error.wire : undefined;
      const why = wire?.code === 'NOT_PAIRED' ? 'has not paired this node' : wire ? `refused: ${wire.message.replace(/^SYSTEM_RUN_DENIED: /, '') || wire.code}` : 'unreachable';
      throw new NodeError('NODE_RUN_DENIED', `control plane ${why}`, { cause: error });
    }
  }

  /**
   * #authorize, given up as soon as the gateway cancels the run (its caller
   * left, or the gateway went away): a control plane answering slowly never
   * holds the run's place after that. An allow that comes later is reported
   * as a run not made. Throws NODE_RUN_DENIED.
   */
  async #authorizeUnlessCancelled(run: { argv: string[]; cwd: string | null; env: Record<string, string> }, mapped: string | undefined, timeoutMs: number | undefined, askHuman: string | undefined, cancelled: AbortSignal, offered: BoundFile | null): Promise<Authorization> {
    const asking = this.#authorize(run, mapped, timeoutMs, askHuman, offered);
    const refusal = new NodeError('NODE_RUN_DENIED', NOT_RUN_CANCELLED);
    const given = Promise.withResolvers<never>();
    const giveUp = () => given.reject(refusal);
    if (cancelled.aborted) giveUp();
    else cancelled.addEventListener('abort', giveUp, { once: true });
    try {
      return await Promise.race([asking, given.promise]);
    } catch (error) {
      if (error === refusal) void asking.then((late) => this.#report(late, null, '', reportedError(refusal)), () => undefined);
      throw error;
    } finally {
      cancelled.removeEventListener('abort', giveUp);
    }
  }

  /**
   * Has the control plane decide, and so record, a run this node refuses
   * (with `refusal`) whatever it answers. Should it allow the run, the run is
   * reported as not run, with that refusal; a control plane that cannot be
   * reached records nothing.
   */
  async #recordRefusal(run: { argv: string[]; cwd: string | null; env: Record<string, string> }, mapped: string | undefined, timeoutMs: number | undefined, refusal: NodeError): Promise<void> {
    let authorization: Authorization;
    try {
      authorization = await this.#authorize(run, mapped, timeoutMs, undefined, null);
    } catch {
      return; // denied (and recorded so), or not reachable
    }
    await this.#report(authorization, null, '', reportedError(refusal));
  }

  /**
   * Tells the control plane of a run this node refused on its own before
   * asking (`corral.run.refused`), for its audit log. Best effort: called
   * without waiting, it never delays or changes the refusal; sent again as
   * a report is (REPORT_ATTEMPTS, only while retrying may help); a control
   * plane that cannot be reached records nothing. Never rejects.
   */
  #tellRefusal(params: RefusedRun): Promise<void> {
    return this.#sendForAudit('corral.run.refused', params);
  }

  /**
   * Reports a run to the control plane. A report it could not take now (its
   * audit log refused the record, the connection dropped) is sent again, up
   * to REPORT_ATTEMPTS times; a refusal is final. The decision record is in
   * the control plane's log whatever happens: a report lost for good shows
   * there as a decision whose run was not reported.
   */
  async #report(authorization: Authorization, exitCode: number | null, output: string, error?: string): Promise<void> {
    const params = { runId: authorization.runId, ok: exitCode === 0, ...(exitCode !== null ? { exitCode } : {}), resultDigest: createHash('sha256').update(output).digest('hex'), ...(error ? { error } : {}) };
    return this.#sendForAudit('corral.run.report', params);
  }

  /**
   * Sends the control plane something for its audit log: retried up to
   * REPORT_ATTEMPTS times while it could not take it now (its log refused
   * the record, the connection dropped), never sooner than it asks
   * (retryAfterMs, up to REPORT_MAX_RETRY_AFTER_MS), never after a final
   * refusal, one past its audit budget for this node (RATE_LIMITED: dropped
   * and counted there) or once this node stopped (the first try is made all
   * the same). Never rejects.
   */
  async #sendForAudit(method: 'corral.run.report' | 'corral.run.refused', params: object): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const client = await this.#controlPlane();
        await client.request(method, params, { timeoutMs: 10_000 });
        return;
      } catch (failure) {
        const wire = failure instanceof GatewayError ? failure.wire : undefined;
        if (attempt >= REPORT_ATTEMPTS || this.#stopped || (wire !== undefined && wire.retryable !== true)) return;
        // Past its audit budget for this node, the control plane dropped the record and counted it: sent again, it would count it again.
        if ((wire?.details as { code?: unknown } | undefined)?.code === 'RATE_LIMITED') return;
        // Never sooner than it asks (a node past its audit budget is told when): sooner, it is refused again, and counted again as dropped.
        const asked = Number.isFinite(wire?.retryAfterMs) ? Math.min(Math.max(0, wire!.retryAfterMs!), REPORT_MAX_RETRY_AFTER_MS) : 0;
        await new Promise((resolve) => setTimeout(resolve, Math.max(REPORT_RETRY_MS * attempt, asked)));
      }
    }
  }

  /**
   * Sends the gateway the answer to `request`, once it has acknowledged all
   * but a few of those sent before (MAX_UNACKNOWLEDGED_ANSWERS,
   * MAX_UNACKNOWLEDGED_CHARS): one that does not read them, yet sends request
   * after request, would otherwise fill this process's memory with answers
   * waiting to be sent. Past that the connection is closed, and the answer dropped.
   */
  async #answer(client: GatewayClient, request: InvokeRequest, result: { ok: boolean; payloadJSON?: string; error?: { code: string; message: string } }): Promise<void> {
    const chars = (result.payloadJSON?.length ?? 0) + (result.error?.message.length ?? 0);
    const unread = this.#unacknowledged.get(client) ?? { answers: 0, chars: 0 };
    if (unread.answers + 1 > MAX_UNACKNOWLEDGED_ANSWERS || unread.chars + chars > MAX_UNACKNOWLEDGED_CHARS) {
      void client.close();
      return;
    }
    unread.answers += 1;
    unread.chars += chars;
    this.#unacknowledged.set(client, unread);
    let acknowledged = true;
    try {
      await client.request('node.invoke.result', { id: request.id, nodeId: this.device.deviceId, ...result });
    } catch (error) {
      // The gateway went away (it reports the command as failed to its caller), or refused the answer: read either way.
      // Unanswered in time, it may never have been read: it counts until the connection ends.
      acknowledged = !(error instanceof GatewayError && error.code === 'GATEWAY_TIMEOUT');
    }
    if (acknowledged) {
      unread.answers -= 1;
      unread.chars -= chars;
    }
  }
}

/**
 * Whether the gateway says a human approved this run: upstream's `approved`
 * flag or an `approvalDecision` of allow-once / allow-always (a Corral gateway
 * sends both, with the signed receipt checked before anything runs). A deny
 * decision is never an approval, whatever the flag says.
 */
function approvalClaimed(params: Record<string, unknown>): boolean {
  if (params.approvalDecision !== undefined && params.approvalDecision !== null) return params.approvalDecision === 'allow-once' || params.approvalDecision === 'allow-always';
  return params.approved === true;
}

/**
 * Under an allowlist, refuses a run that could execute something the
 * sandbox wrote under a name the allowlist lists: a program where it can
 * write (named by a path, or found there on PATH), a shell's startup file,
 * a library or module a variable of its environment loads, git's
 * configuration or hooks, ssh's configuration or a command its `-o` names.
 * Throws NODE_RUN_DENIED.
 */
function refusePlanted(policy: LocalPolicyFile, run: CanonicalRun, plan: SandboxPlan): void {
  refuseWritablePrograms(policy, run, plan);
  refuseWritableStartupFiles(policy, run, plan);
  refuseWritableLoadPaths(policy, plan);
  refuseWritableGitConfig(policy, run, plan);
  refuseWritableSshConfig(policy, run, plan);
}

/**
 * The bounds of what `corral.run.refused` carries (the control plane's
 * node-refusal.ts refuses anything larger): the first words of the argv, each
 * cut to REFUSED_WORD characters, within REFUSED_ARGV_BYTES as JSON; the cwd
 * cut to REFUSED_CWD; up to REFUSED_ENV_KEYS variable names; the reason cut to
 * REFUSED_REASON; an unmapped upstream agent's name to REFUSED_UPSTREAM_AGENT.
 * Anything cut but that name is marked `truncated`.
 */
const REFUSED_ARGV = 64;
const REFUSED_WORD = 1024;
const REFUSED_ARGV_BYTES = 16 * 1024;
const REFUSED_CWD = 1024;
const REFUSED_ENV_KEYS = 64;
const REFUSED_REASON = 1000;
const REFUSED_UPSTREAM_AGENT = 200;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** A refused run as the control plane is told of it: the run as asked (env names, never values), the agent, the node's code and reason. */
interface RefusedRun {
  command: string[];
  cwd: string | null;
  envKeys: string[];
  agentId?: string;
  upstreamAgent?: string;
  code: string;
  rule?: string;
  reason: string;
  truncated?: true;
}

/** A run's argv as the request carries it: words of text, at least one. */
function isArgv(value: unknown): value is string[] {
  return Array.isArray(value) && value.length > 0 && value.every((w) => typeof w === 'string');
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The params of `corral.run.refused` for `run` of `agent`, refused with
 * `error` (by local policy rule `rule`), fit to the bounds above. `run` is
 * what was asked: argv, cwd, and the environment, whose names alone are sent.
 */
function refusedRun(run: { argv: readonly string[]; cwd: string | null; env: Record<string, unknown> }, agent: string | undefined, error: NodeError, rule: LocalRule | undefined): RefusedRun {
  let truncated = false;
  const command: string[] = [];
  let bytes = 0;
  for (const word of run.argv) {
    // Cut whole: a lone surrogate is no text the audit log takes.
    const cut = word.slice(0, REFUSED_WORD).toWellFormed();
    const size = Buffer.byteLength(JSON.stringify(cut)) + 1;
    if (command.length >= REFUSED_ARGV || (command.length > 0 && bytes + size > REFUSED_ARGV_BYTES)) {
      truncated = true;
      break;
    }
    if (cut !== word) truncated = true;
    command.push(cut);
    bytes += size;
  }
  const cwd = run.cwd === null ? null : run.cwd.slice(0, REFUSED_CWD).toWellFormed();
  if (cwd !== run.cwd) truncated = true;
  const names = Object.keys(run.env);
  const envKeys = names.filter((n) => ENV_NAME.test(n)).slice(0, REFUSED_ENV_KEYS);
  if (envKeys.length !== names.length) truncated = true;
  const reason = (error.message || error.code).slice(0, REFUSED_REASON).toWellFormed();
  return { command, cwd, envKeys, ...(agent !== undefined ? { agentId: agent } : {}), code: error.code, ...(rule !== undefined ? { rule } : {}), reason, ...(truncated ? { truncated: true as const } : {}) };
}

/**
 * The digest a Corral control plane gives its decision on a run of `params`
 * (as the node sent them) by Corral agent `agent`, or by node `nodeId` itself
 * when it names none: actionDigest, of the principal as the control plane
 * writes it (TYPE::ID), this node, the command and the canonical run.
 */
function decisionDigest(params: RunRequest, agent: string | undefined, nodeId: string, operand: FileOperand | undefined): string {
  return actionDigest({ principal: agent ? `Agent::${agent}` : `Node::${nodeId}`, nodeId, command: 'system.run', run: canonicalRun(params), ...(operand ? { operand } : {}) });
}

/**
 * The script file a run runs, read now (and what approvers are shown of it), offered to the control plane with
 * the run (corral.run.authorize): should it ask a human, the approval is of
 * that content, and that content is what runs. Null for a run of no one
 * script file, or of one the node cannot bind (missing, a FIFO, too large,
 * or another file than the sandbox built from `mounts` would open by that
 * word): a human is then not asked about it at all (the control plane
 * refuses it).
 */
function offeredOperand(run: { argv: string[]; cwd: string | null }, mounts: readonly Mount[]): BoundFile | null {
  try {
    return snapshotOperand(run.argv, run.cwd, () => mounts);
  } catch (error) {
    if (error instanceof NodeError) return null;
    throw error;
  }
}

/** The most characters of a report's `error` the control plane keeps (it cuts a longer one). */
const REPORT_ERROR = 200;

/**
 * What a run the control plane allowed is reported to have failed with: the
 * node's code and reason (`NODE_RUN_DENIED: …`), cut whole characters at a
 * time to what the control plane keeps; for any failure but the node's coded
 * refusal, NODE_INTERNAL alone (such a message may name the node's files).
 */
function reportedError(error: unknown): string {
  if (!(error instanceof NodeError) || error.code === 'NODE_INTERNAL') return 'NODE_INTERNAL';
  return `${error.code}: ${error.message}`.slice(0, REPORT_ERROR).toWellFormed();
}

/** The wait after a failed attempt to reach the control plane before the next one (a command meanwhile is denied), doubling to the most. */
const CONTROL_PLANE_FIRST_BACKOFF_MS = 250;
const CONTROL_PLANE_MAX_BACKOFF_MS = 5_000;
/** The wait after a failed attempt to reach the control plane (one refused, unreachable, or dropped at once), given the last failure before it. */
function nextControlPlaneWait(last: { waitMs: number; pairing: boolean } | undefined): number {
  return last === undefined || last.pairing ? CONTROL_PLANE_FIRST_BACKOFF_MS : Math.min(last.waitMs * 2, CONTROL_PLANE_MAX_BACKOFF_MS);
}

/** The most attempts a second to reach a control plane that has not paired this node yet (a command beyond them is denied unasked). */
const CONTROL_PLANE_PAIRING_ASKS = 4;

/** Why a run the gateway cancelled (its caller left) or that went away before it started was not run. */
const NOT_RUN_CANCELLED = 'not run: the gateway cancelled it (its caller left) or went away';

/** Times a run's report is sent before it is given up, and the wait before the second (growing after). */
const REPORT_ATTEMPTS = 4;
const REPORT_RETRY_MS = 250;
/** The longest wait before sending a report again that the control plane's retryAfterMs may ask for. */
const REPORT_MAX_RETRY_AFTER_MS = 30_000;

/** The longest a gateway may ask a command to take (its own limit): a day. */
const MAX_TIMEOUT_MS = 24 * 3600_000;

/** The gateway's timeoutMs for a request: a positive whole number of ms, at most MAX_TIMEOUT_MS; undefined (the defaults) for anything else. */
function invokeTimeout(raw: unknown): number | undefined {
  return Number.isSafeInteger(raw) && (raw as number) > 0 ? Math.min(raw as number, MAX_TIMEOUT_MS) : undefined;
}

/** host:port of a gateway URL, for messages (never any credentials the URL may carry). */
function gatewayHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the configured address';
  }
}

/** A refusal's code for the log: details.code when the gateway gave one, else its code. */
function refusalCode(wire: WireError): string {
  const detail = (wire.details as { code?: unknown } | undefined)?.code;
  return shown(typeof detail === 'string' ? detail : wire.code, 64);
}

/** Why a connection could not be made: the socket error's code (ECONNREFUSED…), or the client's. */
function unreachableReason(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return shown(cause.code, 64);
  return typeof (error as { code?: unknown })?.code === 'string' ? shown((error as { code: string }).code, 64) : 'error';
}

/** The request's environment, kept to the names the agent's container policy lets through (`environment.pass`), the display's excepted. */
function allowedEnv(raw: unknown, pass: readonly string[]): { env: Record<string, string>; dropped: string[] } {
  const env: Record<string, string> = {};
  const dropped: string[] = [];
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { env, dropped };
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    // The display a sandbox is granted is this machine's: a request's DISPLAY or XDG_RUNTIME_DIR would point it at another socket or cookie.
    if (pass.includes(name) && typeof value === 'string' && !DISPLAY_VARIABLES.includes(name)) env[name] = value;
    else dropped.push(name.slice(0, 64));
  }
  return { env, dropped };
}

/** True when `path` is `dir` or lies below it, as written (both made absolute). */
function inside(path: string, dir: string): boolean {
  const rel = relative(resolve(dir), resolve(path));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/** The node's own values of the variables a policy passes (a request's values win). */
function passFromHost(pass: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of pass) if (process.env[name] !== undefined) out[name] = process.env[name]!;
  return out;
}

/**
 * `system.which`: the absolute paths of the named programs (names only, no
 * paths) as executable files in the system directories, the only ones a bare
 * allowlist entry matches; never the node's own PATH, which is not the
 * sandbox's and names folders of the host (a user's home, an install).
 */
function which(bins: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(bins)) return out;
  for (const bin of bins.slice(0, 64)) {
    if (typeof bin !== 'string' || bin === '' || bin.includes('/') || bin.length > 255) continue;
    for (const dir of SYSTEM_BIN_DIRS) {
      const candidate = join(dir, bin);
      try {
        accessSync(candidate, constants.X_OK);
        if (!statSync(candidate).isFile()) continue; // a directory ('.', '..') is no program
        out[bin] = candidate;
        break;
      } catch {
        // not here
      }
    }
  }
  return out;
}
