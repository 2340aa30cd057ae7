// Runs one MXC request in its own process, so the escape comparison can cage
// it (harness-cgroup.ts) before it starts anything. Protocol: the parent writes
// one JSON `ContainerRequest` on stdin once the worker is in the cage; the
// worker prints one JSON `MxcOutcome` on stdout. The contained command's
// output is counted in full but kept only up to KEEP_BYTES, so an output flood
// cannot grow this process without bound (MXC itself sets no output limit).
import { spawn, type ContainerRequest } from '@microsoft/mxc-sdk/v1';
import type { Readable } from 'node:stream';

const KEEP_BYTES = 256 * 1024;

export interface MxcOutcome {
  exitCode: number | null;
  timedOut: boolean;
  warnings: string[];
  stdout: string;
  stderr: string;
  /** Every byte the command wrote, kept or not. */
  stdoutBytes: number;
  stderrBytes: number;
  durationMs: number;
  /** MXC refused the request or failed to start it. */
  error?: string;
}

async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ContainerRequest;
  const started = performance.now();
  const outcome: MxcOutcome = { exitCode: null, timedOut: false, warnings: [], stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0, durationMs: 0 };
  try {
    const proc = await spawn(request);
    try {
      const out = collect(proc.standardOutput);
      const err = collect(proc.standardError);
      const waited = await proc.wait();
      const [o, e] = await Promise.all([out, err]);
      Object.assign(outcome, { exitCode: waited.exitCode, timedOut: waited.timedOut, warnings: [...proc.warnings], stdout: o.text, stderr: e.text, stdoutBytes: o.bytes, stderrBytes: e.bytes });
    } finally {
      proc.dispose();
    }
  } catch (error) {
    outcome.error = `${(error as Error).name}: ${(error as Error).message}`;
  }
  outcome.durationMs = performance.now() - started;
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

function collect(stream: Readable | null): Promise<{ text: string; bytes: number }> {
  if (!stream) return Promise.resolve({ text: '', bytes: 0 });
  return new Promise((resolve) => {
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let bytes = 0;
    stream.on('data', (c: Buffer) => {
      bytes += c.length;
      if (keptBytes < KEEP_BYTES) {
        const part = c.subarray(0, KEEP_BYTES - keptBytes);
        kept.push(part);
        keptBytes += part.length;
      }
    });
    const done = () => resolve({ text: Buffer.concat(kept).toString('utf8'), bytes });
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}

await main();
