// Egress proxy throughput: a 64 MiB download from a loopback HTTP server,
// direct and through the proxy (a CONNECT tunnel, and a plain-HTTP forward),
// measured interleaved round by round. The server and the client each run in
// their own worker thread, the proxy on the main thread, as in Corral where
// the proxy lives in the Corral process and client and server are elsewhere.
// A second set runs curl, direct and through Corral's forwarder → unix socket → proxy
// (CONNECT and plain HTTP): the path a contained command takes.
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { distribution, report, sampleInterleaved } from '../../../bench/lib/stats.ts';
import { parseEgressRule, type EgressRule } from '../src/net/egress-rule.ts';
import { forwarderBinary } from '../src/linux/native.ts';
import { EgressProxy } from '../src/net/proxy.ts';

const BYTES = 64 * 1024 * 1024;
const ROUNDS = Number(process.env.CORRAL_BENCH_ROUNDS ?? 10);
const WARMUP = 2;
const NAME = 'bench.test.corral';

type Mode = 'direct' | 'connect' | 'http';
interface Job {
  mode: Mode;
  port: number;
  socketPath: string;
}

// ---- the server worker: one 1 MiB block written 64 times per request

function serve(): void {
  const block = Buffer.alloc(1024 * 1024, 0x61);
  const server = http.createServer((_req, res) => {
    const before = process.threadCpuUsage();
    res.once('finish', () => {
      const used = process.threadCpuUsage(before);
      parentPort?.postMessage({ cpuMs: (used.user + used.system) / 1000 });
    });
    res.writeHead(200, { 'Content-Length': BYTES, 'Content-Type': 'application/octet-stream' });
    let left = BYTES / block.length;
    const pump = () => {
      while (left > 0) {
        left--;
        if (!res.write(block)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1', () => parentPort?.postMessage((server.address() as net.AddressInfo).port));
}

// ---- the client worker: downloads on request, answers with the byte count

function consume(res: http.IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    res.on('data', (chunk: Buffer) => (n += chunk.length));
    res.on('end', () => resolve(n));
    res.on('error', reject);
  });
}

function get(options: http.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    // No agent: one connection per download (a given createConnection is used only without one).
    const req = http.request(options.createConnection ? options : { ...options, agent: false }, (res) => consume(res).then(resolve, reject));
    req.on('error', reject);
    req.end();
  });
}

function connectTunnel(socketPath: string, authority: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onData);
      socket.pause();
      if (!head.subarray(0, 12).toString().startsWith('HTTP/1.1 200')) return reject(new Error(head.toString()));
      if (end + 4 < head.length) socket.unshift(head.subarray(end + 4));
      socket.resume();
      resolve(socket);
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

async function download(job: Job): Promise<number> {
  if (job.mode === 'direct') return get({ host: '127.0.0.1', port: job.port, path: '/64m' });
  if (job.mode === 'http') return get({ socketPath: job.socketPath, path: `http://${NAME}:${job.port}/64m` });
  const socket = await connectTunnel(job.socketPath, `${NAME}:${job.port}`);
  return get({ createConnection: () => socket, path: '/64m', headers: { Host: NAME } });
}

function client(): void {
  parentPort?.on('message', (job: Job) => {
    const before = process.threadCpuUsage();
    download(job).then(
      (bytes) => {
        const used = process.threadCpuUsage(before);
        parentPort?.postMessage({ bytes, cpuMs: (used.user + used.system) / 1000 });
      },
      (err: Error) => parentPort?.postMessage({ error: err.message }),
    );
  });
}

// ---- the main thread: the proxy, and the measurements

function worker(role: 'server' | 'client'): Worker {
  const w = new Worker(new URL(import.meta.url), { workerData: { role } });
  w.unref();
  return w;
}

/** Asks the client worker for one download; resolves with the client thread's CPU milliseconds. */
function ask(w: Worker, job: Job): Promise<number> {
  w.postMessage(job);
  return once(w, 'message').then((args) => {
    const answer = args[0] as { bytes?: number; cpuMs?: number; error?: string };
    if (answer.error !== undefined) throw new Error(answer.error);
    if (answer.bytes !== BYTES) throw new Error(`downloaded ${answer.bytes} bytes, expected ${BYTES}`);
    return answer.cpuMs ?? 0;
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function main(): Promise<void> {
  const server = worker('server');
  const [port] = (await once(server, 'message')) as [number];
  const serverCpu: number[] = [];
  server.on('message', (m: { cpuMs: number }) => serverCpu.push(m.cpuMs));
  const downloader = worker('client');

  const proxy = new EgressProxy({ lookup: async () => [{ address: '127.0.0.1', family: 4 }] });
  const rules = ['bench.test.corral:*', '127.0.0.1/32:*'].map((t) => parseEgressRule(t) as EgressRule);
  const channel = await proxy.openChannel(rules, { maxRecords: 1000 });
  const job = (mode: Mode): Job => ({ mode, port, socketPath: channel.socketPath });

  // The main thread's CPU time during each download: what the proxy itself costs,
  // apart from waiting for a core that the server and client threads also want.
  const busy: Record<string, number[]> = { direct: [], connect: [], http: [] };
  const clientCpu: number[] = [];
  const timed = (mode: Mode) => async () => {
    const before = process.threadCpuUsage();
    clientCpu.push(await ask(downloader, job(mode)));
    const used = process.threadCpuUsage(before);
    busy[mode]?.push((used.user + used.system) / 1000);
  };
  const samples = await sampleInterleaved({ direct: timed('direct'), connect: timed('connect'), http: timed('http') }, ROUNDS, WARMUP);
  for (const mode of Object.keys(busy)) busy[mode] = (busy[mode] as number[]).slice(WARMUP);

  // curl, direct and through Corral's forwarder (TCP → the channel's unix socket), as inside the sandbox.
  const curl = promisify(execFile);
  const forwardPort = await freePort();
  const { spawn } = await import('node:child_process');
  // The forwarder relays for as long as its command runs: a sleep stands in for the contained command.
  const forwarder = spawn(forwarderBinary().path, ['-e', `${forwardPort}:${channel.socketPath}`, '--', 'sleep', '3600'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
  const curlArgs = ['-sS', '-o', '/dev/null', '--noproxy', ''];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  const viaCurl = (extra: string[], url: string) => () => curl('curl', [...curlArgs, ...extra, url], { env });
  let curlSamples: Record<string, number[]> | undefined;
  try {
    curlSamples = await sampleInterleaved(
      {
        'curl direct': viaCurl([], `http://127.0.0.1:${port}/64m`),
        'curl via corral-forward + CONNECT': viaCurl(['--proxy', `http://127.0.0.1:${forwardPort}`, '--proxytunnel'], `http://${NAME}:${port}/64m`),
        'curl via corral-forward + plain HTTP': viaCurl(['--proxy', `http://127.0.0.1:${forwardPort}`], `http://${NAME}:${port}/64m`),
      },
      Math.max(3, Math.floor(ROUNDS / 2)),
      1,
    );
  } catch (err) {
    process.stdout.write(`  (curl/forwarder pair skipped: ${(err as Error).message.split('\n')[0]})\n`);
  } finally {
    forwarder.kill();
  }

  await channel.close();
  await proxy.close();
  await server.terminate();
  await downloader.terminate();

  const mbps = (ms: number) => BYTES / 1e6 / (ms / 1000);
  const figures: Record<string, unknown> = { bytesPerRound: BYTES, rounds: ROUNDS, warmup: WARMUP };
  const lines: string[] = [];
  const describe = (all: Record<string, number[]>, base: string) => {
    const baseline = all[base] as number[];
    for (const [name, ms] of Object.entries(all)) {
      const throughput = distribution(ms.map(mbps));
      // Side by side: each round's ratio against the direct download of the same round.
      const ratio = distribution(ms.map((m, i) => (baseline[i] as number) / m));
      figures[name] = { ms: distribution(ms), mbPerSecond: throughput, ratioToDirect: ratio };
      lines.push(
        `${name.padEnd(36)} p50 ${throughput.p50.toFixed(0).padStart(5)} MB/s  (min ${throughput.min.toFixed(0)}, max ${throughput.max.toFixed(0)})` +
          (name === base ? '' : `  ratio to direct p50 ${(ratio.p50 * 100).toFixed(0)} % (min ${(ratio.min * 100).toFixed(0)} %)`),
      );
    }
  };
  describe(samples, 'direct');
  // CPU per 64 MiB of each thread, and the throughput ratio those costs allow on this
  // many cores when server, client and proxy all share them (each thread runs on one core).
  const p50 = (xs: number[]) => distribution(xs).p50;
  const serverMs = p50(serverCpu);
  const clientMs = p50(clientCpu);
  const cores = availableParallelism();
  const bound = (threads: number[]) => Math.max(...threads, threads.reduce((a, b) => a + b, 0) / cores);
  lines.push(`CPU per 64 MiB (p50): server thread ${serverMs.toFixed(0)} ms, client thread ${clientMs.toFixed(0)} ms`);
  figures.cpuMsPerRound = { server: distribution(serverCpu), client: distribution(clientCpu) };
  for (const mode of ['connect', 'http'] as const) {
    const proxyMs = p50(busy[mode] as number[]);
    const ceiling = bound([serverMs, clientMs]) / bound([serverMs, clientMs, proxyMs]);
    figures[`${mode} proxy cpu`] = { msPerRound: distribution(busy[mode] as number[]), mbPerCpuSecond: BYTES / 1e6 / (proxyMs / 1000), ratioCeilingOnTheseCores: ceiling };
    lines.push(
      `${mode.padEnd(7)} proxy thread ${proxyMs.toFixed(0)} ms per 64 MiB (${(BYTES / 1e6 / (proxyMs / 1000)).toFixed(0)} MB per CPU-second); ` +
        `with ${cores} cores shared by 3 threads the ratio cannot pass ${(ceiling * 100).toFixed(0)} %`,
    );
  }
  if (curlSamples) describe(curlSamples, 'curl direct');
  const met: Record<string, boolean> = {};
  for (const mode of ['connect', 'http'] as const) {
    const ratio = (figures[mode] as { ratioToDirect: { p50: number } }).ratioToDirect.p50;
    met[mode] = ratio >= 0.8;
    lines.push(`target proxy ≥ 80 % of direct, ${mode}: ${met[mode] ? 'met' : 'NOT met'} (${(ratio * 100).toFixed(0)} %)`);
  }
  figures.target = { ratio: 0.8, met };
  report('proxy', figures, lines);
}

if (isMainThread) await main();
else if ((workerData as { role: string }).role === 'server') serve();
else client();
