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
  const { token } = JSON.parse(process.argv[3]!) as { token: string };
  let url = '';
  const devices: DeviceIdentity[] = Array.from({ length: NODES }, () => createDeviceIdentity());
  /** Connects every device in `list`, 50 at a time: the clients of those admitted, with their devices. */
  const connectAll = async (list: DeviceIdentity[] = devices): Promise<Array<{ device: DeviceIdentity; client: GatewayClient }>> => {
    const connected: Array<{ device: DeviceIdentity; client: GatewayClient }> = [];
    for (let i = 0; i < list.length; i += 50) {
      const slice = list.slice(i, i + 50);
      const batch = await Promise.allSettled(slice.map((device) => GatewayClient.connect({ url, token, role: 'node', device, commands: ['system.which'], client: { displayName: `n${device.deviceId.slice(0, 6)}` } })));
      batch.forEach((r, k) => r.status === 'fulfilled' && connected.push({ device: slice[k]!, client: r.value }));
    }
    return connected;
  };
  const admitted = new Set<DeviceIdentity>();
  // Resolves once the message is handed over: exiting before that can lose it (the latencies make 'done' large).
  const send = (m: Message) => new Promise<void>((resolve) => process.send!(m, undefined, {}, () => resolve()));
  process.on('message', async (m: Message) => {
    url = m.url as string;
    if (m.type === 'request-pairing') {
      // Those not paired yet are refused (waiting, or told to retry while 256 already wait); the paired ones connect, and are let go.
      const paired = await connectAll(devices.filter((d) => !admitted.has(d)));
      for (const { device } of paired) admitted.add(device);
      await Promise.all(paired.map(({ client }) => client.close()));
      void send({ type: 'pending', admitted: admitted.size });
    } else if (m.type === 'connect') {
      const t0 = performance.now();
      const nodes = (await connectAll()).map(({ client }) => client);
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
} else if (process.argv[2] === 'pairer') {
  // ---- the child that pairs the nodes, in rounds, on a gateway of its own over the same state ----
  // (In the measured gateway's process, thousands of refused handshakes would leave its RSS grown before it is measured.)
  const { state, token } = JSON.parse(process.argv[3]!) as { state: string; token: string };
  const gw = await Gateway.start({ stateDir: state, token, port: 0, audit: false });
  process.on('message', async (m: Message) => {
    if (m.type === 'pair') {
      for (const node of gw.identity.nodes.list()) if (node.status === 'pending') gw.identity.nodes.pair(node.deviceId, 'bench');
      process.send!({ type: 'paired' });
    } else if (m.type === 'close') {
      await gw.close();
      process.send!({ type: 'closed' }, undefined, {}, () => process.exit(0));
    }
  });
  process.send!({ type: 'listening', url: gw.url });
} else {
  // ---- the parent: the gateway ----
  const token = randomBytes(24).toString('base64url');
  const state = mkdtempSync(join(tmpdir(), 'corral-bench-nodes-'));
  let child: ChildProcess | undefined;
  let pairer: ChildProcess | undefined;
  let gw: Gateway | undefined;
  try {
    // A child that ends before it answers fails the bench instead of leaving it waiting.
    const next = (from: ChildProcess, type: string) => new Promise<Message>((resolve, reject) => {
      const on = (m: Message) => {
        if (m.type !== type) return;
        from.off('message', on);
        from.off('exit', ended);
        resolve(m);
      };
      const ended = (code: number | null, signal: string | null) => reject(new Error(`a child process ended (${signal ?? `exit ${code}`}) before '${type}'`));
      from.on('message', on);
      from.once('exit', ended);
    });
    const self = new URL(import.meta.url).pathname;
    const clients = (child = fork(self, ['clients', JSON.stringify({ token })], { stdio: 'inherit' }));
    const ready = next(clients, 'ready');
    pairer = fork(self, ['pairer', JSON.stringify({ state, token })], { stdio: 'inherit' });
    const pairerUrl = (await next(pairer, 'listening')).url as string;
    await ready;
    // At most 256 unpaired nodes wait at once: pairing goes in rounds until every node connects.
    for (;;) {
      const answered = next(clients, 'pending');
      clients.send({ type: 'request-pairing', url: pairerUrl });
      if (((await answered).admitted as number) === NODES) break;
      const paired = next(pairer, 'paired');
      pairer.send({ type: 'pair' });
      await paired;
    }
    const closed = next(pairer, 'closed');
    pairer.send({ type: 'close' });
    await closed;

    gw = await Gateway.start({ stateDir: state, token, port: 0, audit: false, maxInFlight: CONCURRENCY * 2 });
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const connectedP = next(clients, 'connected');
    clients.send({ type: 'connect', url: gw.url });
    const connected = await connectedP;
    global.gc?.();
    const rssConnected = process.memoryUsage().rss;
    const done = await next(clients, 'done');
    const latency = distribution(done.latencies as number[]);
    const perSecond = (done.invokes as number) / (done.seconds as number);
    const perNodeKiB = (rssConnected - rssBefore) / 1024 / (connected.count as number);
    report(
      'gateway-nodes',
      { nodes: connected.count, connect_seconds: connected.connectSeconds, rss_before_mib: rssBefore / 2 ** 20, rss_connected_mib: rssConnected / 2 ** 20, rss_per_node_kib: perNodeKiB, invokes_per_second: perSecond, concurrency: CONCURRENCY, invoke_ms: latency },
      [
        `${connected.count as number} nodes connected (handshake with device proof each) in ${(connected.connectSeconds as number).toFixed(1)} s`,
        `gateway RSS: ${(rssBefore / 2 ** 20).toFixed(0)} MiB with every node paired, ${(rssConnected / 2 ** 20).toFixed(0)} MiB with them connected: ${perNodeKiB.toFixed(1)} KiB per connected node`,
        `node.invoke across them: ${perSecond.toFixed(0)}/s sustained for ${(done.seconds as number).toFixed(0)} s with ${CONCURRENCY} in flight; p50 ${ms(latency.p50)} p99 ${ms(latency.p99)}`,
      ],
    );
  } finally {
    child?.kill();
    pairer?.kill();
    await gw?.close();
    rmSync(state, { recursive: true, force: true });
  }
}
