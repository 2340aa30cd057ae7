import { randomBytes } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import type { AgentRegistry } from './agents.ts';
import { IdentityError, type IdentityErrorCode } from './errors.ts';
import type { KeyRing } from './keys.ts';

/** The claims of a verified agent token (RFC 9068 JWT access token shape). */
export interface AgentTokenClaims {
  iss: string;
  aud: string;
  /** The agent's id. */
  sub: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
  /** The agent's name. */
  agent: string;
  process: string;
  /** Space-separated scopes (RFC 9068 `scope`). */
  scope: string;
  /** The agent's token generation when issued; suspension moves it on. */
  gen: number;
}

/** What a verifier logs about a refused token: the coded reason and safe identifiers only. */
export interface TokenRefusal {
  event: 'token.refused';
  code: IdentityErrorCode;
  reason: string;
  /** The header's key id, when it is base64url (as every key id Corral makes is), whether or not it names a published key. */
  kid?: string;
  sub?: string;
  jti?: string;
}

export interface TokenSettings {
  /** The `iss` Corral writes and requires. */
  issuer: string;
  /** The `aud` Corral writes and requires. */
  audience: string;
  /** Default lifetime (seconds). */
  defaultTtlSeconds: number;
  /** Longest lifetime a caller may ask for (seconds). */
  maxTtlSeconds: number;
  /** Clock skew tolerated on exp/nbf (seconds). */
  clockToleranceSeconds: number;
}

const ALGORITHM = 'EdDSA';
const TYPE = 'at+jwt';
const MAX_TOKEN_LENGTH = 8192;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Issues a short-lived EdDSA JWT for an active agent. Throws IDENTITY_AGENT_NOT_FOUND, IDENTITY_AGENT_STATE, IDENTITY_INPUT_INVALID. */
export async function issueAgentToken(
  deps: { agents: AgentRegistry; keys: KeyRing; settings: TokenSettings; now: () => number },
  ref: string,
  options: { ttlSeconds?: number } = {},
): Promise<{ token: string; claims: AgentTokenClaims }> {
  const { settings } = deps;
  const ttl = options.ttlSeconds ?? settings.defaultTtlSeconds;
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > settings.maxTtlSeconds) {
    throw new IdentityError('IDENTITY_INPUT_INVALID', `a token lives 1 to ${settings.maxTtlSeconds} seconds`);
  }
  const agent = deps.agents.get(ref);
  if (agent.status !== 'active') throw new IdentityError('IDENTITY_AGENT_STATE', `agent ${agent.name} is ${agent.status}; no token is issued`);
  const { kid, key } = await deps.keys.signingKey();
  const iat = Math.floor(deps.now() / 1000);
  const claims: AgentTokenClaims = {
    iss: settings.issuer,
    aud: settings.audience,
    sub: agent.id,
    jti: randomBytes(16).toString('base64url'),
    iat,
    nbf: iat,
    exp: iat + ttl,
    agent: agent.name,
    process: agent.process,
    scope: agent.scopes.join(' '),
    gen: agent.tokenGeneration,
  };
  const token = await new SignJWT({ ...claims }).setProtectedHeader({ alg: ALGORITHM, typ: TYPE, kid }).sign(key);
  // An agent created before its scopes were bounded could hold more than a token carries: never hand out one no verifier accepts.
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new IdentityError('IDENTITY_INPUT_INVALID', `a token for agent ${agent.name} would be ${token.length} characters, over the ${MAX_TOKEN_LENGTH} a verifier reads: retire it and create it again with fewer scopes`);
  }
  return { token, claims };
}

/**
 * Verifies an agent token, guard clauses first (shape, header, algorithm,
 * key id), then the signature and claims with jose against the configured
 * issuer and audience, then the agent's live status (the kill switch) and,
 * for `singleUse`, that the token was not presented before.
 *
 * Throws IdentityError: forged — IDENTITY_TOKEN_MALFORMED, _UNSIGNED,
 * _ALGORITHM, _KEY_UNKNOWN, _SIGNATURE_INVALID; refused — _EXPIRED,
 * _NOT_YET_VALID, _AUDIENCE, _ISSUER, _CLAIMS_INVALID, _REVOKED, _REPLAYED.
 * Each refusal is passed to `log` without the token or any key.
 */
/** The key id the header of `token` names: for a token verifyAgentToken accepted (it checked the header), undefined for anything else. */
export function tokenKeyId(token: string): string | undefined {
  try {
    const kid = decodeJson(token.slice(0, token.indexOf('.')), 'header').kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

export async function verifyAgentToken(
  deps: { agents: AgentRegistry; keys: KeyRing; settings: TokenSettings; db: DatabaseSync; now: () => number },
  token: unknown,
  options: { singleUse?: boolean; log?: (refusal: TokenRefusal) => void } = {},
): Promise<AgentTokenClaims> {
  const seen: { kid?: string; sub?: string; jti?: string } = {};
  try {
    return await verify(deps, token, options.singleUse ?? false, seen);
  } catch (error) {
    if (error instanceof IdentityError) options.log?.({ event: 'token.refused', code: error.code, reason: error.message, ...seen });
    throw error;
  }
}

async function verify(
  deps: { agents: AgentRegistry; keys: KeyRing; settings: TokenSettings; db: DatabaseSync; now: () => number },
  token: unknown,
  singleUse: boolean,
  seen: { kid?: string; sub?: string; jti?: string },
): Promise<AgentTokenClaims> {
  const { settings } = deps;
  if (typeof token !== 'string') throw fail('IDENTITY_TOKEN_MALFORMED', 'a token must be a string');
  if (token.length > MAX_TOKEN_LENGTH) throw fail('IDENTITY_TOKEN_MALFORMED', 'the token is too long');
  const parts = token.split('.');
  if (parts.length !== 3) throw fail('IDENTITY_TOKEN_MALFORMED', 'a token has three dot-separated parts');
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  if (!SEGMENT.test(headerPart) || !SEGMENT.test(payloadPart)) throw fail('IDENTITY_TOKEN_MALFORMED', 'the header and payload must be base64url');
  const header = decodeJson(headerPart, 'header');
  if (header.alg === 'none' || header.alg === 'None' || header.alg === 'NONE') throw fail('IDENTITY_TOKEN_UNSIGNED', 'unsigned tokens (alg none) are refused');
  if (signaturePart === '') throw fail('IDENTITY_TOKEN_UNSIGNED', 'the token has no signature');
  if (!SEGMENT.test(signaturePart)) throw fail('IDENTITY_TOKEN_MALFORMED', 'the signature must be base64url');
  if (header.alg !== ALGORITHM) throw fail('IDENTITY_TOKEN_ALGORITHM', `only ${ALGORITHM} tokens are accepted`);
  if (typeof header.kid !== 'string' || header.kid === '' || header.kid.length > 128) throw fail('IDENTITY_TOKEN_KEY_UNKNOWN', 'the token names no key');
  if (header.crit !== undefined) throw fail('IDENTITY_TOKEN_MALFORMED', 'critical header parameters are not supported');
  // Logged before any signature is checked: only in the shape of a key id (Corral's are RFC 7638 thumbprints, base64url),
  // so that a forger's line feed or escape sequence never reaches a log.
  if (SEGMENT.test(header.kid)) seen.kid = header.kid;
  const key = await deps.keys.verificationKey(header.kid);
  if (!key) throw fail('IDENTITY_TOKEN_KEY_UNKNOWN', 'the token was not signed by a key Corral publishes');

  let payload: Record<string, unknown>;
  try {
    const result = await jwtVerify(token, key, {
      algorithms: [ALGORITHM],
      issuer: settings.issuer,
      audience: settings.audience,
      // Checked by jose after the signature, not as a guard before it: a wrong `typ` is a refusal only on a genuine token, a forged one is forged.
      typ: TYPE,
      clockTolerance: settings.clockToleranceSeconds,
      currentDate: new Date(deps.now()),
      requiredClaims: ['sub', 'jti', 'iat', 'nbf', 'exp'],
    });
    payload = result.payload as Record<string, unknown>;
  } catch (error) {
    throw fromJose(error);
  }
  const claims = snapshotClaims(payload);
  seen.sub = claims.sub;
  seen.jti = claims.jti;
  // jose checks `iat` only for a maximum age: without this, a token issued in the future (iat a year ahead, nbf now)
  // would pass the lifetime check below and live for a year.
  if (claims.iat > Math.floor(deps.now() / 1000) + settings.clockToleranceSeconds) throw fail('IDENTITY_TOKEN_NOT_YET_VALID', 'the token was issued in the future');
  if (claims.exp - claims.iat > settings.maxTtlSeconds) throw fail('IDENTITY_TOKEN_CLAIMS_INVALID', 'the token lives longer than Corral issues');

  const agent = deps.agents.find(claims.sub);
  if (!agent || agent.id !== claims.sub) throw fail('IDENTITY_TOKEN_REVOKED', 'the agent no longer exists');
  if (agent.status !== 'active') throw fail('IDENTITY_TOKEN_REVOKED', `the agent is ${agent.status}`);
  if (claims.gen !== agent.tokenGeneration) throw fail('IDENTITY_TOKEN_REVOKED', 'the token was issued before the agent was suspended');

  if (singleUse) {
    const now = deps.now();
    deps.db.prepare('DELETE FROM used_tokens WHERE expires_at < ?').run(now);
    const inserted = deps.db.prepare('INSERT OR IGNORE INTO used_tokens (jti, expires_at) VALUES (?, ?)').run(claims.jti, (claims.exp + settings.clockToleranceSeconds) * 1000);
    if (inserted.changes === 0) throw fail('IDENTITY_TOKEN_REPLAYED', 'this single-use token was already presented');
  }
  return claims;
}

function decodeJson(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch (error) {
    throw new IdentityError('IDENTITY_TOKEN_MALFORMED', `the token ${what} is not JSON`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('IDENTITY_TOKEN_MALFORMED', `the token ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Copies the claims Corral uses into a fresh object, checking each type. */
function snapshotClaims(p: Record<string, unknown>): AgentTokenClaims {
  const str = (k: string): string => {
    const v = p[k];
    if (typeof v !== 'string') throw fail('IDENTITY_TOKEN_CLAIMS_INVALID', `claim ${k} must be a string`);
    return v;
  };
  const int = (k: string): number => {
    const v = p[k];
    if (!Number.isSafeInteger(v)) throw fail('IDENTITY_TOKEN_CLAIMS_INVALID', `claim ${k} must be an integer`);
    return v as number;
  };
  return {
    iss: str('iss'),
    aud: str('aud'),
    sub: str('sub'),
    jti: str('jti'),
    iat: int('iat'),
    nbf: int('nbf'),
    exp: int('exp'),
    agent: str('agent'),
    process: str('process'),
    scope: str('scope'),
    gen: int('gen'),
  };
}

function fromJose(error: unknown): IdentityError {
  if (error instanceof joseErrors.JWTExpired) return new IdentityError('IDENTITY_TOKEN_EXPIRED', 'the token has expired', { cause: error });
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'typ':
        return new IdentityError('IDENTITY_TOKEN_CLAIMS_INVALID', `the token type must be ${TYPE}`, { cause: error });
      case 'nbf':
        return new IdentityError('IDENTITY_TOKEN_NOT_YET_VALID', 'the token is not valid yet', { cause: error });
      case 'iat':
        return new IdentityError(error.reason === 'check_failed' ? 'IDENTITY_TOKEN_NOT_YET_VALID' : 'IDENTITY_TOKEN_CLAIMS_INVALID', 'the token was issued in the future', { cause: error });
      case 'aud':
        return new IdentityError('IDENTITY_TOKEN_AUDIENCE', 'the token is for another audience', { cause: error });
      case 'iss':
        return new IdentityError('IDENTITY_TOKEN_ISSUER', 'the token is from another issuer', { cause: error });
      default:
        return new IdentityError('IDENTITY_TOKEN_CLAIMS_INVALID', `the token's ${error.claim} claim is invalid`, { cause: error });
    }
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new IdentityError('IDENTITY_TOKEN_SIGNATURE_INVALID', 'the token signature does not verify', { cause: error });
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return new IdentityError('IDENTITY_TOKEN_ALGORITHM', `only ${ALGORITHM} tokens are accepted`, { cause: error });
  return new IdentityError('IDENTITY_TOKEN_MALFORMED', 'the token is malformed', { cause: error });
}

function fail(code: IdentityErrorCode, message: string): IdentityError {
  return new IdentityError(code, message);
}
