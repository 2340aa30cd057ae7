// Single sign-on for the console: OpenID Connect authorization code + PKCE
// through @corral/identity's OidcClient. The login in progress is kept here
// by its `state` for ten minutes and bound to the browser that started it by
// a short-lived cookie (SameSite=Lax: the issuer's redirect back is a
// cross-site navigation that a Strict cookie would not survive), and to the
// key the start was given. Neither binds it to the console: another port of
// the host can plant the cookie and start with a key of its own, so the
// session's key also has a half the callback sends only in a fragment (session.ts).
import { IdentityError, OidcClient, type OidcSettings, type PendingLogin, type HumanIdentity } from '@corral/identity';

export const OIDC_COOKIE = 'corral_oidc';
export const LOGIN_TTL_MS = 10 * 60_000;
const MAX_PENDING = 1000;

/** OIDC settings for the console, with the name its sign-in button shows. */
export interface ConsoleOidcSettings extends OidcSettings {
  /** Shown on the sign-in page ("Sign in with …"). Default "single sign-on". */
  name?: string;
}

export class OidcSignIn {
  readonly settings: ConsoleOidcSettings;
  readonly #pending = new Map<string, { login: PendingLogin; key: string; startedAtMs: number }>();
  readonly #now: () => number;
  #client: Promise<OidcClient> | undefined;

  constructor(settings: ConsoleOidcSettings, now: () => number = Date.now) {
    this.settings = settings;
    this.#now = now;
  }

  get name(): string {
    return this.settings.name ?? 'single sign-on';
  }

  /** Discovers the issuer (once; a failure is retried next time). Throws IDENTITY_OIDC_DISCOVERY_FAILED, IDENTITY_CONFIG_MISSING. */
  client(): Promise<OidcClient> {
    if (!this.#client) {
      const { name: _name, ...settings } = this.settings;
      const discovering = OidcClient.discover(settings);
      this.#client = discovering;
      discovering.catch(() => this.#client === discovering && (this.#client = undefined));
    }
    return this.#client;
  }

  /** A fresh login for the console that made `key` (its session's key): the URL to send the browser to and the state its cookie binds. */
  async start(key: string): Promise<PendingLogin> {
    const login = (await this.client()).startLogin();
    this.#sweep();
    if (this.#pending.size >= MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value!);
    this.#pending.set(login.state, { login, key, startedAtMs: this.#now() });
    return login;
  }

  /**
   * Completes the login the callback names, once. `boundState` is the state
   * from the browser's cookie; it must be the callback's. Answers the human
   * and the key start() was given. Throws IDENTITY_OIDC_STATE_MISMATCH and the finishLogin codes.
   */
  async finish(callbackUrl: string, boundState: string | undefined): Promise<{ human: HumanIdentity; key: string }> {
    const state = new URL(callbackUrl).searchParams.get('state') ?? '';
    const entry = this.#pending.get(state);
    this.#pending.delete(state);
    if (!entry || this.#now() - entry.startedAtMs > LOGIN_TTL_MS || boundState !== state) throw new IdentityError('IDENTITY_OIDC_STATE_MISMATCH', 'the callback is not for a login this browser started');
    return { human: await (await this.client()).finishLogin(callbackUrl, entry.login), key: entry.key };
  }

  #sweep(): void {
    const now = this.#now();
    for (const [state, entry] of this.#pending) if (now - entry.startedAtMs > LOGIN_TTL_MS) this.#pending.delete(state);
  }
}
