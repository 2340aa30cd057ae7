// A Corral node serving another gateway (upstream OpenClaw's) asks its Corral
// control plane about each run (corral.run.authorize). When the control plane
// asks a human about a run of one script, the approval is of what the script
// held when the node asked: the node offers the file it read, the control
// plane binds the action's digest to it, and the node runs those bytes or
// nothing.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { governedNode } from '../test/governed-node.ts';

const token = randomBytes(24).toString('base64url');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('a script run a governed node asks its control plane about, which asks a human', () => {
  let gw: Awaited<ReturnType<typeof governedNode>>;
  let work: string;
  const script = (body: string) => writeFileSync(join(work, 'x.sh'), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  const stdoutOf = (answer: { payload?: { stdout?: string }; payloadJSON?: string | null }) => answer.payload?.stdout ?? (JSON.parse(answer.payloadJSON ?? '{}') as { stdout?: string }).stdout;
  before(async () => {
    work = realpathSync(tempDir('corral-governed-script-'));
    gw = await governedNode({
      token,
      localPolicy: { version: 1, defaults: { security: 'full', ask: 'off' } },
      cedar: '@id("asks") @approval("required") permit (principal == Agent::"invoice-bot", action == Action::"system.run", resource);\n',
      containerPolicies: { '*': { policy: { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readonly: [work] } }, baseDir: work } },
    });
  });
  after(async () => {
    await gw?.close();
  });

  it('is asked for with the file the node read and its sha256, and runs that content once approved', async () => {
    script('echo as asked');
    const answering = gw.invoke({ command: ['./x.sh'], cwd: work, agentId: 'main' });
    const id = await gw.asked();
    assert.deepEqual(gw.cp.approvals.get(id).action.mutableFileOperand, { argvIndex: 0, path: join(work, 'x.sh'), sha256: sha256('#!/bin/sh\necho as asked\n') });
    assert.deepEqual(gw.cp.approvals.get(id).action.scriptPreview, { bytes: 24, truncated: false, text: '#!/bin/sh\necho as asked\n' }, 'what the script does, for the approver to read');
    await gw.approve(id);
    const answer = await answering;
    assert.equal(answer.ok, true, JSON.stringify(answer.error));
    assert.equal(stdoutOf(answer), 'as asked\n');
  });

  it('never runs x.sh rewritten while its approval was awaited: the node refuses it and runs nothing (regression: the approval was of the argv alone, and the rewritten script ran)', async () => {
    script('echo as asked');
    const answering = gw.invoke({ command: ['./x.sh'], cwd: work, agentId: 'main' });
    const id = await gw.asked();
    script('echo rewritten');
    await gw.approve(id);
    const answer = await answering;
    assert.equal(answer.ok, false);
    assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
    assert.match(answer.error.message, /the script x\.sh changed since it was approved/);
    const [report] = (await gw.reports(2)).slice(1);
    assert.match(report?.outcome?.detail ?? '', /^NODE_RUN_DENIED: the script x\.sh changed since it was approved/);
  });

  it('is refused, no human asked, when the node cannot read the script it would run (missing)', async () => {
    const answer = await gw.invoke({ command: ['./missing.sh'], cwd: work, agentId: 'main' });
    assert.equal(answer.ok, false);
    assert.match(answer.error?.message ?? '', /cannot be bound to its approval: the node bound no file at word 0/);
    assert.deepEqual(gw.cp.approvals.list({ status: 'pending' }), []);
  });

  it('is refused, no human asked, when the sandbox would open another file by that word than the node read (a link through /proc/self/cwd: the node\'s folder on the host, the run\'s in the sandbox)', async () => {
    const nodeCwd = realpathSync(tempDir('corral-governed-node-cwd-'));
    writeFileSync(join(nodeCwd, 'payload.sh'), '#!/bin/sh\necho shown\n', { mode: 0o755 });
    writeFileSync(join(work, 'payload.sh'), '#!/bin/sh\necho never shown\n', { mode: 0o755 });
    symlinkSync('/proc/self/cwd/payload.sh', join(work, 'via-proc.sh'));
    const was = process.cwd();
    process.chdir(nodeCwd);
    try {
      const answer = await gw.invoke({ command: ['./via-proc.sh'], cwd: work, agentId: 'main' });
      assert.equal(answer.ok, false);
      assert.match(answer.error?.message ?? '', /cannot be bound to its approval: the node bound no file at word 0/);
      assert.deepEqual(gw.cp.approvals.list({ status: 'pending' }), []);
    } finally {
      process.chdir(was);
    }
  });

  it('asks for a run of no script file as before, unbound', async () => {
    const answering = gw.invoke({ command: ['printf', 'plain'], cwd: work, agentId: 'main' });
    const id = await gw.asked();
    assert.equal(gw.cp.approvals.get(id).action.mutableFileOperand, undefined);
    await gw.approve(id);
    assert.equal(stdoutOf(await answering), 'plain');
  });

  it('shows the approver the script of a plan its upstream gateway holds (prepared earlier), read again and matched to the plan\'s sha256; for a plan of content the file no longer holds, nothing is shown and nothing runs', async () => {
    script('echo planned');
    const plan = (sha: string) => ({ argv: ['./x.sh'], cwd: work, agentId: 'main', mutableFileOperand: { argvIndex: 0, path: join(work, 'x.sh'), sha256: sha } });
    const planned = gw.invoke({ command: ['./x.sh'], cwd: work, agentId: 'main', systemRunPlan: plan(sha256('#!/bin/sh\necho planned\n')) });
    const id = await gw.asked();
    assert.deepEqual(gw.cp.approvals.get(id).action.scriptPreview, { bytes: 23, truncated: false, text: '#!/bin/sh\necho planned\n' });
    await gw.approve(id);
    assert.equal(stdoutOf(await planned), 'planned\n');
    const stale = gw.invoke({ command: ['./x.sh'], cwd: work, agentId: 'main', systemRunPlan: plan(sha256('#!/bin/sh\necho what the plan was of\n')) });
    const staleId = await gw.asked();
    assert.equal(gw.cp.approvals.get(staleId).action.scriptPreview, undefined, 'no content shown that the plan is not of');
    await gw.approve(staleId);
    const answer = await stale;
    assert.equal(answer.ok, false);
    assert.match(answer.error?.message ?? '', /the script x\.sh changed since it was approved/);
  });

  it('never reads for the approver a file its upstream gateway\'s plan names outside the agent\'s sandbox, even with its right sha256: nothing is shown and nothing runs (regression: the node read any file it could, and a plan naming ~/.ssh/id_rsa with its hash showed the key to approvers)', async () => {
    script('echo planned');
    const secret = join(realpathSync(tempDir('corral-governed-secret-')), 'id_rsa');
    writeFileSync(secret, 'PRIVATE KEY\n');
    const invoked = gw.invoke({ command: ['./x.sh'], cwd: work, agentId: 'main', systemRunPlan: { argv: ['./x.sh'], cwd: work, agentId: 'main', mutableFileOperand: { argvIndex: 0, path: secret, sha256: sha256('PRIVATE KEY\n') } } });
    const id = await gw.asked();
    assert.equal(gw.cp.approvals.get(id).action.scriptPreview, undefined, 'no content of a file the run would not run');
    await gw.approve(id);
    const answer = await invoked;
    assert.equal(answer.ok, false);
    assert.match(answer.error?.message ?? '', /x\.sh is not the file that was approved/);
  });
});
