// A run of a script approved through Corral's own gateway on Corral's own
// node: the approval is bound to what the script holds (its sha256, read by
// the node when the run is asked for, before any approval is looked up), so
// a script rewritten after a human approved it never runs under that
// approval: asked for again, it is another action; already on its way, the
// node refuses it.
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Runner, type RunOptions, type RunResult, type SandboxPlan } from '@corral/contain';
import { Gateway, GatewayClient } from '@corral/gateway';
import { NodeHost } from '../src/index.ts';
import { startPaired } from '../test/paired-host.ts';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';

const token = randomBytes(24).toString('base64url');
const ALICE = { channel: 'corral', accountId: 'example.com', senderId: 'alice' };
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const refusedWith = (code: string) => (e: { wire?: { code?: string; details?: { code?: string } } }) => e.wire?.details?.code === code || e.wire?.code === code;

/** A runner that records each argv it runs, then does `beforeNext` once (what happens on the host after the node's last check), then runs it. */
class RecordingRunner extends Runner {
  readonly ran: string[][] = [];
  beforeNext: (() => void) | undefined;
  override run(plan: SandboxPlan, argv: readonly string[], options?: RunOptions): Promise<RunResult & { stdout: string; stderr: string }> {
    this.ran.push([...argv]);
    this.beforeNext?.();
    this.beforeNext = undefined;
    return super.run(plan, argv, options);
  }
}

describe('a script run approved through the gateway on Corral\'s node (the approval bound to the script\'s sha256)', () => {
  let gw: Gateway;
  let host: NodeHost;
  let operator: GatewayClient;
  let work: string;
  const runner = new RecordingRunner();
  const requests: string[] = [];
  before(async () => {
    const state = tempDir('corral-script-gw-');
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'asks.cedar'), '@id("asks") @approval("required") permit (principal, action == Action::"system.run", resource);\n');
    gw = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20 });
    work = realpathSync(tempDir('corral-script-work-'));
    const nodeState = tempDir('corral-script-node-');
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readonly: [work] } };
    host = new NodeHost({ gateway: gw.url, token, stateDir: nodeState, maxBackoffMs: 200, runner, containerPolicies: { '*': { policy, baseDir: nodeState } }, onRequest: (r) => requests.push(r.command) });
    await startPaired(host, gw);
    operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  });
  after(async () => {
    await operator?.close();
    await host?.close();
    await runner.close();
    await gw?.close();
  });

  const run = (argv: string[], timeoutMs = 10_000) => operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: argv, cwd: work }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 }) as Promise<{ payload: { stdout: string } }>;
  /** Writes x.sh, executable, to do `body`. */
  const script = (body: string) => writeFileSync(join(work, 'x.sh'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const pending = (argv: string[]) => gw.approvals.list({ status: 'pending' }).filter((a) => JSON.stringify(a.action.argv) === JSON.stringify(argv));

  it('asks for ./x.sh, shows the approver the file it runs and its sha256, and runs it once allowed once', async () => {
    script('echo v1');
    await assert.rejects(run(['./x.sh'], 100), refusedWith('APPROVAL_PENDING'));
    const [asked] = pending(['./x.sh']);
    const shown = (await operator.request('exec.approval.get', { id: asked!.id })) as { request: { mutableFileOperand?: unknown; scriptPreview?: unknown } };
    assert.deepEqual(shown.request.mutableFileOperand, { argvIndex: 0, path: join(work, 'x.sh'), sha256: sha256('#!/bin/sh\necho v1\n') });
    // What it does, from the bytes the node hashed: an approver far from the node reads it here.
    assert.deepEqual(shown.request.scriptPreview, { bytes: 18, truncated: false, text: '#!/bin/sh\necho v1\n' });
    await operator.request('exec.approval.resolve', { id: asked!.id, decision: 'allow-once', reviewer: ALICE });
    assert.equal((await run(['./x.sh'])).payload.stdout, 'v1\n');
    assert.deepEqual(runner.ran.at(-1), ['./x.sh']);
    assert.equal(gw.approvals.get(asked!.id).status, 'used');
  });

  it('never runs x.sh rewritten after its approval was asked for: asked for again, it is a new approval of the new content, the old one unspent (regression: the approval bound argv, cwd and env only, and the new content ran)', async () => {
    script('echo approved');
    await assert.rejects(run(['./x.sh'], 100), refusedWith('APPROVAL_PENDING'));
    const [asked] = pending(['./x.sh']);
    script('echo rewritten');
    await operator.request('exec.approval.resolve', { id: asked!.id, decision: 'allow-once', reviewer: ALICE });
    const ran = runner.ran.length;
    await assert.rejects(run(['./x.sh'], 200), refusedWith('APPROVAL_PENDING'));
    assert.equal(runner.ran.length, ran, 'nothing ran');
    const [again] = pending(['./x.sh']);
    assert.notEqual(again?.id, asked!.id);
    assert.equal((again!.action.mutableFileOperand as { sha256: string }).sha256, sha256('#!/bin/sh\necho rewritten\n'));
    assert.equal(gw.approvals.get(asked!.id).status, 'allowed', 'the approval of the old content covers nothing else');
    await gw.invoker.resolveApprovalWhenFree(again!.id, 'deny', 'alice');
  });

  it('has the node refuse x.sh rewritten while its run waited for the approval, nothing run (the approval spent on content it no longer holds)', async () => {
    script('echo before');
    const waiting = run(['./x.sh']);
    const asked = await (async () => {
      for (;;) {
        const [found] = pending(['./x.sh']);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    script('echo after');
    const ran = runner.ran.length;
    await operator.request('exec.approval.resolve', { id: asked.id, decision: 'allow-once', reviewer: ALICE });
    await assert.rejects(waiting, (e: { wire?: { code?: string; message?: string } }) => e.wire?.code === 'SYSTEM_RUN_DENIED' && /the script x\.sh changed since it was approved/.test(e.wire.message ?? ''));
    assert.equal(runner.ran.length, ran, 'nothing ran');
    assert.equal(gw.approvals.get(asked.id).status, 'used');
  });

  it('runs x.sh as approved when it is rewritten after the node\'s last check, before the sandbox opens it, and leaves the rewrite on the host (regression: the check and the open were two reads, and what was written between them ran)', async () => {
    script('echo as approved');
    await assert.rejects(run(['./x.sh'], 100), refusedWith('APPROVAL_PENDING'));
    const [asked] = pending(['./x.sh']);
    await operator.request('exec.approval.resolve', { id: asked!.id, decision: 'allow-once', reviewer: ALICE });
    runner.beforeNext = () => script('echo rewritten after the check');
    assert.equal((await run(['./x.sh'])).payload.stdout, 'as approved\n');
    assert.equal(readFileSync(join(work, 'x.sh'), 'utf8'), '#!/bin/sh\necho rewritten after the check\n');
  });

  it('refuses, no approval asked, a script reached through a link the sandbox resolves to another file than the node read (/proc/self/cwd: the node\'s folder on the host, the run\'s in the sandbox) (regression: the approval was of the node\'s file and the run\'s ran, unseen)', async () => {
    const nodeCwd = realpathSync(tempDir('corral-script-node-cwd-'));
    writeFileSync(join(nodeCwd, 'payload.sh'), '#!/bin/sh\necho shown to the approver\n', { mode: 0o755 });
    writeFileSync(join(work, 'payload.sh'), '#!/bin/sh\necho never shown\n', { mode: 0o755 });
    symlinkSync('/proc/self/cwd/payload.sh', join(work, 'via-proc.sh'));
    const was = process.cwd();
    process.chdir(nodeCwd);
    try {
      const ran = runner.ran.length;
      await assert.rejects(run(['./via-proc.sh']), (e: { wire?: { details?: { code?: string; reason?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED' && /the script via-proc\.sh is not reached in the sandbox as the node read it/.test(e.wire.details.reason ?? ''));
      assert.deepEqual(pending(['./via-proc.sh']), []);
      assert.equal(runner.ran.length, ran, 'nothing ran');
    } finally {
      process.chdir(was);
    }
  });

  it('refuses, running nothing, a script swapped while its approval was awaited for a link the sandbox follows elsewhere, to the same file on the host (regression: the sandbox ran the file the link led to inside, unseen)', async () => {
    // The node's folder is work, the run's work/sub: /proc/self/cwd/sub/payload.sh is work/sub/payload.sh on the host, work/sub/sub/payload.sh inside.
    mkdirSync(join(work, 'sub/sub'), { recursive: true });
    writeFileSync(join(work, 'sub/payload.sh'), '#!/bin/sh\necho approved\n', { mode: 0o755 });
    writeFileSync(join(work, 'sub/sub/payload.sh'), '#!/bin/sh\necho never shown\n', { mode: 0o755 });
    symlinkSync('payload.sh', join(work, 'sub/x.sh'));
    const was = process.cwd();
    process.chdir(work);
    try {
      const waiting = operator.request('node.invoke', { nodeId: host.device.deviceId, command: 'system.run', params: { command: ['./x.sh'], cwd: join(work, 'sub') }, timeoutMs: 10_000, idempotencyKey: randomUUID() }, { timeoutMs: 15_000 });
      const asked = await (async () => {
        for (;;) {
          const [found] = pending(['./x.sh']).filter((a) => a.action.cwd === join(work, 'sub'));
          if (found) return found;
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      rmSync(join(work, 'sub/x.sh'));
      symlinkSync('/proc/self/cwd/sub/payload.sh', join(work, 'sub/x.sh'));
      const ran = runner.ran.length;
      await operator.request('exec.approval.resolve', { id: asked.id, decision: 'allow-once', reviewer: ALICE });
      await assert.rejects(waiting, (e: { wire?: { code?: string; message?: string } }) => e.wire?.code === 'SYSTEM_RUN_DENIED' && /the script x\.sh is not reached in the sandbox as the node read it/.test(e.wire.message ?? ''));
      assert.equal(runner.ran.length, ran, 'nothing ran');
    } finally {
      process.chdir(was);
    }
  });

  it('runs a script reached through a link inside what the sandbox is granted (./current/x.sh, current a link to releases/v2) as approved, pinned', async () => {
    mkdirSync(join(work, 'releases/v2'), { recursive: true });
    writeFileSync(join(work, 'releases/v2/x.sh'), '#!/bin/sh\necho release two\n', { mode: 0o755 });
    symlinkSync('releases/v2', join(work, 'current'));
    await assert.rejects(run(['./current/x.sh'], 100), refusedWith('APPROVAL_PENDING'));
    const [asked] = pending(['./current/x.sh']);
    assert.equal((asked!.action.mutableFileOperand as { path: string }).path, join(work, 'releases/v2/x.sh'));
    await operator.request('exec.approval.resolve', { id: asked!.id, decision: 'allow-once', reviewer: ALICE });
    runner.beforeNext = () => writeFileSync(join(work, 'releases/v2/x.sh'), '#!/bin/sh\necho rewritten\n');
    assert.equal((await run(['./current/x.sh'])).payload.stdout, 'release two\n');
  });

  it('refuses a run whose script the node cannot bind (missing), with the node\'s reason and no approval asked', async () => {
    await assert.rejects(run(['./missing.sh']), (e: { wire?: { details?: { code?: string; reason?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED' && /missing\.sh cannot be found/.test(e.wire.details.reason ?? ''));
    assert.deepEqual(pending(['./missing.sh']), []);
  });

  it('asks for a command with no script file without preparing it first (no extra round trip)', async () => {
    const before = requests.length;
    await assert.rejects(run(['printf', 'x'], 100), refusedWith('APPROVAL_PENDING'));
    assert.deepEqual(requests.slice(before), []);
    const [asked] = pending(['printf', 'x']);
    assert.equal(asked!.action.mutableFileOperand, undefined);
    await gw.invoker.resolveApprovalWhenFree(asked!.id, 'allow-once', 'alice');
    await run(['printf', 'x']);
    assert.deepEqual(requests.slice(before), ['system.run']);
  });

  describe('allowed always', () => {
    /** The ids of the approvals asked for ./x.sh so far. */
    const askedFor = () => gw.approvals.list().filter((a) => JSON.stringify(a.action.argv) === JSON.stringify(['./x.sh'])).map((a) => a.id);

    it('runs ./x.sh again with no approval asked while it holds the content allowed, the node binding it each time (its grant bound to that sha256)', async () => {
      script('echo always');
      await assert.rejects(run(['./x.sh'], 100), refusedWith('APPROVAL_PENDING'));
      const [asked] = pending(['./x.sh']);
      const resolved = (await operator.request('exec.approval.resolve', { id: asked!.id, decision: 'allow-always', reviewer: ALICE })) as { decision: string };
      assert.equal(resolved.decision, 'allow-always');
      assert.equal((await run(['./x.sh'])).payload.stdout, 'always\n');
      const approvals = askedFor().length;
      const before = requests.length;
      assert.equal((await run(['./x.sh'])).payload.stdout, 'always\n');
      assert.deepEqual(requests.slice(before), ['system.run.prepare', 'system.run'], 'prepared, then run, unasked');
      assert.equal(askedFor().length, approvals, 'no approval asked');
      assert.deepEqual(runner.ran.at(-1), ['./x.sh']);
    });

    it('asks anew once x.sh holds anything else, the grant answering nothing for it, and runs it unasked again once its content is back (regression: allow-always was refused for any script)', async () => {
      script('echo rewritten');
      const ran = runner.ran.length;
      await assert.rejects(run(['./x.sh'], 200), refusedWith('APPROVAL_PENDING'));
      assert.equal(runner.ran.length, ran, 'nothing ran');
      const [again] = pending(['./x.sh']);
      assert.equal((again!.action.mutableFileOperand as { sha256: string }).sha256, sha256('#!/bin/sh\necho rewritten\n'));
      await gw.invoker.resolveApprovalWhenFree(again!.id, 'deny', 'alice');
      script('echo always');
      const approvals = askedFor().length;
      assert.equal((await run(['./x.sh'])).payload.stdout, 'always\n');
      assert.equal(askedFor().length, approvals, 'no approval asked');
    });

    it('makes no prepare round trip for a run of true, asked or allowed always', async () => {
      const before = requests.length;
      await assert.rejects(run(['true'], 100), refusedWith('APPROVAL_PENDING'));
      const [asked] = pending(['true']);
      await gw.invoker.resolveApprovalWhenFree(asked!.id, 'allow-always', 'alice');
      await run(['true']);
      await run(['true']);
      assert.deepEqual(requests.slice(before), ['system.run', 'system.run']);
    });
  });
});
