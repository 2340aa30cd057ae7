// Holding a policy directory's activation lock from a test, as another
// process activating a set (a second gateway, `corral approvals revoke`)
// would: a SQLite write lock in `<dir>.versions/activation.lock`.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/** Takes the activation lock of policy directory `dir`; gives a function that lets it go (once, however often called). */
export function holdActivationLock(dir: string): () => void {
  mkdirSync(`${dir}.versions`, { recursive: true });
  const db = new DatabaseSync(join(`${dir}.versions`, 'activation.lock'));
  db.exec('BEGIN IMMEDIATE');
  return () => {
    if (!db.isOpen) return;
    if (db.isTransaction) db.exec('ROLLBACK');
    db.close();
  };
}
