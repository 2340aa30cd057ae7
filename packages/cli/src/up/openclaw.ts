// The upstream OpenClaw gateway, run inside a Corral container, with its exec
// tool wired to a Corral node. OpenClaw keeps its agents, channels and
// models; every command an agent runs on a machine reaches the Corral node,
// which asks the Corral control plane, waits for approvals, runs the command
// contained and reports to the audit log.
//
// The container: OpenClaw's home (its state) read-write, its configuration,
// its install and the Node binary read-only, egress only to the model providers
// its configuration names, its gateway port published on host loopback. The
// Corral node's own state (its device key, paired with the control plane)
// and the Corral gateway token stay outside it: OpenClaw gets its own token.
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { closeSync, constants, createWriteStream, existsSync, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ContainError, planSandbox, Runner, validatePolicy, type ContainedProcess, type EgressLookup } from '@corral/contain';
import type { NodeHost } from '@corral/node';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';
import { hiddenState } from '../state-dir.ts';

/** The OpenClaw release Corral is tested against. */
export const OPENCLAW_VERSION = '2026.9.6';
/** Port the gateway listens on inside its container (published on a free host loopback port). */
export const INSIDE_PORT = 18789;
/** The provider id Corral configures for `modelBaseUrl`. */
export const MODEL_PROVIDER = 'corral-model';
const READY = /\[gateway\]\S* \S*ready/;
/** How long OpenClaw's gateway may take from its container's start to ready, unless told: ~10 s on a quiet machine, minutes on a loaded one. */
const READY_TIMEOUT_MS = 300_000;
/** What OpenClaw's gateway writes, in Corral's state directory (outside OpenClaw's home, which its container may write): made anew at every start. */
const OPENCLAW_LOG = 'openclaw.log';
/** OpenClaw's configuration, inside its home. */
const CONFIG_FILE = join('.openclaw', 'openclaw.json');

export interface StartOpenClawOptions {
  /** Corral's state directory: OpenClaw's home is STATE/openclaw, the node's state STATE/openclaw-node. */
  stateDir: string;
  /** Where `openclaw` is installed: the folder holding node_modules/openclaw (default $CORRAL_OPENCLAW_DIR). */
  installDir?: string;
  /** The Corral control plane the node asks, ws://127.0.0.1:PORT, and its token (never given to OpenClaw). */
  corralGatewayUrl: string;
  token: string;
  /** Pairs the node's device with the control plane (the caller owns it), letting it ask for `agents` (agentMap's Corral agents); called with the node's device id once the node has started announcing itself there. */
  pairOnControlPlane: (deviceId: string, agents: readonly string[]) => Promise<void> | void;
  /** The name the node has in OpenClaw; the exec tool is bound to it. */
  nodeName: string;
  /** Upstream agent id → Corral agent name; commands from other agents are denied. */
  agentMap: Readonly<Record<string, string>>;
  /** Container policies for the agents' commands, by Corral agent name (see NodeHostOptions). */
  containerPolicies?: Record<string, { policy: unknown; baseDir: string; source?: string }>;
  /** An OpenAI-compatible chat-completions endpoint (`http://host:port/v1`) configured as the agents' model. */
  modelBaseUrl?: string;
  /** The model id at that endpoint (default `default`). */
  modelId?: string;
  /**
   * Names the egress proxy resolves to fixed addresses, like /etc/hosts — to
   * reach a model served on this machine's loopback under a name (OpenClaw
   * connects to loopback addresses directly, and its container has none of the host's).
   */
  egressHosts?: Readonly<Record<string, string>>;
  /** Hosts the channels configured in OpenClaw reach, `host:port` (e.g. `api.telegram.org:443`); added to its egress. */
  channelHosts?: readonly string[];
  onProgress?: (message: string) => void;
  /** How long the upstream gateway may take to be ready, its container's start included (default 300 s: it takes ~10 s on a quiet machine, minutes on a loaded one). */
  readyTimeoutMs?: number;
  /** The runner that contains it (default: a new one, resolving `egressHosts`). */
  runner?: Runner;
}

export interface OpenClaw {
  /** The upstream gateway, ws://127.0.0.1:PORT (published from the container). */
  url: string;
  /** OpenClaw's own gateway token (not Corral's). */
  token: string;
  /** From start to the upstream gateway answering, contained. */
  readyMs: number;
  /** From start to the Corral node serving OpenClaw's exec tool (paired on both sides). */
  servingMs: number;
  /** The Corral node serving OpenClaw's exec tool. */
  node: NodeHost;
  /** What OpenClaw wrote to stdout and stderr. */
  log: () => string;
  close(): Promise<void>;
}

/** The install's entry point, or a CliFailure saying how to install it. */
export function openclawEntry(installDir: string | undefined): { entry: string; modules: string } {
  const dir = installDir ?? process.env.CORRAL_OPENCLAW_DIR;
  const entry = dir ? join(dir, 'node_modules', 'openclaw', 'openclaw.mjs') : undefined;
  if (!dir || !entry || !existsSync(entry)) {
    throw new CliFailure(`OpenClaw is not installed${dir ? ` in ${dir}` : ''}: run \`npm install --prefix DIR openclaw@${OPENCLAW_VERSION}\` and set CORRAL_OPENCLAW_DIR=DIR`, EXIT.environment);
  }
  return { entry, modules: join(dir, 'node_modules') };
}

/**
 * OpenClaw's configuration as Corral runs it: the gateway local on loopback
 * with token auth, the model provider (when given) reached through the
 * container's egress proxy, and the exec tool on host=node, bound to the
 * Corral node.
 */
export function openclawConfig(options: { port: number; token: string; nodeName: string; modelBaseUrl?: string; modelId?: string }): Record<string, unknown> {
  const modelId = options.modelId ?? 'default';
  return {
    gateway: { mode: 'local', bind: 'loopback', port: options.port, auth: { mode: 'token', token: options.token } },
    ...(options.modelBaseUrl
      ? {
          models: {
            mode: 'merge',
            providers: {
              [MODEL_PROVIDER]: {
                baseUrl: options.modelBaseUrl,
                apiKey: 'corral',
                api: 'openai-completions',
                models: [{ id: modelId, name: modelId, input: ['text'], contextWindow: 128_000, maxTokens: 8_192 }],
              },
            },
          },
          agents: { defaults: { model: { primary: `${MODEL_PROVIDER}/${modelId}` } } },
        }
      : {}),
    tools: { exec: { host: 'node', node: options.nodeName } },
    // All of OpenClaw's egress goes through the container's egress proxy (upstream's managed proxy
    // routing), which lets out only what the container policy allows; its own loopback stays direct.
    // With nothing to reach, the container has no network and no proxy.
    ...(options.modelBaseUrl ? { proxy: { proxyUrl: '${HTTP_PROXY}', loopbackMode: 'gateway-only' } } : {}),
  };
}

/**
 * The egress rules for what a configuration names: each model provider's
 * `baseUrl` origin (host:port; a literal IP as a /32 or /128 rule, which is
 * how a loopback or private address must be named). Channel hosts would go
 * here too; Corral configures no channels.
 */
export function egressFor(config: Record<string, unknown>, hosts: Readonly<Record<string, string>> = {}): string[] {
  const providers = ((config.models as { providers?: Record<string, { baseUrl?: unknown }> } | undefined)?.providers ?? {}) as Record<string, { baseUrl?: unknown }>;
  const rules = new Set<string>();
  for (const [id, provider] of Object.entries(providers)) {
    let url: URL;
    try {
      url = new URL(String(provider.baseUrl));
    } catch {
      throw new CliFailure(`OpenClaw's model provider ${id} has no usable baseUrl`, EXIT.usage);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliFailure(`OpenClaw's model provider ${id}: baseUrl must be http(s)`, EXIT.usage);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const literal = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? `${host}/32` : host.includes(':') ? `${host}/128` : host;
    rules.add(`${literal}:${port}`);
    // A name pinned to a loopback or private address needs that address named as well.
    const pinned = Object.hasOwn(hosts, host) ? hosts[host]! : undefined;
    if (pinned) rules.add(`${pinned}/${pinned.includes(':') ? 128 : 32}:${port}`);
  }
  return [...rules];
}

/** The container policy OpenClaw's gateway runs under. */
export function openclawContainerPolicy(options: { home: string; modules: string; egress: string[] }): Record<string, unknown> {
  return {
    version: 1,
    runtime: ['node', 'shell'],
    workingDirectory: options.home,
    // Its configuration is Corral's: read-only, so OpenClaw cannot route exec away from the Corral node.
    filesystem: { readwrite: [options.home], readonly: [options.modules, join(options.home, CONFIG_FILE)] },
    network: { egress: options.egress.length > 0 ? { allow: options.egress } : 'none', ingress: [{ port: INSIDE_PORT, hostPort: 0 }] },
    // A long-lived server: a week before the wall clock stops it; room for its worker threads.
    process: { maxProcesses: 1024, memoryMB: 4096, timeoutMs: 604_800_000 },
    environment: {
      set: { HOME: options.home, OPENCLAW_HOME: options.home, OPENCLAW_NO_AUTO_UPDATE: '1', NODE_COMPILE_CACHE: join(options.home, '.compile-cache') },
    },
  };
}

/**
 * Starts OpenClaw's gateway inside a Corral container, then a Corral node
 * under it: paired with the control plane (`pairOnControlPlane`) and with
 * OpenClaw (through upstream's own pairing API, what `openclaw nodes approve` calls), serving its exec
 * tool. Throws a CliFailure (exit 3) naming the protection this host cannot
 * enforce: OpenClaw never runs uncontained.
 */
export async function startOpenClaw(options: StartOpenClawOptions): Promise<OpenClaw> {
  const progress = options.onProgress ?? (() => {});
  const { entry, modules } = openclawEntry(options.installDir);
  const home = join(options.stateDir, 'openclaw');
  const nodeState = join(options.stateDir, 'openclaw-node');
  mkdirSync(home, { recursive: true, mode: 0o700 });
  ownDirectory(join(home, '.openclaw'));
  mkdirSync(nodeState, { recursive: true, mode: 0o700 });
  const token = openclawToken(home);
  const config = openclawConfig({ port: INSIDE_PORT, token, nodeName: options.nodeName, ...(options.modelBaseUrl ? { modelBaseUrl: options.modelBaseUrl } : {}), ...(options.modelId ? { modelId: options.modelId } : {}) });
  writeAnew(join(home, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
  const hosts = options.egressHosts ?? {};
  const started = performance.now();
  progress('starting OpenClaw in a container');
  const gateway = await startContainedGateway({ home, modules, entry, config, hosts, logFile: join(options.stateDir, OPENCLAW_LOG), ...(options.channelHosts ? { channelHosts: options.channelHosts } : {}), ...(options.runner ? { runner: options.runner } : {}), ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}) });
  progress(`OpenClaw ready at ${gateway.url} in ${gateway.readyMs} ms`);
  let node: NodeHost | undefined;
  const close = async (): Promise<void> => {
    await node?.close();
    await gateway.close();
  };
  try {
    const { NodeHost } = await import('@corral/node');
    node = new NodeHost({
      gateway: gateway.url,
      token,
      name: options.nodeName,
      stateDir: nodeState,
      // Its sandboxes see none of Corral's state, only the process workspaces their policies grant.
      hiddenState: hiddenState(options.stateDir),
      maxBackoffMs: 1_000,
      controlPlane: { url: options.corralGatewayUrl, token: options.token, agents: options.agentMap },
      ...(options.containerPolicies ? { containerPolicies: options.containerPolicies } : {}),
    });
    await node.start();
    await options.pairOnControlPlane(node.device.deviceId, [...new Set(Object.values(options.agentMap))]);
    progress('pairing the Corral node with OpenClaw');
    await pairWithOpenClaw({ url: gateway.url, token, operatorDir: join(options.stateDir, 'openclaw-operator'), deviceId: node.device.deviceId });
    progress('the Corral node serves OpenClaw');
    return { url: gateway.url, token, readyMs: gateway.readyMs, servingMs: Math.round(performance.now() - started), node, log: gateway.log, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export interface ContainedGateway {
  /** ws://127.0.0.1:PORT, published from the container. */
  url: string;
  /** From spawning the container to the gateway's "ready". */
  readyMs: number;
  log: () => string;
  close(): Promise<void>;
}

/**
 * Runs `openclaw gateway run` for the home `home` (its configuration already
 * written) inside a Corral container, until it says it is ready, within
 * `readyTimeoutMs` of its start (300 s): its container publishing its port
 * and the gateway saying so both count against it. What it writes goes to
 * `logFile` too when given. Throws a CliFailure (exit 3) naming the
 * protection this host cannot enforce, or, once nothing of it is left
 * running, when it exits or is not ready in time (exit 3 too: OpenClaw
 * cannot start here), saying what did not happen and the end of its log.
 */
export async function startContainedGateway(options: { home: string; modules: string; entry: string; config: Record<string, unknown>; hosts?: Readonly<Record<string, string>>; channelHosts?: readonly string[]; runner?: Runner; readyTimeoutMs?: number; logFile?: string }): Promise<ContainedGateway> {
  const hosts = options.hosts ?? {};
  const egress = [...egressFor(options.config, hosts), ...(options.channelHosts ?? [])];
  let policy;
  try {
    policy = validatePolicy(openclawContainerPolicy({ home: options.home, modules: options.modules, egress }));
  } catch (error) {
    throw new CliFailure(`OpenClaw's container policy is invalid (check channelHosts): ${(error as Error).message}`, EXIT.usage);
  }
  const plan = planSandbox({ policy, source: '<openclaw>', baseDir: options.home });
  const started = performance.now();
  const readyTimeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const deadline = started + readyTimeoutMs;
  const file = options.logFile === undefined ? undefined : logStream(options.logFile);
  const runner = options.runner ?? new Runner({ proxy: { lookup: pinnedLookup(hosts) } });
  const output = new PassThrough();
  let log = '';
  output.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-1_000_000)));
  if (file) output.pipe(file);
  let proc: ContainedProcess;
  try {
    proc = runner.spawn(plan, [process.execPath, options.entry, 'gateway', 'run', '--bind', 'loopback', '--port', String(INSIDE_PORT), '--auth', 'token'], { stdout: output, stderr: output });
  } catch (error) {
    await runner.close();
    file?.end();
    if (error instanceof ContainError) throw new CliFailure(`OpenClaw was not started, because it cannot be contained here: ${error.message}`, EXIT.environment);
    throw error;
  }
  const close = async (): Promise<void> => {
    proc.kill();
    await proc.result.catch(() => undefined);
    await runner.close();
    file?.end();
  };
  let outcome: Readiness;
  try {
    outcome = await untilReady(proc, () => log, deadline);
  } catch (error) {
    await close();
    throw error;
  }
  if ('port' in outcome) return { url: `ws://127.0.0.1:${outcome.port}`, readyMs: Math.round(performance.now() - started), log: () => log, close };
  await close();
  const what =
    'exitCode' in outcome
      ? `exited (code ${outcome.exitCode}) before it was ready; nothing of it is left running`
      : `was not ready within ${readyTimeoutMs} ms: ${outcome.late === 'port' ? 'its container never published its port' : 'it never said it was ready'}; it was stopped, and nothing of it is left running`;
  throw new CliFailure(`OpenClaw's gateway ${what}; ${logEnd(log, options.logFile)}`, EXIT.environment);
}

/** OpenClaw's gateway ready on a host port; or exited first; or late: its container had not published its port, or it had not said it was ready. */
type Readiness = { port: number } | { exitCode: number | null } | { late: 'port' | 'ready' };

/**
 * Waits, looking every 50 ms, until OpenClaw's container has published its
 * port and its gateway has said it is ready (READY), it exits, or `deadline`
 * (performance.now()) passes. Rejects with the sandbox's own failure (ContainError).
 */
async function untilReady(proc: ContainedProcess, log: () => string, deadline: number): Promise<Readiness> {
  let published: { hostPort: number }[] | undefined;
  let gone: { exitCode: number | null } | undefined;
  let failure: { error: unknown } | undefined;
  void proc.ready.then((ports) => (published = ports));
  void proc.result.then(
    (result) => (gone = result),
    (error: unknown) => (failure = { error }),
  );
  for (;;) {
    if (failure) throw failure.error;
    if (gone) return { exitCode: gone.exitCode };
    if (published?.[0] && READY.test(log())) return { port: published[0].hostPort };
    if (performance.now() > deadline) return { late: published ? 'ready' : 'port' };
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Where what OpenClaw wrote is, and how it ends: the last 2,000 characters, in the message that says it did not start. */
function logEnd(log: string, file: string | undefined): string {
  if (log === '') return file ? `it wrote nothing to its log, ${file}` : 'it wrote nothing';
  return `${file ? `its log is ${file}, ending` : 'what it wrote ends'}:\n${log.slice(-2_000)}`;
}

/**
 * OpenClaw's log file, made anew (mode 0600): what was there, a link
 * included, is replaced, never written through. Throws a CliFailure (exit 3)
 * naming it when it cannot be made.
 */
function logStream(file: string): WriteStream {
  let fd: number;
  try {
    rmSync(file, { force: true });
    fd = openSync(file, 'wx', 0o600);
  } catch (error) {
    throw new CliFailure(`OpenClaw was not started: its log ${file} cannot be written (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, EXIT.environment);
  }
  // A write that fails later (a full disk) stops nothing: what OpenClaw writes is still kept for log() and its errors.
  return createWriteStream(file, { fd }).on('error', () => undefined);
}

/** The host's resolver, except for the pinned names. */
function pinnedLookup(hosts: Readonly<Record<string, string>>): EgressLookup {
  return async (hostname, options) => {
    const pinned = Object.hasOwn(hosts, hostname) ? hosts[hostname] : undefined;
    if (pinned) return [{ address: pinned, family: pinned.includes(':') ? 6 : 4 }];
    return lookup(hostname, options);
  };
}

// OpenClaw's home is written by what runs in its container: whatever it left there, Corral follows no link
// in it, which could name a file of Corral's (its gateway token) to be read into OpenClaw's configuration,
// or any file of this user's to be overwritten.

/** OpenClaw's own gateway token, kept in its home (mode 0600), made the first time, or again when what is there is not a plain file of it. */
function openclawToken(home: string): string {
  const file = join(home, 'corral-gateway-token');
  const kept = readPlainFile(file)?.trim();
  if (kept) return kept;
  const token = randomBytes(24).toString('base64url');
  writeAnew(file, `${token}\n`);
  return token;
}

/** The text of `file` when it is a regular file, opened without following a link (nor waiting on a FIFO); undefined otherwise. */
function readPlainFile(file: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return undefined;
    throw error;
  }
  try {
    return fstatSync(fd).isFile() ? readFileSync(fd, 'utf8') : undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes `file` (mode 0600) as a new file: what was there, a link included, is removed, never written through. */
function writeAnew(file: string, text: string): void {
  rmSync(file, { recursive: true, force: true });
  writeFileSync(file, text, { flag: 'wx', mode: 0o600 });
}

/** Makes `dir` a directory (0700), replacing a link or file there; one already there is kept, with what OpenClaw keeps in it. */
function ownDirectory(dir: string): void {
  if (lstatSync(dir, { throwIfNoEntry: false })?.isDirectory() === false) rmSync(dir, { force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * Approves the node's command surface in OpenClaw with upstream's own pairing
 * API (`node.pair.list`, `node.pair.approve`: what `openclaw nodes pending`
 * and `openclaw nodes approve` call), as an operator device of Corral's kept
 * in OPERATOR_DIR (OpenClaw pairs a loopback operator device by itself), then
 * waits until OpenClaw lists the node as connected with `system.run`.
 */
async function pairWithOpenClaw(options: { url: string; token: string; operatorDir: string; deviceId: string }): Promise<void> {
  const { loadOrCreateDevice } = await import('@corral/node');
  const { GatewayClient } = await import('@corral/gateway');
  const client = await GatewayClient.connect({
    url: options.url,
    token: options.token,
    role: 'operator',
    // Approving a node that declares system.run takes operator.admin in OpenClaw.
    scopes: ['operator.read', 'operator.pairing', 'operator.admin'],
    device: loadOrCreateDevice(options.operatorDir),
    client: { id: 'cli', mode: 'cli', displayName: 'corral up', platform: process.platform },
  });
  try {
    const deadline = performance.now() + 120_000;
    let approved = false;
    for (;;) {
      if (!approved) {
        const { pending } = (await client.request('node.pair.list', {})) as { pending?: Array<{ requestId?: unknown; nodeId?: unknown }> };
        const request = (pending ?? []).find((r) => r.nodeId === options.deviceId);
        if (typeof request?.requestId === 'string') {
          await client.request('node.pair.approve', { requestId: request.requestId });
          approved = true;
        }
      } else {
        const { nodes } = (await client.request('node.list', {})) as { nodes?: Array<{ nodeId?: unknown; connected?: unknown; commands?: unknown }> };
        if ((nodes ?? []).some((n) => n.nodeId === options.deviceId && n.connected === true && Array.isArray(n.commands) && n.commands.includes('system.run'))) return;
      }
      if (performance.now() > deadline) throw new CliFailure(approved ? 'OpenClaw does not list the Corral node as connected with system.run' : 'the Corral node never appeared among OpenClaw\'s pending nodes', EXIT.failed);
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await client.close();
  }
}
