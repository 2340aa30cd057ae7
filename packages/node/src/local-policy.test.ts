import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs, { chmodSync, lstatSync, readdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it, mock } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { canonicalRun } from '@corral/gateway';
import { LOCK_WAIT_MS } from './file-lock.ts';
import { DEVICE_FILE } from './host.ts';
import { LOCAL_POLICY_FILE, LocalPolicy, REMOTE_WRITE_INTERVAL_MS, REMOTE_WRITES_BURST, allowlistSubjects, isTighter, localAllows, parseLocalPolicy } from './local-policy.ts';

function stateWith(policy?: unknown): string {
  const dir = tempDir('corral-localpol-');
  if (policy !== undefined) writeFileSync(join(dir, LOCAL_POLICY_FILE), JSON.stringify(policy));
  return dir;
}
/** A node state directory whose policy file is a link to `managed`, a policy kept elsewhere (for many nodes). */
function linkedState(managed: string): string {
  const dir = stateWith();
  symlinkSync(managed, join(dir, LOCAL_POLICY_FILE));
  return dir;
}

const allowlist = { version: 1, defaults: { security: 'allowlist', ask: 'off' }, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: 'git' }] } } };

describe('the node\'s local policy', () => {
  it('defaults to full (every command still runs contained)', () => {
    const policy = new LocalPolicy(stateWith());
    assert.equal(policy.current.defaults.security, 'full');
    assert.equal(policy.snapshot().exists, false);
  });

  it('finds that there is no policy file without a failed open, which each of its reads at every command paid for (an error built each time), and finds one written since', () => {
    const dir = stateWith();
    const policy = new LocalPolicy(dir);
    const opens = mock.method(fs, 'openSync');
    syncBuiltinESMExports();
    try {
      assert.equal(policy.current.defaults.security, 'full');
      assert.equal(policy.snapshot().exists, false);
      assert.equal(opens.mock.calls.filter((call) => call.arguments[0] === policy.path).length, 0);
    } finally {
      opens.mock.restore();
      syncBuiltinESMExports();
    }
    writeFileSync(join(dir, LOCAL_POLICY_FILE), JSON.stringify({ version: 1, defaults: { security: 'deny' } }));
    assert.equal(policy.current.defaults.security, 'deny');
  });

  it('allows only listed programs under allowlist, by name or exact path, for every command in a chain', () => {
    const policy = parseLocalPolicy(allowlist);
    assert.equal(localAllows(policy, [['echo', 'x'], ['/usr/bin/git', 'status']]).allowed, true);
    assert.equal(localAllows(policy, [['echo', 'x'], ['rm', '-rf', '/']]).allowed, false);
  });

  it('denies everything under deny', () => {
    assert.equal(localAllows(parseLocalPolicy({ version: 1, defaults: { security: 'deny' } }), [['echo']]).allowed, false);
  });

  it('accepts a remote change that tightens it, given the current hash', () => {
    const policy = new LocalPolicy(stateWith(allowlist));
    const { hash } = policy.snapshot();
    policy.replace({ ...allowlist, agents: { '*': { allowlist: [{ pattern: 'echo' }] } } }, hash);
    assert.equal(localAllows(policy.current, [['git']]).allowed, false);
    // and it persisted
    assert.deepEqual(new LocalPolicy(policy.path.slice(0, -LOCAL_POLICY_FILE.length - 1)).current, policy.current);
  });

  it('refuses a remote change that loosens it: security, ask, or a new allowlist entry (NODE_POLICY_CHANGE_REFUSED)', () => {
    const policy = new LocalPolicy(stateWith(allowlist));
    const { hash } = policy.snapshot();
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'full' } }, hash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    assert.throws(() => policy.replace({ ...allowlist, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: 'rm' }] } } }, hash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    const asking = new LocalPolicy(stateWith({ version: 1, defaults: { security: 'full', ask: 'always' } }));
    assert.throws(() => asking.replace({ version: 1, defaults: { security: 'full', ask: 'off' } }, asking.snapshot().hash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
  });

  it('writes nothing for a remote change that leaves it as it is, answering its hash, however often it comes (regression: each one rewrote and flushed the file)', () => {
    const dir = stateWith(allowlist);
    const file = join(dir, LOCAL_POLICY_FILE);
    const policy = new LocalPolicy(dir);
    const { hash } = policy.snapshot();
    const before = lstatSync(file);
    // The same policy as upstream sends it back: its entries' bookkeeping says nothing about what may run.
    const same = { ...allowlist, agents: { '*': { allowlist: [{ pattern: 'echo', id: 'a', lastUsedAt: 1 }, { pattern: 'git' }] } } };
    for (let i = 0; i < 3; i++) assert.deepEqual(policy.replace(same, hash), { hash });
    const after = lstatSync(file);
    assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'the file was written');
    assert.equal(readFileSync(file, 'utf8'), JSON.stringify(allowlist), 'its text changed');
    // The rules still hold for a change that is one: an old hash is refused, a tightening is written.
    assert.throws(() => policy.replace(same, '0'.repeat(64)), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    const tighter = policy.replace({ version: 1, defaults: { security: 'deny' } }, hash);
    assert.notEqual(tighter.hash, hash);
    assert.equal(policy.current.defaults.security, 'deny');
  });

  it('writes 10 remote changes at once, then one every 6 s, refusing the rest with NODE_POLICY_CHANGE_BUSY: a gateway alternating two changes that are each no looser cannot keep the node writing its disk', () => {
    let now = 0;
    const dir = stateWith({ version: 1, defaults: { security: 'full' } });
    const policy = new LocalPolicy(dir, { now: () => now });
    // Under full an allowlist lets nothing more run, so each is as strict as the other.
    const listing = (pattern: string) => ({ version: 1, defaults: { security: 'full' }, agents: { '*': { allowlist: [{ pattern }] } } });
    const change = (i: number) => policy.replace(listing(i % 2 === 0 ? 'a' : 'b'), policy.snapshot().hash);
    for (let i = 0; i < REMOTE_WRITES_BURST; i++) change(i);
    const written = readFileSync(join(dir, LOCAL_POLICY_FILE), 'utf8');
    assert.throws(() => change(REMOTE_WRITES_BURST), { code: 'NODE_POLICY_CHANGE_BUSY' });
    assert.equal(readFileSync(join(dir, LOCAL_POLICY_FILE), 'utf8'), written, 'the refused change was written');
    // A change that writes nothing still succeeds, and the old-hash and only-stricter checks still come first.
    assert.deepEqual(policy.replace(JSON.parse(written), policy.snapshot().hash), { hash: policy.snapshot().hash });
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'deny' } }, '0'.repeat(64)), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    now += REMOTE_WRITE_INTERVAL_MS - 1;
    assert.throws(() => change(REMOTE_WRITES_BURST), { code: 'NODE_POLICY_CHANGE_BUSY' });
    now += 1;
    change(REMOTE_WRITES_BURST);
    assert.throws(() => change(REMOTE_WRITES_BURST + 1), { code: 'NODE_POLICY_CHANGE_BUSY' });
    // Refilled over time, never beyond the burst.
    now += REMOTE_WRITE_INTERVAL_MS * 100;
    for (let i = 1; i <= REMOTE_WRITES_BURST; i++) change(i); // 'a' is in force: starting with it would write nothing
    assert.throws(() => change(REMOTE_WRITES_BURST + 1), { code: 'NODE_POLICY_CHANGE_BUSY' });
  });

  it('makes no policy file for a remote change to the default when there is none', () => {
    const dir = stateWith();
    const policy = new LocalPolicy(dir);
    const { hash } = policy.snapshot();
    assert.deepEqual(policy.replace({ version: 1, defaults: { security: 'full', ask: 'off' } }, hash), { hash });
    assert.deepEqual([policy.snapshot().exists, policy.snapshot().hash], [false, hash]);
  });

  it('refuses a change based on an old hash (compare-and-swap)', () => {
    const policy = new LocalPolicy(stateWith(allowlist));
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'deny' } }, '0'.repeat(64)), { code: 'NODE_POLICY_CHANGE_REFUSED' });
  });

  it('compares a remote change with the file as it is now: an edit made on disk since the node started is never overwritten by a change based on what it read then (regression: deny on disk became an allowlist)', () => {
    const dir = stateWith({ version: 1, defaults: { security: 'full' } });
    const policy = new LocalPolicy(dir);
    const startHash = policy.snapshot().hash;
    writeFileSync(join(dir, LOCAL_POLICY_FILE), JSON.stringify({ version: 1, defaults: { security: 'deny' } }));
    assert.throws(() => policy.replace(allowlist, startHash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    assert.throws(() => policy.replace(allowlist, policy.snapshot().hash), { code: 'NODE_POLICY_CHANGE_REFUSED' }, 'an allowlist is looser than deny');
    assert.equal(policy.current.defaults.security, 'deny', 'and the edit applies at once');
  });

  it('refuses a policy file larger than 1 MiB with NODE_POLICY_INVALID, before reading it whole, and a remote change that would write one', () => {
    const dir = stateWith();
    writeFileSync(join(dir, LOCAL_POLICY_FILE), `{"version":1,"defaults":{"security":"deny"}}${' '.repeat(1024 * 1024)}`);
    assert.throws(() => new LocalPolicy(dir), { code: 'NODE_POLICY_INVALID' });
    const policy = new LocalPolicy(stateWith());
    const agents = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`agent-${i}`, { allowlist: [{ pattern: 'x'.repeat(4000) }] }]));
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'allowlist' }, agents }, policy.snapshot().hash), { code: 'NODE_POLICY_INVALID' });
    assert.equal(policy.snapshot().exists, false);
    // Sized before it is compared with the current policy, whose comparison grows with both files.
    const listing = new LocalPolicy(stateWith({ version: 1, defaults: { security: 'allowlist' }, agents: { '*': { allowlist: [{ pattern: 'echo' }] } } }));
    assert.throws(() => listing.replace({ version: 1, defaults: { security: 'allowlist' }, agents }, listing.snapshot().hash), { code: 'NODE_POLICY_INVALID' });
  });

  it('refuses a malformed policy file with NODE_POLICY_INVALID, and unknown fields too', () => {
    assert.throws(() => new LocalPolicy(stateWith('not an object')), { code: 'NODE_POLICY_INVALID' });
    assert.throws(() => parseLocalPolicy({ version: 1, defaults: { security: 'full' }, socket: { path: '/tmp/x' } }), { code: 'NODE_POLICY_INVALID' });
    assert.throws(() => parseLocalPolicy({ version: 1, defaults: { security: 'everything' } }), { code: 'NODE_POLICY_INVALID' });
  });

  it('names the file, the mistake and the fix when the file on disk is not a policy (regression: "local policy: defaults.security must be…", no file named)', () => {
    const wrong = stateWith({ version: 1, defaults: { security: 'allowlistt' } });
    assert.throws(() => new LocalPolicy(wrong), (e: { code?: string; message: string }) => e.code === 'NODE_POLICY_INVALID' && e.message.includes(join(wrong, LOCAL_POLICY_FILE)) && /defaults\.security must be deny, allowlist or full/.test(e.message) && /correct it/.test(e.message));
    const broken = stateWith();
    writeFileSync(join(broken, LOCAL_POLICY_FILE), '{"version": 1,');
    assert.throws(() => new LocalPolicy(broken), (e: { code?: string; message: string }) => e.code === 'NODE_POLICY_INVALID' && e.message.includes(join(broken, LOCAL_POLICY_FILE)) && /line 1 column 15/.test(e.message) && /correct it/.test(e.message));
  });

  it('refuses a security or ask named like an object property (regression: security "constructor", ask "valueOf" passed as tighter than allowlist/always and then allowed rm -rf /)', () => {
    for (const name of ['constructor', 'toString', 'valueOf', '__proto__', 'hasOwnProperty']) {
      assert.throws(() => parseLocalPolicy({ version: 1, defaults: { security: name } }), { code: 'NODE_POLICY_INVALID' }, name);
      assert.throws(() => parseLocalPolicy({ version: 1, defaults: { security: 'deny', ask: name } }), { code: 'NODE_POLICY_INVALID' }, name);
    }
    const policy = new LocalPolicy(stateWith({ ...allowlist, defaults: { security: 'allowlist', ask: 'always' } }));
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'constructor', ask: 'valueOf' } }, policy.snapshot().hash), { code: 'NODE_POLICY_INVALID' });
    assert.equal(localAllows(policy.current, [['rm', '-rf', '/']]).allowed, false);
  });

  it("refuses what upstream's file may say inside an agent or an allowlist entry that this node does not enforce (regression: argPattern ^status$ was dropped and git push ran; an agent's own security deny was dropped and it ran everything)", () => {
    const listed = (entry: Record<string, unknown>, agent: Record<string, unknown> = {}) => ({ version: 1, defaults: { security: 'allowlist' }, agents: { '*': { allowlist: [entry], ...agent } } });
    assert.throws(() => parseLocalPolicy(listed({ pattern: 'git', argPattern: '^status$' })), { code: 'NODE_POLICY_INVALID' });
    assert.throws(() => parseLocalPolicy(listed({ pattern: 'git' }, { security: 'deny' })), { code: 'NODE_POLICY_INVALID' });
    assert.throws(() => parseLocalPolicy(listed({ pattern: 'git' }, { ask: 'always' })), { code: 'NODE_POLICY_INVALID' });
    const policy = new LocalPolicy(stateWith(allowlist));
    assert.throws(() => policy.replace(listed({ pattern: 'git', argPattern: '^status$' }), policy.snapshot().hash), { code: 'NODE_POLICY_INVALID' });
    assert.equal(localAllows(policy.current, [['git', 'push']]).allowed, true, 'unchanged');
  });

  it("takes upstream's bookkeeping on an allowlist entry (id, source, when and how it was last used) and keeps only its pattern", () => {
    const entry = { id: 'e1', pattern: 'git', source: 'allow-always', commandText: 'git status', lastUsedAt: 1_764_000_000_000, lastUsedCommand: 'git status', lastResolvedPath: '/usr/bin/git' };
    const policy = parseLocalPolicy({ version: 1, defaults: { security: 'allowlist' }, agents: { '*': { allowlist: [entry] } } });
    assert.deepEqual(policy.agents!['*']!.allowlist, [{ pattern: 'git' }]);
  });

  it('keeps an agent named __proto__ as an entry of its own, not as the prototype every other agent would inherit from', () => {
    const policy = parseLocalPolicy(JSON.parse('{"version":1,"defaults":{"security":"allowlist"},"agents":{"__proto__":{"allowlist":[{"pattern":"rm"}]}}}'));
    assert.deepEqual(Object.keys(policy.agents!), ['__proto__']);
    assert.equal(localAllows(policy, [['rm', '-rf', '/']], 'alice', false).allowed, false);
    assert.equal(localAllows(policy, [['rm', '-rf', '/']], '__proto__', false).allowed, true);
  });
});

describe('when the node asks (its ask setting)', () => {
  const asking = (ask: string, security = 'allowlist') => parseLocalPolicy({ version: 1, defaults: { security, ask }, agents: { '*': { allowlist: [{ pattern: 'echo' }] } } });

  it('refuses an allowlisted command no human approved under ask=always (regression: echo hi ran with approved:false)', () => {
    const verdict = localAllows(asking('always'), [['echo', 'hi']], undefined, false);
    assert.equal(verdict.allowed, false);
    assert.equal(verdict.rule, 'approval-required');
  });

  it('runs an allowlisted command under ask=always once the gateway says a human approved it', () => {
    assert.equal(localAllows(asking('always'), [['echo', 'hi']], undefined, true).allowed, true);
  });

  it('asks for every command under security=full with ask=always', () => {
    assert.equal(localAllows(asking('always', 'full'), [['ls']]).rule, 'approval-required');
    assert.equal(localAllows(asking('always', 'full'), [['ls']], undefined, true).allowed, true);
  });

  it('refuses a command off the allowlist under ask=always even when approved: the allowlist still bounds what runs', () => {
    assert.equal(localAllows(asking('always'), [['rm', '-rf', '/']], undefined, true).rule, 'allowlist-miss');
  });

  it('under ask=on-miss, runs an allowlisted command unasked and needs approval for a miss, in every command of a chain', () => {
    assert.equal(localAllows(asking('on-miss'), [['echo', 'hi']]).allowed, true);
    assert.equal(localAllows(asking('on-miss'), [['echo', 'hi'], ['rm', 'x']]).rule, 'approval-required');
    assert.equal(localAllows(asking('on-miss'), [['echo', 'hi'], ['rm', 'x']], undefined, true).allowed, true);
  });

  it('under ask=off, never lets an approval cover a miss', () => {
    assert.equal(localAllows(asking('off'), [['rm', 'x']], undefined, true).rule, 'allowlist-miss');
  });

  it('under security=deny, refuses even an approved command', () => {
    assert.equal(localAllows(asking('always', 'deny'), [['echo']], undefined, true).rule, 'security-deny');
  });

  it('counts allowlist/off to allowlist/on-miss as loosening (an approved miss would run), allowlist/off to always as tightening', () => {
    assert.equal(isTighter(asking('off'), asking('on-miss')), false);
    assert.equal(isTighter(asking('off'), asking('always')), true);
    assert.equal(isTighter(asking('on-miss'), asking('always')), true);
    assert.equal(isTighter(parseLocalPolicy({ version: 1, defaults: { security: 'full', ask: 'off' } }), asking('always')), true);
  });
});

describe('what an allowlist entry matches', () => {
  const policy = parseLocalPolicy({ version: 1, defaults: { security: 'allowlist' }, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: '/opt/tools/bin/report' }] } } });
  const runs = (program: string) => localAllows(policy, [[program, 'x']]).allowed;

  it('matches a bare name as a bare argv[0] (found on the sandbox PATH) or in a standard system directory', () => {
    for (const program of ['echo', '/usr/bin/echo', '/bin/echo', '/usr/local/bin/echo']) assert.equal(runs(program), true, program);
  });

  it('never matches a bare name in any other directory (regression: /tmp/x/evil/echo passed)', () => {
    for (const program of ['/tmp/x/evil/echo', './echo', 'bin/echo', '/usr/bin/../../tmp/x/echo', '/usr/bin//echo', '/echo']) assert.equal(runs(program), false, program);
  });

  it('matches a path entry only at exactly that path', () => {
    assert.equal(runs('/opt/tools/bin/report'), true);
    for (const program of ['report', '/usr/bin/report', '/opt/tools/bin/../bin/report']) assert.equal(runs(program), false, program);
  });
});

describe('a command behind a shell wrapper, under an allowlist', () => {
  const policy = parseLocalPolicy({ version: 1, defaults: { security: 'allowlist' }, agents: { '*': { allowlist: [{ pattern: 'echo' }, { pattern: '/opt/shells/zsh' }] } } });
  const verdict = (command: string[], ask?: 'on-miss') => localAllows(ask ? { ...policy, defaults: { security: 'allowlist', ask } } : policy, allowlistSubjects(canonicalRun({ command })));

  it("looks through the system's own shell to the commands it runs", () => {
    assert.equal(verdict(['sh', '-c', 'echo hi']).allowed, true);
    assert.equal(verdict(['/bin/sh', '-lc', 'echo hi']).allowed, true);
    assert.equal(verdict(['/usr/bin/bash', '-c', 'echo a && /bin/sh -c "echo b"']).allowed, true);
    assert.equal(verdict(['/opt/shells/zsh', '-c', 'echo hi']).allowed, true, 'a shell the allowlist names');
  });

  it('refuses a shell of any other directory, outermost or nested, though what it would run is listed (regression: /tmp/x/sh -c "echo hi" ran /tmp/x/sh on an allowlist of echo)', () => {
    for (const command of [['/tmp/x/sh', '-c', 'echo hi'], ['./bash', '-c', 'echo hi'], ['sh', '-c', '/home/agent/dash -c "echo hi"'], ['/usr/bin/../../tmp/x/sh', '-c', 'echo hi']]) {
      const v = verdict(command);
      assert.deepEqual([v.allowed, v.rule], [false, 'allowlist-miss'], command.join(' '));
    }
  });

  it('asks for such a shell under ask=on-miss, as for any program off the list', () => {
    assert.equal(verdict(['/tmp/x/sh', '-c', 'echo hi'], 'on-miss').rule, 'approval-required');
  });
});

describe("the node's state files, swapped for a FIFO or a link to a device", () => {
  /** The code `what` (an expression of `dir`, in a child process) throws, or `hung` when it has not returned in 10 s. */
  const outcome = (dir: string, what: string): string => {
    const source = `import { LocalPolicy, loadOrCreateDevice } from ${JSON.stringify(new URL('./index.ts', import.meta.url).href)};
      const dir = ${JSON.stringify(dir)};
      try { ${what}; console.log('read'); } catch (e) { console.log(e.code ?? String(e)); }`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
    return child.error !== undefined || child.signal !== null ? 'hung' : child.stdout.trim();
  };

  it('refuses each at once, naming it (NODE_POLICY_INVALID, NODE_DEVICE_INVALID), rather than waiting on a FIFO for ever or reading /dev/zero until memory runs out (regression: the node hung at start)', () => {
    for (const special of ['fifo', '/dev/zero']) {
      const policyDir = stateWith();
      const deviceDir = stateWith();
      for (const [dir, file] of [[policyDir, LOCAL_POLICY_FILE], [deviceDir, DEVICE_FILE]] as const) {
        if (special === 'fifo') execFileSync('mkfifo', [join(dir, file)]);
        else symlinkSync(special, join(dir, file));
      }
      assert.equal(outcome(policyDir, 'new LocalPolicy(dir)'), 'NODE_POLICY_INVALID', special);
      assert.equal(outcome(deviceDir, 'loadOrCreateDevice(dir)'), 'NODE_DEVICE_INVALID', special);
    }
  });

  it("takes over a lock beside the policy that is a FIFO, as one naming no process, rather than waiting on it for ever (regression: whoever could write the folder of a managed policy hung the node, and every run's timeout with it, at its next change)", () => {
    const managed = stateWith(allowlist);
    const lock = join(managed, `${LOCAL_POLICY_FILE}.lock`);
    execFileSync('mkfifo', [lock]);
    const longAgo = (Date.now() - 60_000) / 1000;
    utimesSync(lock, longAgo, longAgo);
    const dir = linkedState(join(managed, LOCAL_POLICY_FILE));
    // A process of its own, which would hang: the policy module alone, quick to load however busy the machine.
    const source = `import { LocalPolicy } from ${JSON.stringify(new URL('./local-policy.ts', import.meta.url).href)};
      const policy = new LocalPolicy(${JSON.stringify(dir)});
      try { policy.replace({ version: 1, defaults: { security: 'deny' } }, policy.snapshot().hash); console.log('changed'); } catch (e) { console.log(e.code ?? String(e)); }`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL' });
    assert.equal(child.signal ?? child.stdout.trim(), 'changed');
    assert.equal(new LocalPolicy(dir).current.defaults.security, 'deny');
    assert.deepEqual(readdirSync(managed), [LOCAL_POLICY_FILE]);
  });
});

describe('a policy file that is a link to a policy kept elsewhere (managed for many nodes)', () => {
  const deny = { version: 1, defaults: { security: 'deny' } };

  it('is changed where it is kept by a remote change, so that a later edit there still applies (regression: the change replaced the link with a file of its own, and the node ignored the managed policy from then on)', () => {
    const managed = stateWith(allowlist);
    const dir = linkedState(join(managed, LOCAL_POLICY_FILE));
    const policy = new LocalPolicy(dir);
    policy.replace({ ...allowlist, agents: { '*': { allowlist: [{ pattern: 'echo' }] } } }, policy.snapshot().hash);
    assert.ok(lstatSync(join(dir, LOCAL_POLICY_FILE)).isSymbolicLink(), 'still a link');
    assert.deepEqual(JSON.parse(readFileSync(join(managed, LOCAL_POLICY_FILE), 'utf8')).agents['*'].allowlist, [{ pattern: 'echo' }]);
    writeFileSync(join(managed, LOCAL_POLICY_FILE), JSON.stringify(deny));
    assert.equal(policy.current.defaults.security, 'deny', 'the managed edit applies');
  });

  it("keeps the mode of the policy it changes: one kept for many nodes that others' nodes may read (0644) stays readable to them (regression: a remote change made it 0600, and every other node refused all runs)", { skip: process.getuid === undefined && 'no modes on this platform' }, () => {
    const managed = stateWith(allowlist);
    chmodSync(join(managed, LOCAL_POLICY_FILE), 0o644);
    const dir = linkedState(join(managed, LOCAL_POLICY_FILE));
    const policy = new LocalPolicy(dir);
    policy.replace({ ...allowlist, agents: { '*': { allowlist: [{ pattern: 'echo' }] } } }, policy.snapshot().hash);
    assert.equal(statSync(join(managed, LOCAL_POLICY_FILE)).mode & 0o777, 0o644);
    assert.equal(policy.current.agents?.['*']?.allowlist?.length, 1);
  });

  it('refuses every run while the link leads nowhere, rather than taking the default (which runs everything)', () => {
    const dir = stateWith();
    symlinkSync(join(dir, 'gone', LOCAL_POLICY_FILE), join(dir, LOCAL_POLICY_FILE));
    assert.throws(() => new LocalPolicy(dir), { code: 'NODE_POLICY_INVALID' });
  });
});

describe('a policy kept for many nodes, changed by two of them at once', () => {
  /** A node process of its own whose policy links to `managed`: sent `hash`, it tightens the policy to allow `program` alone, and answers `ok` or the code it was refused with. */
  const nodeProcess = (managed: string) => {
    const dir = linkedState(managed);
    const source = `import { LocalPolicy } from ${JSON.stringify(new URL('./local-policy.ts', import.meta.url).href)};
      import { createInterface } from 'node:readline';
      let t = 0;
      const policy = new LocalPolicy(${JSON.stringify(dir)}, { now: () => (t += ${REMOTE_WRITE_INTERVAL_MS}) });
      for await (const line of createInterface({ input: process.stdin })) {
        const [hash, program] = line.split(' ');
        try { policy.replace({ version: 1, defaults: { security: 'allowlist', ask: 'off' }, agents: { '*': { allowlist: [{ pattern: program }] } } }, hash); console.log('ok'); }
        catch (e) { console.log(e.code ?? String(e)); }
      }`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return {
      change: async (hash: string, program: string): Promise<string> => {
        child.stdin.write(`${hash} ${program}\n`);
        return String((await lines.next()).value);
      },
      end: () => child.stdin.end(),
    };
  };

  /** A managed allowlist policy whose change lock names process `holder`, and a node's policy linked to it. */
  const lockedBy = (holder: number) => {
    const managed = join(stateWith(allowlist), LOCAL_POLICY_FILE);
    writeFileSync(`${managed}.lock`, `${holder}\n`);
    return { managed, policy: new LocalPolicy(linkedState(managed)) };
  };

  it(`takes over the lock a node left when it crashed changing the policy once it is ${LOCK_WAIT_MS} ms old, never sooner (its pid may be a live node's in another container, which this one cannot see), and removes its own`, () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    const { managed, policy } = lockedBy(gone);
    const started = performance.now();
    policy.replace({ version: 1, defaults: { security: 'deny' } }, policy.snapshot().hash);
    assert.ok(performance.now() - started >= LOCK_WAIT_MS - 100, `taken over after ${Math.round(performance.now() - started)} ms`);
    assert.equal(policy.current.defaults.security, 'deny');
    assert.deepEqual(readdirSync(join(managed, '..')), [LOCAL_POLICY_FILE]);
  });

  it('refuses a change as busy (NODE_POLICY_CHANGE_BUSY) while a live process holds the lock, and leaves the policy as it was', () => {
    const { managed, policy } = lockedBy(process.ppid);
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'deny' } }, policy.snapshot().hash), { code: 'NODE_POLICY_CHANGE_BUSY' });
    assert.equal(policy.current.defaults.security, 'allowlist');
    assert.deepEqual(readdirSync(join(managed, '..')).sort(), [LOCAL_POLICY_FILE, `${LOCAL_POLICY_FILE}.lock`]);
  });

  it('refuses changes at once while a lock a live process made long ago is still there, rather than waiting for it at each change (regression: a gateway sending changes without end held the node a second for each)', () => {
    const { managed, policy } = lockedBy(process.ppid);
    const longAgo = (Date.now() - 60_000) / 1000;
    utimesSync(`${managed}.lock`, longAgo, longAgo);
    const started = performance.now();
    for (let i = 0; i < 5; i++) assert.throws(() => policy.replace({ version: 1, defaults: { security: 'deny' } }, policy.snapshot().hash), { code: 'NODE_POLICY_CHANGE_BUSY' });
    assert.ok(performance.now() - started < 500, `waited ${Math.round(performance.now() - started)} ms`);
  });

  it('answers a change that writes nothing, or that it refuses, without waiting for the lock another process holds (regression: a change that left the policy as it was was refused as busy)', () => {
    const { policy } = lockedBy(process.ppid);
    const { hash } = policy.snapshot();
    const started = performance.now();
    assert.deepEqual(policy.replace(allowlist, hash), { hash });
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'deny' } }, '0'.repeat(64)), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    assert.throws(() => policy.replace({ version: 1, defaults: { security: 'full' } }, hash), { code: 'NODE_POLICY_CHANGE_REFUSED' });
    assert.ok(performance.now() - started < 500, `waited ${Math.round(performance.now() - started)} ms`);
  });

  it('lets exactly one of two changes made from the same hash by two node processes through, and refuses the other as made from an old hash (regression: both passed the check, and the second write undid the first tightening)', async () => {
    const managed = join(stateWith(allowlist), LOCAL_POLICY_FILE);
    const nodes = [nodeProcess(managed), nodeProcess(managed)];
    try {
      for (let round = 0; round < 40; round++) {
        writeFileSync(managed, JSON.stringify(allowlist));
        const hash = new LocalPolicy(join(managed, '..')).snapshot().hash;
        const answers = await Promise.all([nodes[0]!.change(hash, 'echo'), nodes[1]!.change(hash, 'git')]);
        assert.deepEqual([...answers].sort(), ['NODE_POLICY_CHANGE_REFUSED', 'ok'], `round ${round}`);
        const winner = answers[0] === 'ok' ? 'echo' : 'git';
        assert.deepEqual(JSON.parse(readFileSync(managed, 'utf8')).agents['*'].allowlist, [{ pattern: winner }], `round ${round}`);
      }
    } finally {
      for (const node of nodes) node.end();
    }
  });
});
