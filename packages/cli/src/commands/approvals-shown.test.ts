// corral approvals list shows what an approver binds to (the working
// directory, each environment value by its fingerprint), never a value,
// and reads the approvals a bounded page at a time.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { ApprovalStore, openGatewayDb } from '@corral/gateway';
import { corral, tempStateDir } from '../../test/corral.ts';

const state = tempStateDir();
after(() => rmSync(state, { recursive: true, force: true }));
const KIB = 1024;

function seed(): string[] {
  const db = openGatewayDb(state);
  try {
    const store = new ApprovalStore(db);
    // Past one page (2 MiB of actions), so that the listing follows the cursor.
    return Array.from({ length: 6 }, (_, n) => store.create({ digest: String(n).repeat(64), action: { principal: 'Agent::deployer', argv: ['deploy', String(n)], cwd: '/srv/app', env: { DEPLOY_TOKEN: `hunter${n}`, PADDING: 'p'.repeat(500 * KIB) } }, quorum: 1 }).id);
  } finally {
    db.close();
  }
}

describe('corral approvals list', () => {
  const ids = seed();

  it('shows the working directory and each environment value by its SHA-256 prefix and length, never the value (regression: no cwd nor environment shown)', async () => {
    const result = await corral(['--state-dir', state, 'approvals', 'list']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    const at = lines.findIndex((l) => l.startsWith(ids[0]!));
    assert.equal(lines[at + 1], '  cwd /srv/app');
    assert.match(lines[at + 2]!, /^ {2}env DEPLOY_TOKEN sha256:[0-9a-f]{12} \(7 bytes\), PADDING sha256:[0-9a-f]{12} \(512000 bytes\)$/);
    assert.doesNotMatch(result.stdout, /hunter|pppp/);
    assert.deepEqual(lines.filter((l) => /^\S/.test(l)).map((l) => l.split(' ')[0]), ['ID', ...ids], 'a header, then every approval once, oldest first, across pages');
  });

  it('--json gives the environment by names and fingerprints, never a value (regression: every value, secrets too, was printed)', async () => {
    const result = await corral(['--state-dir', state, 'approvals', 'list', '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /hunter|pppp/);
    const list = JSON.parse(result.stdout) as Array<{ id: string; action: { env: string[]; envValues: Array<{ name: string; bytes: number }> } }>;
    assert.deepEqual(list.map((a) => a.id), ids);
    assert.deepEqual(list[0]!.action.env, ['DEPLOY_TOKEN', 'PADDING']);
    assert.deepEqual(list[0]!.action.envValues.map((v) => [v.name, v.bytes]), [['DEPLOY_TOKEN', 7], ['PADDING', 500 * KIB]]);
  });

  it('--json after approve gives no value either', async () => {
    const result = await corral(['--state-dir', state, 'approvals', 'approve', ids[0]!, '--by', 'bob', '--json']);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /hunter|pppp/);
    assert.equal(JSON.parse(result.stdout).status, 'allowed');
  });
});

describe('corral approvals list, for a run of a script its approval is bound to by content', () => {
  it('shows the script\'s path and the first 12 hex digits of its SHA-256', async () => {
    const bound = tempStateDir();
    try {
      const db = openGatewayDb(bound);
      let id: string;
      try {
        id = new ApprovalStore(db).create({ digest: 'b'.repeat(64), action: { principal: 'Agent::deployer', argv: ['python3', 'build.py'], cwd: '/srv/app', mutableFileOperand: { argvIndex: 1, path: '/srv/app/build.py', sha256: 'ab'.repeat(32) } }, quorum: 1 }).id;
      } finally {
        db.close();
      }
      const result = await corral(['--state-dir', bound, 'approvals', 'list']);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trimEnd().split('\n');
      const at = lines.findIndex((l) => l.startsWith(id));
      assert.ok(lines.slice(at + 1).includes('  script /srv/app/build.py sha256:abababababab (approved for what it holds now; changed, it is asked again; corral approvals show prints it)'), result.stdout);
    } finally {
      rmSync(bound, { recursive: true, force: true });
    }
  });
});

describe('corral approvals show, for a run of a script its approval is bound to by content', () => {
  /** One approval of `python3 build.py` bound to build.py, with what its node sent of it (`scriptPreview`), in a fresh state directory. */
  async function shown(scriptPreview: unknown, ...args: string[]) {
    const dir = tempStateDir();
    try {
      const db = openGatewayDb(dir);
      let id: string;
      try {
        const action = { principal: 'Agent::deployer', argv: ['python3', 'build.py'], cwd: '/srv/app', mutableFileOperand: { argvIndex: 1, path: '/srv/app/build.py', sha256: 'ab'.repeat(32) }, ...(scriptPreview !== undefined ? { scriptPreview } : {}) };
        id = new ApprovalStore(db).create({ digest: 'b'.repeat(64), action, quorum: 1 }).id;
      } finally {
        db.close();
      }
      return { id, ...(await corral(['--state-dir', dir, 'approvals', 'show', id, ...args])) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('prints what the script holds under the approval, each line numbered, escape sequences spelled out and tabs kept (regression: a CLI approver saw a path and a hash of a script they could not read)', async () => {
    const result = await shown({ bytes: 46, truncated: false, text: 'import os\n\tprint("\u001b[2Jcleared")\nos.exit(0)\n' });
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trimEnd().split('\n');
    assert.equal(lines[0]!.split(' ')[0], 'ID');
    assert.ok(lines[1]!.startsWith(result.id));
    assert.deepEqual(lines.slice(lines.indexOf('  the script holds (3 lines, 46 bytes):')), ['  the script holds (3 lines, 46 bytes):', '  1 | import os', '  2 | \tprint("\\u001b[2Jcleared")', '  3 | os.exit(0)']);
  });

  it('says when only the first 64 KiB are shown, when the script is no text, and when its node sent none; --json gives the approval with it', async () => {
    assert.match((await shown({ bytes: 70000, truncated: true, text: 'x\n' })).stdout, /^ {2}the script holds \(1 line, 70000 bytes; only the first 65536 bytes are shown\):\n {2}1 \| x$/m);
    assert.match((await shown({ bytes: 9, truncated: false })).stdout, /^ {2}the script is not text \(9 bytes\): not shown$/m);
    assert.match((await shown(undefined)).stdout, /^ {2}its node sent no copy of the script: read it on the node before approving$/m);
    const json = await shown({ bytes: 2, truncated: false, text: 'x\n' }, '--json');
    assert.deepEqual((JSON.parse(json.stdout) as { action: { scriptPreview: unknown } }).action.scriptPreview, { bytes: 2, truncated: false, text: 'x\n' });
  });

  it("says why the policy asks and which policies, who approved and how many more are needed, when it expires, and the digest it is bound to, as the console's card does (regression: only the listing's row)", async () => {
    const dir = tempStateDir();
    try {
      const db = openGatewayDb(dir);
      const asked = Math.floor(Date.now() / 1000) * 1000;
      const store = new ApprovalStore(db, () => asked);
      const { id } = store.create({ digest: 'c'.repeat(64), action: { principal: 'Agent::payer', argv: ['pay', '20000'], reason: 'payments over 10,000 EUR need two people', policies: ['big-payments'] }, quorum: 2, ttlMs: 3_600_000 });
      store.resolve(id, 'allow-once', 'alice');
      db.close();
      const result = await corral(['--state-dir', dir, 'approvals', 'show', id]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trimEnd().split('\n').slice(2);
      assert.deepEqual(lines, [
        '  why it asks payments over 10,000 EUR need two people',
        '  policies big-payments',
        '  approved by alice (1 more needed of 2)',
        `  asked ${new Date(asked).toISOString()}, expires ${new Date(asked + 3_600_000).toISOString()}`,
        `  digest ${'c'.repeat(64)}`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("counts toward the quorum only those who allowed a denied approval, and names who denied it (regression: a plain deny read 1/1, as a quorum met, and one withdrawn after its allow 2/1)", async () => {
    const dir = tempStateDir();
    try {
      const db = openGatewayDb(dir);
      const store = new ApprovalStore(db);
      const denied = store.create({ digest: 'd'.repeat(64), action: { argv: ['rm', '-rf', '/srv'] }, quorum: 1 });
      store.resolve(denied.id, 'deny', 'bob');
      const withdrawn = store.create({ digest: 'e'.repeat(64), action: { argv: ['pay', '10'] }, quorum: 1 });
      store.resolve(withdrawn.id, 'allow-once', 'alice');
      await store.resolveWhenFree(withdrawn.id, 'deny', 'carol', { withdraw: true });
      db.close();
      const listed = (await corral(['--state-dir', dir, 'approvals', 'list', '--all'])).stdout;
      assert.match(listed, new RegExp(`^${denied.id} +denied +0/1 `, 'm'));
      assert.match(listed, new RegExp(`^${withdrawn.id} +denied +1/1 `, 'm'));
      const shown = (await corral(['--state-dir', dir, 'approvals', 'show', withdrawn.id])).stdout;
      assert.match(shown, /^ {2}approved by alice\n {2}denied by carol$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an id that names no approval (exit 2), saying where the ids are', async () => {
    const result = await corral(['--state-dir', state, 'approvals', 'show', 'no-such-id']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /corral approvals list --all shows the id of every approval/);
  });
});
