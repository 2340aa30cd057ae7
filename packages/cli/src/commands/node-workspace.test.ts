// corral node run, by hand beside a corral gateway: its sandboxes may use a
// process workspace of the state directory (STATE/processes), as corral up's
// node does, and see nothing else of it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GatewayClient } from '@corral/gateway';
import { corral, killStarted, startCorral, tempStateDir } from '../../test/corral.ts';

const gatewayState = tempStateDir();
const nodeState = realpathSync(tempStateDir());
after(() => {
  killStarted();
  rmSync(gatewayState, { recursive: true, force: true });
  rmSync(nodeState, { recursive: true, force: true });
});

describe('corral node run with a container policy in its state directory\'s process workspace', () => {
  it('runs a command there that writes the workspace, while the node\'s own keys stay hidden (regression: refused as inside the state directory)', async () => {
    const workspace = join(nodeState, 'processes', 'intake');
    mkdirSync(join(workspace, 'outbox'), { recursive: true });
    writeFileSync(join(workspace, 'policy.yaml'), 'runtime: [shell]\nworkingDirectory: .\nfilesystem: { readwrite: [./outbox], readonly: [.] }\n');
    mkdirSync(join(gatewayState, 'policies'));
    writeFileSync(join(gatewayState, 'policies', 'run.cedar'), ['touch', 'cat'].map((c) => `@id("${c}") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"${c}");\n`).join(''));
    const token = (await corral(['--state-dir', gatewayState, 'gateway', 'token'])).stdout.trim();
    const url = (await startCorral(['--state-dir', gatewayState, 'gateway', '--port', '0'], /listening on (ws:\/\/\S+)/)).match[1]!;
    const node = await startCorral(['--state-dir', nodeState, 'node', 'run', '--gateway', url, '--token', token, '--name', 'by-hand', '--agent-policy', `*=${join(workspace, 'policy.yaml')}`], /waiting for an operator to pair node ([0-9a-f]{64})/);
    const deviceId = node.match[1]!;
    assert.equal((await corral(['--state-dir', gatewayState, 'nodes', 'pair', deviceId])).code, 0);
    const operator = await GatewayClient.connect({ url, token, role: 'operator', scopes: ['operator.admin'] });
    try {
      for (const deadline = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 100))) {
        const { nodes } = (await operator.request('node.list', {})) as { nodes: Array<{ nodeId: string; connected: boolean }> };
        if (nodes.some((n) => n.nodeId === deviceId && n.connected)) break;
        assert.ok(Date.now() < deadline, 'the node did not connect after pairing');
      }
      const run = async (command: string[]) =>
        ((await operator.request('node.invoke', { nodeId: deviceId, command: 'system.run', params: { command }, timeoutMs: 15_000, idempotencyKey: randomUUID() }, { timeoutMs: 20_000 })) as { payload: { stdout: string; exitCode: number } }).payload;
      assert.equal((await run(['touch', 'outbox/result'])).exitCode, 0);
      assert.equal(readFileSync(join(workspace, 'outbox', 'result'), 'utf8'), '');
      const keys = readdirSync(nodeState).filter((name) => name !== 'processes');
      assert.ok(keys.length > 0, 'the node keeps its device key in its state directory');
      for (const key of keys) {
        const read = await run(['cat', join(nodeState, key)]);
        assert.notEqual(read.exitCode, 0, `the sandbox read ${key}`);
        assert.equal(read.stdout, '');
      }
    } finally {
      operator.close();
    }
  });
});
