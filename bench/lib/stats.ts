// Shared figures for every benchmark: percentiles over many runs, ratios
// measured side by side, and one JSON file per benchmark in bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

export interface Distribution {
  runs: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

/** Nearest-rank percentiles of `samples` (any unit; the caller names it). */
export function distribution(samples: readonly number[]): Distribution {
  if (samples.length === 0) throw new RangeError('distribution of no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
  return { runs: sorted.length, p50: at(0.5), p90: at(0.9), p99: at(0.99), mean, min: sorted[0] as number, max: sorted.at(-1) as number };
}

/** Times `fn` `runs` times after `warmup` unmeasured calls; milliseconds per call. */
export async function sample(fn: () => Promise<unknown>, runs: number, warmup = Math.min(20, runs)): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * A subject to time: a function, or one with a `settle` step awaited after
 * each timed call and left out of the timing (a pool refilling in the
 * background must not land on the next subject's clock).
 */
export type Subject = (() => Promise<unknown>) | { run: () => Promise<unknown>; settle: () => Promise<unknown> };

/**
 * Samples several subjects interleaved (A, B, C, A, B, C, …) so that a noisy
 * moment on the machine lands on all of them alike; milliseconds per call.
 */
export async function sampleInterleaved(subjects: Record<string, Subject>, runs: number, warmup = 10): Promise<Record<string, number[]>> {
  const names = Object.keys(subjects);
  const call = async (n: string): Promise<number> => {
    const subject = subjects[n]!;
    const t0 = performance.now();
    await (typeof subject === 'function' ? subject() : subject.run());
    const elapsed = performance.now() - t0;
    if (typeof subject !== 'function') await subject.settle();
    return elapsed;
  };
  for (let i = 0; i < warmup; i++) for (const n of names) await call(n);
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < runs; i++) {
    for (const n of names) out[n]!.push(await call(n));
  }
  return out;
}

/** The host facts printed beside every result, since figures mean little without them. */
export function hostFacts(): Record<string, unknown> {
  return { node: process.version, cpus: availableParallelism(), cpuModel: cpus()[0]?.model, loadavg: loadavg(), at: new Date().toISOString() };
}

/** Writes bench/results/NAME.json and prints a one-line-per-figure summary. */
export function report(name: string, figures: Record<string, unknown>, lines: string[]): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify({ name, host: hostFacts(), ...figures }, null, 2)}\n`);
  process.stdout.write(`\n## ${name}\n${lines.map((l) => `  ${l}`).join('\n')}\n  (written to bench/results/${name}.json)\n`);
}

/** Formats milliseconds for a human: µs below 1 ms. */
export function ms(value: number): string {
  return value < 1 ? `${(value * 1000).toFixed(0)} µs` : `${value.toFixed(2)} ms`;
}
