// Opening a log to read it (CLI tail, show, verify, proofs, export) without
// creating anything: no database or key is made by reading.
import type { KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { AuditError } from '../errors.ts';
import { loadPublicKeyFile, loadSigningKey } from '../io/key-file.ts';
import { SqliteStore } from '../store/sqlite.ts';
import type { AuditStore, LogMeta } from '../store/store.ts';
import { DB_FILE } from './audit-log.ts';

export interface OpenAuditReaderOptions {
  stateDir: string;
  postgresUrl?: string;
  /** Trust this public key file instead of the state directory's signing key. */
  publicKeyFile?: string;
}

export interface AuditReader {
  store: AuditStore;
  meta: LogMeta;
  /**
   * Resolves the trusted public key (loaded on first use): the `publicKeyFile`
   * given, else the state directory's signing key, refused unless the log was created with it.
   * @throws AuditError AUDIT_KEY_UNAVAILABLE
   */
  publicKey(): KeyObject;
  close(): Promise<void>;
}

/**
 * The state directory's key, when it is the one the log was created with (as
 * openAuditLog checks): a key swapped in would be handed out as the log's.
 * @throws AuditError AUDIT_KEY_UNAVAILABLE naming both key ids.
 */
function ownKey(stateDir: string, where: string, meta: LogMeta): KeyObject {
  const key = loadSigningKey(stateDir);
  if (key.keyId !== meta.keyId) {
    throw new AuditError('AUDIT_KEY_UNAVAILABLE', `the audit log at ${where} is signed by key ${meta.keyId}, but the key at ${key.path} is ${key.keyId}`);
  }
  return key.publicKey;
}

/**
 * @throws AuditError AUDIT_STORE_UNAVAILABLE (no log there), AUDIT_STORE_FOREIGN.
 */
export async function openAuditReader(options: OpenAuditReaderOptions): Promise<AuditReader> {
  const store: AuditStore = options.postgresUrl
    ? await (await import('../store/postgres.ts')).PostgresStore.connect({ url: options.postgresUrl })
    : new SqliteStore({ path: join(options.stateDir, DB_FILE), create: false });
  let meta: LogMeta | null;
  try {
    meta = await store.readMeta();
  } catch (error) {
    await store.close();
    throw error;
  }
  if (!meta) {
    await store.close();
    throw new AuditError('AUDIT_STORE_UNAVAILABLE', `no audit log in ${store.where} yet`);
  }
  let key: KeyObject | undefined;
  return {
    store,
    meta,
    publicKey() {
      key ??= options.publicKeyFile ? loadPublicKeyFile(options.publicKeyFile) : ownKey(options.stateDir, store.where, meta);
      return key;
    },
    close: () => store.close(),
  };
}
