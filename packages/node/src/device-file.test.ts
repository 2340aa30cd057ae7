// The node's device key file: created once, read back, and a damaged one
// refused with NODE_DEVICE_INVALID rather than a crash or a new identity.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Worker } from 'node:worker_threads';
import { DEVICE_FILE, loadOrCreateDevice } from './host.ts';

describe('the device key file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-device-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is created the first time and read back the same afterwards', () => {
    const first = loadOrCreateDevice(join(dir, 'fresh'));
    assert.deepEqual(loadOrCreateDevice(join(dir, 'fresh')), first);
  });

  it('refuses a file that is not JSON, is null, or lacks a field, naming the file (NODE_DEVICE_INVALID)', () => {
    for (const [name, text] of [['not-json', '{'], ['null', 'null'], ['no-key', JSON.stringify({ deviceId: 'a', publicKey: 'b' })]] as const) {
      const state = join(dir, name);
      loadOrCreateDevice(state);
      writeFileSync(join(state, DEVICE_FILE), text);
      assert.throws(() => loadOrCreateDevice(state), (e: { code?: string; message?: string }) => e.code === 'NODE_DEVICE_INVALID' && e.message!.includes(join(state, DEVICE_FILE)), name);
    }
  });
});

describe('the device key file, made by two nodes starting at once on one state directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-device-race-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is made once, whole: every node reads the same identity (regression: one read half a file, or failed with EEXIST)', async () => {
    for (let round = 0; round < 5; round++) {
      const state = join(dir, `round-${round}`);
      const source = `import { workerData, parentPort } from 'node:worker_threads';
        import { loadOrCreateDevice } from ${JSON.stringify(new URL('./host.ts', import.meta.url).href)};
        try { parentPort.postMessage({ id: loadOrCreateDevice(workerData).deviceId }); } catch (e) { parentPort.postMessage({ error: e.code ?? String(e) }); }`;
      const results = await Promise.all(Array.from({ length: 6 }, () => new Promise<{ id?: string; error?: string }>((resolve, reject) => {
        const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`), { workerData: state });
        worker.once('message', resolve);
        worker.once('error', reject);
      })));
      assert.deepEqual(results.filter((r) => r.error !== undefined), [], `round ${round}`);
      assert.equal(new Set(results.map((r) => r.id)).size, 1, `round ${round}`);
      assert.deepEqual(readdirSync(state), [DEVICE_FILE], 'nothing half-written left beside it');
    }
  });

  it('says what to do about a damaged one, and about a state directory it cannot make (NODE_DEVICE_INVALID, not a bare ENOTDIR)', () => {
    const state = join(dir, 'damaged');
    loadOrCreateDevice(state);
    writeFileSync(join(state, DEVICE_FILE), '{');
    assert.throws(() => loadOrCreateDevice(state), (e: { code?: string; message?: string }) => e.code === 'NODE_DEVICE_INVALID' && /remove it/.test(e.message!));
    writeFileSync(join(dir, 'a-file'), '');
    assert.throws(() => loadOrCreateDevice(join(dir, 'a-file', 'state')), (e: { code?: string; message?: string }) => e.code === 'NODE_DEVICE_INVALID' && e.message!.includes(join(dir, 'a-file', 'state')));
  });
});
