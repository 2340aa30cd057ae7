import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs, { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies, loadPolicyDir } from './load.ts';
import { watchPolicyDir } from './watch.ts';

const EXAMPLE = new URL('../../../examples/invoice-intake/cedar', import.meta.url).pathname;
const GOOD = '@id("read")\npermit(principal, action == Action::"record.read", resource);\n';

/**
 * Runs `fn` with `swap` done just before the first `fs[name]` call whose path
 * ends with `suffix` (any, when empty; with `after`, just after it returns): a rename another
 * process could make at that moment, made at exactly that moment. The loader's
 * own imports of node:fs see the wrapper too.
 */
function racing<T>(name: 'openSync' | 'readdirSync', when: { suffix: string; after?: boolean }, swap: () => void, fn: () => T): T {
  const original = fs[name] as (...args: unknown[]) => unknown;
  let swapped = false;
  (fs as unknown as Record<string, unknown>)[name] = (...args: unknown[]) => {
    const due = !swapped && String(args[0]).endsWith(when.suffix);
    if (due && !when.after) (swapped = true), swap();
    const result = original(...args);
    if (due && when.after) (swapped = true), swap();
    return result;
  };
  syncBuiltinESMExports();
  try {
    const result = fn();
    assert.ok(swapped, `the swap never happened: no ${name} of …${when.suffix}`);
    return result;
  } finally {
    (fs as unknown as Record<string, unknown>)[name] = original;
    syncBuiltinESMExports();
  }
}

function refused(fn: () => unknown): PolicyError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof PolicyError);
    return error;
  }
  assert.fail('expected a PolicyError');
}

describe('loadPolicyDir', () => {
  it('loads the invoice-intake example with ids, annotations and locations', () => {
    const set = loadPolicyDir(EXAMPLE);
    const large = set.policies.find((p) => p.id === 'intake-pays-large');
    assert.ok(large);
    assert.equal(large.approval, true);
    assert.equal(large.quorum, 2);
    assert.equal(large.file, 'invoice-intake.cedar');
    assert.ok(large.line > 1);
    assert.match(set.fingerprint, /^[0-9a-f]{64}$/);
  });

  it('refuses a directory that does not exist', () => {
    assert.equal(refused(() => loadPolicyDir('/nonexistent/corral-policies')).code, 'POLICY_UNREADABLE');
  });

  describe('when someone who can write the policy directory plants a trap', () => {
    const root = mkdtempSync(join(tmpdir(), 'corral-policy-trap-'));
    after(() => rmSync(root, { recursive: true, force: true }));
    let n = 0;
    /** A fresh policy directory holding one good file, and `outside/` beside it. */
    const fresh = () => {
      const dir = join(root, `set-${n++}`);
      mkdirSync(join(dir, 'policies'), { recursive: true });
      mkdirSync(join(dir, 'outside'));
      writeFileSync(join(dir, 'policies', 'good.cedar'), GOOD);
      return dir;
    };

    it('refuses a .cedar symbolic link out of the directory', () => {
      const dir = fresh();
      writeFileSync(join(dir, 'outside', 'x.cedar'), '@id("elsewhere") permit(principal, action, resource);');
      symlinkSync(join(dir, 'outside', 'x.cedar'), join(dir, 'policies', 'x.cedar'));
      assert.equal(refused(() => loadPolicyDir(join(dir, 'policies'))).code, 'POLICY_UNREADABLE');
    });

    it('refuses a symbolic link to a directory (a link to itself listed the set 40 times over; two, 2^40 times)', () => {
      const dir = fresh();
      symlinkSync('.', join(dir, 'policies', 'loop'));
      assert.equal(refused(() => loadPolicyDir(join(dir, 'policies'))).code, 'POLICY_UNREADABLE');
    });

    it('refuses, naming it, a symbolic link that leads round in a loop (Node\'s ELOOP escaped uncoded, naming a /proc path)', () => {
      const dir = fresh();
      symlinkSync('loop', join(dir, 'policies', 'loop'));
      const e = refused(() => loadPolicyDir(join(dir, 'policies')));
      assert.equal(e.code, 'POLICY_UNREADABLE');
      assert.match(e.message, /^loop is a symbolic link/);
      assert.doesNotMatch(e.message, /\/proc\//);
    });

    it('skips a symbolic link to nothing that is not named .cedar, as it skips any other file', () => {
      const dir = fresh();
      symlinkSync(join(dir, 'gone'), join(dir, 'policies', 'README'));
      assert.deepEqual(loadPolicyDir(join(dir, 'policies')).policies.map((p) => p.id), ['read']);
    });

    it('refuses, naming it, a tree of subdirectories nested more than 32 deep (6,000 levels overflowed the stack, and a RangeError escaped uncoded)', () => {
      const dir = fresh();
      const levels = Array.from({ length: 33 }, () => 'd').join('/');
      mkdirSync(join(dir, 'policies', levels), { recursive: true });
      writeFileSync(join(dir, 'policies', levels, 'deep.cedar'), '@id("deep") permit(principal, action, resource);');
      const e = refused(() => loadPolicyDir(join(dir, 'policies')));
      assert.equal(e.code, 'POLICY_UNREADABLE');
      assert.match(e.message, /^(d\/){32}d is nested more than 32 directories deep/);
    });

    it('reads policies 32 subdirectories deep', () => {
      const dir = fresh();
      const levels = Array.from({ length: 32 }, () => 'd').join('/');
      mkdirSync(join(dir, 'policies', levels), { recursive: true });
      writeFileSync(join(dir, 'policies', levels, 'deep.cedar'), '@id("deep") permit(principal, action, resource);');
      assert.deepEqual(loadPolicyDir(join(dir, 'policies')).policies.map((p) => p.id), ['deep', 'read']);
    });

    it('refuses a FIFO named .cedar without waiting for a writer (the read blocked the process)', () => {
      const dir = fresh();
      execFileSync('mkfifo', [join(dir, 'policies', 'pipe.cedar')]);
      assert.equal(refused(() => loadPolicyDir(join(dir, 'policies'))).code, 'POLICY_UNREADABLE');
    });

    it('refuses a set of more than 1 MiB instead of reading it all', () => {
      const dir = fresh();
      writeFileSync(join(dir, 'policies', 'big.cedar'), `${'// padding\n'.repeat(100_000)}@id("big") permit(principal, action, resource);`);
      assert.equal(refused(() => loadPolicyDir(join(dir, 'policies'))).code, 'POLICY_UNREADABLE');
    });

    it('reads one version when the directory is a link swapped to another version mid-read (it mixed files of both)', async () => {
      const dir = fresh();
      for (const version of ['a', 'b']) {
        mkdirSync(join(dir, version));
        for (let i = 0; i < 40; i++) writeFileSync(join(dir, version, `p${String(i).padStart(2, '0')}.cedar`), `@id("${version}${i}") permit(principal, action, resource);`);
      }
      symlinkSync('a', join(dir, 'active'));
      // Another process swaps the link back and forth with rename(2), as a deployment does.
      const swapper = spawn(process.execPath, ['-e', `
        const { renameSync, symlinkSync } = require('node:fs');
        const dir = ${JSON.stringify(dir)};
        for (let i = 0; ; i++) { symlinkSync(i % 2 ? 'a' : 'b', dir + '/next'); renameSync(dir + '/next', dir + '/active'); }
      `], { stdio: 'ignore' });
      try {
        await new Promise((resolve) => setTimeout(resolve, 200));
        for (let i = 0; i < 100; i++) {
          const versions = new Set(loadPolicyDir(join(dir, 'active')).policies.map((p) => p.id[0]));
          assert.equal(versions.size, 1, `one load held policies of versions ${[...versions].join(' and ')}`);
        }
      } finally {
        swapper.kill();
      }
    });

    describe('when a directory is swapped for a link while the set is read', () => {
      /** policies/team/more.cedar, and outside/more.cedar, a file of the same name that must never be loaded. */
      const withTeam = () => {
        const dir = fresh();
        mkdirSync(join(dir, 'policies', 'team'));
        writeFileSync(join(dir, 'policies', 'team', 'more.cedar'), '@id("more") permit(principal, action == Action::"record.write", resource);');
        writeFileSync(join(dir, 'outside', 'more.cedar'), '@id("elsewhere") permit(principal, action, resource);');
        return dir;
      };
      const linkInPlaceOf = (target: string, path: string) => {
        renameSync(path, `${path}-old`);
        symlinkSync(target, path);
      };

      it('reads the subdirectory it listed when the subdirectory becomes a link to outside just before its file is opened (the file outside was loaded)', () => {
        const dir = withTeam();
        const set = racing('openSync', { suffix: 'more.cedar' }, () => linkInPlaceOf('../outside', join(dir, 'policies', 'team')), () => loadPolicyDir(join(dir, 'policies')));
        assert.deepEqual(set.policies.map((p) => p.id), ['read', 'more']);
      });

      it('refuses, naming it, a subdirectory that becomes a link to outside after the directory above was listed (the link was followed)', () => {
        const dir = withTeam();
        const e = refused(() => racing('readdirSync', { suffix: '', after: true }, () => linkInPlaceOf('../outside', join(dir, 'policies', 'team')), () => loadPolicyDir(join(dir, 'policies'))));
        assert.equal(e.code, 'POLICY_UNREADABLE');
        assert.match(e.message, /\bteam\b/);
      });

      it('reads the directory it opened when a directory above it becomes a link to another tree mid-read (the other tree\'s file was loaded)', () => {
        const dir = fresh();
        mkdirSync(join(dir, 'site', 'policies'), { recursive: true });
        writeFileSync(join(dir, 'site', 'policies', 'good.cedar'), GOOD);
        mkdirSync(join(dir, 'evil', 'policies'), { recursive: true });
        writeFileSync(join(dir, 'evil', 'policies', 'good.cedar'), '@id("elsewhere") permit(principal, action, resource);');
        const set = racing('openSync', { suffix: 'good.cedar' }, () => linkInPlaceOf('evil', join(dir, 'site')), () => loadPolicyDir(join(dir, 'site', 'policies')));
        assert.deepEqual(set.policies.map((p) => p.id), ['read']);
      });
    });

    it('still loads policies in real subdirectories', () => {
      const dir = fresh();
      mkdirSync(join(dir, 'policies', 'team'));
      writeFileSync(join(dir, 'policies', 'team', 'more.cedar'), '@id("more") permit(principal, action == Action::"record.write", resource);');
      assert.deepEqual(loadPolicyDir(join(dir, 'policies')).policies.map((p) => p.file), ['good.cedar', join('team', 'more.cedar')]);
    });
  });
});

describe('when a policy file is not UTF-8 text', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-policy-utf8-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('names the file, line and column of the first bad byte (it read as U+FFFD, so a forbid named another path)', () => {
    writeFileSync(join(dir, 'good.cedar'), GOOD);
    const text = Buffer.concat([Buffer.from('@id("etc")\nforbid(principal, action, resource == File::"/etc/'), Buffer.from([0xff]), Buffer.from('");\n')]);
    writeFileSync(join(dir, 'latin1.cedar'), text);
    const e = refused(() => loadPolicyDir(dir));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.deepEqual(e.issues.map(({ file, line, column }) => ({ file, line, column })), [{ file: 'latin1.cedar', line: 2, column: 51 }]);
    rmSync(join(dir, 'latin1.cedar'));
  });

  it('refuses a byte-order mark at line 1, column 1, saying what it is (Cedar said only "invalid token")', () => {
    writeFileSync(join(dir, 'bom.cedar'), `\uFEFF${GOOD}`);
    const e = refused(() => loadPolicyDir(dir));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.deepEqual(e.issues.map(({ file, line, column }) => ({ file, line, column })), [{ file: 'bom.cedar', line: 1, column: 1 }]);
    assert.doesNotMatch(e.issues[0]!.message, /invalid token/);
    rmSync(join(dir, 'bom.cedar'));
  });

  it('refuses a lone surrogate in text handed in (cedar-wasm took it as U+FFFD)', () => {
    const e = refused(() => loadPolicies([{ file: 'api.cedar', text: `${GOOD}@id("x")\nforbid(principal, action, resource == File::"/etc/\uD800");\n` }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.deepEqual(e.issues.map(({ file, line, column }) => ({ file, line, column })), [{ file: 'api.cedar', line: 4, column: 51 }]);
  });
});

describe('loadPolicies: a bad set is refused with file, line and reason', () => {
  it('names the file and line of a syntax error', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: GOOD }, { file: 'b.cedar', text: '// one\n// two\npermit(principal, action, resource) when { 1 + };\n' }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.equal(e.issues[0]?.file, 'b.cedar');
    assert.equal(e.issues[0]?.line, 3);
  });

  it('names the file, line and policy of a schema violation', () => {
    const text = `${GOOD}\n@id("typo")\npermit(principal is Agent, action == Action::"record.read", resource)\nwhen { principal.stauts == "active" };\n`;
    const e = refused(() => loadPolicies([{ file: 'typo.cedar', text }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.deepEqual({ file: e.issues[0]?.file, line: e.issues[0]?.line, policyId: e.issues[0]?.policyId }, { file: 'typo.cedar', line: 6, policyId: 'typo' });
    assert.match(e.issues[0]!.message, /stauts/);
  });

  it('refuses an unknown action', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: 'permit(principal, action == Action::"launch.missiles", resource);' }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
  });

  for (const [name, text] of [
    ['an @approval other than "required"', '@approval("maybe") permit(principal, action, resource);'],
    ['a @quorum without @approval', '@quorum("2") permit(principal, action, resource);'],
    ['a @quorum of zero', '@approval("required") @quorum("0") permit(principal, action, resource);'],
    ['a @quorum that is not a number', '@approval("required") @quorum("two") permit(principal, action, resource);'],
    ['an @approval on a forbid', '@approval("required") forbid(principal, action, resource);'],
    ['an unknown annotation', '@aproval("required") permit(principal, action, resource);'],
    ['a template', 'permit(principal == ?principal, action, resource);'],
  ] as const) {
    it(`refuses ${name}`, () => {
      const e = refused(() => loadPolicies([{ file: 'a.cedar', text }]));
      assert.equal(e.code, 'POLICY_SET_INVALID');
      assert.equal(e.issues[0]?.file, 'a.cedar');
    });
  }

  it('refuses an @id holding a quote, a backslash, a line break or an invisible character (an id could write its own decision reason: forbidden by "x" permitted by "admin")', () => {
    for (const id of ['x\\" permitted by \\"admin', 'a\\\\b', 'a\\nb', 'a\\u{202e}b', 'a\\u{200b}b', 'a\\u{7}b']) {
      const e = refused(() => loadPolicies([{ file: 'a.cedar', text: `@id("${id}")\nforbid(principal, action, resource);` }]));
      assert.equal(e.code, 'POLICY_SET_INVALID', id);
      assert.match(e.issues[0]!.message, /@id/, id);
    }
    assert.deepEqual(loadPolicies([{ file: 'a.cedar', text: '@id("no ssh: Über-Regel 1/2 (é)")\nforbid(principal, action, resource);' }]).policies.map((p) => p.id), ['no ssh: Über-Regel 1/2 (é)']);
  });

  it('validates a policy whose @id is "__proto__" like any other', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: '@id("__proto__")\npermit(principal is Agent, action, resource) when { principal.stauts == "active" };' }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.deepEqual([e.issues[0]?.file, e.issues[0]?.policyId], ['a.cedar', '__proto__']);
  });

  it('refuses two policies with the same id, pointing at the first', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: GOOD }, { file: 'b.cedar', text: GOOD }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.equal(e.issues[0]?.file, 'b.cedar');
    assert.match(e.issues[0]!.message, /a\.cedar:1/);
  });

  it('says to add an @id when two policies without one start on the same line (it said the id "a.cedar:1" was used at a.cedar:1)', () => {
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text: 'permit(principal, action, resource); permit(principal, action == Action::"record.read", resource);' }]));
    assert.equal(e.code, 'POLICY_SET_INVALID');
    assert.deepEqual([e.issues[0]?.file, e.issues[0]?.line], ['a.cedar', 1]);
    assert.match(e.issues[0]!.message, /@id/);
  });

  it('counts a carriage return alone as a line break, as Cedar and editors do (a file saved with CR line endings was refused: every policy "started on line 1")', () => {
    const set = loadPolicies([{ file: 'a.cedar', text: '// old Mac line endings\rpermit(principal, action, resource);\rpermit(principal, action == Action::"record.read", resource);\r\npermit(principal, action == Action::"record.write", resource);' }]);
    assert.deepEqual(set.policies.map((p) => p.id), ['a.cedar:2', 'a.cedar:3', 'a.cedar:4']);
    const e = refused(() => loadPolicies([{ file: 'b.cedar', text: 'permit(principal, action, resource);\r\r@id("typo") permit(principal is Agent, action, resource) when { principal.stauts == "active" };' }]));
    assert.deepEqual(e.issues.map((i) => i.line), [3]);
  });

  it('loads a file of more than ten policies without @id, each at its own line (from the eleventh on, lines were lost and the file refused)', () => {
    const text = Array.from({ length: 12 }, (_, i) => `permit(principal, action, resource) when { context.time.hour == ${i} };`).join('\n');
    const set = loadPolicies([{ file: 'a.cedar', text }]);
    assert.deepEqual(
      set.policies.map((p) => [p.id, p.line]),
      Array.from({ length: 12 }, (_, i) => [`a.cedar:${i + 1}`, i + 1]),
    );
  });

  it('names the line of a schema violation in the third of twelve policies in a file (it named the last line)', () => {
    const text = Array.from({ length: 12 }, (_, i) => `@id("p${i}") permit(principal is Agent, action, resource) when { ${i === 2 ? 'principal.stauts' : 'principal.status'} == "active" };`).join('\n');
    const e = refused(() => loadPolicies([{ file: 'a.cedar', text }]));
    assert.deepEqual([e.issues[0]?.policyId, e.issues[0]?.line], ['p2', 3]);
  });

  it('never lets a foreign exception out, whatever the text (property)', () => {
    const cedarish = fc.array(fc.constantFrom('permit', 'forbid', '(', ')', 'principal', 'action', 'resource', ',', ';', 'when', '{', '}', '@id("x")', '@approval("required")', '"', '==', 'in', 'Action::"record.read"', '\n', '//', 'é', '\u0000'), { maxLength: 30 }).map((xs) => xs.join(' '));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), cedarish), (text) => {
        try {
          loadPolicies([{ file: 'fuzz.cedar', text }]);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
          assert.equal(error.code, 'POLICY_SET_INVALID');
          for (const issue of error.issues) assert.ok(issue.line === undefined || issue.line >= 1);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('hot reload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-policy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const request = { principal: { type: 'Agent', id: 'a' }, action: 'record.read', resource: { type: 'Record', id: 'r' } };

  it('keeps the previous set active when the new one is invalid', () => {
    writeFileSync(join(dir, 'p.cedar'), GOOD);
    const pdp = new DecisionPoint();
    const first = pdp.reload(dir);
    writeFileSync(join(dir, 'p.cedar'), 'permit(principal, action, resource) when { nope };');
    assert.equal(refused(() => pdp.reload(dir)).code, 'POLICY_SET_INVALID');
    assert.equal(pdp.policySet, first);
    assert.equal(pdp.decide(request).decision, 'allow');
  });

  it('picks up a changed file, and reports a broken one without dropping policy', async () => {
    writeFileSync(join(dir, 'p.cedar'), GOOD);
    const pdp = new DecisionPoint();
    pdp.reload(dir);
    const events: string[] = [];
    let wake: () => void = () => {};
    const watcher = watchPolicyDir(pdp, dir, { debounceMs: 20, onLoad: () => (events.push('load'), wake()), onError: (e) => (events.push(e.code), wake()) });
    try {
      const next = () => new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no reload within 3 s')), 3000);
        wake = () => (clearTimeout(timer), resolve());
      });
      let waiting = next();
      writeFileSync(join(dir, 'p.cedar'), '@id("deny-all") forbid(principal, action, resource);\n' + GOOD);
      await waiting;
      assert.equal(pdp.decide(request).decision, 'deny');
      waiting = next();
      writeFileSync(join(dir, 'p.cedar'), 'this is not cedar');
      await waiting;
      assert.deepEqual(events, ['load', 'POLICY_SET_INVALID']);
      assert.equal(pdp.decide(request).decision, 'deny');
    } finally {
      watcher.close();
    }
  });
});

describe('hot reload when loading fails with an error that is not Corral\'s', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-policy-foreign-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reports it to onError as POLICY_ENGINE_FAILED and goes on watching (it was thrown from a timer, ending the gateway)', async () => {
    writeFileSync(join(dir, 'p.cedar'), GOOD);
    const pdp = new DecisionPoint();
    const set = pdp.reload(dir);
    let fail = true;
    // A decision point whose load fails as cedar-wasm or the system can: not with a PolicyError.
    const failing = Object.assign(Object.create(pdp) as DecisionPoint, {
      reload: (d: string) => (fail ? (() => { throw new RangeError('Maximum call stack size exceeded'); })() : pdp.reload(d)),
    });
    const events: { error?: PolicyError; set?: unknown }[] = [];
    let wake: () => void = () => {};
    const next = () => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reload within 30 s')), 30_000);
      wake = () => (clearTimeout(timer), resolve());
    });
    const watcher = watchPolicyDir(failing, dir, { debounceMs: 20, onLoad: (s) => (events.push({ set: s }), wake()), onError: (e) => (events.push({ error: e }), wake()) });
    try {
      let waiting = next();
      writeFileSync(join(dir, 'p.cedar'), `${GOOD}\n`);
      await waiting;
      assert.equal(events[0]?.error?.code, 'POLICY_ENGINE_FAILED');
      assert.ok(events[0]?.error?.cause instanceof RangeError);
      assert.equal(pdp.policySet, set);
      fail = false;
      waiting = next();
      writeFileSync(join(dir, 'p.cedar'), `@id("deny-all") forbid(principal, action, resource);\n${GOOD}`);
      await waiting;
      assert.ok(events.at(-1)?.set);
    } finally {
      watcher.close();
    }
  });
});

describe('hot reload of a directory Corral activates by swapping its link', () => {
  const root = mkdtempSync(join(tmpdir(), 'corral-policy-link-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const request = { principal: { type: 'Agent', id: 'a' }, action: 'record.read', resource: { type: 'Record', id: 'r' } };

  it('follows the swap and decides with the new version (the watch stayed on the old one, and its forbid was never seen)', async () => {
    for (const [version, text] of [['v1', GOOD], ['v2', `@id("deny-all") forbid(principal, action, resource);\n${GOOD}`]] as const) {
      mkdirSync(join(root, version));
      writeFileSync(join(root, version, 'p.cedar'), text);
    }
    const dir = join(root, 'policies');
    symlinkSync(join(root, 'v1'), dir);
    const swap = (version: string) => {
      symlinkSync(join(root, version), join(root, 'next'));
      renameSync(join(root, 'next'), dir);
    };
    const pdp = new DecisionPoint();
    pdp.reload(dir);
    let wake: () => void = () => {};
    const next = () => new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no reload within 3 s')), 3000);
      wake = () => (clearTimeout(timer), resolve());
    });
    const watcher = watchPolicyDir(pdp, dir, { debounceMs: 20, onLoad: () => wake() });
    try {
      let waiting = next();
      swap('v2');
      await waiting;
      assert.equal(pdp.decide(request).decision, 'deny');
      // and it now watches the new version's files
      waiting = next();
      writeFileSync(join(root, 'v2', 'p.cedar'), GOOD);
      await waiting;
      assert.equal(pdp.decide(request).decision, 'allow');
    } finally {
      watcher.close();
    }
  });

  it('refuses to watch a directory that does not exist with POLICY_UNREADABLE (Node\'s own error escaped)', () => {
    assert.throws(() => watchPolicyDir(new DecisionPoint(), join(root, 'nonexistent')), { code: 'POLICY_UNREADABLE' });
  });
});

describe('loadPolicies: a deeply nested policy cannot break cedar-wasm', () => {
  // cedar-wasm recurses once per nesting level on a fixed stack; an overflow
  // traps, and the trap left every later cedar-wasm call failing.
  const SHAPES: Record<string, (n: number) => string> = {
    brackets: (n) => `${'('.repeat(n)}true${')'.repeat(n)}`,
    sets: (n) => `${'['.repeat(n)}${']'.repeat(n)} == []`,
    records: (n) => `${'{a: '.repeat(n)}1${'}'.repeat(n)} == {a: 1}`,
    comparisons: (n) => Array(n).fill('context.classification == "x"').join(' || '),
    arithmetic: (n) => `${Array(n).fill('(-1)').join(' - ')} == 1`,
    conditionals: (n) => `${'if context.classification == "x" then '.repeat(n)}true${' else false'.repeat(n)}`,
  };
  // The ip() policy keeps decisions on the cedar-wasm path, so evaluation is exercised too.
  const ON_CEDAR = '@id("ext") permit(principal, action, resource) when { ip("127.0.0.1").isLoopback() };';
  const request = { principal: { type: 'Agent', id: 'a' }, action: 'record.read', resource: { type: 'Record', id: 'r' } };

  it('refuses it with POLICY_SET_INVALID, or loads and decides it, and cedar-wasm keeps working (property)', () => {
    fc.assert(
      // Before the nesting, text the depth check must read as Cedar does: comments end at \n or \r, strings hold escaped quotes.
      fc.property(fc.constantFrom(...Object.keys(SHAPES)), fc.integer({ min: 1, max: 1500 }), fc.constantFrom('', '// note\n', '// note\r', '"a \\" ((" == "" || '), (shape, n, before) => {
        const text = `@id("deep") forbid(principal, action, resource) when { ${before}${SHAPES[shape]!(n)} };\n${ON_CEDAR}`;
        try {
          const pdp = new DecisionPoint();
          pdp.load(loadPolicies([{ file: 'deep.cedar', text }]));
          pdp.decide(request);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
          assert.equal(error.code, 'POLICY_SET_INVALID');
          assert.equal(error.issues[0]?.file, 'deep.cedar');
        }
        const pdp = new DecisionPoint();
        pdp.load(loadPolicies([{ file: 'good.cedar', text: ON_CEDAR }]));
        assert.deepEqual([pdp.decide(request).decision, pdp.decide(request).engine], ['allow', 'cedar']);
      }),
      { numRuns: 60, examples: [['brackets', 140, ''], ['comparisons', 400, ''], ['arithmetic', 400, ''], ['sets', 130, ''], ['brackets', 400, '// note\r']] },
    );
  });

  it('refuses 100,000 nested brackets, if-expressions or negations with POLICY_SET_INVALID naming the file and line, and cedar-wasm keeps working', () => {
    for (const body of [SHAPES.brackets!(100_000), SHAPES.conditionals!(100_000), `${'!'.repeat(100_000)}true`]) {
      const text = `@id("deep")\nforbid(principal, action, resource) when {\n  ${body} };\n`;
      assert.throws(() => loadPolicies([{ file: 'deep.cedar', text }]), (error: unknown) => {
        assert.ok(error instanceof PolicyError, String(error));
        assert.equal(error.code, 'POLICY_SET_INVALID');
        assert.deepEqual([error.issues[0]?.file, error.issues[0]?.line], ['deep.cedar', 3]);
        return true;
      });
    }
    const pdp = new DecisionPoint();
    pdp.load(loadPolicies([{ file: 'good.cedar', text: ON_CEDAR }]));
    assert.deepEqual([pdp.decide(request).decision, pdp.decide(request).engine], ['allow', 'cedar']);
  });

  it('counts nesting after a comment ended by a carriage return (the guard read it as comment to the line feed, and cedar-wasm trapped)', () => {
    // Run in a child: before the fix, the trap broke cedar-wasm for the rest of the process.
    const script = `
      import { loadPolicies } from ${JSON.stringify(new URL('./load.ts', import.meta.url).href)};
      import { DecisionPoint } from ${JSON.stringify(new URL('./decision-point.ts', import.meta.url).href)};
      const text = '@id("deep") forbid(principal, action, resource) when { // hidden\\r' + '('.repeat(400) + 'true' + ')'.repeat(400) + ' };';
      let code;
      try { loadPolicies([{ file: 'deep.cedar', text }]); code = 'loaded'; } catch (error) { code = error.code ?? String(error); }
      const pdp = new DecisionPoint();
      pdp.load(loadPolicies([{ file: 'good.cedar', text: ${JSON.stringify(ON_CEDAR)} }]));
      console.log(JSON.stringify([code, pdp.decide(${JSON.stringify(request)}).decision]));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), ['POLICY_SET_INVALID', 'allow']);
  });
});
