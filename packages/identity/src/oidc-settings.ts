// The OpenID Connect settings and the issuer's discovery document, checked
// before anyone signs in: a setting of the wrong shape fails at start naming
// itself, never as a TypeError at the first sign-in or as an ID token blamed
// for the configuration.
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
  if (typeof settings.roleMap !== 'object' || settings.roleMap === null || Object.keys(settings.roleMap).length === 0) throw new IdentityError('IDENTITY_CONFIG_MISSING', 'OIDC setting roleMap is required');
  for (const [role, values] of Object.entries(settings.roleMap)) {
    if (!(CORRAL_ROLES as readonly string[]).includes(role)) throw invalid(`OIDC roleMap names "${role.slice(0, 40)}", which is not one of ${CORRAL_ROLES.join(', ')}`);
    if (values !== undefined && (!Array.isArray(values) || !values.every((v) => typeof v === 'string'))) throw invalid(`OIDC roleMap.${role} must be a list of claim values`);
  }
}

/**
 * The discovery document's endpoints, from the JSON the issuer answered.
 * Throws IDENTITY_OIDC_DISCOVERY_FAILED when it is not an object, names
 * another issuer, or lacks an endpoint or gives one that is not an https URL.
 */
export function readDiscovery(doc: unknown, issuer: string): Discovery {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', 'the discovery document is not a JSON object');
  const d = doc as Record<string, unknown>;
  if (d.issuer !== issuer) throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', 'the discovery document names another issuer');
  const endpoint = (k: 'authorization_endpoint' | 'token_endpoint' | 'jwks_uri'): string => {
    const v = d[k];
    if (typeof v !== 'string') throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', `the discovery document has no ${k}`);
    if (!secureUrl(v)) throw new IdentityError('IDENTITY_OIDC_DISCOVERY_FAILED', `the discovery document's ${k} is not an https URL`);
    return v;
  };
  return {
    issuer,
    authorization_endpoint: endpoint('authorization_endpoint'),
    token_endpoint: endpoint('token_endpoint'),
    jwks_uri: endpoint('jwks_uri'),
    issParameterSupported: d.authorization_response_iss_parameter_supported === true,
  };
}

function secureUrl(text: string): boolean {
  const url = URL.parse(text);
  return url !== null && (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.includes(url.hostname)));
}

function invalid(message: string): IdentityError {
  return new IdentityError('IDENTITY_INPUT_INVALID', message);
}
