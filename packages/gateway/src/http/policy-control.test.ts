// The active policy set on disk: activation swaps the directory for a link to
// a version directory, a restart reads the activated set, and a stale base
// hash or a valid hand edit since the base hash is refused.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { errorReply } from './error-reply.ts';
import { codeOf, compileCandidate, compileCandidateOffThread, hashFiles, parseFiles, PolicyControl } from './policy-control.ts';
import { holdActivationLock } from '../../test/activation-lock.ts';

const PERMIT = 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n';
const FORBID = 'forbid (principal, action == Action::"system.run", resource == Command::"ls");\n';
const request = { principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: 'ls' }, context: { argv: ['ls'] } };
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function policyDir(): string {
  const state = mkdtempSync(join(tmpdir(), 'corral-policy-control-'));
  dirs.push(state);
  mkdirSync(join(state, 'policies'));
  writeFileSync(join(state, 'policies', 'main.cedar'), PERMIT);
  return join(state, 'policies');
}

describe('activating a policy set', () => {
  it('moves a plain directory aside, links the new version, and a fresh load decides with it', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    assert.equal(control.decide(request).decision, 'allow');
    const candidate = compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }]));
    assert.equal(await control.activate(candidate, control.active().hash), true);
    assert.equal(control.decide(request).decision, 'deny');
    assert.equal(lstatSync(dir).isSymbolicLink(), true);
    assert.equal(readFileSync(join(dir, 'main.cedar'), 'utf8'), FORBID);
    const versions = readdirSync(`${dir}.versions`);
    assert.ok(versions.includes(candidate.hash));
    assert.ok(versions.some((v) => v.startsWith('previous-')), 'the original directory is kept');
    assert.equal(PolicyControl.open(dir).active().hash, candidate.hash, 'a restart reads the activated set');
  });

  it('swaps one link for another on the second activation, leaving no stray links behind', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    for (const text of [FORBID, PERMIT, FORBID]) assert.equal(await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text }])), control.active().hash), true);
    assert.equal(control.decide(request).decision, 'deny');
    assert.deepEqual(readdirSync(join(dir, '..')).filter((n) => n.includes('.link-')), []);
  });

  it('refuses a base hash that is not the active one, and one made before a valid edit by hand, which it adopts', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    const candidate = compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }]));
    assert.equal(await control.activate(candidate, hashFiles([])), false);
    const base = control.active().hash;
    writeFileSync(join(dir, 'main.cedar'), `${PERMIT}// edited by hand\n`);
    assert.equal(await control.activate(candidate, base), false);
    assert.equal(control.active().files[0]!.text.endsWith('// edited by hand\n'), true);
    assert.equal(control.decide(request).decision, 'allow');
  });

  it('keeps the set in use when the directory is edited into an invalid set, and lets a candidate replace it', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    const base = control.active().hash;
    writeFileSync(join(dir, 'main.cedar'), 'permit (principal, action, resource');
    assert.equal(control.refresh().hash, base);
    assert.equal(control.decide(request).decision, 'allow');
    assert.equal(await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }])), base), true);
    assert.equal(control.decide(request).decision, 'deny');
  });

  it('refuses file names that leave the directory or are not policy files, and duplicates', () => {
    for (const name of ['../x.cedar', '/etc/x.cedar', 'a/../../x.cedar', 'x.sh', '.hidden.cedar', 'a\\b.cedar']) assert.throws(() => parseFiles([{ name, text: '' }]), { code: 'GATEWAY_PARAMS_INVALID' }, name);
    assert.throws(() => parseFiles([{ name: 'a.cedar', text: '' }, { name: 'a.cedar', text: '' }]), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => parseFiles({ name: 'a.cedar' }), { code: 'GATEWAY_PARAMS_INVALID' });
    assert.throws(() => compileCandidate(parseFiles([{ name: 'entities.json', text: '{not json' }])), { code: 'POLICY_ENTITIES_INVALID' });
  });

  it('refuses a candidate entities.json giving one key twice in an object, naming its line, as a set on disk is (regression: JSON.parse kept the second "parents" silently)', () => {
    const twice = '[{"uid":{"type":"Agent","id":"bot"},"attrs":{},\n "parents":[{"type":"Group","id":"blocked"}],\n "parents":[]}]';
    assert.throws(
      () => compileCandidate(parseFiles([{ name: 'main.cedar', text: PERMIT }, { name: 'entities.json', text: twice }])),
      (error: Error & { code?: string }) => error.code === 'POLICY_ENTITIES_INVALID' && /entities\.json:3:2: the key "parents" appears twice/.test(error.message),
    );
  });

  it('refuses names that cannot sit side by side in one directory: a file and a folder of one name, and names that differ only in case', () => {
    for (const names of [['a.cedar', 'a.cedar/b.cedar'], ['team.cedar/x/b.cedar', 'team.cedar/x.cedar', 'team.cedar'], ['Main.cedar', 'main.cedar'], ['Team/a.cedar', 'team/b.cedar/c.cedar', 'team/b.cedar']]) {
      assert.throws(() => parseFiles(names.map((name) => ({ name, text: PERMIT }))), { code: 'GATEWAY_PARAMS_INVALID' }, names.join(' '));
    }
  });
});

describe('reading the set on disk', () => {
  it('refuses at start an entities.json whose parents run 300 levels deep, naming the file, and keeps the set in use when such a file appears later (Cedar would walk the chain recursively)', () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir);
    const chain = Array.from({ length: 300 }, (_, i) => ({ uid: { type: 'Group', id: `g${i}` }, attrs: {}, parents: i > 0 ? [{ type: 'Group', id: `g${i - 1}` }] : [] }));
    writeFileSync(join(dir, 'entities.json'), JSON.stringify(chain));
    assert.throws(() => PolicyControl.open(dir), (error: Error & { code?: string }) => error.code === 'POLICY_ENTITIES_INVALID' && error.message.includes('entities.json'));
    assert.equal(control.refresh().files.length, 1, 'the edit is not adopted');
    assert.equal(control.decide(request).decision, 'allow');
  });

  it('refuses at start a directory holding a link out of it or a FIFO named as a policy, and keeps the set in use when one appears later (a link loop hung the read, a FIFO blocked it)', () => {
    const dir = policyDir();
    const outside = mkdtempSync(join(tmpdir(), 'corral-policy-outside-'));
    dirs.push(outside);
    writeFileSync(join(outside, 'open.cedar'), 'permit (principal, action, resource);\n');
    const control = PolicyControl.open(dir);
    symlinkSync(join(outside, 'open.cedar'), join(dir, 'open.cedar'));
    assert.equal(control.refresh().files.length, 1, 'the linked file is not adopted');
    assert.throws(() => PolicyControl.open(dir), { code: 'POLICY_UNREADABLE' });
    rmSync(join(dir, 'open.cedar'));
    symlinkSync('.', join(dir, 'loop'));
    symlinkSync('.', join(dir, 'loop2'));
    assert.throws(() => PolicyControl.open(dir), { code: 'POLICY_UNREADABLE' });
    rmSync(join(dir, 'loop'));
    rmSync(join(dir, 'loop2'));
    spawnSync('mkfifo', [join(dir, 'wait.cedar')]);
    assert.throws(() => PolicyControl.open(dir), { code: 'POLICY_UNREADABLE' });
    assert.equal(control.decide(request).decision, 'allow');
  });
});

describe('activating from two processes at once', () => {
  const MODULE = new URL('./policy-control.ts', import.meta.url).href;
  /** A process that opens `dir`, says "ready", then activates a set of `text` on `baseHash` and prints whether it did and how long it took. */
  function activator(dir: string, text: string, baseHash: string) {
    const script = `
      import { compileCandidate, PolicyControl } from ${JSON.stringify(MODULE)};
      const control = PolicyControl.open(${JSON.stringify(dir)});
      const candidate = compileCandidate([{ name: 'main.cedar', text: ${JSON.stringify(text)} }]);
      process.stdout.write('ready\\n');
      const start = performance.now();
      const activated = await control.activate(candidate, ${JSON.stringify(baseHash)});
      process.stdout.write(JSON.stringify({ activated, hash: candidate.hash, ms: performance.now() - start }) + '\\n');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    return {
      ready: async () => {
        while (!out.includes('ready\n')) await new Promise((r) => setTimeout(r, 10));
      },
      result: new Promise<{ activated: boolean; hash: string; ms: number }>((resolve) => child.on('close', () => resolve(JSON.parse(out.split('\n')[1]!)))),
    };
  }


  it('waits while another process holds the activation lock, then activates', async () => {
    const dir = policyDir();
    const base = PolicyControl.open(dir).active().hash;
    const release = holdActivationLock(dir);
    const child = activator(dir, FORBID, base);
    await child.ready();
    await new Promise((r) => setTimeout(r, 300));
    release();
    const { activated, ms } = await child.result;
    assert.equal(activated, true);
    assert.ok(ms >= 200, `the activation went ahead after ${ms.toFixed(0)} ms, while the lock was held`);
  });
  it('refuses with GATEWAY_CONFLICT, changing nothing, when another process keeps the lock past the wait', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir, { lockWaitMs: 200 });
    const before = control.active().hash;
    const release = holdActivationLock(dir);
    try {
      await assert.rejects(control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }])), before), { code: 'GATEWAY_CONFLICT' });
    } finally {
      release();
    }
    assert.equal(PolicyControl.open(dir).active().hash, before);
    assert.equal(control.decide(request).decision, 'allow');
  });
  it('answers that conflict without naming where the policy directory is: its message goes to the API caller as it is (regression: it named the directory)', async () => {
    const dir = policyDir();
    const control = PolicyControl.open(dir, { lockWaitMs: 50 });
    const release = holdActivationLock(dir);
    let thrown: unknown;
    try {
      await control.activate(compileCandidate(parseFiles([{ name: 'main.cedar', text: FORBID }])), control.active().hash);
    } catch (error) {
      thrown = error;
    } finally {
      release();
    }
    assert.equal((thrown as { code?: string }).code, 'GATEWAY_CONFLICT');
    const { reply, unexpected } = errorReply(thrown);
    assert.deepEqual([reply.status, unexpected], [409, false]);
    assert.equal(JSON.stringify(reply.body).includes(dirname(dir)), false, JSON.stringify(reply.body));
  });
  it('lets one of two activations on the same base hash through; the other is refused and nothing is lost', async () => {
    const dir = policyDir();
    const base = PolicyControl.open(dir).active().hash;
    const release = holdActivationLock(dir);
    const texts = [FORBID, `${PERMIT}// the other candidate\n`];
    const children = texts.map((text) => activator(dir, text, base));
    await Promise.all(children.map((c) => c.ready()));
    await new Promise((r) => setTimeout(r, 200)); // both are now waiting for the lock
    release();
    const results = await Promise.all(children.map((c) => c.result));
    assert.deepEqual(results.map((r) => r.activated).sort(), [false, true]);
    assert.equal(PolicyControl.open(dir).active().hash, results.find((r) => r.activated)!.hash, 'the set on disk is the one that was activated');
  });
});


describe('building a candidate off the gateway thread (compileCandidateOffThread)', () => {
  it("reports the set's own issues first when its entities are wrong too, as when the entities were loaded after the set", async () => {
    const files = [
      { name: 'main.cedar', text: 'permit (principal, action, resource) when { nonsense };\n' },
      { name: 'entities.json', text: '[{"uid":{"type":"Nope","id":"x"},"attrs":{},"parents":[]}]' },
    ];
    await assert.rejects(compileCandidateOffThread(files), (error: { code?: string; issues?: Array<{ file: string }> }) => error.code === 'POLICY_SET_INVALID' && error.issues?.[0]?.file === 'main.cedar');
  });

  it('refuses entities that are not valid entities with POLICY_ENTITIES_INVALID', async () => {
    await assert.rejects(compileCandidateOffThread([{ name: 'main.cedar', text: PERMIT }, { name: 'entities.json', text: '[{"uid":{"type":"Nope","id":"x"},"attrs":{},"parents":[]}]' }]), { code: 'POLICY_ENTITIES_INVALID' });
  });

  /** What refusing `files` says: code, message and issues. */
  const refusal = async (build: () => unknown) => {
    try {
      await build();
    } catch (error) {
      const e = error as { code: string; message: string; issues: unknown };
      return { code: e.code, message: e.message, issues: e.issues };
    }
    throw new Error('the candidate was built');
  };

  it('refuses entities as compileCandidate does, with the same message and issue naming entities.json: not JSON, a loop, an unknown type', async () => {
    const loop = [{ uid: { type: 'Group', id: 'a' }, parents: [{ type: 'Group', id: 'b' }] }, { uid: { type: 'Group', id: 'b' }, parents: [{ type: 'Group', id: 'a' }] }];
    for (const text of ['{not json', JSON.stringify(loop), '[{"uid":{"type":"Nope","id":"x"},"attrs":{},"parents":[]}]']) {
      const files = [{ name: 'main.cedar', text: PERMIT }, { name: 'entities.json', text }];
      const here = await refusal(() => compileCandidate(files));
      assert.equal(here.code, 'POLICY_ENTITIES_INVALID');
      assert.deepEqual(await refusal(() => compileCandidateOffThread(files)), here);
    }
  });

  it('decides as compileCandidate does with the same files, and so does the set once activated', async () => {
    const groups = Array.from({ length: 20 }, (_, i) => ({ uid: { type: 'Group', id: `g${i}` }, parents: i < 4 ? [] : [{ type: 'Group', id: `g${i % 4}` }, { type: 'Group', id: `g${(i * 7) % 20}` }].filter((p, j, all) => p.id !== `g${i}` && all.findIndex((q) => q.id === p.id) === j && Number(p.id.slice(1)) < i) }));
    const people = Array.from({ length: 200 }, (_, i) => ({ uid: { type: 'Human', id: `h${i}` }, attrs: { email: `h${i}@example.com`, roles: i % 3 === 0 ? ['ops'] : [] }, parents: [{ type: 'Group', id: `g${4 + (i % 16)}` }] }));
    const files = [
      { name: 'main.cedar', text: '@id("g1")\npermit (principal in Group::"g1", action == Action::"system.run", resource);\n@id("ops")\nforbid (principal, action, resource) unless { principal has roles && principal.roles.contains("ops") };\n' },
      { name: 'entities.json', text: JSON.stringify([...groups, ...people]) },
    ];
    const decisions = (decide: (input: unknown) => { decision: string; policies: readonly string[] }) => people.map((p) => decide({ ...request, principal: p.uid })).map((d) => `${d.decision} ${d.policies.join(',')}`);
    const here = compileCandidate(files);
    const there = await compileCandidateOffThread(files);
    assert.deepEqual(decisions((input) => there.point.decide(input)), decisions((input) => here.point.decide(input)));
    assert.deepEqual(new Set(decisions((input) => there.point.decide(input))), new Set(['allow g1', 'deny ops', 'deny ']), 'not vacuous: allowed, forbidden, and permitted by none');
    const control = PolicyControl.open(policyDir());
    assert.ok(await control.activate(there, control.active().hash));
    assert.deepEqual(decisions((input) => control.decide(input)), decisions((input) => here.point.decide(input)));
  });
});

describe('codeOf, the one way the gateway names a failure to its log and to an approver', () => {
  it('gives a coded error its code, and a system call its errno name', () => {
    assert.equal(codeOf(Object.assign(new Error('x'), { code: 'AUDIT_APPEND_FAILED' })), 'AUDIT_APPEND_FAILED');
    assert.equal(codeOf(Object.assign(new Error('x'), { code: 'ENOSPC' })), 'ENOSPC');
  });

  it('never passes on a code that is not an upper-case name: a path or a message becomes GATEWAY_INTERNAL', () => {
    assert.equal(codeOf(Object.assign(new Error('x'), { code: '/srv/corral/policies.versions' })), 'GATEWAY_INTERNAL');
    assert.equal(codeOf(Object.assign(new Error('x'), { code: 'E\nforged log line' })), 'GATEWAY_INTERNAL');
    assert.equal(codeOf(new Error('EACCES: permission denied, open /home/op/.corral/x')), 'GATEWAY_INTERNAL');
    assert.equal(codeOf(null), 'GATEWAY_INTERNAL');
    assert.equal(codeOf('ENOSPC'), 'GATEWAY_INTERNAL');
  });
});
