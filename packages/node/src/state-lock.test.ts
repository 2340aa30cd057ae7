// One node process per state directory: a second refuses to start at once,
// naming the directory and the first one's pid, and one that died (SIGKILL
// too) never blocks a restart.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { NODE_LOCK } from './state-lock.ts';

const root = mkdtempSync(join(tmpdir(), 'corral-node-lock-'));
const children: ChildProcess[] = [];
after(() => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/**
 * A node process of its own on `stateDir`, its gateway one that never answers
 * (so it keeps trying, and runs on): its first line is `ready` once its host
 * is made, or its refusal as JSON ({ code, message }), after which it exits.
 * SIGTERM closes its host, as `corral node run` does.
 */
async function nodeProcess(stateDir: string): Promise<{ child: ChildProcess; first: string; exited: Promise<unknown> }> {
  const source = `import { NodeHost } from ${JSON.stringify(new URL('./host.ts', import.meta.url).href)};
    let host;
    try {
      host = new NodeHost({ gateway: 'ws://127.0.0.1:9', token: 'not-needed-here', stateDir: ${JSON.stringify(stateDir)}, warmSandboxes: 0, maxBackoffMs: 50 });
    } catch (e) {
      console.log(JSON.stringify({ code: e.code, message: e.message }));
      process.exit(3);
    }
    // Before it says so: the test may stop it as soon as it reads that line.
    process.once('SIGTERM', () => void host.close().then(() => process.exit(0)));
    void host.start().catch(() => {});
    console.log('ready');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, first: String((await lines.next()).value), exited };
}

const fresh = (name: string) => mkdtempSync(join(root, `${name}-`));

/** A node process on `stateDir` that has said `ready`. */
async function readyNode(stateDir: string): Promise<Awaited<ReturnType<typeof nodeProcess>>> {
  const node = await nodeProcess(stateDir);
  assert.equal(node.first, 'ready');
  return node;
}

/** Sends `node` `signal` (SIGTERM closes its host; SIGKILL leaves its lock behind) and waits for it to exit. */
async function stop(node: { child: ChildProcess; exited: Promise<unknown> }, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  node.child.kill(signal);
  await node.exited;
}

describe('two node processes on one state directory', () => {
  it('refuses the second at once with NODE_STATE_DIR_UNAVAILABLE naming the directory and the pid of the one running, which runs on (regression: both ran with one device key, each replacing the other\'s gateway connection)', async () => {
    const dir = fresh('held');
    const first = await readyNode(dir);
    const second = await nodeProcess(dir);
    const refusal = JSON.parse(second.first) as { code: string; message: string };
    assert.equal(refusal.code, 'NODE_STATE_DIR_UNAVAILABLE');
    assert.ok(refusal.message.includes(dir), refusal.message);
    assert.ok(refusal.message.includes(`pid ${first.child.pid}`), refusal.message);
    await second.exited;
    assert.equal(first.child.exitCode, null, 'the first runs on');
    assert.equal(readFileSync(join(dir, NODE_LOCK), 'utf8'), `${first.child.pid}\n`);
    await stop(first);
  });

  it('starts the second once the first has stopped, its lock removed as it closed', async () => {
    const dir = fresh('closed');
    const first = await readyNode(dir);
    await stop(first);
    assert.equal(existsSync(join(dir, NODE_LOCK)), false);
    await stop(await readyNode(dir));
  });

  it('starts the second when the first was killed with SIGKILL (its lock left behind names a process that is gone)', async () => {
    const dir = fresh('killed');
    const first = await readyNode(dir);
    await stop(first, 'SIGKILL');
    assert.equal(readFileSync(join(dir, NODE_LOCK), 'utf8'), `${first.child.pid}\n`, 'left behind');
    const second = await readyNode(dir);
    assert.equal(readFileSync(join(dir, NODE_LOCK), 'utf8'), `${second.child.pid}\n`);
    await stop(second);
  });
});
