import { dirname, resolve } from 'node:path';
import { LineCounter, type YAMLError } from 'yaml';
import type { DecisionKind, DecisionPoint } from './decision-point.ts';
import { formatPolicyIssue, PolicyError } from './errors.ts';
import { readRegularFile, utf8Text } from './lib/files.ts';
import { misreadJsonProblem, nestedDeeperThan, parseJsonText } from './lib/json.ts';
import { repeatedKey } from './lib/yaml-keys.ts';
import { yamlPastLimit } from './lib/yaml-limits.ts';
import { misreadYamlNumber } from './lib/yaml-numbers.ts';
import { readYamlDocument } from './lib/yaml-read.ts';
import { isPlainObject } from './schema.ts';

/** One example request and the decision the policy set must reach for it. */
export interface PolicyCase {
  name: string;
  request: { principal: unknown; action: unknown; resource: unknown; context?: unknown };
  expect: DecisionKind;
  /** For `ask`: the quorum expected, when given. */
  quorum?: number;
  /** The deciding policy ids expected, when given (order does not matter). */
  policies?: string[];
}

export interface PolicyCases {
  /** Entities in Cedar JSON form (inline, or loaded from the file the cases name). */
  entities: unknown[];
  cases: PolicyCase[];
}

export interface CaseResult {
  name: string;
  passed: boolean;
  expected: { decision: DecisionKind; quorum?: number; policies?: string[] };
  actual: { decision: DecisionKind | 'error'; quorum?: number; policies: readonly string[]; reason: string; code?: string };
}

const DECISIONS = new Set(['allow', 'deny', 'ask']);
/** A cases file, or the entities file it names, is read up to this size. */
const MAX_CASES_BYTES = 16 * 1024 * 1024;
/**
 * Cases written as YAML are read up to this size (about 25,000 cases): the
 * YAML library reads about half a megabyte a second on a small host, so a
 * YAML file of 16 MiB took half a minute. JSON is read at once up to
 * MAX_CASES_BYTES.
 */
const MAX_YAML_CASES_BYTES = 4 * 1024 * 1024;
/** Deepest nesting of cases (with the entities they name): a decision point takes 32 levels inside one entity or context (lib/json.ts), a case holds it a few levels down. */
export const MAX_CASES_NESTING = 64;

/**
 * Parses a cases file (YAML or JSON):
 * `{ entities?: FILE | [...], cases: [{ name, principal, action, resource, context?, expect, quorum?, policies? }] }`.
 * A relative entities path is read beside the cases file. Throws POLICY_CASES_INVALID (also for text
 * that is not UTF-8, and an entities file that gives one key twice in an object), POLICY_UNREADABLE
 * (also for a FIFO, a device, or a file over 16 MiB; YAML is read up to 4 MiB).
 */
export function loadCases(path: string): PolicyCases {
  const text = textOf(readRegularFile(path, path, MAX_CASES_BYTES), path);
  return parseCases(text, (file) => {
    const entities = textOf(readRegularFile(resolve(dirname(path), file), file, MAX_CASES_BYTES), file);
    return casesEntities(entities, file);
  });
}

/**
 * The JSON text `text` of an entities file cases name (`file` in messages),
 * parsed. Throws POLICY_CASES_INVALID when it is not JSON, or where JSON.parse
 * reads it otherwise than the text says (parseJsonText): the cases would run
 * on data other than the file shows.
 */
export function casesEntities(text: string, file: string): unknown {
  return parseJsonText(text, (message, at) => new PolicyError('POLICY_CASES_INVALID', formatPolicyIssue({ file, ...at, message })));
}

function textOf(bytes: Buffer, file: string): string {
  const decoded = utf8Text(bytes);
  if ('text' in decoded) return decoded.text;
  throw new PolicyError('POLICY_CASES_INVALID', `${file}: byte ${decoded.badByte} is not UTF-8; save the file as UTF-8 text`);
}

/** Parses cases text (JSON, or YAML up to 4 MiB); `readEntities` loads an entities file named in it. Throws POLICY_CASES_INVALID. */
export function parseCases(text: string, readEntities: (file: string) => unknown = () => {
  throw new PolicyError('POLICY_CASES_INVALID', 'this cases text cannot name an entities file');
}): PolicyCases {
  const doc = casesJson(text) ?? casesYaml(text);
  if (!isPlainObject(doc)) throw new PolicyError('POLICY_CASES_INVALID', 'the cases file must be a mapping with a `cases` list');
  let entities: unknown = doc.entities ?? [];
  if (typeof entities === 'string') entities = readEntities(entities);
  if (!Array.isArray(entities)) throw new PolicyError('POLICY_CASES_INVALID', '`entities` must be a list or a file name');
  if (!Array.isArray(doc.cases) || doc.cases.length === 0) throw new PolicyError('POLICY_CASES_INVALID', '`cases` must be a non-empty list');
  const cases = doc.cases.map((raw, i): PolicyCase => {
    const where = `cases[${i}]`;
    if (!isPlainObject(raw)) throw new PolicyError('POLICY_CASES_INVALID', `${where} must be a mapping`);
    const name = typeof raw.name === 'string' && raw.name !== '' ? raw.name : where;
    if (typeof raw.expect !== 'string' || !DECISIONS.has(raw.expect)) {
      throw new PolicyError('POLICY_CASES_INVALID', `${where} (${name}): expect must be allow, deny or ask`);
    }
    const c: PolicyCase = {
      name,
      request: { principal: raw.principal, action: raw.action, resource: raw.resource, ...(raw.context !== undefined ? { context: raw.context } : {}) },
      expect: raw.expect as DecisionKind,
    };
    if (raw.quorum !== undefined) {
      if (!Number.isSafeInteger(raw.quorum)) throw new PolicyError('POLICY_CASES_INVALID', `${where} (${name}): quorum must be a whole number`);
      c.quorum = raw.quorum as number;
    }
    if (raw.policies !== undefined) {
      if (!Array.isArray(raw.policies) || !raw.policies.every((p) => typeof p === 'string')) {
        throw new PolicyError('POLICY_CASES_INVALID', `${where} (${name}): policies must be a list of policy ids`);
      }
      c.policies = raw.policies as string[];
    }
    return c;
  });
  return { entities, cases };
}

/**
 * Cases text that is a JSON object, parsed at once; undefined for any other
 * text, which is read as YAML (that also locates what is wrong in text that
 * looks like JSON and is not). As in YAML, a key written twice in one object,
 * which JSON.parse would read as its last silently, is refused, and so is a
 * number it would not read as written (misreadJson).
 */
function casesJson(text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (!/^\s*\{/.test(body)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(body) as unknown;
  } catch {
    if (Buffer.byteLength(body) <= MAX_YAML_CASES_BYTES) return undefined;
    // Not JSON.parse's message: it quotes the file's text.
    throw new PolicyError('POLICY_CASES_INVALID', `the cases file is over ${MAX_YAML_CASES_BYTES / 1024 / 1024} MiB, which only JSON may be, and it is not valid JSON; check it with a JSON tool, or split it`);
  }
  const misread = misreadJsonProblem(body);
  if (misread !== undefined) throw new PolicyError('POLICY_CASES_INVALID', `the cases file, at line ${misread.line}, column ${misread.column}: ${misread.message}`);
  if (nestedDeeperThan(doc, MAX_CASES_NESTING)) throw new PolicyError('POLICY_CASES_INVALID', `the cases file is nested more than ${MAX_CASES_NESTING} deep; no case needs more (entity data nests at most 32 deep)`);
  return doc;
}

/** Cases text read as YAML, up to MAX_YAML_CASES_BYTES and MAX_CASES_NESTING deep; what is wrong is located by line and column. */
function casesYaml(text: string): unknown {
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_YAML_CASES_BYTES) {
    throw new PolicyError('POLICY_CASES_INVALID', `the cases file is YAML of ${(bytes / 1024 / 1024).toFixed(1)} MiB; YAML cases are read up to ${MAX_YAML_CASES_BYTES / 1024 / 1024} MiB (about 25,000 cases): write a larger set as JSON (up to ${MAX_CASES_BYTES / 1024 / 1024} MiB), or split it`);
  }
  const tooDeep = yamlPastLimit(text, { depth: MAX_CASES_NESTING, tokens: Number.POSITIVE_INFINITY });
  if (tooDeep !== undefined) {
    throw new PolicyError('POLICY_CASES_INVALID', `the cases file is nested more than ${MAX_CASES_NESTING} deep at line ${tooDeep.line}, column ${tooDeep.column}; no case needs more (entity data nests at most 32 deep)`);
  }
  const lines = new LineCounter();
  const { doc: parsed } = readYamlDocument(text, lines, { uniqueKeys: false }, 1);
  const first = parsed.errors.reduce<YAMLError | undefined>((a, b) => (a === undefined || b.pos[0] < a.pos[0] ? b : a), undefined);
  if (first !== undefined) {
    const { line, col } = lines.linePos(first.pos[0]);
    throw new PolicyError('POLICY_CASES_INVALID', `the cases file is not valid YAML: ${first.message.split('\n')[0]} at line ${line}, column ${col}`, { cause: first });
  }
  let doc: unknown;
  try {
    doc = parsed.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new PolicyError('POLICY_CASES_INVALID', `the cases file is not valid YAML: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`, { cause: error });
  }
  const twice = repeatedKey(parsed, lines);
  if (twice !== undefined) {
    throw new PolicyError('POLICY_CASES_INVALID', `the cases file writes the key ${JSON.stringify(twice.key.slice(0, 64))} twice in one mapping, at line ${twice.line}, column ${twice.column}, first at line ${twice.firstLine}; keep one`);
  }
  const number = misreadYamlNumber(parsed, lines);
  if (number !== undefined) throw new PolicyError('POLICY_CASES_INVALID', `the cases file, at line ${number.line}, column ${number.column}: ${number.message}`);
  return doc;
}

/** Runs every case against the decision point's active set and entities. A request the schema refuses fails its case. */
export function runCases(pdp: DecisionPoint, cases: readonly PolicyCase[]): CaseResult[] {
  return cases.map((c) => {
    const expected = { decision: c.expect, ...(c.quorum !== undefined ? { quorum: c.quorum } : {}), ...(c.policies ? { policies: c.policies } : {}) };
    try {
      const d = pdp.decide(c.request);
      const passed =
        d.decision === c.expect &&
        (c.quorum === undefined || d.quorum === c.quorum) &&
        (c.policies === undefined || sameSet(c.policies, d.policies));
      return { name: c.name, passed, expected, actual: { decision: d.decision, ...(d.quorum !== undefined ? { quorum: d.quorum } : {}), policies: d.policies, reason: d.reason } };
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      return { name: c.name, passed: false, expected, actual: { decision: 'error', policies: [], reason: error.message, code: error.code } };
    }
  });
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
}
