// Checks one policy set on a thread of its own: see load-thread.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { casesEntities, MAX_CASES_NESTING, parseCases, runCases, type CaseResult, type PolicyCases } from './cases.ts';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies } from './load.ts';
import { corralSchema, parseSchema } from './schema.ts';
import { nestedDeeperThan } from './lib/json.ts';
import { parseEntitiesFile, type CaseText, type OffThreadJob } from './load-thread.ts';

const job = workerData as OffThreadJob & { schemaText?: string };

/** The cases `c.text` holds, run against `point` (holding the set) with the set's entities and theirs: see runCaseTextOffThread. */
function runCaseText(point: DecisionPoint, c: CaseText): CaseResult[] {
  const own = c.entities === undefined ? undefined : parseEntitiesFile(c.entities);
  if (own !== undefined && !Array.isArray(own)) {
    const file = c.entities!.file;
    throw new PolicyError('POLICY_ENTITIES_INVALID', `${file}: entities must be a JSON array`, { issues: [{ file, message: 'entities must be a JSON array' }] });
  }
  /** An entities file the cases name, from the set's files. */
  const named = (file: string): unknown => {
    const found = c.files.find((f) => f.file === file);
    if (!found) throw new PolicyError('POLICY_CASES_INVALID', `the cases name ${file.slice(0, 100)}, which is not in the set`);
    return casesEntities(found.text, file.slice(0, 100));
  };
  // The parent thread holds reading to its own limit, from here to `read`.
  parentPort!.postMessage({ reading: true });
  let cases: PolicyCases | undefined;
  let unreadable: unknown;
  try {
    cases = parseCases(c.text, named);
    if (nestedDeeperThan(cases, MAX_CASES_NESTING)) throw new PolicyError('POLICY_CASES_INVALID', `the cases or their entities are nested more than ${MAX_CASES_NESTING} deep`);
  } catch (error) {
    cases = undefined;
    unreadable = error;
  }
  parentPort!.postMessage({ read: true });
  if (!cases) {
    // The set's own entities are reported before cases that cannot be read.
    if (own !== undefined) point.setEntities(own);
    throw unreadable;
  }
  const merged = new Map<string, unknown>();
  for (const e of [...(own ?? []), ...cases.entities]) merged.set(entityKey(e), e);
  point.setEntities([...merged.values()]);
  return runCases(point, cases.cases);
}

/**
 * What tells entities apart: their uid, in either of Cedar's spellings
 * (`{type, id}` or `{"__entity": {type, id}}`), whatever it holds (the
 * decision point checks it).
 */
function entityKey(e: unknown): string {
  const raw = (e as { uid?: { __entity?: unknown } } | null)?.uid;
  const uid = (typeof raw?.__entity === 'object' && raw.__entity !== null ? raw.__entity : raw) as { type?: unknown; id?: unknown } | undefined;
  return `${String(uid?.type)}::${JSON.stringify(uid?.id)}`;
}
try {
  const schema = job.schemaText === undefined ? corralSchema() : parseSchema(job.schemaText);
  const set = loadPolicies(job.sources, schema);
  if (job.want === 'set') {
    // Checked whole here, so that the thread that asked need only read them again (decisionPointOffThread).
    if (job.entitiesFile !== undefined) new DecisionPoint({ schema }).setEntities(parseEntitiesFile(job.entitiesFile), { file: job.entitiesFile.file });
    parentPort!.postMessage({ set });
  } else {
    const point = new DecisionPoint({ schema });
    point.load(set);
    if (job.want === 'case-text') {
      parentPort!.postMessage({ results: runCaseText(point, job.caseText!) });
    } else {
      if (job.entities !== undefined) point.setEntities(job.entities);
      parentPort!.postMessage({ results: job.want === 'cases' ? runCases(point, job.cases ?? []) : [] });
    }
  }
} catch (error) {
  parentPort!.postMessage({
    error: error instanceof PolicyError ? { code: error.code, message: error.message, issues: error.issues } : { code: 'POLICY_ENGINE_FAILED', message: `the policy set could not be checked: ${(error as Error)?.message ?? String(error)}`, issues: [] },
  });
}
