// Every command that opens the gateway's state, given a gateway.db it cannot
// use, says which file and what to do, exits 3 (the host, not the request)
// with GATEWAY_STORE_FAILED, and prints no stack trace.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { corral, tempStateDir } from '../../test/corral.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const TOKEN = { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' };

/** A state directory with an identity store and, in place of gateway.db, what `spoil` puts there. */
async function spoiled(spoil: (path: string) => void): Promise<string> {
  const dir = tempStateDir();
  dirs.push(dir);
  assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'invoice-bot', '--process', 'p', '--owner', 'a@example.com'])).code, 0);
  spoil(join(dir, 'gateway.db'));
  return dir;
}

const notADatabase = (path: string) => writeFileSync(path, 'not a database: text long enough for SQLite to read a header from it\n', { mode: 0o600 });

describe('corral gateway, when gateway.db is not a database', () => {
  it('exits 3 naming the file, why and what to do, with GATEWAY_STORE_FAILED and no stack trace (regression: exit 2 as bad usage, GATEWAY_CONFIG_INVALID, "the gateway state could not be opened")', async () => {
    const dir = await spoiled(notADatabase);
    const r = await corral(['--state-dir', dir, 'gateway', '--port', '0'], { env: TOKEN });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.includes(`corral: cannot open the gateway state ${join(dir, 'gateway.db')}: it is not a database, or is damaged: restore it from a backup, or move it aside`), r.stderr);
    assert.match(r.stderr, /\[GATEWAY_STORE_FAILED\]\n$/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });

  it('under --json, gives the code and the message as an error document', async () => {
    const dir = await spoiled(notADatabase);
    const r = await corral(['--state-dir', dir, 'gateway', '--port', '0', '--json'], { env: TOKEN });
    assert.equal(r.code, 3, r.stderr);
    const { error } = JSON.parse(r.stdout);
    assert.equal(error.code, 'GATEWAY_STORE_FAILED');
    assert.ok(error.message.startsWith(`cannot open the gateway state ${join(dir, 'gateway.db')}: `), error.message);
  });
});

describe('corral gateway, when a directory stands in the place of gateway.db', () => {
  it('exits 3 saying the file is a directory, with GATEWAY_STORE_FAILED (regression: exit 2, GATEWAY_CONFIG_INVALID)', async () => {
    const dir = await spoiled((path) => mkdirSync(path));
    const r = await corral(['--state-dir', dir, 'gateway', '--port', '0'], { env: TOKEN });
    assert.equal(r.code, 3, r.stderr);
    assert.ok(r.stderr.includes(`cannot open the gateway state ${join(dir, 'gateway.db')}: it is a directory, not a file: move it aside`), r.stderr);
    assert.match(r.stderr, /\[GATEWAY_STORE_FAILED\]\n$/);
  });
});

describe('corral approvals list and nodes list, when gateway.db cannot be opened', () => {
  it('exit 3 naming the file and what to do, with GATEWAY_STORE_FAILED under --json', async () => {
    for (const spoil of [notADatabase, (path: string) => mkdirSync(path)]) {
      const dir = await spoiled(spoil);
      for (const args of [['approvals', 'list'], ['nodes', 'list']]) {
        const r = await corral(['--state-dir', dir, ...args, '--json']);
        assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
        const { error } = JSON.parse(r.stdout);
        assert.equal(error.code, 'GATEWAY_STORE_FAILED');
        assert.ok(error.message.startsWith(`cannot open the gateway state ${join(dir, 'gateway.db')}: it is `), error.message);
        assert.doesNotMatch(r.stderr, /^\s+at /m);
      }
    }
  });
});
