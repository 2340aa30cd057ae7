// The OpenID Connect settings and the issuer's discovery document, checked
// before anyone signs in: a setting of the wrong shape fails at start naming
// itself, never as a TypeError at the first sign-in or as an ID token blamed
// for the configuration.
import { BlockList } from 'node:net';
import { IdentityError } from './errors.ts';

export const CORRAL_ROLES = ['admin', 'approver', 'auditor', 'viewer'] as const;
export type CorralRole = (typeof CORRAL_ROLES)[number];

export interface OidcSettings {
  /** The issuer URL exactly as its discovery document states it (Entra: `https://login.microsoftonline.com/TENANT/v2.0`). */
  issuer: string;
  clientId: string;
  /** For a confidential client (client_secret_basic); leave out for a public client (PKCE only). */
  clientSecret?: string;
  /** Where the issuer sends the browser back; must be registered with the issuer. */
  redirectUri: string;
  /** Default `openid profile email`; must include `openid`. */
  scopes?: string[];
  /** The claim holding groups or roles. Default `groups` (Entra: `groups` for group object ids, `roles` for app roles). */
  roleClaim?: string;
  /** Claim values that grant each Corral role. */
  roleMap: Partial<Record<CorralRole, string[]>>;
  /** Accepted ID token algorithms, asymmetric ones only. Default RS256 (what Entra ID and most issuers sign with). */
  idTokenAlgorithms?: string[];
  /** Clock skew tolerated on ID token times (seconds, 0 to 300). Default 60. */
  clockToleranceSeconds?: number;
  /**
   * Origins besides the issuer's own (`https://host[:port]`, at most 16) from
   * which Corral may fetch the token endpoint and the key set the discovery
   * document names. Leave out for issuers that serve them on their own
   * origin (Entra ID, Okta, Keycloak); Google needs
   * `["https://oauth2.googleapis.com", "https://www.googleapis.com"]`.
   */
  endpointOrigins?: string[];
  fetch?: typeof fetch;
}

/** The endpoints Corral uses from the issuer's discovery document. */
export interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  /**
   * The metadata's `authorization_response_iss_parameter_supported` is
   * `true` (RFC 9207 §3): every authorization response then carries `iss`,
   * and one without it is refused.
   */
  issParameterSupported: boolean;
}

/** Signature algorithms an ID token may be configured to use (RFC 7518 §3, RFC 8037): never `none`, never an HMAC. */
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const LOOPBACK = ['127.0.0.1', 'localhost', '[::1]'];
const MAX_ENDPOINT_ORIGINS = 16;

/**
 * Addresses inside Corral's own network, or this machine's: unspecified
 * (0.0.0.0 and :: reach this machine), loopback, private (RFC 1918, RFC 4193),
 * shared (RFC 6598), link-local (the cloud metadata service at
 * 169.254.169.254), IETF-reserved, benchmarking, multicast and reserved.
 * IPv4-mapped IPv6 addresses (::ffff:127.0.0.1) are checked as the IPv4
 * address they map (BlockList does so).
 */
const INTERNAL = new BlockList();
for (const [network, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 3]] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv4');
}
// ::/96 holds :: and ::1 and the deprecated IPv4-compatible addresses (::127.0.0.1).
for (const [network, prefix] of [['::', 96], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8]] as const) INTERNAL.addSubnet(network, prefix, 'ipv6');
const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Checks every setting's presence and shape. Throws IDENTITY_CONFIG_MISSING
 * (issuer, clientId, redirectUri, roleMap) or IDENTITY_INPUT_INVALID naming
 * the setting and what it must be.
 */
export function checkOidcSettings(settings: OidcSettings): void {
  if (typeof settings !== 'object' || settings === null) throw new IdentityError('IDENTITY_CONFIG_MISSING', 'OIDC settings are required');
  for (const name of ['issuer', 'clientId', 'redirectUri'] as const) {
    if (typeof settings[name] !== 'string' || settings[name] === '') throw new IdentityError('IDENTITY_CONFIG_MISSING', `OIDC setting ${name} is required`);
  }
  // OpenID Connect Discovery §4: the issuer is an https URL. Its keys and tokens come from there; over plain HTTP anyone on the path could swap them.
  if (!secureUrl(settings.issuer)) throw invalid('OIDC setting issuer must be an https URL (http only on a loopback address)');
  if (URL.parse(settings.redirectUri) === null) throw invalid('OIDC setting redirectUri must be a URL');
  if (settings.clientSecret !== undefined && (typeof settings.clientSecret !== 'string' || settings.clientSecret === '')) throw invalid('OIDC setting clientSecret must be a non-empty string, or left out for a public client');
  if (settings.scopes !== undefined && (!Array.isArray(settings.scopes) || !settings.scopes.every((s) => typeof s === 'string' && SCOPE.test(s)) || !settings.scopes.includes('openid'))) {
    throw invalid('OIDC setting scopes must be a list of scope names including "openid"');
  }
  if (settings.roleClaim !== undefined && (typeof settings.roleClaim !== 'string' || settings.roleClaim === '')) throw invalid('OIDC setting roleClaim must be the name of a claim');
  if (settings.idTokenAlgorithms !== undefined && (!Array.isArray(settings.idTokenAlgorithms) || settings.idTokenAlgorithms.length === 0 || !settings.idTokenAlgorithms.every((a) => ASYMMETRIC_ALGORITHMS.includes(a)))) {
    throw invalid(`OIDC setting idTokenAlgorithms must be a list of ${ASYMMETRIC_ALGORITHMS.join(', ')}`);
  }
  const tolerance = settings.clockToleranceSeconds;
  if (tolerance !== undefined && (!Number.isSafeInteger(tolerance) || tolerance < 0 || tolerance > 300)) throw invalid('OIDC setting clockToleranceSeconds must be whole seconds from 0 to 300');
  if (settings.fetch !== undefined && typeof settings.fetch !== 'function') throw invalid('OIDC setting fetch must be a function');
  const origins = settings.endpointOrigins;
  if (origins !== undefined && (!Array.isArray(origins) || origins.length > MAX_ENDPOINT_ORIGINS || !origins.every((o) => typeof o === 'string' && originOf(o) !== undefined))) {
    throw invalid(`OIDC setting endpointOrigins must be a list of at most ${MAX_ENDPOINT_ORIGINS} origins, each https://host or https://host:port with nothing after it (http only on a loopback address)`);
  }
  if (typeof settings.roleMap !== 'object' || settings.roleMap === null || Object.keys(settings.roleMap).length === 0) throw new IdentityError('IDENTITY_CONFIG_MISSING', 'OIDC setting roleMap is required');
  for (const [role, values] of Object.entries(settings.roleMap)) {
    if (!(CORRAL_ROLES as readonly string[]).includes(role)) throw invalid(`OIDC roleMap names "${role.slice(0, 40)}", which is not one of ${CORRAL_ROLES.join(', ')}`);
    if (values !== undefined && (!Array.isArray(values) || !values.every((v) => typeof v === 'string'))) throw invalid(`OIDC roleMap.${role} must be a list of claim values`);
  }
}

/**
 * The discovery document's endpoints, from the JSON the issuer answered,
 * for the checked `settings` (issuer, endpointOrigins).
 *
 * What the issuer names is a place Corral sends its requests (the code and
 * client secret to the token endpoint, a key-set fetch to jwks_uri) or the
 * browser (authorization_endpoint), so each endpoint must be:
 * - a URL without a user name or password;
 * - https; plain http only on a loopback address, and only when the issuer
 *   is itself on a loopback address or the endpoint's origin is listed in
 *   endpointOrigins;
 * - for the token endpoint and jwks_uri, which Corral fetches, on the
 *   issuer's origin or one listed in endpointOrigins;
 * - not on an address inside Corral's network or machine (INTERNAL, or a
 *   `localhost` name) unless the issuer is on a loopback address, or the
 *   endpoint is on the issuer's origin or one listed in endpointOrigins.
 * Host names are judged as written: one whose DNS answer is an internal
 * address is not looked up here.
 *
 * Throws IDENTITY_OIDC_DISCOVERY_FAILED when the document is not an object,
 * names another issuer, lacks an endpoint, or names one against these rules
 * (the message names the field and what to do).
 */
export function readDiscovery(doc: unknown, settings: Pick<OidcSettings, 'issuer' | 'endpointOrigins'>): Discovery {
  const { issuer } = settings;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', 'the discovery document is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.issuer !== issuer) throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', 'the discovery document names another issuer');
  const issuerUrl = new URL(issuer);
  const issuerOnLoopback = LOOPBACK.includes(issuerUrl.hostname);
  const allowed = new Set((settings.endpointOrigins ?? []).map((o) => originOf(o)));
  const refuse = (k: string, why: string) => new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', `the discovery document's ${k} ${why}`);
  const endpoint = (k: 'authorization_endpoint' | 'token_endpoint' | 'jwks_uri', fetched: boolean): string => {
    const v = d[k];
    if (typeof v !== 'string') throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', `the discovery document has no ${k}`);
    const url = URL.parse(v);
    if (url === null) throw refuse(k, 'is not a URL');
    if (url.username !== '' || url.password !== '') throw refuse(k, 'carries a user name or password in its URL');
    // url.origin is the URL parser's own serialisation (lowercase, punycode, percent-encoded): no control character of the issuer's reaches the message.
    const origin = url.origin;
    const listed = allowed.has(origin);
    const own = origin === issuerUrl.origin;
    const onLoopback = LOOPBACK.includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && onLoopback && (issuerOnLoopback || listed))) {
      throw refuse(k, `(${origin === 'null' ? url.protocol : origin}) is not an https URL: Corral reaches an issuer's endpoints over https only (plain http only on this machine, from an issuer on this machine)`);
    }
    if (fetched && !own && !listed) {
      throw refuse(k, `(${origin}) is not on the issuer's origin (${issuerUrl.origin}): if the issuer really serves it there, add "${origin}" to OIDC setting endpointOrigins`);
    }
    if (!issuerOnLoopback && !own && !listed && internalHost(url.hostname)) {
      throw refuse(k, `(${origin}) is on a loopback, private or link-local address, inside Corral's network: if the issuer really serves it there, add "${origin}" to OIDC setting endpointOrigins`);
    }
    return v;
  };
  return {
    issuer,
    authorization_endpoint: endpoint('authorization_endpoint', false),
    token_endpoint: endpoint('token_endpoint', true),
    jwks_uri: endpoint('jwks_uri', true),
    issParameterSupported: d.authorization_response_iss_parameter_supported === true,
  };
}

function secureUrl(text: string): boolean {
  const url = URL.parse(text);
  return url !== null && (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.includes(url.hostname)));
}

/** The origin `text` names, when it is one (`https://host[:port]`, a trailing `/` allowed) and secureUrl; else undefined. */
function originOf(text: string): string | undefined {
  const url = URL.parse(text);
  if (url === null || !secureUrl(text) || url.href !== `${url.origin}/`) return undefined;
  return url.origin;
}

/** Whether a URL's hostname (as the URL parser gives it: IPv6 in brackets, IPv4 in dotted decimal) is this machine or inside its network. */
function internalHost(hostname: string): boolean {
  const name = hostname.replace(/\.$/, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (name.startsWith('[')) return INTERNAL.check(name.slice(1, -1), 'ipv6');
  return /^\d+\.\d+\.\d+\.\d+$/.test(name) && INTERNAL.check(name, 'ipv4');
}

function invalid(message: string): IdentityError {
  return new IdentityError('IDENTITY_INPUT_INVALID', message);
}
