// Checking a large policy set is seconds of cedar-wasm work (a 1 MiB set:
// about 5 s here), which on a server's thread would stall every connection it
// serves. These check a set on a worker thread instead, one per set: a
// cedar-wasm trap (which leaves cedar-wasm failing every later call in its
// thread) or a set that runs the worker out of memory ends that worker only.
import { Worker } from 'node:worker_threads';
import type { CaseResult, PolicyCase } from './cases.ts';
import { DecisionPoint, setCheckedEntities } from './decision-point.ts';
import { formatPolicyIssue, PolicyError, type PolicyErrorCode, type PolicyIssue } from './errors.ts';
import { parseJsonText } from './lib/json.ts';
import type { PolicySet, PolicySource } from './load.ts';
import { corralSchema, type CorralSchema } from './schema.ts';

const WORKER_URL = new URL('./load-worker.ts', import.meta.url);
/** Sets checked at once; more wait their turn. */
const MAX_RUNNING = 2;
/** Checks that may wait for a turn; one more is refused (POLICY_ENGINE_BUSY), so a flood of them cannot hold memory or delay an urgent one without end. */
export const MAX_WAITING = 8;
/** Generous: a 1 MiB set takes about 5 s; one that takes this long is refused, not waited on. */
const TIMEOUT_MS = 60_000;
const HEAP_MB = 512;

/** Reading a cases text takes at most this long: one people write reads in well under a second, one that takes this long is refused, not waited on. */
const READ_CASES_MS = 10_000;
/** A cases text to read on the worker, with the set's own entities file and the files the cases may name for their entities. */
export interface CaseText {
  text: string;
  entities?: PolicySource;
  files: PolicySource[];
}

/** What a worker is asked: the loaded set (and whether an entities file is valid beside it); only whether the set and its entities are valid; the results of test cases, given or read from a text. */
export interface OffThreadJob {
  sources: PolicySource[];
  want: 'set' | 'valid' | 'cases' | 'case-text';
  /** With 'set': an entities file (JSON text) checked as setEntities checks it. */
  entitiesFile?: PolicySource;
  entities?: unknown;
  cases?: PolicyCase[];
  caseText?: CaseText;
}

/**
 * As `loadPolicies`, on a worker thread: parses, checks annotations and
 * validates `sources` against `schema`. An `urgent` check (a set about to
 * become active) goes before every waiting one and is never refused as busy.
 * Rejects with POLICY_SET_INVALID (every issue, with file and line),
 * POLICY_ENGINE_FAILED (the worker failed, ran out of memory or time) or
 * POLICY_ENGINE_BUSY (MAX_WAITING checks wait already).
 */
export async function loadPoliciesOffThread(sources: readonly PolicySource[], schema: CorralSchema = corralSchema(), options: { urgent?: boolean } = {}): Promise<PolicySet> {
  return (await offThread({ sources: [...sources], want: 'set' }, schema, options.urgent === true)) as PolicySet;
}

/**
 * A decision point holding `sources` and, when given, the entities file
 * `entities` (Cedar JSON text), as `load` and `setEntities` would make it —
 * with what is slow on a worker thread: parsing and validating the set
 * (seconds for a large one), and checking the entities as a whole (hierarchy
 * depth, loops and weight, and cedar-wasm's parse, which computes the
 * ancestor relation: 1–4 s for a large organisation). This thread then loads
 * the set, parses the text again (one stretch, some 10 ms a MiB) and reads
 * the entities from it in slices between which the event loop runs (about
 * 5 ms each; a 10,000-person org is read in 0.1–0.2 s), deciding as a point
 * given them with setEntities would. `urgent` as loadPoliciesOffThread.
 * Rejects, in this order: POLICY_SET_INVALID (every issue); then
 * POLICY_ENTITIES_INVALID naming the file, in the message and as an issue
 * (not JSON, or entities setEntities refuses); POLICY_ENGINE_FAILED,
 * POLICY_ENGINE_BUSY as loadPoliciesOffThread.
 */
export async function decisionPointOffThread(sources: readonly PolicySource[], options: { entities?: PolicySource; urgent?: boolean } = {}, schema: CorralSchema = corralSchema()): Promise<DecisionPoint> {
  const entities = options.entities === undefined ? undefined : { file: options.entities.file, text: options.entities.text };
  const set = (await offThread({ sources: [...sources], want: 'set', ...(entities !== undefined ? { entitiesFile: entities } : {}) }, schema, options.urgent === true)) as PolicySet;
  // This thread's share, each part in a turn of the event loop of its own: loading the set, parsing the entities' text, and reading them again (the worker took them from this text) in slices.
  await nextTurn();
  const point = new DecisionPoint({ schema });
  point.load(set);
  if (entities !== undefined) await readChecked(point, entities);
  return point;
}

/**
 * As `point.setEntities(entities)` for the entities file `entities` (Cedar
 * JSON text), with the checks of the whole on a worker thread and the
 * reading in slices, as decisionPointOffThread reads them: new entities for a
 * point holding a large set take the entities' time, and the set is not
 * loaded again. The point decides with its old entities until the new ones
 * are read whole, and keeps them when these are refused. `urgent` as
 * loadPoliciesOffThread. Rejects with POLICY_ENTITIES_INVALID naming the
 * file, POLICY_ENGINE_FAILED, POLICY_ENGINE_BUSY.
 */
export async function setEntitiesOffThread(point: DecisionPoint, entities: PolicySource, options: { urgent?: boolean } = {}): Promise<void> {
  const file = { file: entities.file, text: entities.text };
  await offThread({ sources: [], want: 'set', entitiesFile: file }, point.schema, options.urgent === true);
  await readChecked(point, file);
}

/** Gives `point` the entities of `entities`, checked whole on a worker already: parsed again, and read in slices, each part in a turn of the event loop of its own. */
async function readChecked(point: DecisionPoint, entities: PolicySource): Promise<void> {
  await nextTurn();
  const parsed = parseEntitiesFile(entities);
  await nextTurn();
  await setCheckedEntities(point, parsed);
}

/** Resolves once the event loop has run what waits (timers, I/O). */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * An entities file's JSON text, parsed. Throws POLICY_ENTITIES_INVALID naming
 * the file, and the line and column where JSON.parse says, when it is not
 * JSON; and where JSON.parse reads it otherwise than the text says
 * (parseJsonText): a key given twice in one object (JSON.parse keeps the
 * last silently, so `"parents"` given twice was the second list, whatever a
 * reviewer of the file read in the first), or a number that is not an
 * integer within ±(2^53 − 1) written in digits alone (JSON.parse read
 * `"port": 9007199254740993` as …992, which a Cedar tool reads as written).
 */
export function parseEntitiesFile(entities: PolicySource): unknown {
  const { file, text } = entities;
  return parseJsonText(text, (message, at) => {
    const issue = { file, ...at, message };
    return new PolicyError('POLICY_ENTITIES_INVALID', formatPolicyIssue(issue), { issues: [issue] });
  });
}

/** Checks `sources` and `entities` (Cedar JSON) as a decision point would load them, on a worker thread; rejects as loadPoliciesOffThread, or with POLICY_ENTITIES_INVALID. */
export async function validatePoliciesOffThread(sources: readonly PolicySource[], entities?: unknown, schema: CorralSchema = corralSchema()): Promise<void> {
  await offThread({ sources: [...sources], want: 'valid', ...(entities !== undefined ? { entities } : {}) }, schema);
}

/** Runs `cases` against a decision point holding `sources` and `entities`, on a worker thread; rejects as validatePoliciesOffThread. */
export async function runCasesOffThread(sources: readonly PolicySource[], entities: unknown, cases: readonly PolicyCase[], schema: CorralSchema = corralSchema()): Promise<CaseResult[]> {
  return (await offThread({ sources: [...sources], want: 'cases', entities, cases: [...cases] }, schema)) as CaseResult[];
}

/**
 * Reads the cases file `text` (YAML) and runs its cases against a decision
 * point holding `sources` and the set's entities, all on one worker thread:
 * the YAML parser takes seconds over a large text and over a minute over a
 * megabyte of anchors. `set.entities` is the set's entities file (JSON
 * text); `set.files` are the files the cases may name for their entities.
 * The cases' entities are added to the set's (a list), replacing any with
 * the same uid. Rejects, in this order: POLICY_SET_INVALID;
 * POLICY_ENTITIES_INVALID when the set's entities file is not JSON;
 * POLICY_CASES_INVALID when the text does not read as cases, names a file
 * not given or not JSON, nests more than MAX_CASES_NESTING deep, or takes
 * more than 10 s to read (POLICY_ENTITIES_INVALID first when the set's
 * entities are not valid either); POLICY_ENTITIES_INVALID when the entities
 * together are not valid; POLICY_ENGINE_FAILED, POLICY_ENGINE_BUSY as
 * validatePoliciesOffThread.
 */
export async function runCaseTextOffThread(sources: readonly PolicySource[], text: string, set: { entities?: PolicySource; files?: readonly PolicySource[] } = {}, schema: CorralSchema = corralSchema()): Promise<CaseResult[]> {
  const caseText: CaseText = { text, ...(set.entities !== undefined ? { entities: { file: set.entities.file, text: set.entities.text } } : {}), files: (set.files ?? []).map((f) => ({ file: f.file, text: f.text })) };
  return (await offThread({ sources: [...sources], want: 'case-text', caseText }, schema)) as CaseResult[];
}

let running = 0;
const waiting: Array<() => void> = [];

async function offThread(job: OffThreadJob, schema: CorralSchema, urgent = false): Promise<unknown> {
  if (running < MAX_RUNNING) {
    running++;
  } else {
    if (!urgent && waiting.length >= MAX_WAITING) throw new PolicyError('POLICY_ENGINE_BUSY', `${MAX_WAITING} policy sets wait to be checked already; try again shortly`);
    // The check that ends hands its turn over, `running` unchanged: freed and then taken, a newcomer could slip in between.
    await new Promise<void>((resolve) => (urgent ? waiting.unshift(resolve) : waiting.push(resolve)));
  }
  try {
    return await inWorker(job, schema);
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function inWorker(job: OffThreadJob, schema: CorralSchema): Promise<unknown> {
  let worker: Worker;
  try {
    // The job is copied (a structured clone) here, on this thread.
    worker = new Worker(WORKER_URL, {
      workerData: { ...job, ...(schema === corralSchema() ? {} : { schemaText: schema.text }) },
      resourceLimits: { maxOldGenerationSizeMb: HEAP_MB },
      stdout: true,
      stderr: true,
    });
  } catch (error) {
    return Promise.reject(notCopied(job, error));
  }
  return new Promise((resolve, reject) => {
    // The first outcome stands; the check's turn ends only when its worker is gone, since until then it holds its memory.
    let outcome: { value: unknown } | { error: PolicyError } | undefined;
    const settle = (o: { value: unknown } | { error: PolicyError }) => {
      outcome ??= o;
      void worker.terminate();
    };
    const failed = (message: string) => settle({ error: new PolicyError('POLICY_ENGINE_FAILED', message) });
    const timer = setTimeout(() => failed(`checking the policy set took more than ${TIMEOUT_MS / 1000} s; split it, or simplify its conditions`), TIMEOUT_MS);
    /** While a cases text is read: its own, shorter limit. */
    let reading: ReturnType<typeof setTimeout> | undefined;
    worker.on('message', (answer: { reading?: true; read?: true; set?: PolicySet; results?: CaseResult[]; error?: { code: PolicyErrorCode; message: string; issues: PolicyIssue[] } }) => {
      if (answer.reading) {
        reading = setTimeout(() => settle({ error: new PolicyError('POLICY_CASES_INVALID', `reading the cases took more than ${READ_CASES_MS / 1000} s; shorten or simplify them`) }), READ_CASES_MS);
      } else if (answer.read) {
        clearTimeout(reading);
      } else if (answer.error) {
        settle({ error: new PolicyError(answer.error.code, answer.error.message, { issues: [...answer.error.issues] }) });
      } else {
        settle({ value: answer.set ?? answer.results });
      }
    });
    worker.once('error', (error) => failed(`the policy set could not be checked: ${error.message}`));
    worker.once('exit', () => {
      clearTimeout(timer);
      clearTimeout(reading);
      const o = outcome ?? { error: new PolicyError('POLICY_ENGINE_FAILED', 'the policy set could not be checked: its checker stopped') };
      if ('error' in o) reject(o.error);
      else resolve(o.value);
    });
  });
}

/**
 * Why `job` could not be copied to a worker, as the coded error of the part
 * at fault: data nested some thousands deep overflows the stack of the copy
 * (a RangeError), and what is not data (a function, say) cannot be copied.
 * Either would be refused on the worker anyway: a decision point takes 32
 * levels inside an entity or a context, and only plain JSON.
 * POLICY_ENTITIES_INVALID, POLICY_CASES_INVALID naming the case, or
 * POLICY_ENGINE_FAILED when neither part alone fails to copy.
 */
function notCopied(job: OffThreadJob, error: unknown): PolicyError {
  const why = (failure: unknown) => (failure instanceof RangeError ? 'nested too deeply to be copied to the checker (Corral takes at most 32 levels inside an entity or a context)' : 'not plain JSON data');
  const entities = copyFailure(job.entities);
  if (entities !== undefined) return new PolicyError('POLICY_ENTITIES_INVALID', `the entities are ${why(entities)}`, { cause: error });
  for (const [index, c] of (job.cases ?? []).entries()) {
    const failure = copyFailure(c);
    if (failure !== undefined) return new PolicyError('POLICY_CASES_INVALID', `cases[${index}] is ${why(failure)}`, { cause: error });
  }
  return new PolicyError('POLICY_ENGINE_FAILED', `the policy set could not be checked: it could not be copied to the checker (${why(error)})`, { cause: error });
}

/** What copying `value` to another thread throws, or undefined when it copies. */
function copyFailure(value: unknown): unknown {
  try {
    structuredClone(value);
    return undefined;
  } catch (error) {
    return error ?? new Error('the copy failed');
  }
}
