// The environment a command gets: only the variables its agent's container
// policy lets through (`environment.pass`), whatever the request sets; and
// the working directory: where it asks, only inside what that policy grants.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Gateway, GatewayClient } from '@corral/gateway';
import { DEFAULT_CONTAINER_POLICY, NodeHost, type NodeHostOptions } from './index.ts';
import { DEVICE_FILE } from './host.ts';
import { startPaired } from '../test/paired-host.ts';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';

const token = randomBytes(24).toString('base64url');

/**
 * A gateway whose policy permits `agent` the programs named, and a paired node
 * running that agent's commands under `policy` (a container policy) and any
 * further `options`: the agent's connection, the node, a `run` of a command as the agent and a `close` for all three.
 */
async function agentOnNode(agent: string, programs: string[], policy: Record<string, unknown>, nodeState: string, baseDir: string, options: Partial<NodeHostOptions> = {}) {
  const state = tempDir('corral-env-gw-');
  mkdirSync(join(state, 'policies'));
  writeFileSync(join(state, 'policies', 'run.cedar'), programs.map((p) => `permit (principal == Agent::"${agent}", action == Action::"system.run", resource == Command::"${p}");\n`).join(''));
  const gw = await Gateway.start({ stateDir: state, token, port: 0 });
  gw.identity.agents.create({ name: agent, process: 'ci', owner: 'owner@example.com', scopes: [] });
  const host = new NodeHost({ gateway: gw.url, token, stateDir: nodeState, name: `${agent}-node`, maxBackoffMs: 200, containerPolicies: { [agent]: { policy: { ...DEFAULT_CONTAINER_POLICY, ...policy }, baseDir } }, ...options });
  await startPaired(host, gw);
  const client = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'], agentToken: (await gw.identity.issueToken(agent)).token });
  const nodeId = host.device.deviceId;
  return {
    /** Has the node run system.run `params` (the command, and any env or cwd) for the agent, asked over its own connection. */
    run: (params: Record<string, unknown>) =>
      client.request('node.invoke', { nodeId, command: 'system.run', params: { ...params, agentId: agent }, idempotencyKey: randomUUID() }, { timeoutMs: 20_000 }) as Promise<{ payload: { exitCode: number; stdout: string; contained: { envDropped?: string[]; agent?: string } } }>,
    close: async () => {
      await client.close();
      await host.close();
      await gw.close();
    },
  };
}

describe("a command's environment", () => {
  it("keeps the variables the agent's container policy passes and drops the rest, saying which; runs in a requested cwd only inside its grants", async () => {
    const nodeState = tempDir('corral-env-node-');
    const outbox = tempDir('corral-env-outbox-');
    const { run, close } = await agentOnNode('builder', ['printenv', 'pwd'], { filesystem: { readwrite: [outbox] }, environment: { pass: ['GREETING'] } }, nodeState, nodeState);
    try {
      const result = await run({ command: ['printenv'], env: { GREETING: 'hello', OTHER_SETTING: 'on', SECRET_TOKEN: 'x' } });
      assert.match(result.payload.stdout, /^GREETING=hello$/m);
      assert.doesNotMatch(result.payload.stdout, /OTHER_SETTING|SECRET_TOKEN/);
      assert.deepEqual(result.payload.contained.envDropped, ['OTHER_SETTING', 'SECRET_TOKEN']);
      assert.equal(result.payload.contained.agent, 'builder');

      // The display variables come from the node's own environment, whatever the policy passes: a request's would point a granted display at another socket.
      const painter = await agentOnNode('painter', ['printenv'], { environment: { pass: ['GREETING', 'WAYLAND_DISPLAY', 'XDG_RUNTIME_DIR', 'DISPLAY', 'XAUTHORITY'] } }, tempDir('corral-env-node-'), nodeState);
      try {
        const asked = await painter.run({ command: ['printenv'], env: { GREETING: 'hi', WAYLAND_DISPLAY: '..', XDG_RUNTIME_DIR: '/tmp', DISPLAY: ':9', XAUTHORITY: '/etc/shadow' } });
        assert.match(asked.payload.stdout, /^GREETING=hi$/m);
        assert.doesNotMatch(asked.payload.stdout, /^(WAYLAND_DISPLAY=\.\.|XDG_RUNTIME_DIR=\/tmp|DISPLAY=:9|XAUTHORITY=\/etc\/shadow)$/m);
        assert.deepEqual(asked.payload.contained.envDropped, ['DISPLAY', 'WAYLAND_DISPLAY', 'XAUTHORITY', 'XDG_RUNTIME_DIR']);
      } finally {
        await painter.close();
      }

      const pwd = (cwd: string) => run({ command: ['pwd'], cwd });
      assert.equal((await pwd(outbox)).payload.stdout, `${outbox}\n`);
      for (const outside of ['/etc', nodeState, 'relative/dir']) {
        await assert.rejects(pwd(outside), (e: { wire?: { message?: string } }) => /SYSTEM_RUN_DENIED: cwd/.test(e.wire?.message ?? ''), outside);
      }
    } finally {
      await close();
    }
  });

  it("never shows a command the node's own state directory (its device key, its policy), even inside a folder its policy grants", async () => {
    const shared = tempDir('corral-env-shared-');
    const nodeState = join(shared, 'node');
    writeFileSync(join(shared, 'notes.txt'), 'visible\n');
    const { run, close } = await agentOnNode('reader', ['cat'], { filesystem: { readonly: [shared] } }, nodeState, shared);
    try {
      const cat = (path: string) => run({ command: ['cat', path] });
      assert.equal((await cat(join(shared, 'notes.txt'))).payload.stdout, 'visible\n');
      const key = await cat(join(nodeState, DEVICE_FILE));
      assert.notEqual(key.payload.exitCode, 0);
      assert.doesNotMatch(key.payload.stdout, /privateKey|PRIVATE/);
    } finally {
      await close();
    }
  });

  it("hides all of the state directory it is given to hide, not only its own, yet binds back the workspace a policy grants there", async () => {
    const home = tempDir('corral-env-home-');
    const state = join(home, '.corral');
    const workspace = join(state, 'processes', 'intake');
    mkdirSync(join(workspace, 'outbox'), { recursive: true });
    writeFileSync(join(workspace, 'task.txt'), 'task\n');
    writeFileSync(join(state, 'gateway-token'), 'GATEWAY TOKEN\n');
    writeFileSync(join(home, 'notes.txt'), 'visible\n');
    const policy = { filesystem: { readonly: [home, workspace], readwrite: [join(workspace, 'outbox')] } };
    const clerk = await agentOnNode('clerk', ['cat', 'touch'], policy, join(state, 'node'), home, { hiddenState: { dir: state, exposed: [join(state, 'processes')] } });
    try {
      const run = (command: string[]) => clerk.run({ command });
      assert.equal((await run(['cat', join(home, 'notes.txt')])).payload.stdout, 'visible\n');
      for (const secret of [join(state, 'gateway-token'), join(state, 'node', DEVICE_FILE)]) {
        const read = await run(['cat', secret]);
        assert.notEqual(read.payload.exitCode, 0, secret);
        assert.doesNotMatch(read.payload.stdout, /TOKEN|privateKey/);
      }
      assert.equal((await run(['cat', join(workspace, 'task.txt')])).payload.stdout, 'task\n');
      assert.equal((await run(['touch', join(workspace, 'outbox', 'done')])).payload.exitCode, 0);
      assert.ok(existsSync(join(workspace, 'outbox', 'done')));
    } finally {
      await clerk.close();
    }
  });
});

