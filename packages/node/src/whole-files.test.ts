// Files the node writes whole: made once, or replaced, never seen half-written,
// never written through a link someone planted beside them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { DeviceTokens } from './device-tokens.ts';
import { LOCAL_POLICY_FILE, LocalPolicy } from './local-policy.ts';
import { createOnce, replaceFile } from './whole-files.ts';

/** A new directory for one test, removed once all this file's tests have run. */
const folder = () => tempDir('corral-whole-');

describe('files the node writes whole', () => {
  it('replaces a file in one step, mode 0600, leaving no temporary file behind', () => {
    const dir = folder();
    const path = join(dir, 'f.json');
    writeFileSync(path, 'old\n');
    replaceFile(path, 'new\n');
    assert.equal(readFileSync(path, 'utf8'), 'new\n');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(dir), ['f.json']);
  });

  it('makes a file once: a second maker reads the first one\'s text', () => {
    const path = join(folder(), 'key');
    assert.deepEqual(createOnce(path, () => 'first'), { text: 'first', created: true });
    assert.deepEqual(createOnce(path, () => 'second'), { text: 'first', created: false });
  });

  it('a remote change to the node policy is not written through a link planted at the temporary name it used to use', () => {
    const dir = folder();
    const outside = join(folder(), 'not-the-policy');
    writeFileSync(outside, 'untouched\n');
    symlinkSync(outside, join(dir, `${LOCAL_POLICY_FILE}.tmp`));
    const policy = new LocalPolicy(dir);
    policy.replace({ version: 1, defaults: { security: 'deny' } }, policy.snapshot().hash);
    assert.equal(readFileSync(outside, 'utf8'), 'untouched\n');
    assert.equal(lstatSync(join(dir, LOCAL_POLICY_FILE)).isFile(), true);
    assert.equal(policy.current.defaults.security, 'deny');
  });

  it('a device token is not written through a link planted at the temporary name it used to use', () => {
    const dir = folder();
    const outside = join(folder(), 'not-the-tokens');
    writeFileSync(outside, 'untouched\n');
    symlinkSync(outside, join(dir, `gateway-device-tokens.json.${process.pid}.tmp`));
    const tokens = new DeviceTokens(dir);
    tokens.set('ws://127.0.0.1:1', 'token-1');
    assert.equal(readFileSync(outside, 'utf8'), 'untouched\n');
    assert.equal(new DeviceTokens(dir).get('ws://127.0.0.1:1'), 'token-1');
  });

  it('leaves the node policy as it was when the disk takes only part of a remote change (a write cut short by a full disk or a file size limit), never a policy cut in two (regression: the part written was renamed into place)', { skip: spawnSync('prlimit', ['--version']).error !== undefined && 'no prlimit here' }, () => {
    const dir = folder();
    const file = join(dir, LOCAL_POLICY_FILE);
    const old = `${JSON.stringify({ version: 1, defaults: { security: 'full' } })}\n`;
    writeFileSync(file, old, { mode: 0o600 });
    // A real process whose files may hold at most 100 bytes: a write of more is written in part, and said to be (no error).
    const change = `import { LocalPolicy } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, 'local-policy.ts')).href)};
      const policy = new LocalPolicy(${JSON.stringify(dir)});
      const patterns = Array.from({ length: 20 }, (_, i) => ({ pattern: 'program-' + i }));
      try { policy.replace({ version: 1, defaults: { security: 'allowlist' }, agents: { '*': { allowlist: patterns } } }, policy.snapshot().hash); console.log('written'); }
      catch (error) { console.log(error.code); }`;
    const child = spawnSync('prlimit', ['--fsize=100', process.execPath, '--input-type=module', '-e', change], { encoding: 'utf8' });
    assert.equal(child.status, 0, child.stderr);
    assert.notEqual(child.stdout.trim(), 'written');
    assert.equal(readFileSync(file, 'utf8'), old);
    assert.deepEqual(readdirSync(dir), [LOCAL_POLICY_FILE], 'a temporary file was left behind');
  });
});
