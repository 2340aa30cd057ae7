import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs, { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { createServer, type Server } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import fc from 'fast-check';
import { ContainError } from '../errors.ts';
import { loadPolicyFile } from './file.ts';
import { validatePolicy } from './load.ts';
import { MAX_DENIED_ENTRIES } from './hard-links.ts';
import { planKey, planSandbox, type SandboxPlan } from './plan.ts';

function workspace(): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-plan-')));
  for (const d of ['outbox', 'inbox/private', 'inbox/public']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'inbox/secret.txt'), 'x');
  return dir;
}

function plan(dir: string, policy: unknown, env: NodeJS.ProcessEnv = {}): SandboxPlan {
  return planSandbox({ policy: validatePolicy(policy), source: join(dir, 'policy.yaml'), baseDir: dir }, env);
}

function refused(code: ContainError['code'], fn: () => unknown): ContainError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ContainError);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail('the plan was made');
}

const unresolvable = (fn: () => unknown) => refused('CONTAIN_PATH_UNRESOLVABLE', fn);
const unenforceable = (fn: () => unknown) => refused('CONTAIN_UNENFORCEABLE', fn);

describe('planning a sandbox', () => {
  describe('when paths are relative', () => {
    it("resolves them against the policy file's folder", () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['inbox'] } });
      assert.deepEqual(
        p.mounts.map((m) => [m.kind, m.path]),
        [
          ['ro', join(dir, 'inbox')],
          ['rw', join(dir, 'outbox')],
        ],
      );
    });
  });

  describe('when a path climbs with ..', () => {
    it('grants the folder it lands in, not the one it names', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readonly: ['./outbox/../inbox'] } });
      assert.deepEqual(p.mounts, [{ kind: 'ro', path: join(dir, 'inbox') }]);
    });
  });

  describe('when a granted path is a symlink', () => {
    it('grants its target, so a deny on the target still applies', () => {
      const dir = workspace();
      symlinkSync(join(dir, 'inbox'), join(dir, 'link'));
      const p = plan(dir, { filesystem: { readonly: ['./link'], denied: ['./inbox/private'] } });
      assert.deepEqual(p.mounts, [
        { kind: 'ro', path: join(dir, 'inbox') },
        { kind: 'deny', path: join(dir, 'inbox/private'), directory: true },
      ]);
    });

    it('resolves a symlinked deny to its target too', () => {
      const dir = workspace();
      symlinkSync(join(dir, 'inbox/private'), join(dir, 'hidden'));
      const p = plan(dir, { filesystem: { readonly: ['./inbox'], denied: ['./hidden'] } });
      assert.ok(p.mounts.some((m) => m.kind === 'deny' && m.path === join(dir, 'inbox/private')));
    });

    it('refuses one that lies inside a read-write grant, where a sandbox could have planted it, naming the link', () => {
      const dir = workspace();
      symlinkSync(join(dir, 'inbox'), join(dir, 'outbox/data'));
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./outbox/data/public'] } }));
      assert.deepEqual(error.issues.map((i) => i.field), ['filesystem.readonly[0]']);
      assert.ok(error.issues[0]!.message.includes(join(dir, 'outbox/data')));
    });

    it('refuses a read-write grant reached through a symlink in another read-write grant too', () => {
      const dir = workspace();
      symlinkSync(join(dir, 'inbox'), join(dir, 'outbox/data'));
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['./outbox', './outbox/data'] } }));
      assert.deepEqual(error.issues.map((i) => i.field), ['filesystem.readwrite[1]']);
    });
  });

  describe('when a deny lies inside a granted tree', () => {
    it('masks it after the grants, file or folder', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['.'], denied: ['./inbox/private', './inbox/secret.txt'] } });
      assert.deepEqual(p.mounts.slice(2), [
        { kind: 'deny', path: join(dir, 'inbox/private'), directory: true },
        { kind: 'deny', path: join(dir, 'inbox/secret.txt'), directory: false },
      ]);
    });

    it('drops a grant the deny covers entirely', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readonly: ['./inbox', './inbox/private'], denied: ['./inbox/private'] } });
      assert.ok(!p.mounts.some((m) => m.kind === 'ro' && m.path === join(dir, 'inbox/private')));
    });
  });

  describe('when a deny lies outside every grant', () => {
    it('needs no mask: the path is not there at all', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readonly: ['./outbox'], denied: ['./inbox'] } });
      assert.deepEqual(p.mounts, [{ kind: 'ro', path: join(dir, 'outbox') }]);
    });
  });

  describe('when grants nest', () => {
    it('mounts the outer tree first and lets read-only win over read-write for the same path', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['./inbox/public', '.', './outbox'], readonly: ['./inbox', './outbox'] } });
      assert.deepEqual(
        p.mounts.map((m) => [m.kind, m.path]),
        [
          ['rw', dir],
          ['ro', join(dir, 'inbox')],
          ['ro', join(dir, 'outbox')],
          ['rw', join(dir, 'inbox/public')],
        ],
      );
    });
  });

  describe('when a grant or a deny lies deeper inside a read-write grant', () => {
    it('binds each folder between onto itself, so the sandbox cannot move a read-only folder away and put its own in its place', () => {
      const dir = workspace();
      mkdirSync(join(dir, 'outbox/project/.git/hooks'), { recursive: true });
      const p = plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./outbox/project/.git/hooks'] } });
      assert.deepEqual(
        p.mounts.map((m) => [m.kind, m.path]),
        [
          ['rw', join(dir, 'outbox')],
          ['rw', join(dir, 'outbox/project')],
          ['rw', join(dir, 'outbox/project/.git')],
          ['ro', join(dir, 'outbox/project/.git/hooks')],
        ],
      );
    });

    it('binds the folders above a deny too, so its hidden files cannot be moved out from under the mask for the next run', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['.'], denied: ['./inbox/private'] } });
      assert.deepEqual(p.mounts, [
        { kind: 'rw', path: dir },
        { kind: 'rw', path: join(dir, 'inbox') },
        { kind: 'deny', path: join(dir, 'inbox/private'), directory: true },
      ]);
    });

    it('binds nothing more for an entry of the grant itself (a mount point already) or below a read-only grant', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['.', './inbox/public'], readonly: ['./inbox'], denied: ['./outbox'] } });
      assert.deepEqual(
        p.mounts.map((m) => [m.kind, m.path]),
        [
          ['rw', dir],
          ['ro', join(dir, 'inbox')],
          ['rw', join(dir, 'inbox/public')],
          ['deny', join(dir, 'outbox')],
        ],
      );
    });
  });

  describe('when a denied path does not exist yet', () => {
    it('masks it inside a read-write grant, which the sandbox could otherwise create it in (it was left out of the plan: a denied .env or .git/hooks was the sandbox\'s to make)', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/.env'] } });
      assert.deepEqual(p.mounts, [
        { kind: 'rw', path: join(dir, 'outbox') },
        { kind: 'deny', path: join(dir, 'outbox/.env'), directory: true, missing: true },
      ]);
    });

    it('masks its first missing folder, where everything below it would have to be made', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['.'], denied: ['./outbox/.git/hooks/pre-commit', './outbox/.git/config'] } });
      assert.deepEqual(p.mounts, [
        { kind: 'rw', path: dir },
        { kind: 'rw', path: join(dir, 'outbox') },
        { kind: 'deny', path: join(dir, 'outbox/.git'), directory: true, missing: true },
      ]);
    });

    it('masks nothing where the sandbox could not create it: below a read-only grant, outside every grant, below another mask', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./inbox'], denied: ['./inbox/new', './elsewhere/new', './outbox/gone', './outbox/gone/below'] } });
      assert.deepEqual(
        p.mounts.map((m) => [m.kind, m.path]),
        [
          ['ro', join(dir, 'inbox')],
          ['rw', join(dir, 'outbox')],
          ['deny', join(dir, 'outbox/gone')],
        ],
      );
    });

    it('refuses one that leads through a symlink inside a read-write grant (a dangling one the sandbox could have planted)', () => {
      const dir = workspace();
      symlinkSync(join(dir, 'nowhere'), join(dir, 'outbox/.env'));
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/.env'] } }));
      assert.equal(error.issues[0]?.field, 'filesystem.denied[0]');
    });
  });

  // Regression: a denied path whose resolution stopped short (a file where a folder should be, a symlink loop) was
  // left out of the plan without a word, and a command in the read-write grant replaced what stopped it and made the
  // path: `rm .git && mkdir -p .git/hooks` in a git worktree, whose .git is a file.
  describe('when a denied path cannot be resolved', () => {
    it('refuses one below a file where a folder should be inside a read-write grant (a git worktree\'s .git), naming the file, as unenforceable', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'outbox/.git'), 'gitdir: /elsewhere/.git/worktrees/outbox\n');
      const error = unenforceable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/.git/hooks'] } }));
      assert.deepEqual(
        error.issues.map((i) => i.field),
        ['filesystem.denied[0]'],
      );
      const { message } = error.issues[0]!;
      assert.ok(message.startsWith(`${join(dir, 'outbox/.git/hooks')} cannot be masked: ${join(dir, 'outbox/.git')} is a file where a folder should be`), message);
      assert.match(message, /grant .* read-only .* or deny it, or set 'onUnenforceable: warn'/);
    });

    it('refuses one below a file several folders up, and one a symlink leads to through a file', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'outbox/notes'), 'n');
      symlinkSync(join(dir, 'outbox/notes'), join(dir, 'inbox/to-notes'));
      const error = unenforceable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./inbox'], denied: ['./outbox/notes/a/b/c', './inbox/to-notes/x'] } }));
      assert.deepEqual(
        error.issues.map((i) => [i.field, i.message.split(':')[0]]),
        [
          ['filesystem.denied[0]', `${join(dir, 'outbox/notes/a/b/c')} cannot be masked`],
          ['filesystem.denied[1]', `${join(dir, 'inbox/to-notes/x')} cannot be masked`],
        ],
      );
    });

    it('refuses one through a symbolic link loop inside the read-write grant, naming the link once', () => {
      const dir = workspace();
      symlinkSync('loop', join(dir, 'outbox/loop'));
      symlinkSync('b', join(dir, 'outbox/a'));
      symlinkSync('a', join(dir, 'outbox/b'));
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/loop/x', './outbox/a/x'] } }));
      assert.deepEqual(
        error.issues.map((i) => [i.field, i.message.match(/leads through the symlink (\S+),/)?.[1]]),
        [
          ['filesystem.denied[0]', join(dir, 'outbox/loop')],
          ['filesystem.denied[1]', join(dir, 'outbox/a')],
          ['filesystem.denied[1]', join(dir, 'outbox/b')],
        ],
      );
      assert.match(error.issues[0]!.message, /in a symbolic link loop: .* could replace it with a folder/);
    });

    it('refuses one below a folder that cannot be searched inside the read-write grant (the command could chmod it)', () => {
      const dir = workspace();
      mkdirSync(join(dir, 'outbox/locked'));
      const key = join(dir, 'outbox/locked/key');
      // Root searches any folder: the lookup's EACCES is made here.
      const { lstatSync } = fs;
      const lstat = mock.method(fs, 'lstatSync', ((path: string, options?: fs.StatSyncOptions) => {
        if (path === key) throw Object.assign(new Error(`EACCES: permission denied, lstat '${key}'`), { code: 'EACCES' });
        return lstatSync(path, options);
      }) as typeof fs.lstatSync);
      syncBuiltinESMExports();
      try {
        const error = unenforceable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/locked/key'] } }));
        assert.ok(error.issues[0]!.message.startsWith(`${key} cannot be masked: ${join(dir, 'outbox/locked')} cannot be searched (EACCES)`), error.issues[0]!.message);
      } finally {
        lstat.mock.restore();
        syncBuiltinESMExports();
      }
    });

    it('refuses one that leads into a missing folder the command could make and back out of it (..)', () => {
      const dir = workspace();
      symlinkSync('../outbox/made/../elsewhere', join(dir, 'inbox/link'));
      const error = unenforceable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./inbox'], denied: ['./inbox/link/key'] } }));
      assert.match(error.issues[0]!.message, new RegExp(`^${join(dir, 'inbox/link/key')} cannot be masked: it leads into ${join(dir, 'outbox/made')}, which does not exist, and back out of it`));
    });

    it('plans it unmasked with a warning under onUnenforceable: warn', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'outbox/.git'), 'gitdir: /elsewhere\n');
      const p = plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/.git/hooks'] }, onUnenforceable: 'warn' });
      assert.deepEqual(p.mounts, [{ kind: 'rw', path: join(dir, 'outbox') }]);
      assert.deepEqual(p.warnings, [
        `not enforced: ${join(dir, 'outbox/.git/hooks')} is not masked: ${join(dir, 'outbox/.git')} is a file where a folder should be, and the command could replace it with a folder and then make ${join(dir, 'outbox/.git/hooks')}, which no mask would hide`,
      ]);
    });

    it('refuses a symlink loop under onUnenforceable: warn too, as any symlink a sandbox could have planted', () => {
      const dir = workspace();
      symlinkSync('loop', join(dir, 'outbox/loop'));
      unresolvable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/loop/x'] }, onUnenforceable: 'warn' }));
    });

    it('plans it, with nothing to mask, where the command cannot clear what stops it: the file granted read-only or denied, granted on its own, or in a read-only grant, or outside every grant', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'outbox/.git'), 'gitdir: /elsewhere\n');
      symlinkSync('loop', join(dir, 'inbox/loop'));
      const rw = (p: SandboxPlan) => p.mounts.map((m) => [m.kind, m.path]);
      assert.deepEqual(rw(plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./outbox/.git'], denied: ['./outbox/.git/hooks'] } })), [
        ['rw', join(dir, 'outbox')],
        ['ro', join(dir, 'outbox/.git')],
      ]);
      assert.deepEqual(rw(plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./outbox/.git', './outbox/.git/hooks'] } })), [
        ['rw', join(dir, 'outbox')],
        ['deny', join(dir, 'outbox/.git')],
      ]);
      assert.deepEqual(rw(plan(dir, { filesystem: { readwrite: ['./inbox/secret.txt'], denied: ['./inbox/secret.txt/x'] } })), [['rw', join(dir, 'inbox/secret.txt')]]);
      for (const denied of ['./inbox/secret.txt/x', './inbox/loop/x']) {
        const p = plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./inbox'], denied: [denied] } });
        assert.deepEqual(rw(p), [
          ['ro', join(dir, 'inbox')],
          ['rw', join(dir, 'outbox')],
        ]);
        assert.deepEqual(p.warnings, []);
      }
    });

    it('never plans a denied path below a file in a read-write grant without refusing or warning, wherever the file lies on it', () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.boolean(), (below, above, warn) => {
          const dir = workspace();
          const folders = Array.from({ length: above }, (_, i) => `f${i}`);
          mkdirSync(join(dir, 'outbox', ...folders), { recursive: true });
          const file = join(dir, 'outbox', ...folders, 'file');
          writeFileSync(file, 'x');
          const denied = join(file, ...Array.from({ length: below }, (_, i) => `d${i}`));
          const policy = { filesystem: { readwrite: ['./outbox'], denied: [denied] }, ...(warn ? { onUnenforceable: 'warn' } : {}) };
          if (!warn) {
            const error = unenforceable(() => plan(dir, policy));
            assert.ok(error.issues[0]!.message.startsWith(`${denied} cannot be masked: ${file} is a file where a folder should be`));
            return;
          }
          const p = plan(dir, policy);
          assert.equal(p.warnings.length, 1);
          assert.ok(p.warnings[0]!.startsWith(`not enforced: ${denied} is not masked: ${file} is a file`));
        }),
        { numRuns: 40 },
      );
    });
  });

  describe('when a denied file has other names (hard links)', () => {
    it('refuses the plan: the mask hides one name, and a grant may hold another', () => {
      const dir = workspace();
      linkSync(join(dir, 'inbox/secret.txt'), join(dir, 'outbox/copy.txt'));
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['.'], denied: ['./inbox/secret.txt'] } }));
      assert.equal(error.issues[0]?.field, 'filesystem.denied[0]');
    });

    it('plans a denied file with one name', () => {
      const dir = workspace();
      const p = plan(dir, { filesystem: { readwrite: ['.'], denied: ['./inbox/secret.txt'] } });
      assert.deepEqual(p.mounts.at(-1), { kind: 'deny', path: join(dir, 'inbox/secret.txt'), directory: false });
    });

    it('refuses it below a denied folder no grant holds, as anywhere else', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'inbox/private/key'), 'k');
      linkSync(join(dir, 'inbox/private/key'), join(dir, 'outbox/key'));
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./inbox', './inbox/private/key'] } }));
      assert.equal(error.issues[0]?.field, 'filesystem.denied[1]');
    });

    it('plans one whose other names are all denied too', () => {
      const dir = workspace();
      linkSync(join(dir, 'inbox/secret.txt'), join(dir, 'inbox/private/copy.txt'));
      const p = plan(dir, { filesystem: { readwrite: ['.'], denied: ['./inbox/secret.txt', './inbox/private'] } });
      assert.deepEqual(
        p.mounts.filter((m) => m.kind === 'deny'),
        [
          { kind: 'deny', path: join(dir, 'inbox/secret.txt'), directory: false },
          { kind: 'deny', path: join(dir, 'inbox/private'), directory: true },
        ],
      );
    });
  });

  describe('when a file in a denied folder a grant holds has other names (hard links)', () => {
    it('refuses the plan, naming the file: the mask hides the folder, and the grant reads the file under its other name', () => {
      const dir = workspace();
      mkdirSync(join(dir, 'inbox/private/keys'));
      writeFileSync(join(dir, 'inbox/private/keys/id'), 'the denied key');
      linkSync(join(dir, 'inbox/private/keys/id'), join(dir, 'inbox/public/id.bak'));
      const error = unresolvable(() => plan(dir, { filesystem: { readonly: ['./inbox'], denied: ['./inbox/private'] } }));
      assert.equal(error.issues.length, 1);
      assert.equal(error.issues[0]?.field, 'filesystem.denied[0]');
      assert.ok(error.issues[0]?.message.startsWith(`${join(dir, 'inbox/private/keys/id')} (in the denied folder ${join(dir, 'inbox/private')}) has 2 names (hard links), 1 outside every denied path`), error.issues[0]?.message);
    });

    it('counts the other files of the folder that have other names', () => {
      const dir = workspace();
      for (const name of ['a', 'b', 'c']) {
        writeFileSync(join(dir, `inbox/private/${name}`), name);
        linkSync(join(dir, `inbox/private/${name}`), join(dir, `outbox/${name}`));
      }
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['.'], denied: ['./inbox/private'] } }));
      assert.match(error.issues[0]!.message, /with 2 other such files\) has 2 names/);
    });

    it('plans it when every name lies in the folder, or in another denied folder (a grant holds it or not)', () => {
      const dir = workspace();
      mkdirSync(join(dir, 'vault'));
      writeFileSync(join(dir, 'inbox/private/a'), 'a');
      linkSync(join(dir, 'inbox/private/a'), join(dir, 'inbox/private/a2'));
      writeFileSync(join(dir, 'inbox/private/b'), 'b');
      linkSync(join(dir, 'inbox/private/b'), join(dir, 'outbox/b'));
      linkSync(join(dir, 'inbox/private/b'), join(dir, 'vault/b'));
      const p = plan(dir, { filesystem: { readwrite: ['./outbox'], readonly: ['./inbox'], denied: ['./inbox/private', './outbox', './vault'] } });
      assert.deepEqual(p.mounts.at(-1), { kind: 'deny', path: join(dir, 'inbox/private'), directory: true });
    });

    it('does not walk a denied folder no grant holds (it masks nothing)', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'inbox/private/a'), 'a');
      linkSync(join(dir, 'inbox/private/a'), join(dir, 'outbox/a'));
      const p = plan(dir, { filesystem: { readwrite: ['./outbox'], denied: ['./inbox/private'] } });
      assert.deepEqual(p.mounts, [{ kind: 'rw', path: join(dir, 'outbox') }]);
    });

    it('plans a folder whose files have one name each, and one name a symlink in it leads to (a symlink is not followed)', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'inbox/private/a'), 'a');
      writeFileSync(join(dir, 'outbox/b'), 'b');
      linkSync(join(dir, 'outbox/b'), join(dir, 'outbox/b2'));
      symlinkSync(join(dir, 'outbox/b'), join(dir, 'inbox/private/to-b'));
      const p = plan(dir, { filesystem: { readwrite: ['.'], denied: ['./inbox/private'] } });
      assert.deepEqual(p.mounts.at(-1), { kind: 'deny', path: join(dir, 'inbox/private'), directory: true });
    });

    it(`refuses one holding more than ${MAX_DENIED_ENTRIES} entries, which cannot be checked in the time a plan takes; masks it with a warning under onUnenforceable: warn`, () => {
      const dir = workspace();
      for (let i = 0; i <= MAX_DENIED_ENTRIES; i++) mkdirSync(join(dir, `inbox/private/${i}`));
      const error = unenforceable(() => plan(dir, { filesystem: { readonly: ['./inbox'], denied: ['./inbox/private'] } }));
      assert.equal(error.issues[0]?.field, 'filesystem.denied[0]');
      assert.match(error.issues[0]!.message, /cannot be checked for files with other names/);
      const lenient = plan(dir, { filesystem: { readonly: ['./inbox'], denied: ['./inbox/private'] }, onUnenforceable: 'warn' });
      assert.deepEqual(lenient.mounts.at(-1), { kind: 'deny', path: join(dir, 'inbox/private'), directory: true });
      assert.equal(lenient.warnings.length, 1);
      assert.match(lenient.warnings[0]!, /^not enforced: .* is masked, but not checked for files with other names/);
    });
  });

  describe('when a policy file names paths that cannot be used', () => {
    const text = 'runtime: [shell]\nfilesystem:\n  readwrite:\n    - ./outbox\n    - ./missing\n  readonly: [/etc]\nworkingDirectory: ./inbox\n';
    for (const cached of [false, true]) {
      it(`names each with its file, line and field${cached ? ', from a policy remembered in the cache' : ''}`, async () => {
        const dir = workspace();
        const file = join(dir, 'policy.yaml');
        writeFileSync(file, text);
        const cacheDir = join(dir, 'cache');
        if (cached) await loadPolicyFile(file, dir, { cacheDir });
        const loaded = await loadPolicyFile(file, dir, { cacheDir });
        const error = unresolvable(() => planSandbox(loaded, {}));
        assert.deepEqual(
          error.issues.map((i) => [i.file, i.line, i.field]),
          [
            [file, 5, 'filesystem.readwrite[1]'],
            [file, 6, 'filesystem.readonly[0]'],
            [file, 7, 'workingDirectory'],
          ],
        );
        assert.ok(error.message.includes(`${file}:5: filesystem.readwrite[1]: ${join(dir, 'missing')} does not exist`), error.message);
      });
    }

    it('names the read-write grant that holds the policy file by its line', async () => {
      const dir = workspace();
      const file = join(dir, 'outbox', 'policy.yaml');
      writeFileSync(file, 'filesystem:\n  readonly: [../inbox]\n  readwrite: [../inbox/public, .]\n');
      const loaded = await loadPolicyFile(file, join(dir, 'outbox'));
      const error = unresolvable(() => planSandbox(loaded, {}));
      assert.deepEqual(error.issues.map((i) => [i.line, i.field]), [[3, 'filesystem.readwrite[1]']]);
    });
  });

  describe('when a granted path does not exist', () => {
    it('refuses, naming the field and the path', () => {
      const dir = workspace();
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['./outbox', './missing'] } }));
      assert.equal(error.issues[0]?.field, 'filesystem.readwrite[1]');
      assert.match(error.issues[0]!.message, /missing/);
    });
  });

  describe('when a policy grants a path the sandbox builds itself', () => {
    for (const path of ['/', '/etc', '/proc', '/dev', '/sys', '/tmp', '/etc/../']) {
      it(`refuses ${path}`, () => {
        unresolvable(() => plan(workspace(), { filesystem: { readonly: [path] } }));
      });
    }
  });

  describe('when a policy grants a path inside a kernel interface', () => {
    // /proc/PID/root of a host process reaches the host's whole file system; /sys/fs/cgroup holds the limits.
    for (const path of ['/proc/self', '/proc/sys/kernel', '/sys/fs/cgroup', '/dev/shm']) {
      it(`refuses ${path}, as it refuses the interface itself`, () => {
        const error = unresolvable(() => plan(workspace(), { filesystem: { readwrite: [path] } }));
        assert.equal(error.issues[0]?.field, 'filesystem.readwrite[0]');
      });
    }

    it('still takes a deny there, which hides nothing the sandbox could see', () => {
      assert.deepEqual(plan(workspace(), { filesystem: { denied: ['/proc/self'] } }).mounts, []);
    });
  });

  describe("when a policy reaches Corral's state directory", () => {
    function withState(): { dir: string; state: string } {
      const dir = workspace();
      const state = join(dir, 'outbox/.corral');
      mkdirSync(join(state, 'policy-cache'), { recursive: true });
      return { dir, state };
    }

    it('refuses a grant of the directory or of anything inside it', () => {
      const { dir, state } = withState();
      const loaded = { policy: validatePolicy({ filesystem: { readonly: ['./outbox/.corral'], readwrite: ['./outbox/.corral/policy-cache'] } }), source: 'policy.yaml', baseDir: dir };
      const error = unresolvable(() => planSandbox(loaded, {}, { stateDir: state }));
      assert.deepEqual(error.issues.map((i) => i.field).sort(), ['filesystem.readonly[0]', 'filesystem.readwrite[0]']);
    });

    it('hides it inside a grant that holds it, even through a symlink', () => {
      const { dir, state } = withState();
      symlinkSync(state, join(dir, 'state-link'));
      const loaded = { policy: validatePolicy({ filesystem: { readwrite: ['./outbox'] } }), source: 'policy.yaml', baseDir: dir };
      const p = planSandbox(loaded, {}, { stateDir: join(dir, 'state-link') });
      assert.deepEqual(p.mounts, [
        { kind: 'rw', path: join(dir, 'outbox') },
        { kind: 'deny', path: state, directory: true },
      ]);
    });

    it('refuses a read-write grant that holds it below a folder the sandbox could rename, which would move it out from under its mask', () => {
      const { dir, state } = withState();
      const loaded = { policy: validatePolicy({ filesystem: { readwrite: ['.'] } }), source: 'policy.yaml', baseDir: dir };
      const error = unresolvable(() => planSandbox(loaded, {}, { stateDir: state }));
      assert.deepEqual(error.issues.map((i) => i.field), ['filesystem.readwrite[0]']);
    });

    describe('with folders of it a policy may still grant (process workspaces)', () => {
      function withWorkspace(): { dir: string; state: string; workspace: string } {
        const { dir, state } = withState();
        const workspace = join(state, 'processes/intake');
        mkdirSync(join(workspace, 'outbox'), { recursive: true });
        return { dir, state, workspace };
      }

      it('hides the rest of it inside a grant that holds it, then binds the granted workspace back', () => {
        const { dir, state, workspace } = withWorkspace();
        const loaded = { policy: validatePolicy({ filesystem: { readonly: ['.', workspace], readwrite: [join(workspace, 'outbox')] }, workingDirectory: workspace }), source: 'policy.yaml', baseDir: dir };
        const p = planSandbox(loaded, {}, { stateDir: state, exposed: [join(state, 'processes')] });
        assert.deepEqual(p.mounts, [
          { kind: 'ro', path: dir },
          { kind: 'deny', path: state, directory: true },
          { kind: 'ro', path: workspace },
          { kind: 'rw', path: join(workspace, 'outbox') },
        ]);
        assert.equal(p.cwd, workspace);
      });

      it("masks a denied path not there yet inside a granted workspace, as anywhere else (it was left to the sandbox to create)", () => {
        const { dir, state, workspace } = withWorkspace();
        const loaded = { policy: validatePolicy({ filesystem: { readwrite: [join(workspace, 'outbox')], denied: [join(workspace, 'outbox/.env')] } }), source: 'policy.yaml', baseDir: dir };
        const p = planSandbox(loaded, {}, { stateDir: state, exposed: [join(state, 'processes')] });
        assert.deepEqual(p.mounts, [
          { kind: 'rw', path: join(workspace, 'outbox') },
          { kind: 'deny', path: join(workspace, 'outbox/.env'), directory: true, missing: true },
        ]);
      });

      it('still refuses a grant of anything else in it', () => {
        const { dir, state } = withWorkspace();
        const loaded = { policy: validatePolicy({ filesystem: { readonly: ['./outbox/.corral/policy-cache'] } }), source: 'policy.yaml', baseDir: dir };
        const error = unresolvable(() => planSandbox(loaded, {}, { stateDir: state, exposed: [join(state, 'processes')] }));
        assert.deepEqual(error.issues.map((i) => i.field), ['filesystem.readonly[0]']);
      });
    });

    it('needs no mask when no grant holds it', () => {
      const { dir, state } = withState();
      const loaded = { policy: validatePolicy({ filesystem: { readwrite: ['./inbox'] } }), source: 'policy.yaml', baseDir: dir };
      assert.deepEqual(planSandbox(loaded, {}, { stateDir: state }).mounts, [{ kind: 'rw', path: join(dir, 'inbox') }]);
    });
  });

  describe("when a policy reaches another of Corral's state directories on the host (the default one, while this run keeps its own elsewhere)", () => {
    function withStates(): { dir: string; own: string; other: string } {
      const dir = workspace();
      const own = join(dir, 'run-state');
      const other = join(dir, 'home/.corral');
      mkdirSync(own);
      mkdirSync(join(other, 'processes/intake'), { recursive: true });
      writeFileSync(join(other, 'audit-signing-key.pem'), 'key');
      return { dir, own, other };
    }

    it('hides it inside a grant that holds it, as its own state directory', () => {
      const { dir, own, other } = withStates();
      const loaded = { policy: validatePolicy({ filesystem: { readonly: ['./home'] } }), source: 'policy.yaml', baseDir: dir };
      assert.deepEqual(planSandbox(loaded, {}, { stateDir: own, otherStateDirs: [other] }).mounts, [
        { kind: 'ro', path: join(dir, 'home') },
        { kind: 'deny', path: other, directory: true },
      ]);
    });

    it('refuses a grant of anything inside it, its process workspaces included, naming it', () => {
      const { dir, own, other } = withStates();
      const loaded = { policy: validatePolicy({ filesystem: { readonly: [join(other, 'audit-signing-key.pem')], readwrite: [join(other, 'processes/intake')] } }), source: 'policy.yaml', baseDir: dir };
      const error = unresolvable(() => planSandbox(loaded, {}, { stateDir: own, exposed: [join(own, 'processes')], otherStateDirs: [other] }));
      assert.deepEqual(error.issues.map((i) => i.field).sort(), ['filesystem.readonly[0]', 'filesystem.readwrite[0]']);
      assert.ok(error.issues.every((i) => i.message.includes(`Corral's state directory ${other}`)), JSON.stringify(error.issues));
    });

    it('refuses a read-write grant that holds it below a folder the sandbox could rename', () => {
      const { dir, own, other } = withStates();
      const loaded = { policy: validatePolicy({ filesystem: { readwrite: ['.'] } }), source: 'policy.yaml', baseDir: dir };
      const error = unresolvable(() => planSandbox(loaded, {}, { stateDir: own, otherStateDirs: [other] }));
      assert.ok(error.issues.some((i) => i.field === 'filesystem.readwrite[0]' && i.message.includes(other)), JSON.stringify(error.issues));
    });

    it("leaves out one that does not exist, and one inside the run's own", () => {
      const { dir, own } = withStates();
      const loaded = { policy: validatePolicy({ filesystem: { readonly: ['./home'] } }), source: 'policy.yaml', baseDir: dir };
      assert.deepEqual(planSandbox(loaded, {}, { stateDir: own, otherStateDirs: [join(dir, 'nowhere/.corral'), own, join(own, 'inner')] }).mounts, [{ kind: 'ro', path: join(dir, 'home') }]);
    });

    it("hides one that holds the run's own as well, binding back only the run's own workspaces", () => {
      const { dir, other } = withStates();
      const own = join(other, 'nodes/build-02');
      const intake = join(own, 'processes/intake');
      mkdirSync(intake, { recursive: true });
      const loaded = { policy: validatePolicy({ filesystem: { readonly: ['./home', intake] } }), source: 'policy.yaml', baseDir: dir };
      assert.deepEqual(planSandbox(loaded, {}, { stateDir: own, exposed: [join(own, 'processes')], otherStateDirs: [other] }).mounts, [
        { kind: 'ro', path: join(dir, 'home') },
        { kind: 'deny', path: other, directory: true },
        { kind: 'ro', path: intake },
      ]);
      const error = unresolvable(() => planSandbox({ ...loaded, policy: validatePolicy({ filesystem: { readonly: [join(other, 'processes/intake')] } }) }, {}, { stateDir: own, exposed: [join(own, 'processes')], otherStateDirs: [other] }));
      assert.deepEqual(error.issues.map((i) => i.field), ['filesystem.readonly[0]']);
    });

    it("hides one that lies in a process workspace of the run's own, inside the grant of that workspace", () => {
      const { dir, own } = withStates();
      const job = join(own, 'processes/job');
      const nested = join(job, 'gateway-state');
      mkdirSync(nested, { recursive: true });
      writeFileSync(join(nested, 'gateway-token'), 'token');
      const options = { stateDir: own, exposed: [join(own, 'processes')], otherStateDirs: [nested] };
      const loaded = { policy: validatePolicy({ filesystem: { readonly: ['.'], readwrite: [job] } }), source: 'policy.yaml', baseDir: dir };
      assert.deepEqual(planSandbox(loaded, {}, options).mounts, [
        { kind: 'ro', path: dir },
        { kind: 'deny', path: own, directory: true },
        { kind: 'rw', path: job },
        { kind: 'deny', path: nested, directory: true },
      ]);
      const error = unresolvable(() => planSandbox({ ...loaded, policy: validatePolicy({ filesystem: { readonly: [join(nested, 'gateway-token')] } }) }, {}, options));
      assert.ok(error.issues.length === 1 && error.issues[0]!.message.includes(`Corral's state directory ${nested}`), JSON.stringify(error.issues));
    });
  });

  describe("when a policy reaches Corral's own install", () => {
    const install = (dir: string) => {
      mkdirSync(join(dir, 'inbox/corral/node_modules'), { recursive: true });
      return join(dir, 'inbox/corral');
    };
    const planWith = (dir: string, policy: unknown) => planSandbox({ policy: validatePolicy(policy), source: join(dir, 'policy.yaml'), baseDir: dir }, {}, { install: install(dir) });

    it('binds it read-only inside a read-write grant that holds it, so no sandbox rewrites what runs on the host (or in every later sandbox) next', () => {
      const dir = workspace();
      const p = planWith(dir, { filesystem: { readwrite: ['inbox'] } });
      assert.deepEqual(
        p.mounts.filter((m) => m.path.startsWith(join(dir, 'inbox'))).map((m) => [m.kind, m.path]),
        [
          ['rw', join(dir, 'inbox')],
          ['ro', join(dir, 'inbox/corral')],
        ],
      );
    });

    it('refuses a read-write grant of it or of anything inside it, and plans a read-only one', () => {
      const dir = workspace();
      for (const path of ['inbox/corral', 'inbox/corral/node_modules']) {
        const error = unresolvable(() => planWith(dir, { filesystem: { readwrite: [path] } }));
        assert.match(error.message, /lies in Corral's own install .*runs on this host outside any sandbox; grant it read-only/, path);
      }
      assert.ok(planWith(dir, { filesystem: { readonly: ['inbox/corral/node_modules'] } }).mounts.some((m) => m.kind === 'ro' && m.path === join(dir, 'inbox/corral/node_modules')));
    });

    it('protects the install this code runs from by default', () => {
      const here = realpathSync(new URL('../../../../', import.meta.url));
      const error = unresolvable(() => planSandbox({ policy: validatePolicy({ filesystem: { readwrite: [join(here, 'node_modules')] } }), source: '<test>', baseDir: here }, {}));
      assert.match(error.message, /lies in Corral's own install/);
    });
  });

  describe('when the policy file lies inside what it grants', () => {
    it('refuses a read-write grant that holds the policy file, so no run rewrites what the next one is granted', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'policy.yaml'), 'filesystem: {}\n');
      const error = unresolvable(() => plan(dir, { filesystem: { readwrite: ['.'] } }));
      assert.match(error.issues!.map((i) => i.field).join(), /filesystem\.readwrite/);
      writeFileSync(join(dir, 'outbox', 'policy.yaml'), 'filesystem: {}\n');
      unresolvable(() => planSandbox({ policy: validatePolicy({ filesystem: { readwrite: ['.'] } }), source: join(dir, 'outbox', 'policy.yaml'), baseDir: join(dir, 'outbox') }, {}));
    });

    it('plans one whose file a read-only grant nested in the read-write one holds (a mount point the sandbox cannot replace), or that only reads it', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'inbox', 'policy.yaml'), 'filesystem: {}\n');
      const nested = planSandbox({ policy: validatePolicy({ filesystem: { readwrite: ['..'], readonly: ['.'] } }), source: join(dir, 'inbox', 'policy.yaml'), baseDir: join(dir, 'inbox') }, {});
      assert.ok(nested.mounts.some((m) => m.kind === 'ro' && m.path === join(dir, 'inbox')));
      writeFileSync(join(dir, 'policy.yaml'), 'filesystem: {}\n');
      assert.ok(plan(dir, { filesystem: { readonly: ['.'], readwrite: ['./outbox'] } }).mounts.length > 0);
    });
  });

  describe('when a path starts with ~', () => {
    it("reads it from the invoking user's home", () => {
      const dir = workspace();
      const error = unresolvable(() => plan(dir, { filesystem: { readonly: ['~/corral-surely-missing-folder'] } }));
      assert.match(error.issues[0]!.message, new RegExp(homedir()));
    });
  });

  describe('the working directory', () => {
    it('defaults to the first read-write folder', () => {
      const dir = workspace();
      assert.equal(plan(dir, { filesystem: { readwrite: ['./outbox'] } }).cwd, join(dir, 'outbox'));
      assert.equal(plan(dir, {}).cwd, '/tmp');
    });

    it('defaults past a read-write file or a read-write folder a deny hides (bubblewrap could not start there, and blamed the host)', () => {
      const dir = workspace();
      assert.equal(plan(dir, { filesystem: { readwrite: ['./inbox/secret.txt', './outbox'] } }).cwd, join(dir, 'outbox'));
      assert.equal(plan(dir, { filesystem: { readwrite: ['./inbox/private', './outbox'], denied: ['./inbox'] } }).cwd, join(dir, 'outbox'));
      assert.equal(plan(dir, { filesystem: { readwrite: ['./inbox/private'], denied: ['./inbox'] } }).cwd, '/tmp');
    });

    it('must be a folder, named as a policy problem', () => {
      const dir = workspace();
      const error = unresolvable(() => plan(dir, { filesystem: { readonly: ['./inbox'] }, workingDirectory: './inbox/secret.txt' }));
      assert.deepEqual(error.issues.map((i) => i.field), ['workingDirectory']);
    });

    it('must lie inside a grant and outside every deny', () => {
      const dir = workspace();
      unresolvable(() => plan(dir, { filesystem: { readonly: ['./outbox'] }, workingDirectory: './inbox' }));
      unresolvable(() => plan(dir, { filesystem: { readonly: ['./inbox'], denied: ['./inbox/private'] }, workingDirectory: './inbox/private' }));
      assert.equal(plan(dir, { filesystem: { readonly: ['./inbox'] }, workingDirectory: './inbox/public' }).cwd, join(dir, 'inbox/public'));
    });
  });

  describe('the environment', () => {
    it('holds only what the policy sets or passes, over a minimal base', () => {
      const dir = workspace();
      const p = plan(dir, { environment: { set: { LANG: 'de_DE.UTF-8', TOKEN_HINT: 'x' }, pass: ['TERM', 'ABSENT'] } }, { TERM: 'xterm', AWS_SECRET_ACCESS_KEY: 'leak', HOME: '/root' });
      assert.deepEqual(Object.keys(p.env).sort(), ['HOME', 'LANG', 'PATH', 'TERM', 'TMPDIR', 'TOKEN_HINT']);
      assert.equal(p.env.LANG, 'de_DE.UTF-8');
      assert.equal(p.env.HOME, '/tmp');
      assert.equal(p.env.TERM, 'xterm');
    });
  });

  describe('limits', () => {
    it('marks the ones the policy wrote as explicit and fills the rest with defaults', () => {
      const p = plan(workspace(), { process: { memoryMB: 64 } });
      assert.deepEqual(p.limits.memoryMB, { value: 64, explicit: true });
      assert.equal(p.limits.maxProcesses.explicit, false);
      assert.ok(p.limits.timeoutMs.value > 0);
    });
  });

  describe('the policy digest', () => {
    it('is the same for the same policy written in another key order, and differs otherwise', () => {
      const dir = workspace();
      const a = plan(dir, { runtime: ['shell'], process: { memoryMB: 64, timeoutMs: 1000 } });
      const b = plan(dir, { process: { timeoutMs: 1000, memoryMB: 64 }, runtime: ['shell'] });
      const c = plan(dir, { runtime: ['shell'], process: { memoryMB: 65, timeoutMs: 1000 } });
      assert.equal(a.policyDigest, b.policyDigest);
      assert.notEqual(a.policyDigest, c.policyDigest);
      assert.match(a.policyDigest, /^[0-9a-f]{64}$/);
    });

    it('is the SHA-256 of the canonical JSON the audit log has always recorded', () => {
      const dir = workspace();
      for (const written of [
        {},
        { runtime: ['shell', 'python'], filesystem: { readwrite: ['./outbox'], readonly: ['inbox'], denied: ['inbox/secret.txt'] } },
        { network: { egress: { allow: ['10.0.0.0/8:443', '*.example.com:443', 'shop.test:80-90'] }, ingress: [{ port: 8080, hostPort: 18080 }] }, environment: { pass: ['TERM'], set: { Z_Q: 'é\n"', A: '' } } },
      ]) {
        const policy = validatePolicy(written);
        assert.equal(plan(dir, policy).policyDigest, createHash('sha256').update(naiveCanonicalJson(policy)).digest('hex'));
      }
    });

    it('freezes the policy a plan is made of, so the digest kept for it cannot go stale', () => {
      const policy = validatePolicy({ runtime: ['shell'], process: { memoryMB: 64 } });
      const first = planSandbox({ policy, source: '<test>', baseDir: workspace() }).policyDigest;
      assert.throws(() => policy.filesystem.readwrite.push('/'), TypeError);
      assert.throws(() => Object.assign(policy.process, { memoryMB: 4096 }), TypeError);
      assert.throws(() => Object.assign(policy, { onUnenforceable: 'warn' }), TypeError);
      const again = planSandbox({ policy, source: '<test>', baseDir: workspace() });
      assert.equal(again.policyDigest, first);
      assert.equal(again.limits.memoryMB.value, 64);
    });
  });

  describe('the plan key', () => {
    const rich = (): SandboxPlan => {
      const dir = workspace();
      return plan(dir, {
        runtime: ['shell'],
        filesystem: { readwrite: ['./outbox'], readonly: ['inbox'], denied: ['inbox/private', 'outbox/not-yet/key'] },
        network: { egress: { allow: ['10.0.0.0/8:443', 'shop.test:443'] }, ingress: [{ port: 8080, hostPort: 18080 }] },
        environment: { pass: ['TERM'], set: { GREETING: 'hello' } },
        process: { memoryMB: 64 },
      }, { TERM: 'xterm' });
    };

    it('is the same for the same policy planned again, as a run of a profile kept warm is', () => {
      const dir = workspace();
      const policy = validatePolicy({ runtime: ['shell'], filesystem: { readwrite: ['./outbox'] } });
      const loaded = { policy, source: join(dir, 'policy.yaml'), baseDir: dir };
      assert.equal(planKey(planSandbox(loaded, {})), planKey(planSandbox(loaded, {})));
      assert.match(planKey(planSandbox(loaded, {})), /^[0-9a-f]{64}$/);
    });

    it('differs when any one value of the plan differs, down to each mount, variable, limit, rule and policy field', () => {
      const p = rich();
      const key = planKey(p);
      let changed = 0;
      for (const path of leaves(p)) {
        const copy = structuredClone(p);
        const holder = path.slice(0, -1).reduce((o: any, k) => o[k], copy);
        const last = path.at(-1)!;
        const value = holder[last];
        holder[last] = typeof value === 'string' ? `${value}x` : typeof value === 'number' ? value + 1 : typeof value === 'bigint' ? value + 1n : typeof value === 'boolean' ? !value : 'x';
        assert.notEqual(planKey(copy), key, `changing ${path.join('.')} kept the key`);
        changed++;
      }
      assert.ok(changed > 50, `only ${changed} values were changed`);
      // One more mount, one less, a variable added.
      assert.notEqual(planKey({ ...p, mounts: [...p.mounts, { kind: 'ro', path: '/opt' }] }), key);
      assert.notEqual(planKey({ ...p, mounts: p.mounts.slice(1) }), key);
      assert.notEqual(planKey({ ...p, env: { ...p.env, LD_PRELOAD: '/tmp/x.so' } }), key);
      assert.notEqual(planKey({ ...p, egress: null }), key);
    });

    it('differs for a plan made of a copy of its policy changed in one field', () => {
      const dir = workspace();
      const policy = validatePolicy({ runtime: ['shell'] });
      const loaded = { policy, source: join(dir, 'policy.yaml'), baseDir: dir };
      const first = planSandbox(loaded, {});
      const lenient = planSandbox({ ...loaded, policy: { ...policy, onUnenforceable: 'warn' } }, {});
      assert.notEqual(planKey(lenient), planKey(first));
      assert.notEqual(lenient.policyDigest, first.policyDigest);
      assert.equal(planKey(planSandbox(loaded, {})), planKey(first));
    });
  });

  describe('runtime presets', () => {
    it('grant system library and binary folders read-only, never / or /etc', () => {
      const p = plan(workspace(), { runtime: ['shell', 'node', 'python'] });
      const paths = p.mounts.filter((m) => m.kind === 'ro').map((m) => m.path);
      assert.ok(paths.includes('/usr/bin'));
      assert.ok(paths.includes(realpathSync(process.execPath)));
      assert.ok(!paths.includes('/') && !paths.includes('/etc') && !paths.some((x) => x.startsWith('/etc/') && !/^\/etc\/(ld\.so|alternatives)/.test(x)));
      assert.ok(p.mounts.every((m) => m.kind !== 'rw'));
      assert.ok(p.env.PATH?.includes('/usr/bin'));
    });

    it('look each of their paths up once, as the plan resolves it, and one not on this host without an error thrown (a plan is made for every run a node serves)', () => {
      const dir = workspace();
      const library = ['/usr/lib', '/usr/lib64', '/usr/lib32', '/usr/libexec', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/usr/bin', '/etc/alternatives'];
      const looked: string[] = [];
      const threw: string[] = [];
      const { lstatSync } = fs;
      const exists = mock.method(fs, 'existsSync');
      const lstat = mock.method(fs, 'lstatSync', ((path: string, options?: fs.StatSyncOptions) => {
        looked.push(path);
        try {
          return lstatSync(path, options);
        } catch (error) {
          threw.push(path);
          throw error;
        }
      }) as typeof fs.lstatSync);
      syncBuiltinESMExports();
      let p: SandboxPlan;
      try {
        p = plan(dir, { runtime: ['shell'] });
      } finally {
        exists.mock.restore();
        lstat.mock.restore();
        syncBuiltinESMExports();
      }
      for (const path of library) {
        assert.equal(exists.mock.calls.filter((call) => call.arguments[0] === path).length, 0, `${path} was looked up before the plan resolved it`);
        assert.equal(looked.filter((l) => l === path).length, 1, `${path} was not looked up exactly once`);
      }
      assert.deepEqual(threw, []);
      // What is not on this host is left out.
      for (const path of library.filter((l) => !existsSync(l))) assert.ok(!p.mounts.some((m) => m.path === path), `${path} is not here, but bound`);
    });

    it('leave out a grant inside another of its kind, where bound again it would land on a symlink (/usr/bin/python3 under /usr/bin), and keep one of another kind', () => {
      const dir = workspace();
      const p = plan(dir, { runtime: ['shell', 'python'], filesystem: { readwrite: ['.'], readonly: ['./inbox', './inbox/public'] } });
      const bound = p.mounts.filter((m) => m.kind !== 'symlink').map((m) => m.path);
      assert.ok(bound.includes('/usr/bin') && !bound.some((x) => x.startsWith('/usr/bin/')), bound.join(' '));
      assert.ok(bound.includes(join(dir, 'inbox')), 'read-only inside read-write is kept');
      assert.ok(!bound.includes(join(dir, 'inbox/public')), 'read-only inside read-only adds nothing');
    });
  });
});

describe('granting a display', () => {
  const fakeX11 = (n: number) => {
    mkdirSync('/tmp/.X11-unix', { recursive: true });
    writeFileSync(`/tmp/.X11-unix/X${n}`, '');
    return `:${n}`;
  };

  it('is refused with a reason when the caller has no display', () => {
    const error = unresolvable(() => plan(workspace(), { ui: { display: true } }, {}));
    assert.equal(error.issues[0]?.field, 'ui.display');
  });

  // One record as Xau writes it: family, address, display number, auth name, auth data.
  const xauthority = (display: string) => {
    const field = (text: string | Buffer) => {
      const bytes = Buffer.from(text);
      const length = Buffer.alloc(2);
      length.writeUInt16BE(bytes.length);
      return Buffer.concat([length, bytes]);
    };
    return Buffer.concat([Buffer.from([1, 0]), field('corral'), field(display), field('MIT-MAGIC-COOKIE-1'), field(Buffer.alloc(16, 7))]);
  };
  const listening = (path: string) =>
    new Promise<Server>((resolve) => {
      const server = createServer().listen(path, () => resolve(server));
    });

  it("binds the caller's X11 socket and cookie and points DISPLAY at them", () => {
    const dir = workspace();
    writeFileSync(join(dir, 'cookie'), xauthority('91'));
    const p = plan(dir, { ui: { display: true } }, { DISPLAY: `${fakeX11(91)}.0`, XAUTHORITY: join(dir, 'cookie') });
    assert.deepEqual(p.display, { paths: ['/tmp/.X11-unix/X91', join(dir, 'cookie')], env: { DISPLAY: ':91', XAUTHORITY: join(dir, 'cookie') }, x11: true });
    assert.ok(p.mounts.some((m) => m.kind === 'ro' && m.path === '/tmp/.X11-unix/X91'));
    assert.equal(p.env.DISPLAY, ':91');
  });

  it('binds a Wayland socket from the runtime folder', async () => {
    const dir = workspace();
    const server = await listening(join(dir, 'wayland-1'));
    try {
      const p = plan(dir, { ui: { display: true } }, { WAYLAND_DISPLAY: 'wayland-1', XDG_RUNTIME_DIR: dir });
      assert.deepEqual(p.display, { paths: [join(dir, 'wayland-1')], env: { WAYLAND_DISPLAY: 'wayland-1', XDG_RUNTIME_DIR: dir }, x11: false });
    } finally {
      server.close();
    }
  });

  // A node passes a request's own values of the variables its policy passes, so they may be an agent's choice.
  describe("when the display's variables name something else of the host", () => {
    it("never binds the runtime folder's parent, or the root, for WAYLAND_DISPLAY '..' or '.'", () => {
      const dir = workspace();
      for (const [name, runtimeDir] of [['..', dir], ['.', '/']] as const) {
        const error = unresolvable(() => plan(dir, { ui: { display: true } }, { WAYLAND_DISPLAY: name, XDG_RUNTIME_DIR: runtimeDir }));
        assert.equal(error.issues[0]?.field, 'ui.display');
      }
    });

    it("never binds another socket of the runtime folder (the session bus at 'bus')", async () => {
      const dir = workspace();
      const server = await listening(join(dir, 'bus'));
      try {
        unresolvable(() => plan(dir, { ui: { display: true } }, { WAYLAND_DISPLAY: 'bus', XDG_RUNTIME_DIR: dir }));
      } finally {
        server.close();
      }
    });

    it('never takes a Wayland socket from a runtime folder others may use', async () => {
      const dir = workspace();
      const server = await listening(join(dir, 'wayland-3'));
      chmodSync(dir, 0o1777);
      try {
        unresolvable(() => plan(dir, { ui: { display: true } }, { WAYLAND_DISPLAY: 'wayland-3', XDG_RUNTIME_DIR: dir }));
      } finally {
        server.close();
      }
    });

    it('never binds a file XAUTHORITY names that is no X authority file (a private key)', () => {
      const dir = workspace();
      writeFileSync(join(dir, 'id_ed25519'), '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n');
      const error = unresolvable(() => plan(dir, { ui: { display: true } }, { DISPLAY: fakeX11(93), XAUTHORITY: join(dir, 'id_ed25519') }));
      assert.equal(error.issues[0]?.field, 'ui.display');
    });

    it("never binds a display file from Corral's state directory", () => {
      const dir = workspace();
      mkdirSync(join(dir, 'state'));
      writeFileSync(join(dir, 'state/cookie'), xauthority('93'));
      const loaded = { policy: validatePolicy({ ui: { display: true } }), source: join(dir, 'policy.yaml'), baseDir: dir };
      const error = unresolvable(() => planSandbox(loaded, { DISPLAY: fakeX11(93), XAUTHORITY: join(dir, 'state/cookie') }, { stateDir: join(dir, 'state') }));
      assert.equal(error.issues[0]?.field, 'ui.display');
    });
  });

  it('refuses a remote X11 display', () => {
    unresolvable(() => plan(workspace(), { ui: { display: true } }, { DISPLAY: 'attacker.example:0' }));
  });

  it('grants nothing of the display when the policy does not ask, whatever the caller has', () => {
    const p = plan(workspace(), {}, { DISPLAY: fakeX11(92), WAYLAND_DISPLAY: 'wayland-0', XDG_RUNTIME_DIR: '/run/user/0' });
    assert.equal(p.display, null);
    assert.equal(p.env.DISPLAY, undefined);
  });
});

/** The canonical JSON policy digests were first made with, kept here to check the one in plan.ts against. */
function naiveCanonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(naiveCanonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${naiveCanonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return typeof value === 'bigint' ? `${value}n` : JSON.stringify(value);
}

/** The path to every value of `value` that holds no other (strings, numbers, bigints, booleans, null). */
function leaves(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [path];
  return Object.entries(value).flatMap(([k, v]) => (v === undefined ? [] : leaves(v, [...path, Array.isArray(value) ? Number(k) : k])));
}
