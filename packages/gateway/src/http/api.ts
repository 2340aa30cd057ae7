// The gateway's HTTP API beside the WebSocket (docs/http-api.md): the JSON
// routes under /api/, each behind authentication and a role check, the
// Prometheus metrics at /metrics, and the web console's static files at /. Every failure answers generically with
// the coded cause kept for the log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.ts';
import { hostAllowed } from '../server/addressed.ts';
import type { GatewayLogEntry } from '../server/server.ts';
import { ThrottledLog } from '../server/throttled-log.ts';
import { agentRoutes, registerStopReports } from './agents.ts';
import { activityRoutes } from './activity.ts';
import { approvalRoutes } from './approvals.ts';
import { auditRoutes } from './audit.ts';
import { METRICS_PATH, sendMetrics, type MetricsEndpoint } from '../metrics/scrape.ts';
import { authenticate, authenticateScrape, type Caller } from './auth.ts';
import { readJson } from './body.ts';
import type { ApiContext } from './context.ts';
import { errorCode, errorReply } from './error-reply.ts';
import { nodeRoutes } from './nodes.ts';
import { policyRoutes } from './policies.ts';
import { failure, send, type Reply } from './respond.ts';
import { Router } from './router.ts';
import { sessionRoutes } from './session.ts';
import { RunningCommands } from './running.ts';
import { statusRoutes } from './status.ts';
import type { ConsoleFiles } from './static.ts';

/** Every route group, in one router. */
function apiRouter(api: ApiContext): Router {
  const running = new RunningCommands(api.feed);
  return new Router().add([...sessionRoutes(api), ...statusRoutes(api), ...activityRoutes(api), ...approvalRoutes(api), ...auditRoutes(api), ...agentRoutes(api, running), ...nodeRoutes(api), ...policyRoutes(api)]);
}

export class HttpApi {
  readonly #console: ConsoleFiles | undefined;
  readonly #log: (entry: GatewayLogEntry) => void;
  readonly #metrics: MetricsEndpoint | undefined;
  /**
   * Lines refused and failed requests may write, for all HTTP requests
   * together (a flood comes over as many connections and addresses as it
   * likes): any web page open on this host can have the browser send request
   * after request to be refused (a no-cors fetch needs no preflight).
   */
  readonly #lines: ThrottledLog;
  #api: ApiContext | undefined;
  #router: Router | undefined;

  constructor(options: { console?: ConsoleFiles; log?: (entry: GatewayLogEntry) => void; metrics?: MetricsEndpoint }) {
    this.#console = options.console;
    this.#metrics = options.metrics;
    this.#log = options.log ?? (() => {});
    this.#lines = new ThrottledLog(this.#log, () => performance.now());
  }

  /** Serves the API from now on (until then it answers 503). */
  attach(parts: Omit<ApiContext, 'log'>): void {
    const api: ApiContext = { ...parts, log: (entry) => this.#logRequest(entry) };
    this.#api = api;
    this.#router = apiRouter(api);
    registerStopReports(api);
    if (api.audit) void api.feed.follow(api.audit.store).catch(() => {});
  }

  get router(): Router | undefined {
    return this.#router;
  }

  readonly handle = (request: IncomingMessage, response: ServerResponse): void => {
    void this.#handle(request, response).catch((error) => {
      this.#logRequest({ event: 'handler-failed', connId: 'http', code: errorCode(error) });
      send(response, failure(500, 'internal_error'));
    });
  };

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(request.url ?? '/', 'http://gateway');
    } catch {
      return send(response, failure(400, 'invalid_request', { message: 'the request target is not a URL path' }));
    }
    if (url.pathname === METRICS_PATH && this.#metrics) return this.#scrape(request, response, this.#metrics);
    if (url.pathname !== '/api' && !url.pathname.startsWith('/api/')) {
      if (this.#console) return this.#console.serve(request, response, url.pathname);
      return send(response, failure(426, 'upgrade_required'));
    }
    const api = this.#api;
    const router = this.#router;
    if (!api || !router) return send(response, failure(503, 'unavailable'));
    if (!hostAllowed(request.socket.localAddress, request.headers.host, api.publicUrl)) return send(response, failure(421, 'misdirected_request'));
    const match = router.match(request.method ?? 'GET', url.pathname);
    if (!match) return send(response, failure(404, 'not_found'));
    if ('allow' in match) return send(response, { ...failure(405, 'method_not_allowed'), headers: { allow: match.allow.join(', ') } });
    const { route, params } = match;
    let caller: Caller | undefined;
    const queryKey = route.keyInQuery ? (url.searchParams.get('csrf') ?? undefined) : undefined;
    const authorize = () => authenticate(request, route.access === 'signed-in' || route.access === 'public' ? undefined : route.access, api.sessions, api.cookies.session, api.token, queryKey);
    if (route.access !== 'public') {
      const who = authorize();
      if ('status' in who) return this.#refuse(api, request, response, who);
      caller = who;
    }
    let body: Promise<Record<string, unknown>> | undefined;
    try {
      // The caller was let in as the headers arrived; the body may come up to the request timeout later, and a session
      // ended meanwhile (its login demoted, its password set, signed out) must not act once it is in.
      const stillAllowed = () => {
        if (caller && 'status' in authorize()) throw new GatewayError('GATEWAY_SESSION_ENDED', 'the session ended before the request was done: sign in again');
      };
      const read = async () => {
        const value = await readJson(request, route.bodyLimit, route.bodyRequired);
        stillAllowed();
        return value;
      };
      const answer = await route.handle({ request, response, url, params, caller, body: () => (body ??= read()), stillAllowed });
      if (answer) send(response, answer);
    } catch (error) {
      const { reply, unexpected } = errorReply(error);
      if (unexpected) this.#logRequest({ event: 'handler-failed', connId: 'http', code: errorCode(error) });
      send(response, reply);
    }
  }

  /** GET /metrics: the same host check and refusals as the API; the scrape token is good here alone. */
  async #scrape(request: IncomingMessage, response: ServerResponse, endpoint: MetricsEndpoint): Promise<void> {
    const api = this.#api;
    if (!api) return send(response, failure(503, 'unavailable'));
    if (!hostAllowed(request.socket.localAddress, request.headers.host, api.publicUrl)) return send(response, failure(421, 'misdirected_request'));
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, { ...failure(405, 'method_not_allowed'), headers: { allow: 'GET, HEAD' } });
    const refusal = authenticateScrape(request, endpoint.scrapeToken, api.sessions, api.cookies.session, api.token);
    if (refusal) return this.#refuse(api, request, response, refusal);
    await sendMetrics(request, response, endpoint.metrics);
  }

  /** Sends a refusal of the caller's credentials, logged by its code within the budget. */
  #refuse(api: ApiContext, request: IncomingMessage, response: ServerResponse, refusal: Reply): void {
    this.#logRequest({ event: 'refused', connId: 'http', code: `http_${(refusal.body as { error: string }).error}`, remoteAddress: api.clientAddresses.of(request) });
    send(response, refusal);
  }

  /** Logs a refused or failed request within the budget (ThrottledLog). */
  #logRequest(entry: GatewayLogEntry): void {
    this.#lines.line(entry);
  }
}

