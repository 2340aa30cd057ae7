// A collector that is down or hung never hurts a governed run: the runs go
// on, the spans it does not take are dropped with at most one line a minute
// in the gateway's log (a code and a count, never the endpoint or a header),
// and the gateway closes within a few seconds.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { GatewayClient } from '../client/client.ts';
import { Gateway, type GatewayLogLine } from '../gateway.ts';
import { pairedNodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { otlpReceiver } from '../../test/otlp-receiver.ts';
import { CLOSE_FLUSH_MS } from './otlp-tracing.ts';
import { freePort } from '../../../../scripts/testing/free-port.ts';

const token = randomBytes(24).toString('base64url');
const stateDir = policyStateDirs('collector-down', '@id("echo") permit (principal, action == Action::"system.run", resource == Command::"echo");\n');
const API_KEY = `key-${randomBytes(9).toString('base64url')}`;

/** A gateway sending traces to `endpoint`, a node answering every run, and ten governed runs through it; what its log said. */
async function runsAgainst(endpoint: string, log: GatewayLogLine[]): Promise<Gateway> {
  const gw = await Gateway.start({ stateDir: stateDir(), token, port: 0, log: (line) => log.push(line), tracing: { endpoint, headers: { authorization: `Bearer ${API_KEY}` }, serviceName: 'corral-test', batchDelayMs: 20 } });
  const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
  const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'] });
  try {
    for (let i = 0; i < 10; i++) {
      const result = (await operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['echo', String(i)] }, timeoutMs: 5_000, idempotencyKey: randomUUID() })) as { ok: boolean };
      assert.equal(result.ok, true);
      // Apart, so that each goes in a batch of its own.
      await new Promise((r) => setTimeout(r, 40));
    }
  } finally {
    await operator.close();
    await node.close();
  }
  return gw;
}

async function closesWithin(gw: Gateway, ms: number): Promise<void> {
  const started = performance.now();
  await gw.close();
  const took = performance.now() - started;
  assert.ok(took < ms, `closed in ${Math.round(took)} ms`);
}

describe('when the collector is down', () => {
  it('runs every governed command, says so once in the log with no endpoint or header, and closes within a few seconds', async () => {
    const port = await freePort();
    const log: GatewayLogLine[] = [];
    const gw = await runsAgainst(`http://user:${API_KEY}@127.0.0.1:${port}/v1/traces`, log);
    // The exporter tries again for its timeout before it gives a batch up.
    const deadline = Date.now() + 15_000;
    while (!log.some((l) => l.event === 'traces-export-failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await closesWithin(gw, CLOSE_FLUSH_MS + 1_000);
    const warnings = log.filter((l) => l.event === 'traces-export-failed');
    assert.equal(warnings.length, 1, 'one line, however many batches failed');
    const said = JSON.stringify(warnings);
    assert.equal(said.includes(API_KEY), false);
    assert.equal(said.includes(String(port)), false);
    assert.deepEqual({ ...warnings[0], dropped: undefined }, { event: 'traces-export-failed', code: 'ECONNREFUSED', dropped: undefined });
    assert.ok((warnings[0] as { dropped: number }).dropped > 0);
  });
});

describe('when the collector takes requests and never answers', () => {
  it('runs every governed command and closes within a few seconds all the same', async () => {
    const hung = await otlpReceiver(false);
    try {
      const gw = await runsAgainst(hung.endpoint, []);
      await closesWithin(gw, CLOSE_FLUSH_MS + 1_000);
    } finally {
      await hung.close();
    }
  });
});
