// The node's state directory, as another user of the machine sees it: its
// device key (whoever reads it can act as this node), its policy (whoever
// changes or removes it decides what runs), the receipt key it pinned
// (whoever replaces it signs approvals). None of them is taken from a place
// another user could write, nor the key when others could read it.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { DEVICE_FILE, loadOrCreateDevice, RECEIPT_KEY_FILE } from './host.ts';
import { LOCAL_POLICY_FILE, LocalPolicy } from './local-policy.ts';
import { readStateFile } from './whole-files.ts';

const root = process.getuid?.() === 0;
/** A user id other than this one's (nobody's), for files root gives away. */
const OTHER_UID = 65534;
const modeOf = (path: string) => statSync(path).mode & 0o777;

describe("the node's state directory, when others may enter it or write it", { skip: process.getuid === undefined && 'no user ids on this platform' }, () => {
  for (const loose of [0o777, 0o775, 0o755]) {
    it(`is made the node's alone (0700) from ${loose.toString(8)} when the node starts, so nobody else lists it, removes its policy (the default runs everything) or plants a file there`, () => {
      const dir = join(tempDir('corral-state-files-'), 'node');
      mkdirSync(dir);
      chmodSync(dir, loose);
      loadOrCreateDevice(dir);
      assert.equal(modeOf(dir), 0o700);
    });
  }

  it('is refused when another user owns it (NODE_DEVICE_INVALID, naming it), and no device key is made in it', { skip: !root && 'only root can give a folder to another user' }, () => {
    const dir = join(tempDir('corral-state-files-'), 'theirs');
    mkdirSync(dir, { mode: 0o700 });
    chownSync(dir, OTHER_UID, OTHER_UID);
    assert.throws(() => loadOrCreateDevice(dir), (e: { code?: string; message: string }) => e.code === 'NODE_DEVICE_INVALID' && e.message.includes(dir) && /another user/.test(e.message));
    assert.throws(() => statSync(join(dir, DEVICE_FILE)), { code: 'ENOENT' });
  });
});

describe('the device key, when others may read it', { skip: process.getuid === undefined && 'no user ids on this platform' }, () => {
  it('is refused (NODE_DEVICE_INVALID, naming it): whoever read it can act as this node (regression: a key restored 0644 was used as it was)', () => {
    const dir = tempDir('corral-state-files-');
    loadOrCreateDevice(dir);
    chmodSync(join(dir, DEVICE_FILE), 0o644);
    assert.throws(() => loadOrCreateDevice(dir), (e: { code?: string; message: string }) => e.code === 'NODE_DEVICE_INVALID' && e.message.includes(join(dir, DEVICE_FILE)) && /read by other users/.test(e.message));
  });

  it('is made 0600 the first time, and read back', () => {
    const dir = tempDir('corral-state-files-');
    const made = loadOrCreateDevice(dir);
    assert.equal(modeOf(join(dir, DEVICE_FILE)), 0o600);
    assert.equal(loadOrCreateDevice(dir).deviceId, made.deviceId);
  });
});

describe('the node policy, when others may change it', { skip: process.getuid === undefined && 'no user ids on this platform' }, () => {
  const full = { version: 1, defaults: { security: 'full', ask: 'off' } };

  for (const loose of [0o666, 0o664, 0o646]) {
    it(`is refused at mode ${loose.toString(8)}, and the node runs nothing until it is fixed (NODE_POLICY_INVALID): what another user wrote there is never the node's policy`, () => {
      const dir = tempDir('corral-state-files-');
      writeFileSync(join(dir, LOCAL_POLICY_FILE), JSON.stringify(full));
      chmodSync(join(dir, LOCAL_POLICY_FILE), loose);
      assert.throws(() => new LocalPolicy(dir), (e: { code?: string; message: string }) => e.code === 'NODE_POLICY_INVALID' && /changed by other users/.test(e.message));
    });
  }

  it('is taken when others may only read it', () => {
    const dir = tempDir('corral-state-files-');
    writeFileSync(join(dir, LOCAL_POLICY_FILE), JSON.stringify(full));
    chmodSync(join(dir, LOCAL_POLICY_FILE), 0o644);
    assert.equal(new LocalPolicy(dir).current.defaults.security, 'full');
  });
});

describe('a state file that belongs to another user', { skip: !root && 'only root can give a file to another user' }, () => {
  it('is refused though nobody else may write it now: its owner could have written anything there, or may change it back (the policy NODE_POLICY_INVALID, the pinned receipt key as the read asks)', () => {
    const dir = tempDir('corral-state-files-');
    writeFileSync(join(dir, LOCAL_POLICY_FILE), JSON.stringify({ version: 1, defaults: { security: 'full' } }), { mode: 0o600 });
    chownSync(join(dir, LOCAL_POLICY_FILE), OTHER_UID, OTHER_UID);
    assert.throws(() => new LocalPolicy(dir), (e: { code?: string; message: string }) => e.code === 'NODE_POLICY_INVALID' && /another user/.test(e.message));
    writeFileSync(join(dir, RECEIPT_KEY_FILE), 'planted', { mode: 0o600 });
    chownSync(join(dir, RECEIPT_KEY_FILE), OTHER_UID, OTHER_UID);
    assert.throws(() => readStateFile(join(dir, RECEIPT_KEY_FILE), 'NODE_RUN_DENIED'), (e: { code?: string; message: string }) => e.code === 'NODE_RUN_DENIED' && /another user/.test(e.message));
  });
});
