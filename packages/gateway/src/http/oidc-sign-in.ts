// Single sign-on for the console: OpenID Connect authorization code + PKCE
// through @corral/identity's OidcClient. The login in progress (its state,
// nonce, PKCE verifier and the key the start was given) travels sealed in a
// short-lived cookie (AES-256-GCM under a key this process made: SameSite=Lax,
// since the issuer's redirect back is a cross-site navigation a Strict cookie
// would not survive) that binds it to the browser that started it. The
// gateway keeps nothing per login but the states already used, so no flood of
// starts can push a person's login out. Neither the cookie nor the key binds
// the login to the console: another port of the host can plant the cookie and
// start with a key of its own, so the session's key also has a half the
// callback sends only in a fragment (session.ts).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { IdentityError, OidcClient, type OidcSettings, type PendingLogin, type HumanIdentity } from '@corral/identity';

export const OIDC_COOKIE = 'corral_oidc';
export const LOGIN_TTL_MS = 10 * 60_000;
/** Logins finished within LOGIN_TTL_MS whose state is remembered, so that a callback is taken once; past it, the oldest goes. */
export const MAX_USED = 10_000;

/** What the binding cookie carries, sealed. */
interface SealedLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  key: string;
  startedAtMs: number;
}

/** OIDC settings for the console, with the name its sign-in button shows. */
export interface ConsoleOidcSettings extends OidcSettings {
  /** Shown on the sign-in page ("Sign in with …"). Default "single sign-on". */
  name?: string;
}

export class OidcSignIn {
  readonly settings: ConsoleOidcSettings;
  /** Seals the binding cookies of this process: a restart ends the logins in progress, as it ends sessions. */
  readonly #sealKey = randomBytes(32);
  /** States of logins finished, with when they started. */
  readonly #used = new Map<string, number>();
  readonly #now: () => number;
  #client: Promise<OidcClient> | undefined;

  constructor(settings: ConsoleOidcSettings, now: () => number = Date.now) {
    this.settings = settings;
    this.#now = now;
  }

  /** How many finished logins' states are remembered now. */
  get usedCount(): number {
    return this.#used.size;
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

  /** A fresh login for the console that made `key` (its session's key): the URL to send the browser to, and the binding cookie's value. */
  async start(key: string): Promise<{ url: string; binding: string }> {
    const { url, state, nonce, codeVerifier } = (await this.client()).startLogin();
    return { url, binding: this.#seal({ state, nonce, codeVerifier, key, startedAtMs: this.#now() }) };
  }

  /**
   * Completes the login the callback names, once. `bindings` are the
   * browser's binding cookies (another port of the host may have planted
   * one beside it): one must hold this callback's state, sealed by this
   * process within LOGIN_TTL_MS. Answers the human, whose roles may be none
   * (the caller refuses them), and the key start() was given. Throws
   * IDENTITY_OIDC_STATE_MISMATCH and the verifyLogin codes.
   */
  async finish(callbackUrl: string, bindings: readonly string[]): Promise<{ human: HumanIdentity; key: string }> {
    const state = new URL(callbackUrl).searchParams.get('state') ?? '';
    const login = bindings.map((b) => this.#unseal(b)).find((l) => l?.state === state);
    const now = this.#now();
    if (!login || now - login.startedAtMs > LOGIN_TTL_MS || now < login.startedAtMs || this.#used.has(state)) {
      throw new IdentityError('IDENTITY_OIDC_STATE_MISMATCH', 'the callback is not for a login this browser started');
    }
    this.#remember(state, login.startedAtMs);
    const pending: PendingLogin = { url: '', state: login.state, nonce: login.nonce, codeVerifier: login.codeVerifier };
    return { human: await (await this.client()).verifyLogin(callbackUrl, pending), key: login.key };
  }

  #remember(state: string, startedAtMs: number): void {
    const now = this.#now();
    for (const [s, at] of this.#used) {
      if (now - at <= LOGIN_TTL_MS && this.#used.size < MAX_USED) break;
      this.#used.delete(s);
    }
    this.#used.set(state, startedAtMs);
  }

  #seal(login: SealedLogin): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#sealKey, iv);
    const sealed = Buffer.concat([cipher.update(JSON.stringify(login), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /** The login a binding cookie seals, or undefined for anything this process did not seal. */
  #unseal(binding: string): SealedLogin | undefined {
    const raw = Buffer.from(binding, 'base64url');
    if (raw.length < 29 || raw.length > 2048) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#sealKey, raw.subarray(0, 12));
      decipher.setAuthTag(raw.subarray(12, 28));
      const login = JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')) as SealedLogin;
      return typeof login.state === 'string' && typeof login.nonce === 'string' && typeof login.codeVerifier === 'string' && typeof login.key === 'string' && typeof login.startedAtMs === 'number' ? login : undefined;
    } catch {
      return undefined;
    }
  }
}
