// Damages one table of a SQLite file the way a bad disk would: its root page
// overwritten with junk, so the file still opens and the schema still reads,
// but any statement on that table finds it malformed.
import { closeSync, openSync, writeSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';

/** Overwrites the root page of `table` in the SQLite file at `path` (no connection may hold it open). */
export function damageTable(path: string, table: string): void {
  const db = new DatabaseSync(path);
  let rootpage: number;
  let pageSize: number;
  try {
    ({ rootpage } = db.prepare('SELECT rootpage FROM sqlite_schema WHERE name = ?').get(table) as { rootpage: number });
    ({ page_size: pageSize } = db.prepare('PRAGMA page_size').get() as { page_size: number });
  } finally {
    db.close();
  }
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(pageSize, 0x41), 0, pageSize, (rootpage - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}
