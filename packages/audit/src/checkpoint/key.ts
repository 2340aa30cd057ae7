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

/**
 * Reads an Ed25519 public key from SPKI PEM.
 * @throws AuditError AUDIT_KEY_UNAVAILABLE when it is not one.
 */
export function publicKeyFromPem(pem: string, where: string): KeyObject {
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
