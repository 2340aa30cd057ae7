// Reads one cases text on a thread of its own: see cases-off-thread.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { parseCases, PolicyError } from '@corral/policy';
import { MAX_CANDIDATE_NESTING, nestedDeeperThan, type PolicyFile } from './policy-control.ts';

const job = workerData as { text: string; files: PolicyFile[] };

/** A file the cases name (their entities), from the candidate's own files. */
function caseFile(file: string): unknown {
  const found = job.files.find((f) => f.name === file);
  if (!found) throw new PolicyError('POLICY_CASES_INVALID', `the cases name ${file.slice(0, 100)}, which is not in the set`);
  try {
    return JSON.parse(found.text) as unknown;
  } catch (error) {
    throw new PolicyError('POLICY_CASES_INVALID', `${file.slice(0, 100)} is not JSON`, { cause: error });
  }
}

try {
  const cases = parseCases(job.text, caseFile);
  // Copied back, and on to the worker that runs them, as they are: data nested thousands deep could not be.
  if (nestedDeeperThan(cases, MAX_CANDIDATE_NESTING)) throw new PolicyError('POLICY_CASES_INVALID', `the cases or their entities are nested more than ${MAX_CANDIDATE_NESTING} deep`);
  parentPort!.postMessage({ cases });
} catch (error) {
  parentPort!.postMessage({ error: error instanceof PolicyError ? { code: error.code, message: error.message } : { code: 'POLICY_ENGINE_FAILED', message: 'the cases could not be read' } });
}
