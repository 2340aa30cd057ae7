// Ed25519 keys for checkpoints: creation, the public key an auditor takes
// away (SPKI PEM) and its key id. No file access here (see io/key-file.ts).
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { AuditError } from '../errors.ts';

/** A fresh Ed25519 key pair. */
export function generateSigningKey(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ed25519');
}

/** Key id: the first 16 bytes of SHA-256 over the raw 32-byte public key, hex. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der.subarray(der.length - 32)).digest('hex').slice(0, 32);
}

/**
 * Reads an Ed25519 private key from PKCS#8 PEM.
 * @throws AuditError AUDIT_KEY_UNAVAILABLE when it is not one.
 */
export function privateKeyFromPem(pem: string, where: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `${where} is not a PEM private key`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditError('AUDIT_KEY_UNAVAILABLE', `${where} is a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

/** The label of each PEM block's BEGIN line (RFC 7468 section 3). */
const PEM_BEGIN = /-----BEGIN ([^\r\n-]*)-----/g;

/**
 * Reads an Ed25519 public key from SPKI PEM. Guards: the text holds no
 * private key (Node would derive a public key from one; whoever holds it
 * can sign anything, and it is never repeated in the error); it holds exactly
 * one PEM block, labelled PUBLIC KEY (of two keys, OpenSSL takes the first:
 * which one is trusted must not depend on order); that block is an Ed25519
 * public key. Text outside the block is allowed (RFC 7468 section 2).
 *
 * @throws AuditError AUDIT_KEY_UNAVAILABLE when it is not one.
 */
export function publicKeyFromPem(pem: string, where: string): KeyObject {
  const labels = Array.from(pem.matchAll(PEM_BEGIN), (m) => m[1] as string);
  if (labels.some((label) => label.includes('PRIVATE'))) {
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `${where} holds a private key, not the public key: give the file \`corral audit public-key\` prints, and keep the private key secret`);
  }
  if (labels.length !== 1 || labels[0] !== 'PUBLIC KEY') {
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `${where} must hold exactly one PEM block, -----BEGIN PUBLIC KEY-----; it holds ${labels.length} PEM block(s)${labels.length === 1 ? ' of another kind' : ''}`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (error) {
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `${where} is not a PEM public key`, { cause: error });
  }
  if (key.type !== 'public' || key.asymmetricKeyType !== 'ed25519') throw new AuditError('AUDIT_KEY_UNAVAILABLE', `${where} is not an Ed25519 public key`);
  return key;
}

/** The public key as SPKI PEM text. */
export function publicKeyPem(key: KeyObject): string {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'pem' }) as string;
}
