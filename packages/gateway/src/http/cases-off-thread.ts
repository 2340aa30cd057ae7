// Reading a cases file sent to the API (YAML) on a worker thread: the YAML
// parser takes seconds over a large text and over a minute over a megabyte of
// anchors, and on the gateway's thread that would stall every connection it
// serves (approvals, nodes, the kill switch) for as long.
import { Worker } from 'node:worker_threads';
import { PolicyError, type PolicyCases, type PolicyErrorCode } from '@corral/policy';
import type { PolicyFile } from './policy-control.ts';

const WORKER_URL = new URL('./cases-worker.ts', import.meta.url);
/** Texts read at once; more wait their turn. */
const MAX_RUNNING = 2;
/** Texts that may wait for a turn; one more is refused (POLICY_ENGINE_BUSY). */
const MAX_WAITING = 8;
/** A cases file people write reads in well under a second; one that takes this long is refused, not waited on. */
const TIMEOUT_MS = 10_000;
const HEAP_MB = 256;

let running = 0;
const waiting: Array<() => void> = [];

/**
 * `parseCases(text)` on a worker thread, an entities file the cases name read
 * from `files` (the candidate's). Rejects with POLICY_CASES_INVALID (the
 * text does not read as cases, nests more than MAX_CANDIDATE_NESTING deep, or
 * takes more than 10 s to read), POLICY_ENGINE_BUSY (8 wait already) or
 * POLICY_ENGINE_FAILED (the worker failed or ran out of memory).
 */
export async function parseCasesOffThread(text: string, files: readonly PolicyFile[]): Promise<PolicyCases> {
  if (running < MAX_RUNNING) {
    running++;
  } else {
    if (waiting.length >= MAX_WAITING) throw new PolicyError('POLICY_ENGINE_BUSY', `${MAX_WAITING} cases files wait to be read already; try again shortly`);
    // The read that ends hands its turn over, `running` unchanged.
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  try {
    return await inWorker(text, files);
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function inWorker(text: string, files: readonly PolicyFile[]): Promise<PolicyCases> {
  const worker = new Worker(WORKER_URL, { workerData: { text, files: files.map((f) => ({ name: f.name, text: f.text })) }, resourceLimits: { maxOldGenerationSizeMb: HEAP_MB }, stdout: true, stderr: true });
  return new Promise((resolve, reject) => {
    // The first outcome stands; the turn ends only when the worker is gone, since until then it holds its memory.
    let outcome: { cases: PolicyCases } | { error: PolicyError } | undefined;
    const settle = (o: { cases: PolicyCases } | { error: PolicyError }) => {
      outcome ??= o;
      void worker.terminate();
    };
    const timer = setTimeout(() => settle({ error: new PolicyError('POLICY_CASES_INVALID', `reading the cases took more than ${TIMEOUT_MS / 1000} s; shorten or simplify them`) }), TIMEOUT_MS);
    worker.once('message', (answer: { cases?: PolicyCases; error?: { code: PolicyErrorCode; message: string } }) => {
      settle(answer.error ? { error: new PolicyError(answer.error.code, answer.error.message) } : { cases: answer.cases! });
    });
    worker.once('error', () => settle({ error: new PolicyError('POLICY_ENGINE_FAILED', 'the cases could not be read: their reader failed or ran out of memory') }));
    worker.once('exit', () => {
      clearTimeout(timer);
      const o = outcome ?? { error: new PolicyError('POLICY_ENGINE_FAILED', 'the cases could not be read: their reader stopped') };
      if ('error' in o) reject(o.error);
      else resolve(o.cases);
    });
  });
}
