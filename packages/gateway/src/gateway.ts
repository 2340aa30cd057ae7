// Corral's control plane on one machine: the protocol server, the node
// inventory, the governed node-command path with its approvals, the policy
// decision point and the audit log, with their state in the state directory.
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { openAuditLog, type AuditLog, type AuditEventInput } from '@corral/audit';
import { Identity, IdentityError, checkOidcSettings, type Agent } from '@corral/identity';
import type { Decider } from '@corral/policy';
import { ApprovalStore } from './approvals/store.ts';
import { GatewayError } from './errors.ts';
import { HttpApi } from './http/api.ts';
import { ClientAddresses, TrustedProxies } from './http/client-address.ts';
import { ConsoleCookies } from './http/cookies.ts';
import { AuditFeed } from './http/feed.ts';
import { OidcSignIn, type ConsoleOidcSettings } from './http/oidc-sign-in.ts';
import { PolicyControl, RECORDED_POLICY_FILES, type PolicyLogEntry } from './http/policy-control.ts';
import { watchIdentityEntities } from './http/identity-entities.ts';
import { checkRedirectAtPublicUrl, parsePublicUrl } from './http/public-url.ts';
import { Sessions, type Session } from './http/sessions.ts';
import { ConsoleFiles } from './http/static.ts';
import { deviceCredential, SignInThrottle } from './http/throttle.ts';
import { PolicyGrants } from './approvals/grants.ts';
import { ReceiptSigner } from './approvals/receipt.ts';
import { DeviceTokens } from './server/device-tokens.ts';
import { NodeInvoker, type InvokerOptions } from './exec/invoke.ts';
import { OpenRuns } from './exec/open-runs.ts';
import { NodeInventory } from './nodes/inventory.ts';
import { CLOSE } from './protocol/limits.ts';
import { GatewayMetrics } from './metrics/gateway-metrics.ts';
import { GatewayServer, peerKind, type GatewayLogEntry, type GatewayServerOptions } from './server/server.ts';
import { SurfaceStore, openGatewayDb } from './store/store.ts';
import { wellFormed } from './well-formed.ts';
import { GATEWAY_BUSY_TIMEOUT_MS, setBusyTimeout } from './store/write-lock.ts';
import type { TraceLogEntry } from './traces/export-warnings.ts';
import type { Tracing } from './traces/otlp-tracing.ts';
import type { TracingConfig } from './traces/tracing-config.ts';

// clientAddresses is made from trustedProxies.
export interface GatewayOptions extends Omit<GatewayServerOptions, 'identity' | 'log' | 'clientAddresses' | 'onRefusal'> {
  /** Where identity.db, gateway.db, the audit log and `policies/` live. */
  stateDir: string;
  /** Cedar policies (default STATE_DIR/policies; an `entities.json` beside them is loaded too). No policies: every governed command is denied. */
  policyDir?: string;
  /** A decision point instead of a policy directory (tests, embedding). */
  decider?: Decider;
  /**
   * Append to the state directory's audit log (default true), or to this log,
   * opened by the caller (PostgreSQL, a log shared with the rest of an
   * application), which also closes it.
   */
  audit?: boolean | AuditLog;
  approvalTtlMs?: number;
  approvalPollMs?: number;
  operatorPrincipal?: InvokerOptions['operatorPrincipal'];
  /** The web console's built files (index.html beside its assets), served at `/` with the HTTP API. */
  consoleDir?: string;
  /** OpenID Connect single sign-on for the console (authorization code + PKCE); local users sign in either way. */
  oidc?: ConsoleOidcSettings;
  /**
   * Where people reach the gateway through the operator's TLS-terminating
   * reverse proxy: `https://corral.example.com` (`http://` only for a loopback
   * host; no user, path, query or fragment). Its Host is answered besides
   * loopback names; when https, the console's cookies are Secure and the
   * session's is `__Host-corral_session`; `oidc.redirectUri` must be its
   * callback there. Throws GATEWAY_PUBLIC_URL_INVALID at start.
   */
  publicUrl?: string;
  /**
   * The reverse proxies in front of the gateway: IP addresses and blocks
   * (`10.0.0.7`, `10.0.0.0/8`, `fd00::/8`). Only for a request whose socket
   * peer is one of them is X-Forwarded-For read: the client is its rightmost
   * entry that is not a trusted proxy (the sign-in limit per address, the
   * log). Throws GATEWAY_TRUSTED_PROXY_INVALID at start.
   */
  trustedProxies?: readonly string[];
  /**
   * The scrape token: a bearer token good for GET /metrics alone (at least
   * 16 characters), so that Prometheus never holds the gateway token. Without
   * it the metrics are read with the gateway token, or by a signed-in admin or
   * auditor. Throws GATEWAY_CONFIG_INVALID at start when shorter.
   */
  metricsToken?: string;
  /**
   * Send traces of governed commands to an OpenTelemetry collector
   * (tracingFromEnv reads them from the standard OTEL_* variables); without
   * it the gateway sends none and never loads the OpenTelemetry SDK.
   */
  tracing?: TracingConfig;
  /** The gateway's log: refusals and faults of connections, requests and the policy set, with their codes; never a token, key or policy text. */
  log?: (entry: GatewayLogLine) => void;
}

/** A line of the gateway's log: its server's (connections, requests) or its policy set's (a refused hand edit, an unrecorded activation). */
export type GatewayLogLine = GatewayLogEntry | PolicyLogEntry | TraceLogEntry;

/**
 * How often the gateway looks for nodes unpaired by another process (`corral
 * nodes revoke`): their connections are closed and their runs waiting for a
 * report recorded as not reported; and for agents another process suspended
 * or retired (`corral agents suspend`): their nodes are told to stop their
 * commands, and their connections are closed.
 */
const UNPAIRED_SWEEP_MS = 2000;

export class Gateway {
  readonly server: GatewayServer;
  readonly inventory: NodeInventory;
  readonly invoker: NodeInvoker;
  readonly approvals: ApprovalStore;
  readonly identity: Identity;
  /** The HTTP API and console files (docs/http-api.md). */
  readonly http: HttpApi;
  readonly #db: DatabaseSync;
  /** The log this gateway opened, and closes. */
  readonly #audit: AuditLog | undefined;
  /** Follows records other processes append to the log, for the live activity stream. */
  readonly #feed: AuditFeed;
  /** The policy set, whose watch of its directory close() ends. */
  readonly #policies: PolicyControl | undefined;
  /** The traces sent to a collector, if asked for: close() sends what is left. */
  readonly #tracing: Tracing | undefined;
  readonly #sweep: NodeJS.Timeout;
  /** The sweep under way, if any: the next waits for it, and so does close(). */
  #sweeping: Promise<void> | undefined;
  /** The agents whose kill switch was pulled since the last sweep, by any process on the store. */
  readonly #stoppedAgents: () => Agent[];

  private constructor(parts: { server: GatewayServer; inventory: NodeInventory; invoker: NodeInvoker; approvals: ApprovalStore; identity: Identity; http: HttpApi; db: DatabaseSync; audit: AuditLog | undefined; feed: AuditFeed; policies: PolicyControl | undefined; tracing: Tracing | undefined }) {
    this.server = parts.server;
    this.inventory = parts.inventory;
    this.invoker = parts.invoker;
    this.approvals = parts.approvals;
    this.identity = parts.identity;
    this.http = parts.http;
    this.#db = parts.db;
    this.#audit = parts.audit;
    this.#feed = parts.feed;
    this.#policies = parts.policies;
    this.#tracing = parts.tracing;
    this.#stoppedAgents = this.identity.agents.watchStopped();
    try {
      this.#stoppedAgents();
    } catch {
      // A store busy now: the first sweep takes the agents as they are then.
    }
    this.#sweep = setInterval(() => void this.sweepUnpaired(), UNPAIRED_SWEEP_MS).unref();
  }

  /**
   * Cuts off nodes no longer paired and records their runs waiting for a
   * report as not reported, and stops the agents suspended or retired since
   * (done every UNPAIRED_SWEEP_MS).
   */
  sweepUnpaired(): Promise<void> {
    if (this.#sweeping) return this.#sweeping;
    const sweeping = (async () => {
      this.#cutOffStoppedAgents();
      this.inventory.cutOffUnpaired();
      await this.invoker.closeRunsOfUnpaired();
    })()
      // The identity store or the log could not be read now: the next sweep tries again.
      .catch(() => undefined)
      // Cleared once settled (a failure before the first await settles it at once, before it is even kept).
      .finally(() => {
        if (this.#sweeping === sweeping) this.#sweeping = undefined;
      });
    this.#sweeping = sweeping;
    return sweeping;
  }

  /**
   * For each agent whose kill switch was pulled since the last sweep, by this
   * gateway's API or by another process (`corral agents suspend` or `retire`
   * in a terminal, which reaches no node itself): the agent's connections
   * opened with a token of an older generation are closed, not left until
   * their next request; and while it is still suspended or retired, every
   * connected node is told to stop its commands (NodeInvoker.stopRunsOf, as
   * the API's suspend does; a node running none does nothing), but not once
   * it was resumed, whose new commands must not be stopped for it.
   */
  #cutOffStoppedAgents(): void {
    for (const agent of this.#stoppedAgents()) {
      if (agent.status !== 'active') this.invoker.stopRunsOf(agent, '');
      for (const connection of this.server.connections()) {
        const held = connection.peer?.agent;
        if (held?.id === agent.id && held.tokenGeneration < agent.tokenGeneration) connection.close(CLOSE.policyViolation, 'unauthorized');
      }
    }
  }

  /** The HTTP API's base URL (`/api/approvals`…). */
  get httpUrl(): string {
    return this.url.replace(/^ws/, 'http');
  }

  /** Opens the state and starts listening. Throws GATEWAY_CONFIG_INVALID (a token or metricsToken too short), GATEWAY_PUBLIC_URL_INVALID, GATEWAY_TRUSTED_PROXY_INVALID, identity's IDENTITY_STORE_FAILED, IDENTITY_STORE_BUSY (another process held identity.db for 5 s) (and IDENTITY_CONFIG_MISSING or IDENTITY_INPUT_INVALID for OIDC settings), policy's POLICY_SET_INVALID, audit's AUDIT_*. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    if (options.oidc) {
      // Wrong settings are refused now, naming the setting, not at someone's first sign-in.
      const { name: _name, ...settings } = options.oidc;
      checkOidcSettings(settings);
    }
    if (options.metricsToken !== undefined && options.metricsToken.length < 16) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'the metrics scrape token must be at least 16 characters');
    const publicUrl = options.publicUrl !== undefined ? parsePublicUrl(options.publicUrl) : undefined;
    if (publicUrl && options.oidc) checkRedirectAtPublicUrl(publicUrl, options.oidc.redirectUri);
    const trustedProxies = options.trustedProxies !== undefined ? TrustedProxies.parse(options.trustedProxies) : undefined;
    const identity = await openIdentity(options.stateDir, options.now);
    let policies: PolicyControl | undefined;
    let db: DatabaseSync | undefined;
    let audit: AuditLog | undefined;
    let server: GatewayServer | undefined;
    let tracing: Tracing | undefined;
    try {
      // Loaded only when asked for: a gateway without traces never imports the OpenTelemetry SDK.
      if (options.tracing) tracing = (await import('./traces/otlp-tracing.ts')).startTracing(options.tracing, options.log);
      db = openGatewayDb(options.stateDir);
      const consoleFiles = options.consoleDir !== undefined ? new ConsoleFiles(options.consoleDir) : undefined;
      // The identity store's agents and humans are composed into the set's entities, so that a policy on an agent's process applies to every agent of it.
      policies = options.decider ? undefined : PolicyControl.open(options.policyDir ?? join(options.stateDir, 'policies'), { identity: watchIdentityEntities(identity), ...(options.log ? { log: options.log } : {}) });
      const decider = options.decider ?? policies!;
      const given = typeof options.audit === 'object' ? options.audit : undefined;
      if (!given && options.audit !== false) audit = await openAuditLog({ stateDir: options.stateDir });
      const { stateDir: _s, policyDir: _p, decider: _d, audit: _a, approvalTtlMs, approvalPollMs, operatorPrincipal, consoleDir: _c, oidc, publicUrl: _u, trustedProxies: _t, metricsToken, tracing: _tracing, ...serverOptions } = options;
      const metrics = new GatewayMetrics();
      const http = new HttpApi({ ...(consoleFiles ? { console: consoleFiles } : {}), ...(options.log ? { log: options.log } : {}), metrics: { metrics, scrapeToken: metricsToken } });
      // One reading of who sent each request, for the caps on unfinished handshakes and for the HTTP API.
      const clientAddresses = new ClientAddresses(trustedProxies, options.log);
      server = await GatewayServer.start({ ...serverOptions, identity, deviceTokens: new DeviceTokens(db), http: http.handle, clientAddresses, onRefusal: metrics.protocol.refused, ...(publicUrl ? { publicAddress: publicUrl } : {}) });
      const listening = server;
      listening.on('ready', (connection) => metrics.protocol.accepted(peerKind(connection.peer!)));
      const log = given ?? audit;
      // Every record this gateway appends is also told to the live activity feed.
      const feed = new AuditFeed();
      const append = async (event: AuditEventInput) => {
        const record = await metrics.audit.append(() => log!.append(wellFormed(event)));
        feed.notify(record);
        return record;
      };
      const inventory = new NodeInventory(server, new SurfaceStore(db), { ...(options.now ? { now: options.now } : {}), ...(log ? { record: append } : {}) });
      const approvals = new ApprovalStore(db, options.now);
      // A hand edit of the policy directory is taken up as it is saved, and recorded as a change of the set (no one activated it).
      policies?.watch(
        log
          ? async (edit) =>
              void (await append({ actor: { kind: 'service', id: 'gateway' }, action: 'policy.activate', resource: { kind: 'policy-set', id: edit.hash }, details: { previous: edit.previous, editedByHand: true, fileCount: edit.files.length, files: edit.files.slice(0, RECORDED_POLICY_FILES).map((f) => f.name) } }))
          : undefined,
      );
      const invoker = new NodeInvoker(server, inventory, {
        approvals,
        openRuns: new OpenRuns(db),
        receipts: ReceiptSigner.open(db),
        ...(policies ? { grants: new PolicyGrants(policies, approvals) } : {}),
        decider,
        ...(log ? { audit: append } : {}),
        ...(approvalTtlMs ? { approvalTtlMs } : {}),
        ...(approvalPollMs ? { approvalPollMs } : {}),
        ...(operatorPrincipal ? { operatorPrincipal } : {}),
        // One call feeds the metrics and, when they are sent, the traces.
        metrics: tracing ? tracing.traced(metrics.invoke) : metrics.invoke,
      });
      metrics.watch({ approvals, identity, connections: () => listening.connections().map((connection) => peerKind(connection.peer!)) });
      // Opened and migrated (waiting up to 5 s for a corral command, as start-up may), the gateway's connection
      // keeps a short busy_timeout: no write of the running gateway waits inside SQLite (store/write-lock.ts);
      // this bounds any statement that still meets another process's lock.
      setBusyTimeout(db, GATEWAY_BUSY_TIMEOUT_MS);
      const now = options.now ?? Date.now;
      http.attach({
        token: options.token,
        stateDir: options.stateDir,
        identity,
        server,
        inventory,
        invoker,
        approvals,
        audit: log,
        record: async (event) => void (log ? await append(event) : undefined),
        feed,
        policies,
        sessions: new Sessions(now, (session) => sessionCurrent(identity, session)),
        cookies: new ConsoleCookies({ secure: publicUrl?.secure ?? false }),
        publicUrl,
        clientAddresses,
        throttle: new SignInThrottle(now, (username) => localCredential(identity, username)),
        oidc: oidc ? new OidcSignIn(oidc, now) : undefined,
        now,
      });
      const gateway = new Gateway({ server, inventory, invoker, approvals, identity, http, db, audit, feed, policies, tracing });
      // Runs of nodes unpaired while this gateway was stopped are recorded now.
      await gateway.sweepUnpaired();
      return gateway;
    } catch (error) {
      policies?.close();
      await server?.close();
      await audit?.close();
      await tracing?.close();
      db?.close();
      identity.close();
      throw error;
    }
  }

  get url(): string {
    return this.server.url;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#policies?.close();
    await this.#sweeping;
    await this.server.close();
    // The count of what nodes had dropped since their last summary is written before the log closes.
    await this.invoker.nodeAudit.flushAll();
    this.#feed.stop();
    await this.#audit?.close();
    // The last spans are sent for a moment at most (CLOSE_FLUSH_MS): a collector down never holds the shutdown.
    await this.#tracing?.close();
    this.#db.close();
    this.identity.close();
  }
}

/**
 * How long the gateway's identity statements wait for another process's lock
 * on identity.db (a `corral nodes pair` or `corral agents create` writing).
 * SQLite waits synchronously, stopping every connection, run and console
 * request the gateway serves, so the wait is short: 150 ms covers a CLI
 * command's write transaction, which lasts a few milliseconds, through ten
 * of SQLite's retries, and stays under what a person notices as a pause in
 * the console or a node as a late answer; a lock held longer is answered as
 * "busy, try again" (wire UNAVAILABLE, HTTP 503 with Retry-After) instead
 * of freezing the gateway for the CLI's 5 s on every attempt.
 */
export const IDENTITY_BUSY_TIMEOUT_MS = 150;

/** How long start-up keeps trying to open an identity store another process holds (the CLI's own wait). */
const IDENTITY_OPEN_PATIENCE_MS = 5_000;

/**
 * Opens the identity store with the gateway's short busy timeout; while
 * another process holds it, start-up tries again for IDENTITY_OPEN_PATIENCE_MS
 * (between tries the event loop is free). Throws what Identity.open throws.
 */
async function openIdentity(stateDir: string, now: (() => number) | undefined): Promise<Identity> {
  const giveUpAt = Date.now() + IDENTITY_OPEN_PATIENCE_MS;
  for (;;) {
    try {
      return Identity.open(stateDir, { busyTimeoutMs: IDENTITY_BUSY_TIMEOUT_MS, ...(now ? { now } : {}) });
    } catch (error) {
      if (!(error instanceof IdentityError) || error.code !== 'IDENTITY_STORE_BUSY' || Date.now() >= giveUpAt) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** The credential a local user's device tokens are bound to now (deviceCredential), or undefined when no user of that name can sign in. */
function localCredential(identity: Identity, username: string): string | undefined {
  try {
    return deviceCredential(identity.localUsers.get(username));
  } catch {
    return undefined;
  }
}

/**
 * Whether a session's human is still as they signed in: a local user still
 * there, unchanged since (roles, password, email address, name: its
 * generation, which every change moves on); a single sign-on person whose last
 * sign-in mapped the roles this session holds, and whose sessions no admin
 * ended since this one began.
 */
function sessionCurrent(identity: Identity, { user, createdAtMs }: Session): boolean {
  try {
    if (user.oidc) {
      const { issuer, subject } = user.oidc;
      // A later sign-in that mapped other roles shows the issuer changed their groups: a session with the old ones is over.
      const roles = identity.humans.get(issuer, subject)?.roles;
      if (roles === undefined || roles.join(' ') !== user.roles.join(' ')) return false;
      return (identity.humans.signedOutAt(issuer, subject) ?? -Infinity) < createdAtMs;
    }
    if (user.version === undefined) return true;
    // No login, not even one removed and made again under this name, has a generation another had.
    return identity.localUsers.get(user.name).generation === user.version;
  } catch {
    return false;
  }
}
