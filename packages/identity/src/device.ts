// Node (device) identity in OpenClaw's scheme, so a Corral node and an
// upstream OpenClaw node are the same kind of principal: an Ed25519 key pair;
// the device id is the lowercase hex SHA-256 of the raw 32-byte public key;
// the public key travels as base64url (no padding) of those 32 bytes; the
// device proves itself by signing a `v3|…` string that includes the server's
// challenge nonce. (OpenClaw gateway protocol, device-auth; see
// docs/identity-and-policy.md.)
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { IdentityError } from './errors.ts';

/** The 12-byte DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
/** How far `signedAt` may be from the verifier's clock (OpenClaw: 120 s). */
export const DEVICE_SIGNATURE_SKEW_MS = 120_000;

export interface DeviceIdentity {
  deviceId: string;
  /** base64url of the raw 32-byte public key. */
  publicKey: string;
  /** PKCS#8 PEM; stays on the machine. */
  privateKeyPem: string;
}

/** The fields a device signature covers (the connect request's values). */
export interface DeviceAuthFields {
  deviceId: string;
  clientId: string;
  clientMode: string;
  role: string;
  scopes: readonly string[];
  signedAtMs: number;
  /** `auth.token ?? auth.deviceToken ?? auth.bootstrapToken ?? ""`. */
  token: string;
  nonce: string;
  platform?: string;
  deviceFamily?: string;
}

/** The device part of a connect request. */
export interface DeviceProof {
  id: string;
  /** base64url raw key (PEM is accepted too). */
  publicKey: string;
  signature: string;
  signedAt: number;
  nonce: string;
}

export function createDeviceIdentity(): DeviceIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  return {
    deviceId: deviceIdFor(raw),
    publicKey: raw.toString('base64url'),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}

/** Lowercase hex SHA-256 of the raw 32-byte public key. */
export function deviceIdFor(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex');
}

/** Trimmed, ASCII A–Z lowercased, "" when absent (OpenClaw's normalisation of platform and deviceFamily). */
function normalise(value: string | undefined): string {
  return (value ?? '').trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** The v3 string a device signs. */
export function deviceAuthPayloadV3(f: DeviceAuthFields): string {
  return ['v3', f.deviceId, f.clientId, f.clientMode, f.role, f.scopes.join(','), String(f.signedAtMs), f.token, f.nonce, normalise(f.platform), normalise(f.deviceFamily)].join('|');
}

/** The legacy v2 string (no platform, no device family). */
export function deviceAuthPayloadV2(f: DeviceAuthFields): string {
  return ['v2', f.deviceId, f.clientId, f.clientMode, f.role, f.scopes.join(','), String(f.signedAtMs), f.token, f.nonce].join('|');
}

/** Signs the v3 payload; base64url signature. */
export function signDeviceAuth(privateKeyPem: string, fields: DeviceAuthFields): string {
  return sign(null, Buffer.from(deviceAuthPayloadV3(fields), 'utf8'), createPrivateKey(privateKeyPem)).toString('base64url');
}

/**
 * Verifies a device proof for this connection's challenge `expectedNonce`,
 * in OpenClaw's order: public key, id-vs-key, signedAt skew, nonce present,
 * nonce match, signature (v3, then legacy v2). Returns the version that
 * verified, the raw key and the device id it proved, read from `proof` once:
 * use that id, never `proof.id` read again. Throws IDENTITY_DEVICE_* codes.
 */
export function verifyDeviceProof(
  proof: DeviceProof,
  context: { clientId: string; clientMode: string; role: string; scopes: readonly string[]; token: string; platform?: string; deviceFamily?: string; expectedNonce: string; now?: number },
): { version: 'v3' | 'v2'; publicKey: string; deviceId: string } {
  const p = snapshotProof(proof);
  const raw = parsePublicKey(p.publicKey);
  if (deviceIdFor(raw) !== p.id) throw new IdentityError('IDENTITY_DEVICE_ID_MISMATCH', 'the device id is not the hash of its public key');
  const now = context.now ?? Date.now();
  if (Math.abs(now - p.signedAt) > DEVICE_SIGNATURE_SKEW_MS) throw new IdentityError('IDENTITY_DEVICE_SIGNATURE_EXPIRED', 'the device signature is stale');
  if (p.nonce === '') throw new IdentityError('IDENTITY_DEVICE_NONCE_REQUIRED', 'the device signature must cover the challenge nonce');
  if (!safeEqual(p.nonce, context.expectedNonce)) throw new IdentityError('IDENTITY_DEVICE_NONCE_MISMATCH', 'the device signed another challenge');
  const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  const signature = decodeBase64url(p.signature);
  const fields: DeviceAuthFields = { ...context, deviceId: p.id, signedAtMs: p.signedAt, nonce: p.nonce };
  if (signature.length === 64) {
    if (verify(null, Buffer.from(deviceAuthPayloadV3(fields), 'utf8'), key, signature)) return { version: 'v3', publicKey: raw.toString('base64url'), deviceId: p.id };
    if (verify(null, Buffer.from(deviceAuthPayloadV2(fields), 'utf8'), key, signature)) return { version: 'v2', publicKey: raw.toString('base64url'), deviceId: p.id };
  }
  throw new IdentityError('IDENTITY_DEVICE_SIGNATURE_INVALID', 'the device signature does not verify');
}

function snapshotProof(proof: unknown): DeviceProof {
  const p = proof as Record<string, unknown> | null;
  if (typeof p !== 'object' || p === null) throw new IdentityError('IDENTITY_DEVICE_PUBLIC_KEY_INVALID', 'the device proof is missing');
  const { id, publicKey, signature, signedAt, nonce } = p;
  if (typeof publicKey !== 'string' || publicKey.length > 4096) throw new IdentityError('IDENTITY_DEVICE_PUBLIC_KEY_INVALID', 'the device public key is missing');
  if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) throw new IdentityError('IDENTITY_DEVICE_ID_MISMATCH', 'the device id must be 64 lowercase hex digits');
  if (!Number.isSafeInteger(signedAt)) throw new IdentityError('IDENTITY_DEVICE_SIGNATURE_EXPIRED', 'signedAt must be epoch milliseconds');
  if (typeof nonce !== 'string' && nonce !== undefined) throw new IdentityError('IDENTITY_DEVICE_NONCE_REQUIRED', 'the nonce must be a string');
  if (typeof signature !== 'string' || signature.length > 256) throw new IdentityError('IDENTITY_DEVICE_SIGNATURE_INVALID', 'the device signature is missing');
  return { id, publicKey, signature, signedAt: signedAt as number, nonce: (nonce as string | undefined) ?? '' };
}

/** base64url raw 32 bytes, or a PEM SPKI Ed25519 key → the raw 32 bytes. Throws IDENTITY_DEVICE_PUBLIC_KEY_INVALID. */
export function parsePublicKey(text: string): Buffer {
  if (text.includes('-----BEGIN')) {
    try {
      const key = createPublicKey(text);
      if (key.asymmetricKeyType !== 'ed25519') throw new IdentityError('IDENTITY_DEVICE_PUBLIC_KEY_INVALID', 'the device public key is not an Ed25519 key');
      return rawPublicKey(key);
    } catch (error) {
      throw new IdentityError('IDENTITY_DEVICE_PUBLIC_KEY_INVALID', 'the device public key is not an Ed25519 key', { cause: error });
    }
  }
  const raw = decodeBase64url(text);
  if (raw.length !== 32) throw new IdentityError('IDENTITY_DEVICE_PUBLIC_KEY_INVALID', 'the device public key must be 32 bytes');
  return raw;
}

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(ED25519_SPKI_PREFIX.length);
}

function decodeBase64url(text: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return Buffer.alloc(0);
  return Buffer.from(text, 'base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
