// A tiny router: exact segments and `:name` parameters, one route per method
// and pattern, and the permission each route needs (checked before its handler runs).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller } from './auth.ts';
import type { Permission } from './roles.ts';
import type { Reply } from './respond.ts';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RequestContext {
  request: IncomingMessage;
  response: ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** Undefined only on public routes. */
  caller: Caller | undefined;
  /** The body as a JSON object, read once with the route's size limit; throws GATEWAY_SESSION_ENDED as `stillAllowed` does once it is in. */
  body: () => Promise<Record<string, unknown>>;
  /**
   * Throws GATEWAY_SESSION_ENDED when the caller's session ended since the
   * request was let in (its login changed or removed, signed out): a handler
   * calls it before a change it makes after a wait of seconds.
   */
  stillAllowed: () => void;
}

export interface Route {
  method: Method;
  /** `/api/agents/:name/suspend` */
  path: string;
  /** `public` routes need no credentials, `signed-in` any caller; others a caller whose roles grant this. */
  access: Permission | 'public' | 'signed-in';
  /** Takes the session key from `?csrf=` too: an EventSource cannot send headers. */
  keyInQuery?: boolean;
  /** Body limit in bytes (default MAX_BODY_BYTES). */
  bodyLimit?: number;
  /** Refuses a request without a body (else it reads as `{}`): one any page could send must not count (a failed sign-in). */
  bodyRequired?: boolean;
  /** A Reply to send, or nothing when the handler answered itself (an event stream, a redirect it wrote). */
  handle: (context: RequestContext) => Promise<Reply | void> | Reply | void;
}

/** The route and its parameters; for a path no route of this method takes, the methods that do (`allow`); undefined for an unknown path. */
export type Match = { route: Route; params: Record<string, string> } | { allow: string[] } | undefined;

export class Router {
  readonly #routes: Array<{ route: Route; segments: string[] }> = [];

  add(routes: readonly Route[]): this {
    for (const route of routes) this.#routes.push({ route, segments: route.path.split('/').filter(Boolean) });
    return this;
  }

  /** Every route, for tests that walk them all. */
  get routes(): readonly Route[] {
    return this.#routes.map((r) => r.route);
  }

  match(method: string, pathname: string): Match {
    const parts = pathname.split('/').filter(Boolean);
    // A path several patterns match (`/api/audit/verify` and `/api/audit/:seq`) names each method once.
    const allow = new Set<string>();
    for (const { route, segments } of this.#routes) {
      const params = matchSegments(segments, parts);
      if (!params) continue;
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params };
      for (const m of route.method === 'GET' ? ['GET', 'HEAD'] : [route.method]) allow.add(m);
    }
    return allow.size > 0 ? { allow: [...allow] } : undefined;
  }
}

function matchSegments(segments: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const want = segments[i]!;
    const got = parts[i]!;
    if (want.startsWith(':')) {
      let value: string;
      try {
        value = decodeURIComponent(got);
      } catch {
        return undefined;
      }
      if (value === '' || value.length > 200) return undefined;
      params[want.slice(1)] = value;
    } else if (want !== got) {
      return undefined;
    }
  }
  return params;
}
