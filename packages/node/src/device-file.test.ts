// The node's device key file: created once, read back, and a damaged one
// refused with NODE_DEVICE_INVALID rather than a crash or a new identity.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
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
