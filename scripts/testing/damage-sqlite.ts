// Damages one table of a SQLite file the way a bad disk would: a page of it
// overwritten with junk, so the file still opens and the schema still reads.
// Its root page: any statement on that table finds it malformed. Its last
// leaf page: the rows kept there are malformed, and a reader that goes
// through the table in order reads the rows before them first.
import { closeSync, openSync, writeSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';

/**
 * Overwrites a page of `table` in the SQLite file at `path` (no connection
 * may hold it open): its root page, or with `at: 'last-leaf'` the leaf page
 * holding its last rows (rowid order), which must not be the root (a table
 * of more than a page).
 */
export function damageTable(path: string, table: string, options: { at?: 'root' | 'last-leaf' } = {}): void {
  const db = new DatabaseSync(path);
  let page: number;
  let pageSize: number;
  try {
    // dbstat's paths are fixed-width hexadecimal child indexes, so the greatest leaf path is the table's rightmost leaf.
    page =
      options.at === 'last-leaf'
        ? (db.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' AND path != '/' ORDER BY path DESC LIMIT 1").get(table) as { pageno: number }).pageno
        : (db.prepare('SELECT rootpage FROM sqlite_schema WHERE name = ?').get(table) as { rootpage: number }).rootpage;
    ({ page_size: pageSize } = db.prepare('PRAGMA page_size').get() as { page_size: number });
  } finally {
    db.close();
  }
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, Buffer.alloc(pageSize, 0x41), 0, pageSize, (page - 1) * pageSize);
  } finally {
    closeSync(fd);
  }
}
