// The checkpoint-signing key on disk: created on first use under the state
// directory, owner-only (0600), and refused when others can read it.
import type { KeyObject } from 'node:crypto';
import { createPublicKey } from 'node:crypto';
import { chmodSync, closeSync, constants, existsSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKey, keyIdOf, privateKeyFromPem, publicKeyFromPem, publicKeyPem } from '../checkpoint/key.ts';
import { AuditError } from '../errors.ts';
import { NotRegularFile, readBoundedText, TooLarge } from './bounded-read.ts';

export const KEY_FILE = 'audit-signing-key.pem';
export const PUBLIC_KEY_FILE = 'audit-signing-key.pub.pem';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  path: string;
}

/**
 * Loads the signing key from `stateDir`, creating it (and the directory, 0700)
 * when absent, with the public key beside it (PUBLIC_KEY_FILE).
 * @throws AuditError AUDIT_KEY_UNAVAILABLE as loadSigningKey, or when either cannot be written.
 */
export function loadOrCreateSigningKey(stateDir: string): SigningKey {
  const path = join(stateDir, KEY_FILE);
  if (existsSync(path)) return loadSigningKey(stateDir);
  let created: KeyObject | undefined;
  // Written whole under a name of its own, then linked into place: a process
  // opening the log at the same moment finds no key or a whole one, never the
  // half-written file it refused as "not a PEM private key".
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateSigningKey();
    rmSync(tmp, { force: true });
    writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    linkSync(tmp, path);
    created = publicKey;
  } catch (error) {
    // EEXIST: another process created the key meanwhile; it writes the public key.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AuditError('AUDIT_KEY_UNAVAILABLE', `cannot create the audit signing key at ${path}: ${(error as Error).message}`, { cause: error });
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  if (created) writePublicKeyFile(stateDir, created);
  return loadSigningKey(stateDir);
}

/**
 * Writes the public key an auditor takes away beside the private key: under a
 * name of its own (created, never opened as found), then renamed into place,
 * so a symbolic link planted at PUBLIC_KEY_FILE is replaced, never written
 * through (the file it names, overwritten with a PEM).
 */
function writePublicKeyFile(stateDir: string, publicKey: KeyObject): void {
  const target = join(stateDir, PUBLIC_KEY_FILE);
  const tmp = `${target}.${process.pid}.tmp`;
  try {
    rmSync(tmp, { force: true });
    writeFileSync(tmp, publicKeyPem(publicKey), { mode: 0o644, flag: 'wx' });
    renameSync(tmp, target);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `cannot write the audit public key at ${target}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

/**
 * Loads the signing key from `stateDir`. Guards, on the one descriptor read:
 * a regular file; owned by this process's user (its owner can read it and
 * sign for the log, and replace it); readable by nobody else.
 * @throws AuditError AUDIT_KEY_UNAVAILABLE when missing, unreadable, not a regular file, another
 *   user's, readable by others, or not Ed25519.
 */
export function loadSigningKey(stateDir: string): SigningKey {
  const path = join(stateDir, KEY_FILE);
  let pem: string;
  let fd: number | undefined;
  try {
    // Without blocking: a FIFO planted there would hold the open until something wrote to it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const found = fstatSync(fd);
    if (!found.isFile()) throw new AuditError('AUDIT_KEY_UNAVAILABLE', `the audit signing key ${path} is not a regular file`);
    const uid = process.getuid?.();
    if (uid !== undefined && found.uid !== uid) {
      throw new AuditError(
        'AUDIT_KEY_UNAVAILABLE',
        `the audit signing key ${path} belongs to another user (uid ${found.uid}), who can read it and sign for the log: run Corral as that user, or make it this user's (uid ${uid}); to verify the log as another user, trust its public key instead (--public-key)`,
      );
    }
    const mode = found.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new AuditError('AUDIT_KEY_UNAVAILABLE', `the audit signing key ${path} is readable by others (mode ${mode.toString(8)}); make it owner-only: chmod 600 ${path}`);
    }
    pem = readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof AuditError) throw error;
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `no audit signing key at ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const privateKey = privateKeyFromPem(pem, path);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), path };
}

/**
 * Loads a public key an auditor was given (SPKI PEM).
 * @throws AuditError AUDIT_KEY_UNAVAILABLE when missing, not a regular file (a FIFO, a
 *   socket, a device, a directory: refused before it is read), or not an Ed25519 public key.
 */
export function loadPublicKeyFile(path: string): KeyObject {
  let pem: string;
  try {
    pem = readBoundedText(path);
  } catch (error) {
    if (error instanceof NotRegularFile) {
      throw new AuditError('AUDIT_KEY_UNAVAILABLE', `cannot read the public key ${path}: ${error.message}; save the PEM public key to a file and give its path`, { cause: error });
    }
    const why = error instanceof TooLarge ? `it is ${error.message}, not a public key` : ((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `cannot read the public key ${path}: ${why}`, { cause: error });
  }
  return publicKeyFromPem(pem, path);
}
