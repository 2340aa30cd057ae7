// Human single sign-on: OpenID Connect authorization code flow with PKCE
// (RFC 7636, S256) against any standard issuer — Microsoft Entra ID,
// Okta, Keycloak, Google — by configuration alone.
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { IdentityError, type IdentityErrorCode } from './errors.ts';
import { CORRAL_ROLES, checkOidcSettings, readDiscovery, type CorralRole, type Discovery, type OidcSettings } from './oidc-settings.ts';

export { CORRAL_ROLES, checkOidcSettings };
export type { CorralRole, OidcSettings };

/** What `startLogin` hands back: the URL to send the browser to, and secrets to keep until the callback. */
export interface PendingLogin {
  url: string;
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** The most Corral reads of one answer from the issuer (discovery document, token response, key set): a sign-in's are a few KiB. */
export const MAX_ISSUER_ANSWER_BYTES = 1024 * 1024;
/** How long Corral waits for one answer from the issuer, its body included. */
export const ISSUER_TIMEOUT_MS = 10_000;
/**
 * The oldest an ID token's `iat` may be, beyond the clock skew tolerated (OIDC
 * Core §3.1.3.7, item 10): as long as a console login lives (10 minutes).
 * The issuer mints the token when Corral exchanges the code, moments before
 * Corral reads it, though some date `iat` a few minutes back to cover clock
 * skew. One older than any login Corral still takes, or issued in the
 * future, comes from an issuer whose clock is wrong, or from somewhere else.
 */
const MAX_ID_TOKEN_AGE_S = 600;

/**
 * `doFetch`, with the answer's body read in full before it is handed back:
 * refused (`code`) past MAX_ISSUER_ANSWER_BYTES or ISSUER_TIMEOUT_MS, so
 * an issuer that streams without end, or never answers, can neither fill
 * memory nor hold a sign-in (and the console request waiting on it) for ever.
 */
function boundedFetch(doFetch: typeof fetch, code: IdentityErrorCode): typeof fetch {
  return (async (input: string | URL | Request, init: RequestInit = {}) => {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new IdentityError(code, `the issuer did not answer within ${ISSUER_TIMEOUT_MS / 1000} s`)), ISSUER_TIMEOUT_MS);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
    try {
      const res = await doFetch(input, { ...init, signal });
      const body = await readBounded(res, signal, code);
      return new Response(body.byteLength === 0 ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
    } finally {
      clearTimeout(timer);
    }
  }) as typeof fetch;
}

async function readBounded(res: Response, signal: AbortSignal, code: IdentityErrorCode): Promise<Uint8Array> {
  const tooLarge = () => new IdentityError(code, `the issuer's answer is larger than ${MAX_ISSUER_ANSWER_BYTES} bytes`);
  if (Number(res.headers.get('content-length')) > MAX_ISSUER_ANSWER_BYTES) {
    await res.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (res.body === null) return new Uint8Array();
  const reader = res.body.getReader();
  // A body that stalls ends its read when the time is up, whether or not doFetch tied it to the signal.
  const stop = () => void reader.cancel(signal.reason).catch(() => undefined);
  signal.addEventListener('abort', stop, { once: true });
  try {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      if (signal.aborted) throw signal.reason;
      const { done, value } = await reader.read();
      if (signal.aborted) throw signal.reason;
      if (done) return Buffer.concat(chunks);
      size += value.byteLength;
      if (size > MAX_ISSUER_ANSWER_BYTES) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  } finally {
    signal.removeEventListener('abort', stop);
  }
}

/**
 * An OAuth error code as a message may quote it: RFC 6749 §4.1.2.1 allows
 * printable ASCII only. Anything else (a line feed that would print a line
 * of its own under Corral's, an escape sequence) is not quoted.
 */
function errorName(text: string): string {
  return /^[\x20\x21\x23-\x5B\x5D-\x7E]{1,64}$/.test(text) ? text : 'an error code that is not printable ASCII';
}

/** An ID token's `sub`: 1 to 255 printable ASCII characters (OIDC Core §2), no space. */
const SUBJECT = /^[\x21-\x7E]{1,255}$/;
/**
 * An address that names one person plainly: printable ASCII, no space, quote,
 * `:` or other `@`. ASCII only, as the audit log and the console show it to
 * people: a fullwidth `ａ` (NFKC's `a`), a Cyrillic `а` or a dotless `ı` would
 * show another person's address. An internationalised domain comes as
 * punycode (ASCII); a person whose address is not ASCII is named by issuer
 * and subject.
 */
const PLAIN_EMAIL = /^[^\0-\x20\x7F-\u{10FFFF}@<>()",;:\\]{1,64}@[^\0-\x20\x7F-\u{10FFFF}@<>()",;:\\]{1,255}$/u;

/** A person as Corral knows them after signing in. */
export interface HumanIdentity {
  issuer: string;
  subject: string;
  /** The `email` claim, only when the issuer marks it `email_verified: true` and it is a plain printable-ASCII address (see PLAIN_EMAIL). */
  email?: string;
  /**
   * The `email` claim as the issuer sent it, verified or not (an address of
   * at most 320 characters). It names no one: at an issuer that does not
   * check it, anyone may set it to someone else's address. It may only make
   * its holder stricter with themself (the gateway refuses an approver whose
   * claimed address owns an agent that agent's requests).
   */
  claimedEmail?: string;
  name?: string;
  /** The raw values of the role claim. */
  groups: string[];
  roles: CorralRole[];
}

/** Maps role-claim values to Corral roles, in Corral's order (admin first). */
export function mapRoles(values: readonly string[], roleMap: OidcSettings['roleMap']): CorralRole[] {
  const have = new Set(values);
  return CORRAL_ROLES.filter((role) => (roleMap[role] ?? []).some((v) => have.has(v)));
}

export class OidcClient {
  readonly settings: Readonly<OidcSettings>;
  readonly #discovery: Discovery;
  readonly #jwks: ReturnType<typeof createRemoteJWKSet>;

  private constructor(settings: OidcSettings, discovery: Discovery) {
    this.settings = settings;
    this.#discovery = discovery;
    this.#jwks = createRemoteJWKSet(new URL(discovery.jwks_uri), { [customFetch]: boundedFetch(settings.fetch ?? fetch, 'IDENTITY_OIDC_ID_TOKEN_INVALID') });
  }

  /**
   * Checks the settings, reads the issuer's discovery document and checks it
   * names the same issuer, with endpoints Corral may reach (https, on the
   * issuer's origin or one endpointOrigins lists, none inside Corral's
   * network: see readDiscovery). Throws IDENTITY_CONFIG_MISSING,
   * IDENTITY_INPUT_INVALID (a setting of the wrong shape: see
   * checkOidcSettings), IDENTITY_OIDC_DISCOVERY_FAILED.
   */
  static async discover(settings: OidcSettings): Promise<OidcClient> {
    checkOidcSettings(settings);
    const doFetch = boundedFetch(settings.fetch ?? fetch, 'IDENTITY_OIDC_DISCOVERY_FAILED');
    const url = `${settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    let doc: unknown;
    try {
      const res = await doFetch(url, { headers: { accept: 'application/json' }, redirect: 'error' });
      if (!res.ok) throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', `the issuer answered HTTP ${res.status}`);
      doc = await res.json();
    } catch (error) {
      throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', `cannot read ${url}`, { cause: error });
    }
    return new OidcClient(settings, readDiscovery(doc, settings));
  }

  /** Starts a login: fresh state, nonce and PKCE verifier; the URL carries only the S256 challenge. */
  startLogin(): PendingLogin {
    const state = randomBytes(24).toString('base64url');
    const nonce = randomBytes(24).toString('base64url');
    const codeVerifier = randomBytes(48).toString('base64url');
    const url = new URL(this.#discovery.authorization_endpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.settings.clientId);
    url.searchParams.set('redirect_uri', this.settings.redirectUri);
    url.searchParams.set('scope', (this.settings.scopes ?? ['openid', 'profile', 'email']).join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('nonce', nonce);
    url.searchParams.set('code_challenge', createHash('sha256').update(codeVerifier).digest('base64url'));
    url.searchParams.set('code_challenge_method', 'S256');
    return { url: url.toString(), state, nonce, codeVerifier };
  }

  /**
   * Completes a login from the callback URL the browser arrived at: see
   * verifyLogin. Throws what it throws, and IDENTITY_OIDC_NO_ROLE when no
   * value of the role claim maps to a Corral role. It records no one: a
   * caller that keeps people passes verifyLogin's answer to
   * HumanRegistry.signIn, which also records a demotion to no role.
   */
  async finishLogin(callbackUrl: string, pending: PendingLogin): Promise<HumanIdentity> {
    const human = await this.verifyLogin(callbackUrl, pending);
    if (human.roles.length === 0) throw new IdentityError('IDENTITY_OIDC_NO_ROLE', 'no group or role claim maps to a Corral role');
    return human;
  }

  /**
   * Who the callback URL the browser arrived at signs in: checks state,
   * exchanges the code with the PKCE verifier, verifies the ID token
   * (signature from the issuer's JWKS, issuer, audience, expiry, `iat` within
   * MAX_ID_TOKEN_AGE_S and not in the future, nonce) and maps its role claim,
   * to no role at all as it may (HumanRegistry.signIn and finishLogin refuse that). The callback's
   * `iss` must be the issuer's when present, and be present when the issuer's
   * metadata says `authorization_response_iss_parameter_supported: true`
   * (RFC 9207). Throws IDENTITY_OIDC_STATE_MISMATCH, _AUTHORIZATION_FAILED
   * (an `iss` wrong or missing among them), _EXCHANGE_FAILED, _ID_TOKEN_INVALID.
   */
  async verifyLogin(callbackUrl: string, pending: PendingLogin): Promise<HumanIdentity> {
    let params: URLSearchParams;
    try {
      params = new URL(callbackUrl).searchParams;
    } catch (error) {
      throw new IdentityError('IDENTITY_OIDC_AUTHORIZATION_FAILED', 'the callback URL is malformed', { cause: error });
    }
    const state = params.get('state');
    if (state === null || state !== pending.state) throw new IdentityError('IDENTITY_OIDC_STATE_MISMATCH', 'the callback is not for this login');
    // RFC 9207 §2.4, before anything else of the response is used (its error too): an `iss` present is this issuer's,
    // and one the issuer promised (its metadata) is present. Else the browser may bring back what another issuer
    // answered, a code or an error Corral would take for this one's (a mix-up attack).
    if (params.getAll('iss').length > 1) throw new IdentityError('IDENTITY_OIDC_AUTHORIZATION_FAILED', 'the callback names more than one issuer (iss)');
    const issuerParam = params.get('iss');
    if (issuerParam === null && this.#discovery.issParameterSupported) {
      throw new IdentityError('IDENTITY_OIDC_AUTHORIZATION_FAILED', 'the callback names no issuer (iss), though the issuer says it always does');
    }
    if (issuerParam !== null && issuerParam !== this.settings.issuer) throw new IdentityError('IDENTITY_OIDC_AUTHORIZATION_FAILED', 'the callback came from another issuer (iss)');
    const refusal = params.get('error');
    if (refusal !== null) throw new IdentityError('IDENTITY_OIDC_AUTHORIZATION_FAILED', `the issuer refused the login (${errorName(refusal)})`);
    const code = params.get('code');
    if (!code) throw new IdentityError('IDENTITY_OIDC_AUTHORIZATION_FAILED', 'the callback carries no code');

    const body = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: this.settings.redirectUri, code_verifier: pending.codeVerifier });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (this.settings.clientSecret) {
      const id = encodeURIComponent(this.settings.clientId);
      const secret = encodeURIComponent(this.settings.clientSecret);
      headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    } else {
      body.set('client_id', this.settings.clientId);
    }
    let idToken: unknown;
    try {
      const res = await boundedFetch(this.settings.fetch ?? fetch, 'IDENTITY_OIDC_EXCHANGE_FAILED')(this.#discovery.token_endpoint, { method: 'POST', headers, body, redirect: 'error' });
      const tokens: unknown = await res.json();
      const fields = typeof tokens === 'object' && tokens !== null ? (tokens as Record<string, unknown>) : {};
      if (!res.ok) throw new IdentityError('IDENTITY_OIDC_EXCHANGE_FAILED', `the issuer answered HTTP ${res.status} ${typeof fields.error === 'string' ? errorName(fields.error) : ''}`.trim());
      idToken = fields.id_token;
    } catch (error) {
      throw new IdentityError('IDENTITY_OIDC_EXCHANGE_FAILED', 'the issuer refused the code exchange', { cause: error });
    }
    if (typeof idToken !== 'string') throw new IdentityError('IDENTITY_OIDC_EXCHANGE_FAILED', 'the issuer returned no ID token');

    let claims: JWTPayload;
    try {
      const result = await jwtVerify(idToken, this.#jwks, {
        issuer: this.settings.issuer,
        audience: this.settings.clientId,
        algorithms: this.settings.idTokenAlgorithms ?? ['RS256'],
        clockTolerance: this.settings.clockToleranceSeconds ?? 60,
        maxTokenAge: MAX_ID_TOKEN_AGE_S,
        requiredClaims: ['sub', 'iat', 'exp'],
      });
      claims = result.payload;
    } catch (error) {
      const why = error instanceof joseErrors.JOSEError ? error.code : 'unreadable';
      throw new IdentityError('IDENTITY_OIDC_ID_TOKEN_INVALID', `the ID token does not verify (${why})`, { cause: error });
    }
    if (claims.nonce !== pending.nonce) throw new IdentityError('IDENTITY_OIDC_ID_TOKEN_INVALID', 'the ID token is for another login (nonce)');
    if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp !== this.settings.clientId) {
      throw new IdentityError('IDENTITY_OIDC_ID_TOKEN_INVALID', 'the ID token names several audiences but was not issued to Corral (azp)');
    }
    // OIDC Core §2: an azp present names the party the token was issued to, whatever the audiences.
    if (claims.azp !== undefined && claims.azp !== this.settings.clientId) throw new IdentityError('IDENTITY_OIDC_ID_TOKEN_INVALID', 'the ID token was issued to another client (azp)');
    // OIDC Core §2: at most 255 ASCII characters. The subject names the person (oidc:ISSUER#SUBJECT) in the
    // audit log and in listings, where a control character would rewrite a line or a terminal.
    if (typeof claims.sub !== 'string' || !SUBJECT.test(claims.sub)) throw new IdentityError('IDENTITY_OIDC_ID_TOKEN_INVALID', 'the ID token has no subject of 1 to 255 printable ASCII characters');

    const raw = claims[this.settings.roleClaim ?? 'groups'];
    const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : typeof raw === 'string' ? [raw] : [];
    const roles = mapRoles(groups, this.settings.roleMap);
    // Only an address the issuer vouches for names the person (OIDC Core §5.1, §5.7): an unverified
    // `email` or a `preferred_username` is whatever the person typed, and would name them as someone else.
    // And only a plain address: one with a control or format character, a space or a `:` would print as, or be read as, someone else.
    const email = typeof claims.email === 'string' && claims.email_verified === true && PLAIN_EMAIL.test(claims.email) ? claims.email : undefined;
    // Whatever it says, verified or not: kept apart from `email`, only ever a reason to refuse its holder.
    const claimedEmail = typeof claims.email === 'string' && claims.email.length <= 320 && claims.email.includes('@') && claims.email.isWellFormed() ? claims.email : undefined;
    return {
      issuer: this.settings.issuer,
      subject: claims.sub,
      ...(email !== undefined ? { email } : {}),
      ...(claimedEmail !== undefined ? { claimedEmail } : {}),
      ...(typeof claims.name === 'string' ? { name: claims.name } : {}),
      groups,
      roles,
    };
  }
}
