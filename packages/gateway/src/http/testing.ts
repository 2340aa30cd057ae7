// Test support for the HTTP API's tests: a real gateway in a temporary state
// directory, local users in it, and a small client that keeps a session's
// cookie and key (the CSRF value) and sends both on every request, the way the console does.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CorralRole } from '@corral/identity';
import { Gateway, type GatewayOptions } from '../gateway.ts';
import { signInAtIssuer } from '../../../../scripts/testing/oidc-browser.ts';

export const TEST_PASSWORD = 'a password for tests';

/** A cases text of one case: the operator may run `echo hi` (allowed). */
export const ECHO_CASES = `cases:
  - name: operator may echo
    principal: { type: Human, id: operator }
    action: system.run
    resource: { type: Command, id: echo }
    context: { argv: [echo, hi] }
    expect: allow
`;

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export class ApiClient {
  readonly base: string;
  cookie: string | undefined;
  csrf: string | undefined;
  bearer: string | undefined;

  constructor(base: string, auth: { bearer?: string } = {}) {
    this.base = base;
    this.bearer = auth.bearer;
  }

  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.cookie ? { cookie: this.cookie } : {}),
        ...(this.csrf ? { 'x-corral-csrf': this.csrf } : {}),
        ...(this.bearer ? { authorization: `Bearer ${this.bearer}` } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed };
  }

  get = (path: string, headers?: Record<string, string>) => this.call('GET', path, undefined, headers);
  post = (path: string, body: unknown = {}, headers?: Record<string, string>) => this.call('POST', path, body, headers);

  /** Signs in with a local user's password; keeps the cookie and the CSRF value. */
  async signIn(username: string, password = TEST_PASSWORD): Promise<Answer> {
    const answer = await this.post('/api/session', { username, password });
    const set = answer.headers.getSetCookie().find((c) => c.startsWith('corral_session='));
    if (set) this.cookie = set.split(';')[0];
    if (answer.status === 200) this.csrf = answer.body.csrf;
    return answer;
  }
}

export interface TestGateway {
  gw: Gateway;
  state: string;
  token: string;
  /** A client with no credentials. */
  anonymous(): ApiClient;
  /** A client with the gateway token. */
  tool(): ApiClient;
  /** A client signed in as this user (created with these roles on first use). */
  as(username: string, roles: CorralRole[]): Promise<ApiClient>;
  close(): Promise<void>;
}

export async function startTestGateway(options: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  const state = options.stateDir ?? mkdtempSync(join(tmpdir(), 'corral-http-'));
  const token = randomBytes(24).toString('base64url');
  const gw = await Gateway.start({ stateDir: state, token, port: 0, ...options });
  const base = gw.httpUrl;
  return {
    gw,
    state,
    token,
    anonymous: () => new ApiClient(base),
    tool: () => new ApiClient(base, { bearer: token }),
    async as(username, roles) {
      if (!gw.identity.localUsers.list().some((u) => u.username === username)) await gw.identity.localUsers.create(username, TEST_PASSWORD, roles);
      const client = new ApiClient(base);
      const answer = await client.signIn(username);
      assert.equal(answer.status, 200, `sign-in as ${username}`);
      return client;
    },
    async close() {
      await gw.close();
      if (!options.stateDir) rmSync(state, { recursive: true, force: true });
    },
  };
}

/**
 * `subject` signs in to the console through the gateway's OpenID Connect
 * issuer, as a browser does (its console's key, the binding cookie, code and
 * PKCE at the issuer): where the callback sent the browser, and a client with
 * the session it made, if any.
 */
export async function signInThroughIssuer(t: TestGateway, subject: string): Promise<{ location: string; browser: ApiClient }> {
  const browser = t.anonymous();
  const key = randomBytes(32).toString('base64url');
  const start = await browser.get(`/api/auth/oidc/start?key=${key}`);
  const binding = start.headers.getSetCookie()[0]!.split(';')[0]!;
  const callback = await signInAtIssuer(start.headers.get('location')!, subject, (target) => target.includes('/api/auth/oidc/callback'));
  const back = await fetch(callback, { redirect: 'manual', headers: { cookie: binding } });
  const location = back.headers.get('location')!;
  browser.cookie = back.headers.getSetCookie().find((c) => c.startsWith('corral_session='))?.split(';')[0];
  browser.csrf = `${key}.${/^\/#signin=(.+)$/.exec(location)?.[1]}`;
  return { location, browser };
}

/** Every event in the state directory's audit log, oldest first. */
export { auditEvents } from '../../../../scripts/testing/audit-events.ts';
