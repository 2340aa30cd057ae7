import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cachedPolicy, rememberPolicy } from './cache.ts';
import { loadPolicyFile } from './file.ts';
import { parsePolicyText } from './load.ts';

const TEXT = 'runtime: [shell]\nnetwork:\n  egress: none\n';
const digest = (text: string) => createHash('sha256').update(text).digest('hex');

function setup(text = TEXT) {
  const dir = mkdtempSync(join(tmpdir(), 'corral-policy-cache-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(file, text);
  return { dir, file, cache: join(dir, 'cache') };
}

/** An entry file of the cache (the one that is not the key). */
function entryOf(cache: string): string {
  const name = readdirSync(cache).find((n) => n.endsWith('.json'));
  assert.ok(name, 'the cache holds an entry');
  return join(cache, name);
}

describe('the validated-policy cache', () => {
  it('never writes through a link planted where its temporary file would go (regression: named by the process id, and followed)', () => {
    const { cache } = setup();
    rememberPolicy(cache, digest('first'), parsePolicyText(TEXT));
    const victim = join(mkdtempSync(join(tmpdir(), 'corral-policy-cache-victim-')), 'victim');
    writeFileSync(victim, 'untouched');
    symlinkSync(victim, join(cache, `${digest(TEXT)}.json.${process.pid}.tmp`));
    rememberPolicy(cache, digest(TEXT), parsePolicyText(TEXT));
    assert.equal(readFileSync(victim, 'utf8'), 'untouched');
    assert.deepEqual(cachedPolicy(cache, digest(TEXT)), parsePolicyText(TEXT));
  });

  it('remembers a policy once validated and returns the same policy for the same text', async () => {
    const { dir, file, cache } = setup();
    const first = await loadPolicyFile(file, dir, { cacheDir: cache });
    assert.deepEqual(cachedPolicy(cache, digest(TEXT)), first.policy);
    const second = await loadPolicyFile(file, dir, { cacheDir: cache });
    assert.deepEqual(second.policy, first.policy);
    assert.deepEqual(second.policy, parsePolicyText(TEXT));
  });

  it('answers a load from the entry, without parsing the text again', async () => {
    const { dir, file, cache } = setup();
    const remembered = parsePolicyText('runtime: [python]\n');
    rememberPolicy(cache, digest(TEXT), remembered);
    assert.deepEqual((await loadPolicyFile(file, dir, { cacheDir: cache })).policy.runtime, ['python']);
  });

  it('keeps its key and entries owner-only', async () => {
    const { dir, file, cache } = setup();
    await loadPolicyFile(file, dir, { cacheDir: cache });
    for (const name of readdirSync(cache)) {
      assert.equal(statSync(join(cache, name)).mode & 0o077, 0, `${name} is owner-only`);
    }
  });

  describe('when the policy text changed', () => {
    it('validates the new text', async () => {
      const { dir, file, cache } = setup();
      await loadPolicyFile(file, dir, { cacheDir: cache });
      writeFileSync(file, 'runtime: [node]\n');
      assert.deepEqual((await loadPolicyFile(file, dir, { cacheDir: cache })).policy.runtime, ['node']);
    });

    it('still refuses an invalid policy, and remembers nothing for it', async () => {
      const { dir, file, cache } = setup('runtime: [shell]\nnetwork: { egress: everything }\n');
      await assert.rejects(loadPolicyFile(file, dir, { cacheDir: cache }), { code: 'CONTAIN_POLICY_INVALID' });
      assert.equal(cachedPolicy(cache, digest(readFileSync(file, 'utf8'))), undefined);
    });
  });

  describe('when an entry was tampered with', () => {
    it('ignores an entry whose policy was edited to grant more, and validates the file', async () => {
      const { dir, file, cache } = setup();
      await loadPolicyFile(file, dir, { cacheDir: cache });
      const entry = entryOf(cache);
      writeFileSync(entry, readFileSync(entry, 'utf8').replace('"egress":"none"', '"egress":{"allow":["*:443"]}'));
      assert.equal(cachedPolicy(cache, digest(TEXT)), undefined);
      assert.equal((await loadPolicyFile(file, dir, { cacheDir: cache })).policy.network.egress, 'none');
    });

    it('ignores an entry copied from another cache (made under another key)', async () => {
      const a = setup();
      const b = setup();
      rememberPolicy(a.cache, digest(TEXT), parsePolicyText('runtime: [python]\n'));
      await loadPolicyFile(b.file, b.dir, { cacheDir: b.cache });
      copyFileSync(entryOf(a.cache), entryOf(b.cache));
      assert.deepEqual((await loadPolicyFile(b.file, b.dir, { cacheDir: b.cache })).policy.runtime, ['shell']);
    });

    it('ignores an entry cut short or holding no MAC', async () => {
      const { dir, file, cache } = setup();
      await loadPolicyFile(file, dir, { cacheDir: cache });
      for (const damaged of ['', '\n{}', `${'0'.repeat(64)}\n{"runtime":["python"]}`, 'not a cache entry at all']) {
        writeFileSync(entryOf(cache), damaged);
        assert.equal(cachedPolicy(cache, digest(TEXT)), undefined, JSON.stringify(damaged));
        assert.deepEqual((await loadPolicyFile(file, dir, { cacheDir: cache })).policy.runtime, ['shell']);
      }
    });

    it('believes no entry while its key is readable by others', async () => {
      const { dir, file, cache } = setup();
      rememberPolicy(cache, digest(TEXT), parsePolicyText('runtime: [python]\n'));
      chmodSync(join(cache, 'key'), 0o644);
      assert.deepEqual((await loadPolicyFile(file, dir, { cacheDir: cache })).policy.runtime, ['shell']);
    });
  });

  describe('when the cache folder cannot be used', () => {
    it('loads the policy all the same', async () => {
      const { dir, file } = setup();
      const notADir = join(dir, 'policy.yaml');
      assert.deepEqual((await loadPolicyFile(file, dir, { cacheDir: join(notADir, 'cache') })).policy, parsePolicyText(TEXT));
    });
  });
});
