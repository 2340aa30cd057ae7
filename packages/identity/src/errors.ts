/**
 * The closed set of reasons the identity package refuses or fails.
 * A forged thing (bad signature, unknown key, no signature) and a refused
 * thing (valid signature, but expired, revoked, for someone else) have
 * different codes; neither message ever holds a token, key or secret.
 */
export type IdentityErrorCode =
  // ---- tokens: forged or unreadable
  /** Not a compact JWS: wrong shape, bad base64url, header or payload not JSON. */
  | 'IDENTITY_TOKEN_MALFORMED'
  /** `alg: none`: an unsigned token. */
  | 'IDENTITY_TOKEN_UNSIGNED'
  /** A signature algorithm other than the configured one (EdDSA). */
  | 'IDENTITY_TOKEN_ALGORITHM'
  /** The `kid` names no key in Corral's published key set (forged, or a key retired long ago). */
  | 'IDENTITY_TOKEN_KEY_UNKNOWN'
  /** The signature does not verify: the token was tampered with or forged. */
  | 'IDENTITY_TOKEN_SIGNATURE_INVALID'
  // ---- tokens: genuine but refused
  | 'IDENTITY_TOKEN_EXPIRED'
  | 'IDENTITY_TOKEN_NOT_YET_VALID'
  /** `aud` is not this verifier's configured audience. */
  | 'IDENTITY_TOKEN_AUDIENCE'
  /** `iss` is not the configured issuer. */
  | 'IDENTITY_TOKEN_ISSUER'
  /** A required claim is missing or has the wrong type; `typ` is not `at+jwt`. */
  | 'IDENTITY_TOKEN_CLAIMS_INVALID'
  /** The agent was suspended or retired after the token was issued (the kill switch). */
  | 'IDENTITY_TOKEN_REVOKED'
  /** A single-use token presented a second time. */
  | 'IDENTITY_TOKEN_REPLAYED'
  // ---- agents
  | 'IDENTITY_AGENT_NOT_FOUND'
  | 'IDENTITY_AGENT_EXISTS'
  /** The requested change is not allowed from the agent's status (e.g. resuming a retired agent, a token for a suspended one). */
  | 'IDENTITY_AGENT_STATE'
  /** A name, email, process, scope, TTL or option is malformed. */
  | 'IDENTITY_INPUT_INVALID'
  // ---- nodes (device identity, OpenClaw's scheme)
  | 'IDENTITY_DEVICE_PUBLIC_KEY_INVALID'
  | 'IDENTITY_DEVICE_ID_MISMATCH'
  | 'IDENTITY_DEVICE_SIGNATURE_EXPIRED'
  | 'IDENTITY_DEVICE_NONCE_REQUIRED'
  | 'IDENTITY_DEVICE_NONCE_MISMATCH'
  | 'IDENTITY_DEVICE_SIGNATURE_INVALID'
  /** A genuine device that an operator has not paired (yet). */
  | 'IDENTITY_NODE_NOT_PAIRED'
  /** A genuine device seen for the first time while as many as Corral keeps already wait to be paired: it is not recorded. */
  | 'IDENTITY_NODE_PENDING_FULL'
  /** A device whose pairing was revoked. */
  | 'IDENTITY_NODE_REVOKED'
  | 'IDENTITY_NODE_NOT_FOUND'
  /** A command surface that cannot be recorded or approved: too many or too long names, or commands the node never asked for. */
  | 'IDENTITY_NODE_SURFACE_INVALID'
  /** The command-surface request an operator decided on is no longer the node's current one (it declared another since). */
  | 'IDENTITY_NODE_REQUEST_STALE'
  // ---- humans (OpenID Connect)
  /** Discovery failed, or the issuer's metadata names another issuer. */
  | 'IDENTITY_OIDC_DISCOVERY_FAILED'
  /** The callback's `state` is not the one this login started with (CSRF or a mixed-up login). */
  | 'IDENTITY_OIDC_STATE_MISMATCH'
  /**
   * The issuer returned an error, or no code, to the callback; or the
   * callback's `iss` names another issuer, or is missing though the issuer's
   * metadata promises it (RFC 9207: another issuer's answer brought back to
   * this login, a mix-up attack).
   */
  | 'IDENTITY_OIDC_AUTHORIZATION_FAILED'
  /** The token endpoint refused the code exchange. */
  | 'IDENTITY_OIDC_EXCHANGE_FAILED'
  /** The ID token failed verification (signature, issuer, audience, expiry, nonce). */
  | 'IDENTITY_OIDC_ID_TOKEN_INVALID'
  /** The person signed in but no group or role claim maps to a Corral role. */
  | 'IDENTITY_OIDC_NO_ROLE'
  // ---- local users (console sign-in without single sign-on)
  | 'IDENTITY_USER_EXISTS'
  | 'IDENTITY_USER_NOT_FOUND'
  /**
   * The change would leave no login that can sign in holding the admin role
   * (its roles set without admin, or it removed, while it is the only one):
   * no one could administer the console. Another login is given admin first.
   */
  | 'IDENTITY_LAST_ADMIN'
  // ---- configuration and storage
  /** A required option is missing (issuer, audience, client id …); named in the message. */
  | 'IDENTITY_CONFIG_MISSING'
  /**
   * The state directory belongs to another user, or others may write it and
   * it cannot be made 0700, or identity.db or a file SQLite keeps beside it
   * (-wal, -shm, -journal) belongs to another user: the identity store in it
   * would not be Corral's alone. The message names the directory or file and
   * what to do.
   */
  | 'IDENTITY_STATE_DIR_UNSAFE'
  /** identity.db, or a file SQLite keeps beside it (-wal, -shm, -journal), is a symbolic link: it is not followed. */
  | 'IDENTITY_STORE_SYMLINK'
  | 'IDENTITY_STORE_FAILED'
  /**
   * Another process (the gateway, another corral command) held the identity
   * store's lock for longer than Corral waits (5 s). Retryable: the same
   * call may be made again once the other process lets go.
   */
  | 'IDENTITY_STORE_BUSY'
  /**
   * Too many passwords are being checked at once (each costs tens of MiB and
   * a good part of a second): refused at once, without hashing. Retryable.
   */
  | 'IDENTITY_SIGN_IN_BUSY';

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  readonly code: IdentityErrorCode;

  constructor(code: IdentityErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** Codes meaning the credential itself is not genuine (forged, tampered, unsigned, unreadable). */
export const FORGED_TOKEN_CODES: ReadonlySet<IdentityErrorCode> = new Set([
  'IDENTITY_TOKEN_MALFORMED',
  'IDENTITY_TOKEN_UNSIGNED',
  'IDENTITY_TOKEN_ALGORITHM',
  'IDENTITY_TOKEN_KEY_UNKNOWN',
  'IDENTITY_TOKEN_SIGNATURE_INVALID',
]);
