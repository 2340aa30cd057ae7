// The verifiable export's edges that a real log is too slow to reach in a test:
// a store that answers with what a long-lived log holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import type { AuditStore } from '../store/store.ts';
import { exportJsonl } from './jsonl.ts';

/** A log of `size` records whose checkpoints cover seq 0 … size-2 one record at a time (a one-shot writer signs one per run). */
function manyCheckpoints(size: number): AuditStore {
  const checkpoints: SignedCheckpoint[] = Array.from({ length: size - 1 }, (_, i) => ({ size: i + 1, root: 'ab'.repeat(32), time: '2026-01-01T00:00:00.000Z', keyId: 'cd'.repeat(16), signature: 'A'.repeat(86) + '==' }));
  const store = {
    head: async () => ({ size }),
    checkpoints: async () => checkpoints,
    checkpointFor: async (n: number) => checkpoints.find((c) => c.size >= n) ?? null,
    async *scanChain() {},
  };
  return store as unknown as AuditStore;
}

describe('exportJsonl', () => {
  describe('when a live log holds 200,000 checkpoints and a newest record none covers yet', () => {
    it('leaves that record out and says which, instead of overflowing the stack', async () => {
      const unsealed: [number, number][] = [];
      const lines = exportJsonl(manyCheckpoints(200_001), 'cd'.repeat(16), {}, (from, to) => unsealed.push([from, to]))[Symbol.asyncIterator]();
      const header = JSON.parse(((await lines.next()).value as string) ?? 'null');
      await lines.return?.();
      assert.deepEqual(unsealed, [[200_000, 200_001]]);
      assert.equal(header.export.start.size, 0);
    });
  });
});
