// A gateway asked for no traces never loads the OpenTelemetry SDK: started,
// running a governed command and closed in a process of its own, its code
// resolves no @opentelemetry module, and nothing resolves the SDK's; asked
// for traces, it does. (prom-client resolves @opentelemetry/api itself, for
// its exemplars, traces or not.)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { tempDir } from '../../../../scripts/testing/temp-dir.ts';
import { policyStateDirs } from '../../test/policy-state.ts';

const run = promisify(execFile);
const gatewayModule = new URL('../index.ts', import.meta.url).href;
const nodePeer = new URL('../../test/node-peer.ts', import.meta.url).href;
const stateDir = policyStateDirs('tracing-off', '@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");\n');

/** The @opentelemetry packages resolved, each as `NAME from gateway` (the gateway's code) or `NAME from elsewhere`, in a process of its own where a gateway started with `tracing` (an object literal) runs one governed command. */
async function openTelemetryLoaded(tracing: string): Promise<string[]> {
  const state = stateDir();
  const script = `
    import { registerHooks } from 'node:module';
    import { randomBytes, randomUUID } from 'node:crypto';
    const loaded = new Set();
    registerHooks({ resolve(specifier, context, next) { if (specifier.startsWith('@opentelemetry/')) loaded.add(specifier.split('/').slice(0, 2).join('/') + (context.parentURL?.includes('/packages/gateway/src/') ? ' from gateway' : ' from elsewhere')); return next(specifier, context); } });
    const { Gateway, GatewayClient } = await import(${JSON.stringify(gatewayModule)});
    const { pairedNodePeer } = await import(${JSON.stringify(nodePeer)});
    const token = randomBytes(24).toString('base64url');
    const gw = await Gateway.start({ stateDir: ${JSON.stringify(state)}, token, port: 0, ...${tracing} });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'] });
    await operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['echo', 'hi'] }, timeoutMs: 5000, idempotencyKey: randomUUID() });
    await operator.close();
    await node.close();
    await gw.close();
    process.stdout.write(JSON.stringify([...loaded].sort()));
  `;
  // A file, not --eval: the audit log's writer thread takes the process's options.
  const file = join(tempDir('corral-tracing-off-'), 'gateway.mjs');
  writeFileSync(file, script);
  const { stdout } = await run(process.execPath, [file], { timeout: 60_000 });
  return JSON.parse(stdout) as string[];
}

describe('a gateway asked for no traces', () => {
  it('resolves no @opentelemetry module from its code, and no part of the SDK at all, started, running a governed command and closed', async () => {
    assert.deepEqual(await openTelemetryLoaded('{}'), ['@opentelemetry/api from elsewhere']);
  });

  it('(and one asked for traces does: the check sees them)', async () => {
    const loaded = await openTelemetryLoaded(`{ tracing: { endpoint: 'http://127.0.0.1:9/v1/traces', headers: {}, serviceName: 'corral-test', batchDelayMs: 5000 } }`);
    for (const name of ['@opentelemetry/api', '@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-http']) assert.ok(loaded.includes(`${name} from gateway`), loaded.join(', '));
  });
});
