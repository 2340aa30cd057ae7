// A log keeps the witness beside it as it appends; the witness is synced to
// disk (io/witness-file.ts), and those syncs must not hold up the thread
// that appends: they run on the file system's own threads.
import assert from 'node:assert/strict';
import fs, { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { sampleEvent } from '../../test/fixtures.ts';
import { readWitness, witnessPath } from '../io/witness-file.ts';
import { openAuditLog } from './audit-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-witness-thread-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("a log's witness", () => {
  it('is written and synced without a synchronous fsync on the appending thread (each was two fsyncs on the event loop, once a second under load)', async () => {
    const fsyncSync = mock.method(fs, 'fsyncSync');
    syncBuiltinESMExports();
    try {
      const log = await openAuditLog({ stateDir: dir, checkpointEvery: 5, oneShot: true });
      for (let i = 0; i < 12; i++) await log.append(sampleEvent(i));
      await log.checkpoint();
      await log.close();
      assert.equal(fsyncSync.mock.callCount(), 0);
    } finally {
      fsyncSync.mock.restore();
      syncBuiltinESMExports();
    }
    assert.equal(readWitness(witnessPath(dir))?.size, 12);
  });
});
