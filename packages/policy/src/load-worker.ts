// Checks one policy set on a thread of its own: see load-thread.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { runCases } from './cases.ts';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies } from './load.ts';
import { corralSchema, parseSchema } from './schema.ts';
import type { OffThreadJob } from './load-thread.ts';

const job = workerData as OffThreadJob & { schemaText?: string };
try {
  const schema = job.schemaText === undefined ? corralSchema() : parseSchema(job.schemaText);
  const set = loadPolicies(job.sources, schema);
  if (job.want === 'set') {
    parentPort!.postMessage({ set });
  } else {
    const point = new DecisionPoint({ schema });
    point.load(set);
    if (job.entities !== undefined) point.setEntities(job.entities);
    parentPort!.postMessage({ results: job.want === 'cases' ? runCases(point, job.cases ?? []) : [] });
  }
} catch (error) {
  parentPort!.postMessage({
    error: error instanceof PolicyError ? { code: error.code, message: error.message, issues: error.issues } : { code: 'POLICY_ENGINE_FAILED', message: `the policy set could not be checked: ${(error as Error)?.message ?? String(error)}`, issues: [] },
  });
}
