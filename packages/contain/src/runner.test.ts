import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, globSync, linkSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createUnixServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { ContainError } from './errors.ts';
import { hostCapabilities, type HostCapabilities } from './linux/host.ts';
import { validatePolicy } from './policy/load.ts';
import { planSandbox, type SandboxPlan } from './policy/plan.ts';
import type { ContainerPolicyInput } from './policy/schema.ts';
import { Runner } from './runner.ts';

const node = realpathSync(process.execPath);

function plan(policy: ContainerPolicyInput, baseDir = '/tmp'): SandboxPlan {
  return planSandbox({ policy: validatePolicy(policy), source: 'test', baseDir });
}

/** A host where each sandbox is moved into its cgroups once bubblewrap holds it (cgroup v2, or no corral-reaper). */
const MOVED_IN = { available: false, detail: 'moved in once bubblewrap holds it' };

/** This host as it is, but without the given cgroup controllers. */
function without(...controllers: ('memory' | 'pids' | 'cpu')[]): HostCapabilities {
  const caps = hostCapabilities();
  const kept = Object.fromEntries(Object.entries(caps.cgroups.controllers).filter(([c]) => !controllers.includes(c as 'memory')));
  return { ...caps, cgroups: { ...caps.cgroups, controllers: kept } };
}

describe('the runner', () => {
  let runner: Runner;
  let dir: string;
  let server: Server;
  let serverPort: number;
  before(async () => {
    runner = new Runner({
      proxy: {
        lookup: async (name) => {
          if (name === 'shop.test.example') return [{ address: '127.0.0.1', family: 4 }];
          throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
        },
      },
    });
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-runner-')));
    mkdirSync(join(dir, 'work'));
    mkdirSync(join(dir, 'inbox'));
    writeFileSync(join(dir, 'inbox/a.txt'), 'granted content\n');
    server = createServer((req, res) => res.end(`shop says hi to ${req.method} ${req.url}`));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverPort = (server.address() as { port: number }).port;
  });
  after(async () => {
    await runner.close();
    server.close();
  });

  describe('with granted paths', () => {
    it('reads a read-only grant and writes a read-write grant that lands on the host', async () => {
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['./work'], readonly: ['./inbox'] } }, dir);
      const r = await runner.run(p, ['/bin/sh', '-c', 'cat ../inbox/a.txt && echo written > out.txt && pwd']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, `granted content\n${join(dir, 'work')}\n`);
      assert.equal(readFileSync(join(dir, 'work/out.txt'), 'utf8'), 'written\n');
    });
  });

  describe('a denied folder holding a file with another name (a hard link) inside a readable grant', () => {
    it('never lets the sandbox read the file: the plan is refused, or nothing of it is read under either name', async () => {
      const work = join(dir, 'deny-linked');
      mkdirSync(join(work, 'private'), { recursive: true });
      writeFileSync(join(work, 'private/key'), 'the denied key\n');
      linkSync(join(work, 'private/key'), join(work, 'key.bak'));
      const policy: ContainerPolicyInput = { runtime: ['shell'], filesystem: { readonly: ['.'], denied: ['./private'] }, workingDirectory: '.' };
      let p: SandboxPlan | undefined;
      try {
        p = plan(policy, work);
      } catch (error) {
        assert.equal((error as ContainError).code, 'CONTAIN_PATH_UNRESOLVABLE');
      }
      if (p) {
        const r = await runner.run(p, ['/bin/sh', '-c', 'cat private/key key.bak']);
        assert.doesNotMatch(r.stdout, /denied key/);
      }
      // With the other name denied too, it runs, and the sandbox reads the key under neither.
      const both = plan({ ...policy, filesystem: { ...policy.filesystem, denied: ['./private', './key.bak'] } }, work);
      const r = await runner.run(both, ['/bin/sh', '-c', 'cat private/key key.bak; ls -A']);
      assert.doesNotMatch(r.stdout, /denied key/);
      assert.match(r.stdout, /key\.bak\nprivate\n/);
    });
  });

  describe('a denied path that does not exist when the sandbox is planned, inside a read-write grant', () => {
    it('stays denied for the whole run: the command cannot create it, as a file or a folder, link a file there or rename one onto it', async () => {
      const work = join(dir, 'deny-missing');
      mkdirSync(work);
      writeFileSync(join(work, 'mine.txt'), 'mine\n');
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.env', './.git/hooks', './keys/deploy/id'] } }, work);
      const script = [
        'echo planted > .env',
        'ln mine.txt .env',
        'mv mine.txt .env',
        'mkdir -p .git/hooks && echo forged > .git/hooks/pre-commit',
        'mkdir -p keys/deploy && echo key > keys/deploy/id',
        'rmdir .env',
        'mv .git moved',
        'true',
      ].join('; ');
      const r = await runner.run(p, ['/bin/sh', '-c', script]);
      assert.equal(r.exitCode, 0, r.stderr);
      // What is on the host after the run: each stand-in, empty, and the file the command may write, never moved.
      for (const name of ['.env', '.git', 'keys']) assert.deepEqual(readdirSync(join(work, name)), [], name);
      assert.deepEqual(readdirSync(work).sort(), ['.env', '.git', 'keys', 'mine.txt']);
      assert.equal(readFileSync(join(work, 'mine.txt'), 'utf8'), 'mine\n');
    });

    it('is planned again as a denied folder once its stand-in is there, and masked as before', async () => {
      const work = join(dir, 'deny-missing-again');
      mkdirSync(work);
      const policy: ContainerPolicyInput = { runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.env'] } };
      await runner.run(plan(policy, work), ['/bin/true']);
      const again = plan(policy, work);
      assert.deepEqual(again.mounts.at(-1), { kind: 'deny', path: join(work, '.env'), directory: true });
      const r = await runner.run(again, ['/bin/sh', '-c', 'echo planted > .env/x || echo refused']);
      assert.equal(r.stdout, 'refused\n');
      assert.deepEqual(readdirSync(join(work, '.env')), []);
    });

    it('stays denied in a sandbox started ahead and kept warm for the plan', async () => {
      const work = join(dir, 'deny-missing-warm');
      mkdirSync(work);
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.env'] } }, work);
      await runner.keepWarm(p, 1);
      try {
        const r = await runner.run(p, ['/bin/sh', '-c', 'echo planted > .env; mkdir .env/x; true']);
        assert.equal(r.warm, true);
        assert.deepEqual(readdirSync(join(work, '.env')), []);
      } finally {
        await runner.keepWarm(p, 0);
      }
    });

    it("keeps its stand-in after the run: removed, it would take the mask of a sandbox still running, another runner's too", async () => {
      const work = join(dir, 'deny-missing-shared');
      mkdirSync(work);
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.env'] } }, work);
      const other = new Runner();
      try {
        // A run of the plan in another runner, set up and waiting, while a run of this one comes and goes.
        const go = new PassThrough();
        const long = other.spawn(p, ['/bin/sh', '-c', 'read go; echo planted > .env && echo WROTE; mkdir .env/x && echo WROTE; true'], { stdin: go });
        await long.ready;
        const short = await runner.run(p, ['/bin/true']);
        assert.equal(short.exitCode, 0, short.stderr);
        await runner.started();
        go.end('go\n');
        await long.result;
        assert.equal(Buffer.concat(long.output.stdout).toString(), '');
        assert.deepEqual(readdirSync(join(work, '.env')), []);
      } finally {
        await other.close();
      }
    });

    it('refuses to start when something other than a folder is there by then (plan again)', async () => {
      const work = join(dir, 'deny-missing-changed');
      mkdirSync(work);
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.env'] } }, work);
      writeFileSync(join(work, '.env'), 'made since the plan\n');
      await assert.rejects(runner.run(p, ['/bin/true']), { code: 'CONTAIN_PATH_CHANGED' });
    });

    it('refuses to start a plan whose stand-in has no read-write folder bound to be made in', async () => {
      const work = join(dir, 'deny-missing-unwritable');
      mkdirSync(work);
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['.'], denied: ['./.env'] } }, work);
      // A plan altered after planning: its stand-in now lies in a folder the sandbox does not bind.
      const planted = { ...p, mounts: p.mounts.map((m) => (m.kind === 'deny' ? { ...m, path: join(work, 'mine', '.env') } : m)) };
      await assert.rejects(runner.run(planted, ['/bin/true']), { code: 'CONTAIN_UNENFORCEABLE' });
    });
  });

  describe('the exit', () => {
    it("passes the command's exit code through", async () => {
      const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/sh', '-c', 'exit 7']);
      assert.equal(r.exitCode, 7);
      assert.equal(r.signal, null);
      assert.deepEqual(r.limitsHit, []);
    });

    it('runs python under the python and shell presets together (bubblewrap refused to bind the python preset\'s /usr/bin/python3, a symlink inside the shell preset\'s /usr/bin)', async (t) => {
      if (!existsSync('/usr/bin/python3')) return t.skip('no python3 on this host');
      const r = await runner.run(plan({ runtime: ['python', 'shell'] }), ['/bin/sh', '-c', 'python3 -c "import json; print(json.dumps([1]))"']);
      assert.equal(r.stdout, '[1]\n');
      assert.equal(r.exitCode, 0);
    });

    it('says when the command does not exist inside the sandbox', async () => {
      const r = await runner.run(plan({ runtime: ['shell'] }), ['/usr/bin/no-such-command']);
      assert.equal(r.notFound, true);
    });

    describe("when the command writes bubblewrap's own words (a run reported as never started goes unrecorded)", () => {
      const says = (line: string, code: number) => ['/bin/sh', '-c', `echo "${line}" >&2; exit ${code}`];

      for (const [where, controllers] of [['in cgroups', []], ['without cgroups', ['memory', 'pids', 'cpu']]] as const) {
        it(`reports its exit, never a sandbox that could not be set up (${where})`, async () => {
          const own = new Runner({ capabilities: without(...controllers) });
          try {
            const r = await own.run(plan({ runtime: ['shell'] }), says("bwrap: Can't mount proc on /newroot/proc: Operation not permitted", 1));
            assert.equal(r.exitCode, 1);
          } finally {
            await own.close();
          }
        });
      }

      it('reports its exit, never a command that was not found', async () => {
        const r = await runner.run(plan({ runtime: ['shell'] }), says('bwrap: execvp /no/such: No such file or directory', 127));
        assert.equal(r.notFound, false);
        assert.equal(r.exitCode, 127);
      });
    });

    it('reports the peak memory from the cgroup', async () => {
      const r = await runner.run(plan({ runtime: ['node'] }), [node, '-e', 'globalThis.b = Buffer.alloc(64 * 2 ** 20, 1)']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.ok((r.peakMemoryBytes ?? 0) > 64 * 2 ** 20, `peak ${r.peakMemoryBytes}`);
    });
  });

  describe("the sandbox's /proc", () => {
    it('shows nothing of a file the host kernel keeps from other users (a sandbox of host uid 0 read the timers, allocators and physical pages)', async (t) => {
      const kept = readdirSync('/proc').filter((name) => {
        const stat = lstatSync(join('/proc', name));
        return !/^\d+$/.test(name) && stat.isFile() && (stat.mode & 0o004) === 0;
      });
      if (kept.length === 0) return t.skip("this host's /proc keeps nothing from other users");
      const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/sh', '-c', `for f in ${kept.join(' ')}; do echo "$f $(head -c 64 /proc/$f 2>/dev/null | wc -c)"; done`]);
      assert.equal(r.stdout, kept.map((name) => `${name} 0\n`).join(''));
    });

    it('shows nothing of the kernel symbols, keyrings or memory map, which it keeps from no one', async () => {
      const names = ['kallsyms', 'keys', 'key-users', 'iomem', 'ioports'].filter((name) => existsSync(join('/proc', name)));
      const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/sh', '-c', `for f in ${names.join(' ')}; do echo "$f $(head -c 64 /proc/$f 2>/dev/null | wc -c)"; done; ls -A /proc/bus /proc/fs 2>/dev/null | grep -v ':$' | grep -c .`]);
      assert.equal(r.stdout, [...names.map((name) => `${name} 0\n`), '0\n'].join(''));
    });

    it("learns nothing of the host kernel's command line or interrupts: cat /proc/cmdline prints nothing", async () => {
      const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/sh', '-c', 'cat /proc/cmdline; cat /proc/interrupts; cat /proc/softirqs; ls -A /proc/irq']);
      assert.equal(r.stdout, '');
      assert.doesNotMatch(r.stderr, /No such file/);
    });

    it('still serves ps, top, node and python, which read it', async (t) => {
      const r = await runner.run(plan({ runtime: ['shell', 'node'] }), ['/bin/sh', '-c', `ps -e -o pid=,comm= | grep -c . && top -b -n1 | grep -c '^MiB Mem' && ${node} -e "const os=require('os');console.log(os.cpus().length>0, os.totalmem()>0, os.uptime()>0)"`]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /^[1-9]\d*\n1\ntrue true true\n$/);
      if (!existsSync('/usr/bin/python3')) return t.skip('no python3 on this host');
      const py = await runner.run(plan({ runtime: ['python', 'shell'] }), ['/bin/sh', '-c', 'python3 -c "import os; print(os.cpu_count() > 0, len(os.listdir(\'/proc/self/fd\')) > 0)"']);
      assert.equal(py.stdout, 'True True\n', py.stderr);
    });
  });

  describe('the environment', () => {
    it('holds exactly the policy environment', async () => {
      process.env.CORRAL_RUNNER_TEST_SECRET = 'must-not-pass';
      const r = await runner.run(plan({ runtime: ['shell'], environment: { set: { GREETING: 'hello' }, pass: ['CORRAL_RUNNER_PASSED'] } }), ['/usr/bin/env'], {});
      delete process.env.CORRAL_RUNNER_TEST_SECRET;
      const names = r.stdout.trim().split('\n').map((l) => l.split('=')[0]).sort();
      assert.deepEqual(names, ['GREETING', 'HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR']);
    });

    it('gives loader variables to the command only, never to bubblewrap on the host', async () => {
      // Read by the dynamic loader of every program that starts with them: bubblewrap, started on the host
      // with them, would write its trace there (and with LD_PRELOAD run a library of the policy's choosing).
      const trace = realpathSync(mkdtempSync(join(tmpdir(), 'corral-loader-')));
      const p = plan({ runtime: ['shell'], environment: { set: { LD_DEBUG: 'files', LD_DEBUG_OUTPUT: `${trace}/trace` } } });
      const r = await runner.run(p, ['/bin/sh', '-c', 'echo "$LD_DEBUG"']);
      assert.equal(r.exitCode, 0, r.stderr);
      // Inside, the loader cannot reach the host folder and traces to the output instead.
      assert.match(r.stdout, /^files$/m);
      assert.deepEqual(readdirSync(trace), []);
      rmSync(trace, { recursive: true });
    });

    it("keeps the environment's values off bubblewrap's command line, which every process on the host can read", async () => {
      const r = await runner.run(plan({ runtime: ['shell'], environment: { set: { API_TOKEN: 'token-on-the-command-line' } } }), ['/bin/sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; echo "$API_TOKEN"']);
      assert.equal(r.exitCode, 0, r.stderr);
      const [cmdline, seen] = r.stdout.trim().split('\n');
      assert.match(cmdline!, /bwrap/);
      assert.doesNotMatch(cmdline!, /token-on-the-command-line/);
      assert.equal(seen, 'token-on-the-command-line');
    });
  });

  describe('standard input', () => {
    it('feeds a stream to the command', async () => {
      const input = new PassThrough();
      input.end('from the caller\n');
      const r = await runner.run(plan({ runtime: ['shell'] }), ['/bin/cat'], { stdin: input });
      assert.equal(r.stdout, 'from the caller\n');
    });
  });

  describe('the wall-clock timeout', () => {
    it('kills the whole tree, background children included, soon after the limit', async () => {
      const r = await runner.run(plan({ runtime: ['shell'], process: { timeoutMs: 300 } }), ['/bin/sh', '-c', 'sleep 30 & sleep 30 & wait']);
      assert.deepEqual(r.limitsHit, ['timeout']);
      assert.equal(r.exitCode, null);
      assert.ok(r.durationMs < 3000, `took ${r.durationMs} ms`);
    });
  });

  describe('an abort from the caller', () => {
    it('kills the sandbox without calling it a limit', async () => {
      const controller = new AbortController();
      const proc = runner.spawn(plan({ runtime: ['shell'] }), ['/bin/sleep', '30'], { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      const r = await proc.result;
      assert.equal(r.signal, 'SIGKILL');
      assert.deepEqual(r.limitsHit, []);
    });

    it('kills nothing once the run is over: not a later run given the same cgroups again', async () => {
      const own = new Runner();
      try {
        const first = own.spawn(plan({ runtime: ['shell'] }), ['/bin/true']);
        await first.result;
        // Its groups go back to the runner's pool once empty, and the next run takes them.
        await new Promise((r) => setTimeout(r, 200));
        const second = own.spawn(plan({ runtime: ['shell'] }), ['/bin/sh', '-c', 'sleep 0.5; echo still here']);
        await second.ready;
        await new Promise((r) => setTimeout(r, 100));
        first.kill();
        const r = await second.result;
        assert.deepEqual([r.exitCode, Buffer.concat(second.output.stdout).toString()], [0, 'still here\n']);
      } finally {
        await own.close();
      }
    });
  });

  describe('egress through the proxy', () => {
    it("reaches an allowed name, with the tool's own proxy support, and records the connection", async () => {
      const p = plan({ runtime: ['node'], network: { egress: { allow: [`shop.test.example:${serverPort}`, `127.0.0.1/32:${serverPort}`] } } });
      const r = await runner.run(p, [node, '-e', `fetch('http://shop.test.example:${serverPort}/price').then(r => r.text()).then(t => console.log(t))`]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'shop says hi to GET /price');
      assert.equal(r.connections.length, 1);
      assert.equal(r.connections[0]?.allowed, true);
      assert.equal(r.connections[0]?.host, 'shop.test.example');
      assert.ok((r.connections[0]?.bytesReceived ?? 0) > 0);
    });

    it('refuses the same server when the policy does not list its address', async () => {
      const p = plan({ runtime: ['node'], network: { egress: { allow: [`shop.test.example:${serverPort}`] } } });
      const r = await runner.run(p, [node, '-e', `fetch('http://shop.test.example:${serverPort}/').then(r => console.log(r.status), () => console.log('failed'))`]);
      assert.equal(r.stdout.trim(), 'failed');
      assert.deepEqual(
        r.refused.map((x) => x.kind === 'network' && x.reason),
        ['private-address'],
      );
    });
  });

  describe('ingress', () => {
    it('publishes a contained server on a host loopback port', async () => {
      const p = plan({ runtime: ['node'], network: { ingress: [{ port: 8080 }] }, process: { timeoutMs: 20_000 } });
      const proc = runner.spawn(p, [node, '-e', "require('http').createServer((q, s) => s.end('from inside')).listen(8080, '127.0.0.1')"]);
      const [published] = await proc.ready;
      assert.ok(published && published.hostPort > 0);
      let body = '';
      for (let i = 0; i < 100 && body === ''; i++) {
        body = await fetch(`http://127.0.0.1:${published.hostPort}/`).then(
          (r) => r.text(),
          () => new Promise<string>((r) => setTimeout(() => r(''), 50)),
        );
      }
      proc.kill();
      await proc.result;
      assert.equal(body, 'from inside');
    });

    it("keeps what the command writes where its sockets are off the host's disk", async () => {
      const name = `corral-junk-${process.pid}`;
      const p = plan({ runtime: ['shell'], network: { ingress: [{ port: 8080 }] }, process: { timeoutMs: 20_000 } });
      const proc = runner.spawn(p, ['/bin/sh', '-c', `head -c 1048576 /dev/zero > /run/corral/ingress/${name} && wc -c < /run/corral/ingress/${name}; sleep 30`]);
      for (let i = 0; i < 200 && !Buffer.concat(proc.output.stdout).toString().includes('\n'); i++) await new Promise((r) => setTimeout(r, 25));
      const onHost = globSync(join(tmpdir(), 'corral-*', '*', name));
      proc.kill();
      await proc.result;
      assert.equal(Number(Buffer.concat(proc.output.stdout).toString()), 1048576);
      assert.deepEqual(onHost, []);
    });

    it("never follows a symlink the sandbox puts in its socket's place to a host socket of its choosing", async () => {
      const hostSocket = join(dir, 'host-only.sock');
      let reached = false;
      const hostOnly = createUnixServer((c) => {
        reached = true;
        c.end('host only');
      });
      await new Promise<void>((r) => hostOnly.listen(hostSocket, r));
      try {
        const p = plan({ runtime: ['shell'], network: { ingress: [{ port: 8080 }] }, process: { timeoutMs: 20_000 } });
        const inside = '/run/corral/ingress/8080.sock';
        const proc = runner.spawn(p, ['/bin/sh', '-c', `while [ ! -S ${inside} ]; do sleep 0.05; done; ln -sf ${hostSocket} ${inside} && echo swapped; sleep 30`]);
        const [published] = await proc.ready;
        for (let i = 0; i < 200 && !Buffer.concat(proc.output.stdout).toString().includes('swapped'); i++) await new Promise((r) => setTimeout(r, 25));
        const answer = await fetch(`http://127.0.0.1:${published!.hostPort}/`).then(
          (r) => r.status,
          () => 'no answer',
        );
        proc.kill();
        await proc.result;
        assert.match(Buffer.concat(proc.output.stdout).toString(), /swapped/);
        assert.equal(reached, false);
        assert.equal(answer, 'no answer');
      } finally {
        hostOnly.close();
      }
    });
  });

  describe('on a host without cgroups', () => {
    it('refuses a limit the policy wrote, naming it', async () => {
      const poor = new Runner({ capabilities: without('memory', 'pids', 'cpu') });
      try {
        assert.throws(() => poor.spawn(plan({ runtime: ['shell'], process: { cpus: 0.5 } }), ['/bin/true']), (e: Error & { code?: string }) => e.code === 'CONTAIN_UNENFORCEABLE' && /process\.cpus/.test(e.message));
      } finally {
        await poor.close();
      }
    });

    it('runs with a warning when the policy says onUnenforceable: warn', async () => {
      const poor = new Runner({ capabilities: without('cpu') });
      try {
        const r = await poor.run(plan({ runtime: ['shell'], process: { cpus: 0.5 }, onUnenforceable: 'warn' }), ['/bin/true']);
        assert.equal(r.exitCode, 0);
        assert.ok(r.warnings.some((w) => w.includes('process.cpus')));
      } finally {
        await poor.close();
      }
    });

    it('falls back to an address-space rlimit for memory', async () => {
      const poor = new Runner({ capabilities: without('memory') });
      try {
        const r = await poor.run(plan({ runtime: ['shell'], process: { memoryMB: 100 } }), ['/bin/sh', '-c', 'ulimit -v']);
        assert.equal(r.stdout.trim(), String(100 * 1024));
        // Each forked process gets its own 100 MB: the sandbox as a whole is not held to it, and the run says so.
        assert.ok(r.warnings.some((w) => w.includes('process.memoryMB for the sandbox as a whole')), r.warnings.join('\n'));
      } finally {
        await poor.close();
      }
    });

    it('holds no more than memoryMB in /tmp, /dev/shm or /dev, which an address-space rlimit does not count', async () => {
      const poor = new Runner({ capabilities: without('memory') });
      try {
        const fill = 'for f in /tmp/f /dev/shm/f /dev/f; do head -c 67108864 /dev/zero > $f 2>/dev/null; wc -c < $f 2>/dev/null || echo 0; done';
        const r = await poor.run(plan({ runtime: ['shell'], process: { memoryMB: 32 } }), ['/bin/sh', '-c', fill]);
        const held = r.stdout.trim().split('\n').map(Number);
        assert.equal(held.length, 3, r.stderr);
        for (const bytes of held) assert.ok(bytes <= 32 * 1024 * 1024, `held ${held.join(', ')} bytes`);
      } finally {
        await poor.close();
      }
    });

    it('says so when bubblewrap cannot size a tmpfs (before 0.7.0)', async () => {
      const poor = new Runner({ capabilities: { ...without('memory'), tmpfsSize: { available: false, detail: 'no --size' } } });
      try {
        const r = await poor.run(plan({ runtime: ['shell'], process: { memoryMB: 32 } }), ['/bin/true']);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.ok(r.warnings.some((w) => w.includes('/dev/shm')), r.warnings.join('\n'));
      } finally {
        await poor.close();
      }
    });
  });

  describe('a granted display', () => {
    const hostEnv = () => {
      mkdirSync('/tmp/.X11-unix', { recursive: true });
      writeFileSync('/tmp/.X11-unix/X94', '');
      return { DISPLAY: ':94' };
    };

    it('is there inside when the policy grants what X11 cannot withhold', async () => {
      const p = planSandbox({ policy: validatePolicy({ runtime: ['shell'], ui: { display: true, clipboard: 'all', inputInjection: true } }), source: 'test', baseDir: '/tmp' }, hostEnv());
      const r = await runner.run(p, ['/bin/sh', '-c', 'test -e /tmp/.X11-unix/X94 && echo "display $DISPLAY"']);
      assert.equal(r.stdout, 'display :94\n');
    });

    it('is refused when the policy would keep the clipboard or input injection from it', () => {
      const p = planSandbox({ policy: validatePolicy({ runtime: ['shell'], ui: { display: true } }), source: 'test', baseDir: '/tmp' }, hostEnv());
      assert.throws(() => runner.spawn(p, ['/bin/true']), (e: Error & { code?: string }) => e.code === 'CONTAIN_UNENFORCEABLE' && /ui\.clipboard/.test(e.message) && /ui\.inputInjection/.test(e.message));
    });
  });

  describe('when bubblewrap cannot build the sandbox', () => {
    it('fails with its reason instead of reporting a command exit', async () => {
      const granted = mkdtempSync(join(tmpdir(), 'corral-gone-'));
      const gone = join(granted, 'cwd');
      mkdirSync(gone);
      const p = plan({ runtime: ['shell'], filesystem: { readonly: [granted] }, workingDirectory: gone });
      rmSync(gone, { recursive: true });
      await assert.rejects(runner.run(p, ['/bin/true']), (e: Error & { code?: string }) => e.code === 'CONTAIN_SPAWN_FAILED' && e.message.includes(gone));
    });

    // Which comes first — bubblewrap's child dying or the runner moving it into
    // its cgroups — cannot be chosen with the real program; a stand-in that
    // names a child that cannot exist (above any pid_max Linux allows) can.
    // `ending` is how the stand-in ends after saying why.
    const standIns: string[] = [];
    after(() => standIns.forEach((d) => rmSync(d, { recursive: true, force: true })));
    function failingBubblewrap(ending: string): Runner {
      const bin = mkdtempSync(join(tmpdir(), 'corral-fake-bwrap-'));
      standIns.push(bin);
      const script = join(bin, 'bwrap');
      writeFileSync(
        script,
        `#!/bin/sh\ninfo=\nwhile [ $# -gt 0 ]; do case "$1" in --json-status-fd) info=$2; shift 2;; --) break;; *) shift;; esac; done\n` +
          `eval "printf '{\\"child-pid\\": 4194305}' >&$info; exec $info>&-"\n` +
          `echo "bwrap: Can't mount proc on /newroot/proc: Operation not permitted" >&2\n${ending}\n`,
        { mode: 0o755 },
      );
      const caps = hostCapabilities();
      assert.ok(caps.cgroups.controllers.pids, 'this host has a writable pids cgroup (the runner adopts the sandbox into it)');
      // Held until moved into its cgroups, as on cgroup v2: a sandbox that joins them itself is never held.
      return new Runner({ capabilities: { ...caps, bwrap: { available: true, path: script, detail: 'a bubblewrap that fails' }, cgroupJoin: MOVED_IN } });
    }

    it('reports a sandbox it never released as a set-up failure even when bubblewrap then dies by a signal', async () => {
      const failing = failingBubblewrap('kill -KILL $$');
      try {
        await assert.rejects(failing.run(plan({ runtime: ['shell'] }), ['/bin/true']), (e: Error & { code?: string }) => e.code === 'CONTAIN_SPAWN_FAILED' && e.message.includes("Can't mount proc"));
      } finally {
        await failing.close();
      }
    });

    it('leaves bubblewrap 2 s to end by itself after such a failure, then kills it', async () => {
      const failing = failingBubblewrap('exec sleep 60');
      const started = performance.now();
      try {
        await assert.rejects(failing.run(plan({ runtime: ['shell'] }), ['/bin/true']), (e: Error & { code?: string }) => e.code === 'CONTAIN_SPAWN_FAILED' && e.message.includes("Can't mount proc"));
      } finally {
        await failing.close();
      }
      const waited = performance.now() - started;
      assert.ok(waited >= 1900 && waited < 20_000, `ended after ${waited.toFixed(0)} ms`);
    });
  });

  describe("a sandbox's cgroups", () => {
    const caps = hostCapabilities();
    /** The cgroups (memory, pids) of every process whose command line names `word`, while `argv` runs in a sandbox of `runner`. */
    async function groupsWhileRunning(runner: Runner, word: string): Promise<string[]> {
      const work = realpathSync(mkdtempSync(join(tmpdir(), `corral-${word}-`)));
      const running = runner.run(plan({ runtime: ['shell'], workingDirectory: '.', filesystem: { readonly: ['.'] } }, work), ['/bin/sleep', '1']);
      try {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const groups: string[] = [];
        for (const name of readdirSync('/proc')) {
          if (!/^\d+$/.test(name)) continue;
          try {
            if (!readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').includes(work)) continue;
            const program = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0')[0]!;
            const pids = /^\d+:pids:(.*)$/m.exec(readFileSync(`/proc/${name}/cgroup`, 'utf8'))?.[1];
            groups.push(`${program.endsWith('/bwrap') ? 'bwrap' : program.includes('corral-reaper') ? 'reaper' : program} ${pids?.includes('/corral/runner-') ? 'inside' : 'outside'}`);
          } catch {
            // Gone since it was listed.
          }
        }
        assert.equal((await running).exitCode, 0);
        return groups.sort();
      } finally {
        await running.catch(() => undefined);
        rmSync(work, { recursive: true, force: true });
      }
    }

    it('hold bubblewrap from its start, the sandbox with it, on a host where it joins them itself (corral-reaper --join: no wait for the kernel to move it in)', { skip: !caps.cgroupJoin.available && caps.cgroupJoin.detail }, async () => {
      // bubblewrap on the host, and the sandbox's first process it made: both already inside when they are first seen.
      assert.deepEqual(await groupsWhileRunning(runner, 'joined'), ['bwrap inside', 'bwrap inside', 'reaper outside']);
    });

    it('hold the sandbox, and not bubblewrap on the host, where it is moved in once bubblewrap holds it', { skip: !caps.cgroups.controllers.pids && 'no writable pids cgroup here' }, async () => {
      const movedIn = new Runner({ capabilities: { ...caps, cgroupJoin: MOVED_IN } });
      try {
        assert.deepEqual(await groupsWhileRunning(movedIn, 'moved'), [...(caps.reaper.available ? ['reaper outside'] : []), 'bwrap inside', 'bwrap outside'].sort());
      } finally {
        await movedIn.close();
      }
    });

    it("give the command as many processes either way (bubblewrap's own, joining, is counted apart from the policy's maxProcesses)", { skip: !caps.cgroupJoin.available && caps.cgroupJoin.detail }, async () => {
      const movedIn = new Runner({ capabilities: { ...caps, cgroupJoin: MOVED_IN } });
      // Starts background sleeps, saying how many so far, until a fork fails (the shell then ends).
      const forks = ['/bin/sh', '-c', 'i=0; while [ $i -lt 20 ]; do sleep 2 </dev/null >/dev/null 2>&1 & i=$((i+1)); echo $i; done'];
      const limited = plan({ runtime: ['shell'], process: { maxProcesses: 6 } });
      try {
        const started = async (r: Runner) => (await r.run(limited, forks)).stdout.trim().split('\n').at(-1);
        const [joined, moved] = [await started(runner), await started(movedIn)];
        assert.equal(joined, moved);
        assert.ok(Number(joined) > 0 && Number(joined) < 6, joined);
      } finally {
        await movedIn.close();
      }
    });
  });

  describe('cgroups left by a runner that died without closing', () => {
    it('are removed by the next runner', async () => {
      const pids = hostCapabilities().cgroups.controllers.pids;
      assert.ok(pids, 'this host has a writable pids cgroup');
      const dead = spawnSync('/bin/true').pid;
      const abandoned = join(pids.parent, 'corral', `runner-${dead}-1`);
      mkdirSync(join(abandoned, '1'), { recursive: true });
      const next = new Runner();
      await next.close();
      assert.equal(existsSync(abandoned), false);
    });

    it('kill what still runs in them, which nothing else ends (a runner killed while a sandbox was starting left it to run the command on its own)', async () => {
      const pids = hostCapabilities().cgroups.controllers.pids;
      assert.ok(pids, 'this host has a writable pids cgroup');
      const dead = spawnSync('/bin/true').pid;
      const group = join(pids.parent, 'corral', `runner-${dead}-1`, '1');
      mkdirSync(group, { recursive: true });
      const left = spawn('/bin/sleep', ['1000'], { stdio: 'ignore' });
      const ended = new Promise<NodeJS.Signals | null>((resolve) => left.once('exit', (_code, signal) => resolve(signal)));
      try {
        writeFileSync(join(group, 'cgroup.procs'), String(left.pid));
        const next = new Runner();
        await next.close();
        const signal = await Promise.race([ended, new Promise<string>((resolve) => setTimeout(resolve, 3_000, 'still running'))]);
        assert.equal(signal, 'SIGKILL');
      } finally {
        left.kill('SIGKILL');
        await ended;
        for (const dir of [group, dirname(group)]) if (existsSync(dir)) rmdirSync(dir);
      }
    });
  });

  describe('started()', () => {
    /** The pids of every process in a cgroup of one of this process's runners. */
    function inRunnerCgroups(): string[] {
      const pids = hostCapabilities().cgroups.controllers.pids;
      assert.ok(pids, 'this host has a writable pids cgroup');
      const base = join(pids.parent, 'corral');
      return readdirSync(base)
        .filter((name) => name.startsWith(`runner-${process.pid}-`))
        .flatMap((runnerGroup) =>
          readdirSync(join(base, runnerGroup), { withFileTypes: true })
            .filter((entry) => entry.isDirectory())
            .flatMap((run) => readFileSync(join(base, runnerGroup, run.name, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)),
        );
    }

    it('resolves once a sandbox started ahead sits in its cgroups, before it is ready, where this thread moves it in', async () => {
      const own = new Runner({ capabilities: { ...hostCapabilities(), cgroupJoin: MOVED_IN } });
      try {
        let ready = false;
        const warming = own.keepWarm(plan({ runtime: ['shell'] }), 1).then(() => (ready = true));
        await own.started();
        assert.ok(inRunnerCgroups().length > 0, 'bubblewrap was moved into its cgroups');
        assert.equal(ready, false, 'the rest of its set-up is still to come');
        await warming;
      } finally {
        await own.close();
      }
    });

    it('resolves once bubblewrap is spawned, before the sandbox is ready, where it joins its cgroups itself', { skip: !hostCapabilities().cgroupJoin.available && hostCapabilities().cgroupJoin.detail }, async () => {
      const own = new Runner();
      try {
        let ready = false;
        const warming = own.keepWarm(plan({ runtime: ['shell'] }), 1).then(() => (ready = true));
        await own.started();
        const children = readdirSync('/proc/self/task').flatMap((task) => readFileSync(`/proc/self/task/${task}/children`, 'latin1').split(' ').filter(Boolean));
        assert.ok(children.length > 0, 'bubblewrap (under corral-reaper) was spawned');
        assert.equal(ready, false, 'the rest of its set-up is still to come');
        await warming;
        assert.ok(inRunnerCgroups().length > 0, 'the ready sandbox sits in its cgroups');
      } finally {
        await own.close();
      }
    });

    it('resolves at once when nothing is starting, and for a run whose command is not there', async () => {
      const own = new Runner();
      try {
        await own.started();
        const missing = own.spawn(plan({ runtime: ['shell'], onUnenforceable: 'warn' }), ['/no/such/command']);
        await own.started();
        assert.equal((await missing.result).notFound, true);
      } finally {
        await own.close();
      }
    });
  });

  describe('sandboxes kept warm for a plan', () => {
    it('runs the command in a sandbox started ahead, with its arguments, environment and folder exactly as given', async () => {
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['./work'] }, environment: { set: { GREETING: 'hello' } } }, dir);
      await runner.keepWarm(p, 1);
      const r = await runner.run(p, ['/bin/sh', '-c', 'printf "[%s]" "$@"; echo; pwd; env | cut -d= -f1 | sort | tr "\\n" " "', 'sh', 'a b', '', '*']);
      await runner.keepWarm(p, 0);
      assert.equal(r.warm, true);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, `[a b][][*]\n${join(dir, 'work')}\nGREETING HOME LANG PATH PWD TMPDIR `);
    });

    it('never gives a run a sandbox made for a plan that differs, even only in one variable', async () => {
      const kept = plan({ runtime: ['shell'], environment: { set: { WHO: 'kept' } } });
      const other = plan({ runtime: ['shell'], environment: { set: { WHO: 'other' } } });
      await runner.keepWarm(kept, 1);
      const r = await runner.run(other, ['/bin/sh', '-c', 'echo $WHO']);
      assert.equal(r.warm, false);
      assert.equal(r.stdout, 'other\n');
      const k = await runner.run(kept, ['/bin/sh', '-c', 'echo $WHO']);
      await runner.keepWarm(kept, 0);
      assert.equal(k.warm, true);
      assert.equal(k.stdout, 'kept\n');
    });

    it('uses each sandbox once: the next run of the plan sees a fresh /tmp', async () => {
      const p = plan({ runtime: ['shell'], environment: { set: { RUN: 'reuse' } } });
      await runner.keepWarm(p, 1);
      const first = await runner.run(p, ['/bin/sh', '-c', 'echo left-behind > /tmp/mark']);
      await runner.keepWarm(p, 1);
      const second = await runner.run(p, ['/bin/sh', '-c', 'cat /tmp/mark 2>/dev/null || echo fresh']);
      await runner.keepWarm(p, 0);
      assert.deepEqual([first.warm, second.warm], [true, true]);
      assert.equal(second.stdout, 'fresh\n');
    });

    it('counts the timeout from the run, not from when the sandbox was started, and still kills at the limit', async () => {
      const p = plan({ runtime: ['shell'], process: { timeoutMs: 1500 } });
      await runner.keepWarm(p, 1);
      await new Promise((r) => setTimeout(r, 1800));
      const quick = await runner.run(p, ['/bin/true']);
      await runner.keepWarm(p, 1);
      const slow = await runner.run(p, ['/bin/sh', '-c', 'sleep 30 & sleep 30 & wait']);
      await runner.keepWarm(p, 0);
      assert.deepEqual([quick.warm, quick.exitCode, quick.limitsHit], [true, 0, []]);
      assert.deepEqual([slow.warm, slow.limitsHit], [true, ['timeout']]);
    });

    it('holds the process limit of its plan from before the run', async () => {
      const p = plan({ runtime: ['shell'], process: { maxProcesses: 8 } });
      await runner.keepWarm(p, 1);
      const r = await runner.run(p, ['/bin/sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done; wait']);
      await runner.keepWarm(p, 0);
      assert.equal(r.warm, true);
      assert.ok(r.limitsHit.includes('processes'), JSON.stringify(r));
    });

    it('feeds a stream to the command, and says when the command does not exist', async () => {
      const p = plan({ runtime: ['shell'], environment: { set: { RUN: 'stdin' } } });
      await runner.keepWarm(p, 2);
      const input = new PassThrough();
      input.end('into the warm sandbox\n');
      const fed = await runner.run(p, ['/bin/cat'], { stdin: input });
      const missing = await runner.run(p, ['/no/such/tool']);
      await runner.keepWarm(p, 0);
      assert.deepEqual([fed.warm, fed.stdout], [true, 'into the warm sandbox\n']);
      assert.deepEqual([missing.warm, missing.notFound], [true, true]);
    });

    it('reaches an allowed name through the proxy and records the connection for the run that used it', async () => {
      const p = plan({ runtime: ['node'], network: { egress: { allow: [`shop.test.example:${serverPort}`, `127.0.0.1/32:${serverPort}`] } } });
      await runner.keepWarm(p, 1);
      const seen: string[] = [];
      const r = await runner.run(p, [node, '-e', `fetch('http://shop.test.example:${serverPort}/warm').then(r => r.text()).then(t => console.log(t))`], { onConnection: (c) => seen.push(c.host) });
      await runner.keepWarm(p, 0);
      assert.equal(r.warm, true);
      assert.equal(r.stdout.trim(), 'shop says hi to GET /warm');
      assert.deepEqual(r.connections.map((c) => [c.host, c.allowed]), [['shop.test.example', true]]);
      // The proxy tells of a connection once it has closed, which may come just after the run's end.
      for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((done) => setTimeout(done, 20));
      assert.deepEqual(seen, ['shop.test.example']);
    });

    it("serves a run given the caller's standard input too: every sandbox's input is a pipe the run feeds, never the caller's descriptor", async () => {
      const p = plan({ runtime: ['shell'], environment: { set: { RUN: 'inherit' } } });
      await runner.keepWarm(p, 1);
      const inherited = await runner.run(p, ['/bin/sh', '-c', 'test -p /dev/stdin || test -S /dev/stdin'], { stdin: 'inherit' });
      await runner.keepWarm(p, 0);
      assert.deepEqual([inherited.warm, inherited.exitCode], [true, 0]);
    });

    it('starts no replacement when the plan is stopped right after the run was spawned', async () => {
      const r = new Runner();
      try {
        const p = plan({ runtime: ['shell'] });
        await r.keepWarm(p, 1);
        const proc = r.spawn(p, ['/bin/true']);
        await r.keepWarm(p, 0);
        assert.equal((await proc.result).warm, true);
        await new Promise((done) => setTimeout(done, 200));
        assert.equal((await r.run(p, ['/bin/true'])).warm, false);
      } finally {
        await r.close();
      }
    });

    it('refuses more than 8 per plan, and a whole number is required', async () => {
      await assert.rejects(runner.keepWarm(plan({}), 9), { code: 'CONTAIN_WARM_LIMIT' });
      await assert.rejects(runner.keepWarm(plan({}), 1.5), { code: 'CONTAIN_WARM_LIMIT' });
    });

    it('refuses a ninth plan until one is stopped', async () => {
      const r = new Runner();
      try {
        const plans = Array.from({ length: 9 }, (_, i) => plan({ environment: { set: { N: String(i) } } }));
        for (const p of plans.slice(0, 8)) await r.keepWarm(p, 1);
        await assert.rejects(r.keepWarm(plans[8]!, 1), { code: 'CONTAIN_WARM_LIMIT' });
        await r.keepWarm(plans[0]!, 0);
        await r.keepWarm(plans[8]!, 1);
      } finally {
        await r.close();
      }
    });

    it('kills the waiting sandboxes on close and refuses to warm after it', async () => {
      const r = new Runner();
      const p = plan({ runtime: ['shell'] });
      await r.keepWarm(p, 2);
      await r.close();
      await assert.rejects(r.keepWarm(p, 1), { code: 'CONTAIN_CLOSED' });
    });
  });

  describe('when a sandbox plants a symlink where a grant was', () => {
    // The agent may write ./project, and its policy grants ./project/data read-only: a run of the
    // agent (or any sandbox that may write the parent) swaps data for a symlink to the folder that
    // holds everything (data -> .., as ~/project/data -> ~ would): bound there, it would show ./ssh and ./state.
    function swapped(): { root: string; grants: ContainerPolicyInput } {
      const root = realpathSync(mkdtempSync(join(tmpdir(), 'corral-swap-')));
      mkdirSync(join(root, 'project/data'), { recursive: true });
      writeFileSync(join(root, 'project/data/report.txt'), 'report\n');
      // Stands for ~/.ssh: granted to nobody.
      mkdirSync(join(root, 'ssh'));
      writeFileSync(join(root, 'ssh/id_ed25519'), 'PRIVATE KEY\n');
      mkdirSync(join(root, 'state'));
      writeFileSync(join(root, 'state/audit-key.pem'), 'AUDIT KEY\n');
      return { root, grants: { runtime: ['shell'], filesystem: { readwrite: ['./project'], readonly: ['./project/data'] } } };
    }
    async function plant(root: string, target: string): Promise<void> {
      const agent = plan({ runtime: ['shell'], filesystem: { readwrite: ['./project'] } }, root);
      const r = await runner.run(agent, ['/bin/sh', '-c', `mv data data.old && ln -s ${target} data`]);
      assert.equal(r.exitCode, 0, r.stderr);
    }

    it('refuses to start a plan made before the swap instead of binding where the symlink points', async () => {
      const { root, grants } = swapped();
      const p = plan(grants, root);
      await plant(root, '..');
      await assert.rejects(runner.run(p, ['/bin/cat', join(root, 'ssh/id_ed25519')]), { code: 'CONTAIN_PATH_CHANGED' });
    });

    it("refuses it when the symlink leads into Corral's state directory, which the plan hides", async () => {
      const { root, grants } = swapped();
      const p = planSandbox({ policy: validatePolicy(grants), source: 'test', baseDir: root }, {}, { stateDir: join(root, 'state') });
      await plant(root, '..');
      await assert.rejects(runner.run(p, ['/bin/cat', join(root, 'state/audit-key.pem')]), { code: 'CONTAIN_PATH_CHANGED' });
    });

    it('refuses to start a warm sandbox for that plan after the swap, and serves no run from one', async () => {
      const { root, grants } = swapped();
      const p = plan(grants, root);
      await plant(root, '..');
      await assert.rejects(runner.keepWarm(p, 1), { code: 'CONTAIN_PATH_CHANGED' });
      await assert.rejects(runner.run(p, ['/bin/cat', join(root, 'ssh/id_ed25519')]), { code: 'CONTAIN_PATH_CHANGED' });
      await runner.keepWarm(p, 0);
    });

    it('refuses to plan the grant again while it leads through the planted symlink, naming it', async () => {
      const { root, grants } = swapped();
      await plant(root, '..');
      assert.throws(
        () => plan(grants, root),
        (error: ContainError) => error.code === 'CONTAIN_PATH_UNRESOLVABLE' && error.issues.length === 1 && error.issues[0]!.field === 'filesystem.readonly[0]' && error.issues[0]!.message.includes(join(root, 'project/data')),
      );
    });
  });

  describe('the descriptors grants are bound from', () => {
    it('are not handed to the command', async () => {
      const r = await runner.run(plan({ runtime: ['shell'], filesystem: { readwrite: ['./work'], readonly: ['./inbox'] } }, dir), ['/bin/ls', '-l', '/proc/self/fd']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, / 2 -> /);
      assert.ok(!r.stdout.includes(dir), r.stdout);
    });

    it('are all closed again after a thousand runs, cold, warm and refused', async () => {
      const p = plan({ runtime: ['shell'], filesystem: { readwrite: ['./work'], readonly: ['./inbox'] } }, dir);
      const gone = join(dir, 'gone');
      mkdirSync(gone);
      const refused = plan({ runtime: ['shell'], filesystem: { readonly: ['./gone'] } }, dir);
      rmSync(gone, { recursive: true });
      await runner.run(p, ['/bin/true']);
      const open = () => readdirSync('/proc/self/fd').length;
      const before = open();
      await runner.keepWarm(p, 2);
      let warm = 0;
      for (let batch = 0; batch < 100; batch++) {
        const runs = Array.from({ length: 9 }, async () => {
          const r = await runner.run(p, ['/bin/true']);
          assert.equal(r.exitCode, 0, r.stderr);
          if (r.warm) warm++;
        });
        runs.push(assert.rejects(runner.run(refused, ['/bin/true']), { code: 'CONTAIN_PATH_CHANGED' }));
        await Promise.all(runs);
      }
      await runner.keepWarm(p, 0);
      assert.ok(warm > 0, 'some runs took a warm sandbox');
      // The waiting sandboxes' pipes close as they are discarded, in the background. None is left
      // behind; the count may end lower, when a descriptor of the first run was still closing at `before`.
      for (let i = 0; i < 100 && open() > before; i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(open() <= before, `${open()} descriptors open, ${before} before the thousand runs`);
    });
  });

  describe('descriptors the runner itself inherited without close-on-exec', () => {
    it("never reach the command: a folder's descriptor handed down by the runner's parent opens nothing of the host", () => {
      const secret = join(dir, 'outside-every-grant');
      mkdirSync(secret);
      writeFileSync(join(secret, 'secret.txt'), 'host secret\n');
      const script = join(dir, 'inherits.mjs');
      const from = (path: string) => JSON.stringify(new URL(path, import.meta.url).href);
      writeFileSync(
        script,
        `import { Runner } from ${from('./runner.ts')};
        import { validatePolicy } from ${from('./policy/load.ts')};
        import { planSandbox } from ${from('./policy/plan.ts')};
        const runner = new Runner();
        const r = await runner.run(planSandbox({ policy: validatePolicy({ runtime: ['shell'] }), source: 'test', baseDir: '/tmp' }), ['/bin/cat', '/proc/self/fd/40/secret.txt']);
        await runner.close();
        process.stdout.write(JSON.stringify({ exitCode: r.exitCode, stdout: r.stdout }));`,
      );
      const folder = openSync(secret, 'r');
      try {
        // The parent leaves the folder open on fd 40 of the runner's process, as a shell's `exec 40<dir` or socket activation does.
        const child = spawnSync(node, [script], { stdio: ['ignore', 'pipe', 'pipe', ...Array<'ignore'>(37).fill('ignore'), folder], encoding: 'utf8', timeout: 30_000 });
        assert.equal(child.status, 0, child.stderr);
        const r = JSON.parse(child.stdout) as { exitCode: number; stdout: string };
        assert.equal(r.stdout, '');
        assert.notEqual(r.exitCode, 0);
      } finally {
        closeSync(folder);
      }
    });
  });

  describe('misuse', () => {
    it('refuses an empty command', () => {
      assert.throws(() => runner.spawn(plan({}), []), { code: 'CONTAIN_BAD_COMMAND' });
    });

    it('refuses a word holding a NUL byte, which would reach the command cut short', () => {
      assert.throws(() => runner.spawn(plan({}), ['/bin/echo', 'a\0b']), { code: 'CONTAIN_BAD_COMMAND' });
    });

    it('refuses a variable holding a NUL byte, which would reach bubblewrap as options of its own', async () => {
      const p = plan({});
      const injected: SandboxPlan = { ...p, env: { ...p.env, INJECTED: 'x\0--bind\0/\0/host' } };
      await assert.rejects(runner.spawn(injected, ['/bin/true']).result, { code: 'CONTAIN_BAD_COMMAND' });
    });

    it('refuses to run after close', async () => {
      const r = new Runner();
      await r.close();
      assert.throws(() => r.spawn(plan({}), ['/bin/true']), { code: 'CONTAIN_CLOSED' });
    });
  });
});
