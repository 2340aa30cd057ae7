// 1,000 nodes connected to one gateway: handshake cost, gateway RSS per
// connected node, and node.invoke throughput across them with latency. The
// nodes and the operator run in a child process, so the gateway process holds
// only the gateway; each node answers its invokes at once (routing, not
// containment, is measured here).
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDeviceIdentity, type DeviceIdentity } from '@corral/identity';
import { distribution, ms, report } from '../../../bench/lib/stats.ts';
import { Gateway, GatewayClient } from '../src/index.ts';

const NODES = Number(process.env.BENCH_NODES ?? 1000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);

type Message = { type: string; [key: string]: unknown };

if (process.argv[2] === 'clients') {
  // ---- the child: nodes and one operator ----
  const { url, token } = JSON.parse(process.argv[3]!) as { url: string; token: string };
  const devices: DeviceIdentity[] = Array.from({ length: NODES }, () => createDeviceIdentity());
  const connectAll = async (): Promise<GatewayClient[]> => {
    const clients: GatewayClient[] = [];
    for (let i = 0; i < devices.length; i += 50) {
      const batch = await Promise.allSettled(devices.slice(i, i + 50).map((device) => GatewayClient.connect({ url, token, role: 'node', device, commands: ['system.which'], client: { displayName: `n${device.deviceId.slice(0, 6)}` } })));
      for (const r of batch) if (r.status === 'fulfilled') clients.push(r.value);
    }
    return clients;
  };
  // Resolves once the message is handed over: exiting before that can lose it (the latencies make 'done' large).
  const send = (m: Message) => new Promise<void>((resolve) => process.send!(m, undefined, {}, () => resolve()));
  process.on('message', async (m: Message) => {
    if (m.type === 'request-pairing') {
      await connectAll(); // all refused: pending
      void send({ type: 'pending' });
    } else if (m.type === 'connect') {
      const t0 = performance.now();
      const nodes = await connectAll();
      const connectSeconds = (performance.now() - t0) / 1000;
      for (const node of nodes) {
        node.on('node.invoke.request', (p) => {
          const req = p as { id: string; nodeId: string };
          void node.request('node.invoke.result', { id: req.id, nodeId: req.nodeId, ok: true, payloadJSON: '{"ok":true}' });
        });
      }
      void send({ type: 'connected', count: nodes.length, connectSeconds });
      const operator = await GatewayClient.connect({ url, token, role: 'operator', scopes: ['operator.write'] });
      const latencies: number[] = [];
      const deadline = performance.now() + SECONDS * 1000;
      let k = 0;
      const lane = async () => {
        while (performance.now() < deadline) {
          const device = devices[k++ % devices.length]!;
          const t = performance.now();
          await operator.request('node.invoke', { nodeId: device.deviceId, command: 'system.which', params: {}, idempotencyKey: randomUUID() });
          latencies.push(performance.now() - t);
        }
      };
      const started = performance.now();
      await Promise.all(Array.from({ length: CONCURRENCY }, lane));
      const elapsed = (performance.now() - started) / 1000;
      await send({ type: 'done', invokes: latencies.length, seconds: elapsed, latencies });
      await operator.close();
      await Promise.all(nodes.map((n) => n.close()));
      process.exit(0);
    }
  });
  void send({ type: 'ready' });
} else {
  // ---- the parent: the gateway ----
  const token = randomBytes(24).toString('base64url');
  const state = mkdtempSync(join(tmpdir(), 'corral-bench-nodes-'));
  const gw = await Gateway.start({ stateDir: state, token, port: 0, audit: false, maxInFlight: CONCURRENCY * 2 });
  let child: ChildProcess | undefined;
  try {
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const clients = (child = fork(new URL(import.meta.url).pathname, ['clients', JSON.stringify({ url: gw.url, token })], { stdio: 'inherit' }));
    // A child that ends before it answers fails the bench instead of leaving it waiting.
    const next = (type: string) => new Promise<Message>((resolve, reject) => {
      const on = (m: Message) => {
        if (m.type !== type) return;
        clients.off('message', on);
        clients.off('exit', ended);
        resolve(m);
      };
      const ended = (code: number | null, signal: string | null) => reject(new Error(`the nodes' process ended (${signal ?? `exit ${code}`}) before '${type}'`));
      clients.on('message', on);
      clients.once('exit', ended);
    });
    await next('ready');
    clients.send({ type: 'request-pairing' });
    await next('pending');
    for (const node of gw.identity.nodes.list()) if (node.status === 'pending') gw.identity.nodes.pair(node.deviceId, 'bench');
    const connectedP = next('connected');
    clients.send({ type: 'connect' });
    const connected = await connectedP;
    global.gc?.();
    const rssConnected = process.memoryUsage().rss;
    const done = await next('done');
    const latency = distribution(done.latencies as number[]);
    const perSecond = (done.invokes as number) / (done.seconds as number);
    const perNodeKiB = (rssConnected - rssBefore) / 1024 / (connected.count as number);
    report(
      'gateway-nodes',
      { nodes: connected.count, connect_seconds: connected.connectSeconds, rss_before_mib: rssBefore / 2 ** 20, rss_connected_mib: rssConnected / 2 ** 20, rss_per_node_kib: perNodeKiB, invokes_per_second: perSecond, concurrency: CONCURRENCY, invoke_ms: latency },
      [
        `${connected.count as number} nodes connected (handshake with device proof each) in ${(connected.connectSeconds as number).toFixed(1)} s`,
        `gateway RSS: ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, ${(rssConnected / 2 ** 20).toFixed(0)} MiB with the nodes: ${perNodeKiB.toFixed(1)} KiB per node`,
        `node.invoke across them: ${perSecond.toFixed(0)}/s sustained for ${(done.seconds as number).toFixed(0)} s with ${CONCURRENCY} in flight; p50 ${ms(latency.p50)} p99 ${ms(latency.p99)}`,
      ],
    );
  } finally {
    child?.kill();
    await gw.close();
    rmSync(state, { recursive: true, force: true });
  }
}
