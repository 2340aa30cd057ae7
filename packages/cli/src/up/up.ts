// `corral up`: everything a company needs on one machine, started together —
// the gateway (protocol, HTTP API, console), a node for this machine paired by
// `corral up` itself, and on first start the state directory with keys, an
// admin login and the invoice-intake example process. Ready means: the
// console answers and the node is connected. Stops on SIGINT/SIGTERM, sealing
// an audit checkpoint.
import { get } from 'node:http';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { AuditLog, SignedCheckpoint } from '@corral/audit';
import type { Runner } from '@corral/contain';
import type { ConsoleOidcSettings, Gateway } from '@corral/gateway';
import type { NodeHost } from '@corral/node';
import type { OpenClaw } from './openclaw.ts';
import { EXIT } from '../exit-codes.ts';
import { shownNodeId } from '../node-id.ts';
import { CliFailure, printJson, printSecret } from '../output.ts';
import { gatewayToken, metricsToken, optionRefusal, policiesRefusal } from '../commands/gateway.ts';
import { fileDestination, gatewayLog } from '../gateway-log.ts';
import { ADMIN_USERNAME, ensureAdmin, NO_ADMINISTRATOR } from './admin.ts';
import { AutoPairing, UP_ACTOR } from './auto-pairing.ts';
import { findConsole } from './console.ts';
import { hiddenState } from '../state-dir.ts';
import { ensureExampleAgent, installExampleFiles, INVOICE_INTAKE, POLICIES_DIR } from './example.ts';
import { Progress } from './progress.ts';
import { readProfiles } from './profiles.ts';
import { checkPortFree, claimStateDir, lockStateDir, portFailure, readMarker, writeMarker } from './state.ts';

export interface UpOptions {
  stateDir: string;
  port: number;
  bind: string;
  console: boolean;
  json: boolean;
  /** Also start upstream OpenClaw in a Corral container, its exec tool on a Corral node (see openclaw.ts). */
  openclaw?: { modelUrl?: string; model?: string };
  /** Single sign-on for the console (read and checked by the command: consoleOidcSettings). */
  oidc?: ConsoleOidcSettings;
  /** Behind a TLS-terminating reverse proxy: the gateway's `publicUrl` and `trustedProxies`. */
  reverseProxy?: { publicUrl?: string; trustedProxies?: string[] };
}

/** OpenClaw's default agent acts as the example's agent. */
const OPENCLAW_AGENT_MAP = { main: INVOICE_INTAKE.agent.name };
/** A model served on this machine's loopback is reached from OpenClaw's container under this name (its container has no loopback of the host's). */
const LOOPBACK_MODEL_HOST = 'model.corral.internal';

/** The node's own state (device key, local policy), apart from the gateway's. */
const NODE_STATE = 'node';
const NODE_READY_TIMEOUT_MS = 15_000;

/** What is running, for shutdown; filled in as parts start. */
interface Running {
  gateway?: Gateway;
  host?: NodeHost;
  runner?: Runner;
  audit?: AuditLog;
  openclaw?: OpenClaw;
  /** Pairs the nodes `corral up` starts itself. */
  pairing?: AutoPairing;
  /** Gives the state directory back (its lock). */
  release?: () => void;
  containerPolicies?: ContainerPolicies;
}

type ContainerPolicies = Record<string, { policy: unknown; baseDir: string; source: string }>;

interface Ready {
  /** The state directory by the path it resolved to when claimed, never through a link again. */
  stateDir: string;
  url: string;
  console: boolean;
  nodeId: string;
  agent?: { id: string; name: string; status: string };
  /** The console's administrator (made now when it has a password); null when no login can be one (NO_ADMINISTRATOR). */
  admin: { username: string; password?: string } | null;
}

/** Starts everything, reports it, runs until SIGINT or SIGTERM, stops. Resolves with the exit code. */
export async function up(options: UpOptions): Promise<number> {
  const started = performance.now();
  const progress = new Progress(process.stderr);
  let starting = true;
  // Listening from the start: a signal that arrives while starting stops everything once it has started, never half-way.
  // Said at once: starting takes seconds, and a Ctrl-C that seemed ignored is pressed again.
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    const stopping = (signal: NodeJS.Signals): void => {
      if (starting) progress.note(`${signal}: stopping once what is starting has started`);
      resolve(signal);
    };
    process.once('SIGINT', () => stopping('SIGINT'));
    process.once('SIGTERM', () => stopping('SIGTERM'));
  });
  const running: Running = {};
  const ready = await start(options, progress, running);
  starting = false;
  const claimed = { ...options, stateDir: ready.stateDir };
  const readyMs = Math.round(performance.now() - started);
  report(ready, claimed, readyMs, running.gateway!.url);
  progress.note(`ready in ${readyMs} ms${ready.agent ? `; agent ${ready.agent.name} (${INVOICE_INTAKE.process})` : ''} on node ${shownNodeId(ready.nodeId)}; the gateway's log is ${join(ready.stateDir, GATEWAY_LOG_FILE)}; Ctrl-C stops`);

  // OpenClaw takes its time to start; a signal meanwhile stops everything without waiting for it.
  let abandoned = false;
  if (options.openclaw) {
    const claw = progress.step('OpenClaw in a Corral container', () => startContainedOpenClaw(claimed, running), (c) => `ready in ${c.readyMs} ms`);
    const first = await Promise.race([claw.then((c) => ({ claw: c }), (error: unknown) => ({ error })), stopSignal.then(() => undefined)]);
    if (first && 'error' in first) {
      await stop(running).catch(() => undefined);
      throw first.error;
    }
    abandoned = first === undefined;
    if (first) {
      if (options.json) printJson({ openclaw: { url: first.claw.url, readyMs: first.claw.readyMs, node: first.claw.node.device.deviceId } });
      else process.stdout.write(`OpenClaw: ${first.claw.url} (its exec tool runs on a Corral node governed here; its gateway was ready in ${first.claw.readyMs} ms)\n`);
    }
  }

  const signal = await stopSignal;
  // A second signal while stopping: stop waiting.
  const force = (): never => process.exit(EXIT.failed);
  process.once('SIGINT', force);
  process.once('SIGTERM', force);
  progress.note(`${signal}: stopping`);
  const sealed = await stop(running, signal);
  progress.note(sealed ? `stopped; audit checkpoint sealed at ${sealed.size} records` : 'stopped');
  // An OpenClaw start cut short still holds its container process (which dies with this one): leave now rather than wait for it.
  if (abandoned) process.exit(exitCode());
  return exitCode();
}

/**
 * How a clean stop exits: 0, unless a failure was already set while running
 * (3: the admin password, shown only once, did not reach standard output).
 */
function exitCode(): number {
  return typeof process.exitCode === 'number' && process.exitCode !== EXIT.ok ? process.exitCode : EXIT.ok;
}

/**
 * Checks what can be checked before creating anything (the state directory
 * is writable, the port is free), then starts the parts. On a first start
 * that fails, everything it created is removed again.
 */
async function start(options: UpOptions, progress: Progress, running: Running): Promise<Ready> {
  if (options.port !== 0) await progress.step(`port ${options.bind}:${options.port} free`, () => checkPortFree(options.bind, options.port));
  const snapshot = await progress.step(`state directory ${options.stateDir}`, () => {
    const claimed = claimStateDir(options.stateDir);
    // Part of this step: another corral up running on it fails the step, not one said ok.
    running.release = lockStateDir(claimed.dir);
    return claimed;
  });
  // From here on by the path it resolved to: a link in the path given, whoever may write beside it could point elsewhere since.
  const dir = snapshot.dir;
  const fresh = readMarker(dir) === undefined;
  try {
    if (fresh) await progress.step(`example process ${INVOICE_INTAKE.process}`, () => installExampleFiles(dir));
    const { token } = gatewayToken(dir);
    const consoleDir = options.console ? await findConsole() : undefined;
    // Independent parts start side by side: the gateway, the audit log `corral up` writes to, the node's sandbox runner and policies.
    const [gateway, audit, sandbox] = await allStarted([
      progress.step('gateway', () => startGateway(dir, options, token, consoleDir), (g) => g.url).then((g) => (running.gateway = g)),
      import('@corral/audit').then(({ openAuditLog }) => openAuditLog({ stateDir: dir })).then((a) => (running.audit = a)),
      progress.step('sandbox runner', () => prepareSandbox(dir)).then((s) => ((running.runner = s.runner), (running.containerPolicies = s.containerPolicies), s)),
    ] as const);
    running.pairing = new AutoPairing(gateway, audit);
    const agent = fresh ? ensureExampleAgent(gateway.identity) : gateway.identity.agents.find(INVOICE_INTAKE.agent.name);
    // Hashing the admin password (scrypt) runs off the main thread while the node connects.
    const [admin, host] = await allStarted([
      progress.step('admin login', () => ensureAdmin(gateway.identity), (a) => (a === null ? 'none holds the admin role' : a.password ? 'created' : 'kept')),
      progress.step('node paired and connected', () => connectNode(gateway, token, sandbox, dir, running), (h) => shownNodeId(h.device.deviceId)),
    ] as const);
    if (fresh) {
      await audit.append({ actor: UP_ACTOR, action: 'corral.up.init', resource: { kind: 'state', id: dir }, outcome: { status: 'success' }, details: { admin: admin?.username ?? null, ...(agent ? { agent: agent.id } : {}), process: INVOICE_INTAKE.process, policies: join(dir, POLICIES_DIR) } });
    }
    const url = `${onLoopback(gateway.httpUrl)}/`;
    await progress.step(consoleDir ? 'console answers' : 'HTTP API answers', () => answers(url));
    if (fresh) writeMarker(dir, { createdAt: new Date().toISOString(), example: INVOICE_INTAKE.process });
    await audit.append({ actor: UP_ACTOR, action: 'corral.up.start', resource: { kind: 'gateway', id: gateway.url }, node: host.device.deviceId, outcome: { status: 'success' }, details: { console: consoleDir !== undefined } });
    return { stateDir: dir, url, console: consoleDir !== undefined, nodeId: host.device.deviceId, admin, ...(agent ? { agent: { id: agent.id, name: agent.name, status: agent.status } } : {}) };
  } catch (error) {
    await stop(running).catch(() => undefined);
    // Only a start that held the state directory removes what it created; another `corral up` may be creating it.
    if (fresh && running.release) snapshot.rollback();
    throw await translate(error, { ...options, stateDir: dir });
  }
}

/** Where `corral up` keeps the gateway's log (its stderr shows progress): JSON lines, appended to at every start. */
const GATEWAY_LOG_FILE = 'gateway.log';

async function startGateway(dir: string, options: UpOptions, token: string, consoleDir: string | undefined): Promise<Gateway> {
  const { Gateway, tracingFromEnv } = await import('@corral/gateway');
  const log = gatewayLog(fileDestination(join(dir, GATEWAY_LOG_FILE)));
  try {
    // Traces go to a collector when the standard OTEL_* variables say so (one not well formed: exit 2, naming it).
    const tracing = tracingFromEnv(process.env);
    // A scraper reads GET /metrics with the scrape token (`corral gateway metrics-token`), never the gateway's own.
    return await Gateway.start({ stateDir: dir, token, metricsToken: metricsToken(dir).token, host: options.bind, port: options.port, ...(consoleDir ? { consoleDir } : {}), ...(options.oidc ? { oidc: options.oidc } : {}), ...(tracing ? { tracing } : {}), ...options.reverseProxy, log });
  } catch (error) {
    throw optionRefusal(error) ?? error;
  }
}

/** The sandbox runner and each agent's container policy (from its profile), read before the node connects. */
async function prepareSandbox(dir: string): Promise<{ runner: Runner; containerPolicies: ContainerPolicies }> {
  const { loadPolicyFile, Runner } = await import('@corral/contain');
  const containerPolicies: ContainerPolicies = {};
  for (const profile of readProfiles(dir)) {
    const loaded = await loadPolicyFile(profile.policyFile, dirname(profile.policyFile));
    containerPolicies[profile.agent] = { policy: loaded.policy, baseDir: loaded.baseDir, source: loaded.source };
  }
  return { runner: new Runner(), containerPolicies };
}

/**
 * Starts this machine's node and waits until it is connected. The first time,
 * the gateway holds it as a pending pairing request; `corral up` pairs it
 * (it is this machine) and records that in the audit log. A node an operator
 * unpaired stays unpaired.
 */
async function connectNode(gateway: Gateway, token: string, sandbox: { runner: Runner; containerPolicies: ContainerPolicies }, dir: string, running: Running): Promise<NodeHost> {
  const { NodeHost } = await import('@corral/node');
  let refused: string | undefined;
  const host = new NodeHost({
    gateway: onLoopback(gateway.url),
    token,
    name: hostname(),
    stateDir: join(dir, NODE_STATE),
    // Its sandboxes see none of Corral's state, only the process workspaces their policies grant.
    hiddenState: hiddenState(dir),
    runner: sandbox.runner,
    containerPolicies: sandbox.containerPolicies,
    maxBackoffMs: 2_000,
    onStatus: (s) => {
      if (s.state === 'refused') refused = s.detail;
    },
  });
  running.host = host;
  if (gateway.identity.nodes.find(host.device.deviceId)?.status === 'revoked') {
    throw new CliFailure(`this machine's node ${shownNodeId(host.device.deviceId)} was unpaired by an operator; to pair a new one, remove ${join(dir, NODE_STATE, 'node-device.json')} and run corral up again`, EXIT.environment);
  }
  const paired = running.pairing!.pair(host.device.deviceId, 'the node of the machine corral up runs on');
  // Awaited once the node has started; a failure before then is that await's.
  paired.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CliFailure(`the node did not connect to the gateway within ${NODE_READY_TIMEOUT_MS / 1000} s${refused ? ` (refused: ${refused})` : ''}`, EXIT.environment)), NODE_READY_TIMEOUT_MS);
  });
  try {
    await Promise.race([host.start(), timeout]);
    await Promise.race([paired, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return host;
}

/**
 * Upstream OpenClaw in a Corral container, its exec tool bound to a Corral
 * node that asks this gateway before every command; its default agent acts
 * as the example's agent. A model on this machine's loopback is reached
 * under a name its container's egress proxy resolves.
 */
async function startContainedOpenClaw(options: UpOptions, running: Running): Promise<OpenClaw> {
  const { startOpenClaw } = await import('./openclaw.ts');
  const gateway = running.gateway!;
  const model = options.openclaw?.modelUrl ? new URL(options.openclaw.modelUrl) : undefined;
  const loopback = model !== undefined && ['127.0.0.1', 'localhost', '[::1]'].includes(model.hostname);
  const modelBaseUrl = model && loopback ? options.openclaw!.modelUrl!.replace(model.hostname, LOOPBACK_MODEL_HOST) : options.openclaw?.modelUrl;
  running.openclaw = await startOpenClaw({
    stateDir: options.stateDir,
    corralGatewayUrl: onLoopback(gateway.url),
    token: gatewayToken(options.stateDir).token,
    nodeName: `${hostname()}-openclaw`,
    agentMap: OPENCLAW_AGENT_MAP,
    ...(running.containerPolicies ? { containerPolicies: running.containerPolicies } : {}),
    ...(modelBaseUrl ? { modelBaseUrl } : {}),
    ...(options.openclaw?.model ? { modelId: options.openclaw.model } : {}),
    ...(loopback ? { egressHosts: { [LOOPBACK_MODEL_HOST]: model.hostname === 'localhost' ? '127.0.0.1' : model.hostname.replace(/^\[|\]$/g, '') } } : {}),
    pairOnControlPlane: (deviceId, agents) => running.pairing!.pair(deviceId, 'the Corral node that serves OpenClaw, started by corral up --openclaw', agents),
  });
  return running.openclaw;
}

/** Like Promise.all, but waits for every part to settle, so that a part that started after another failed is stopped too. */
async function allStarted<T extends readonly unknown[]>(parts: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(parts);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}

/** A URL of a listener bound to every address (0.0.0.0, ::), as this machine reaches it: on loopback. */
function onLoopback(url: string): string {
  return url.replace('//0.0.0.0:', '//127.0.0.1:').replace('//[::]:', '//[::1]:');
}

/** Resolves once `url` answers HTTP at all (any status): the listener is up and serving. node:http, not fetch: fetch would load undici for this one request. */
function answers(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = get(url, { timeout: 5_000 }, (response) => {
      response.resume();
      resolve();
    });
    request.once('timeout', () => request.destroy(new CliFailure(`${url} did not answer within 5 s`, EXIT.environment)));
    request.once('error', reject);
  });
}

/** Stops what runs, in reverse order; the gateway's close seals its checkpoint, then `corral up`'s own record seals the last one. */
async function stop(running: Running, signal?: NodeJS.Signals): Promise<SignedCheckpoint | null> {
  const url = running.gateway?.url ?? '';
  await running.openclaw?.close();
  await running.host?.close();
  await running.gateway?.close();
  await running.runner?.close();
  const audit = running.audit;
  try {
    if (!audit) return null;
    if (signal) await audit.append({ actor: UP_ACTOR, action: 'corral.up.stop', resource: { kind: 'gateway', id: url }, outcome: { status: 'success' }, details: { signal } });
    return await audit.checkpoint();
  } finally {
    await audit?.close();
    running.release?.();
  }
}

/** The user-facing failure for what went wrong while starting. */
async function translate(error: unknown, options: UpOptions): Promise<unknown> {
  if (error instanceof CliFailure) return error;
  const port = portFailure(options.bind, options.port, (error as { cause?: unknown }).cause ?? error);
  if (port) return port;
  const policies = await policiesRefusal(error, join(options.stateDir, POLICIES_DIR), 'corral up');
  if (policies) return policies;
  const coded = error as { code?: string; message?: string };
  if (coded.code?.startsWith('CONTAIN_POLICY')) return new CliFailure(`an agent's container policy does not load: ${coded.message}\nfix it and run corral up again`, EXIT.usage);
  return error;
}

/** The admin password, as named should it not reach standard output: only its hash is kept, so the way to a new one goes with it. */
const LOST_PASSWORD = `the admin password (corral users passwd ${ADMIN_USERNAME} sets a new one)`;

function report(ready: Ready, options: UpOptions, readyMs: number, gatewayUrl: string): void {
  if (ready.admin === null) process.stderr.write(`corral: ${NO_ADMINISTRATOR}\n`);
  if (options.json) {
    const document = { url: ready.url, gateway: gatewayUrl, stateDir: options.stateDir, console: ready.console, node: { deviceId: ready.nodeId }, agent: ready.agent ?? null, admin: ready.admin, readyMs };
    // It holds the password, shown only this once: a reader gone before it arrives is said, and the exit is 3.
    if (ready.admin?.password) printSecret(LOST_PASSWORD, `${JSON.stringify(document, null, 2)}\n`);
    else printJson(document);
    return;
  }
  process.stdout.write(`${ready.url}\n`);
  if (!ready.console) process.stdout.write(options.console ? '(no console build: this URL serves the HTTP API only; `npm start` builds the console)\n' : '(--no-console: this URL serves the HTTP API only)\n');
  if (ready.admin === null) return;
  if (ready.admin.password) {
    printSecret(
      LOST_PASSWORD,
      `sign in as ${ready.admin.username} with password: ${ready.admin.password}\nKeep this password: it is shown only this once and stored only as a hash. To set a new one: corral users passwd ${ready.admin.username}\n`,
    );
  } else {
    // The login kept as the administrator: admin, or another holding the admin role once admin was removed or lost it.
    const { username } = ready.admin;
    const which = username === ADMIN_USERNAME ? 'its password was shown at the first start' : 'it holds the admin role';
    process.stdout.write(`sign in as ${username} (${which}; to set a new password: corral users passwd ${username})\n`);
  }
}
