import { LineCounter, isAlias, isCollection, isMap, isNode, isScalar, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { ContainError, formatIssue, type PolicyIssue } from '../errors.ts';
import type { PROCESS_DEFAULTS } from './defaults.ts';
import { suggestField } from './field-suggestion.ts';
import { ContainerPolicySchema, UNSEEN, type ContainerPolicy } from './schema.ts';
import { yamlPastLimit } from '@corral/policy/yaml-limits';
import { readYamlDocument } from '@corral/policy/yaml-read';

/**
 * Far past any policy: its fields nest at most 4 deep (network.egress.allow[0]), and its three longest lists,
 * 4096 commented paths each, take 90,000 tokens. The YAML library's parser slows with depth and length, and
 * its composer recurses: text past either is refused before it is parsed.
 */
const MAX_POLICY_TEXT = { depth: 32, tokens: 131_072 };

/**
 * Parses and validates policy text. `file` names the source in error messages.
 *
 * @throws ContainError `CONTAIN_POLICY_INVALID`
 */
export function parsePolicyText(text: string, file = '<inline>'): ContainerPolicy {
  const past = yamlPastLimit(lfLineBreaks(text), MAX_POLICY_TEXT);
  if (past !== undefined) {
    const message =
      past.limit === 'depth'
        ? `nested more than ${MAX_POLICY_TEXT.depth} deep; a policy's fields nest at most 4 deep (network.egress.allow[0])`
        : `longer than any policy: more than ${MAX_POLICY_TEXT.tokens} names, values, punctuation marks and line breaks by here; list folders rather than each file in them`;
    throw invalid([{ file, line: past.line, column: past.column, field: '', message }]);
  }
  const lines = new LineCounter();
  // A policy is JSON-shaped: YAML 1.1's !!binary, !!set, !!timestamp… are read as the plain values they tag,
  // so the schema names what was expected instead of a Buffer's or a Set's own fields.
  const { doc, strayErrorsLeftOut } = readYamlDocument(lfLineBreaks(text), lines, { uniqueKeys: false, resolveKnownTags: false }, MAX_LISTED);
  if (doc.errors.length > 0) {
    // Broken text can hold an error at every token (a run of `}`): the first are listed, the rest counted.
    const first = doc.errors.toSorted((a, b) => a.pos[0] - b.pos[0]).slice(0, MAX_LISTED);
    const issues = first.map((e): PolicyIssue => ({
      file,
      ...at(lines, e.pos[0]),
      field: '',
      message: `not valid YAML or JSON: ${escaped(e.message.split('\n')[0]!)}`,
    }));
    throw invalid(issues, doc.errors.length + strayErrorsLeftOut);
  }
  const keys = keyProblems(doc, lines, file);
  if (keys.length > 0) throw invalid(keys);
  let value: unknown;
  try {
    // An alias to a missing anchor, or aliases fanning out past the limit (a "billion laughs"), throw here.
    value = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (cause) {
    throw invalid([{ file, line: 1, field: '', message: `not valid YAML: ${escaped((cause as Error).message.split('\n')[0]!)}` }]);
  }
  if (!isMap(doc.contents) && doc.contents !== null) {
    throw invalid([{ file, line: 1, field: '', message: 'a policy is a mapping of fields (runtime, filesystem, network, process, ui, environment, workingDirectory)' }]);
  }
  return validatePolicy(value, file, doc, lines);
}

/**
 * Validates a policy given as a plain object.
 *
 * @throws ContainError `CONTAIN_POLICY_INVALID`
 */
export function validatePolicy(value: unknown, file = '<inline>', doc?: Document, lines?: LineCounter): ContainerPolicy {
  const result = ContainerPolicySchema.safeParse(value, { reportInput: true });
  const issues = result.success ? [] : result.error.issues.flatMap((issue) => (issue.code === 'unrecognized_keys' ? unknownFields(issue, file, doc, lines) : [describeIssue(issue, file, doc, lines)]));
  // zod's record passes over a __proto__ key (no object it builds may hold one as its own): the variable would go unset, unremarked.
  const set = (value as { environment?: { set?: unknown } } | null)?.environment?.set;
  if (typeof set === 'object' && set !== null && Object.hasOwn(set, '__proto__')) {
    const path = ['environment', 'set', '__proto__'];
    issues.push({ file, ...(doc && lines ? placeOf(doc, lines, path) : {}), field: fieldName(path), message: 'a variable cannot be named __proto__' });
  }
  if (result.success && issues.length === 0) return result.data;
  throw invalid(issues);
}

/**
 * The line of policy text where `field` (dotted, as in a PolicyIssue: `filesystem.readwrite[1]`) is
 * written; undefined when the text does not write that field or is not a policy document.
 */
export function fieldLine(text: string, field: string): number | undefined {
  const path = field.split(/\.|(?=\[)/).map((part) => (/^\[\d+\]$/.test(part) ? Number(part.slice(1, -1)) : part));
  const lines = new LineCounter();
  const { doc } = readYamlDocument(lfLineBreaks(text), lines, {}, 0);
  if (doc.errors.length > 0) return undefined;
  const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  return node?.range ? lines.linePos(node.range[0]).line : undefined;
}

/**
 * The text with every line break a line feed. YAML counts a CR alone as a line break, and folds each break
 * in a scalar to a line feed, but the parser reads a CR alone as part of a line: a file saved with classic
 * Mac line endings was one line of bad YAML.
 */
function lfLineBreaks(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** The most problems an error's message lists: a broken file can have one on every line, and the message is printed. */
const MAX_LISTED = 20;

/** `total` counts problems beyond those given, when only the first were made into issues. */
function invalid(issues: PolicyIssue[], total = issues.length): ContainError {
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const head = total === 1 ? 'policy is invalid' : `policy has ${total} problems`;
  const listed = issues.slice(0, MAX_LISTED).map((i) => `  ${formatIssue(i)}`);
  if (total > MAX_LISTED) listed.push(`  … and ${total - MAX_LISTED} more`);
  return new ContainError('CONTAIN_POLICY_INVALID', `${head}; the command was not started:\n${listed.join('\n')}`, { issues });
}

function describeIssue(issue: z.core.$ZodIssue, file: string, doc?: Document, lines?: LineCounter): PolicyIssue {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const field = fieldName(path);
  let message = issue.message;
  switch (issue.code) {
    case 'invalid_type': {
      message = `expected ${issue.expected}, got ${describeValue(issue.input)}`;
      // YAML reads a bare ~ as null: a path written so reaches the schema as nothing like a path.
      const node = doc?.getIn(path, true);
      if (issue.input === null && isScalar(node) && node.source === '~') message += " (YAML reads a bare ~ as null; write '~' in quotes for your home folder)";
      const limit = path[0] === 'process' && path.length === 2 ? LIMIT_UNITS[path[1] as keyof typeof LIMIT_UNITS] : undefined;
      if (typeof issue.input === 'string' && limit !== undefined) message += `: write a plain number of ${limit}, without quotes or a unit`;
      // YAML's .inf and .nan, and a number too large to hold (1e400), reach the schema as numbers it refuses as none.
      if (typeof issue.input === 'number' && !Number.isFinite(issue.input)) {
        message = `must be a finite number, got ${Number.isNaN(issue.input) ? '.nan' : 'Infinity (.inf, or a number too large to hold)'}`;
        if (limit !== undefined) message += `: write a plain number of ${limit}`;
      }
      break;
    }
    case 'invalid_value':
      message = `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, got ${describeValue(issue.input)}`;
      break;
    case 'invalid_union':
      message = `expected 'none' or { allow: [HOST:PORT, …] }, got ${describeValue(issue.input)}`;
      break;
    case 'too_small':
      message = issue.origin === 'array' ? issue.message : `must be at least ${String(issue.minimum)}`;
      break;
    case 'invalid_key':
      // The key's own issue says what a name may be; the record's says only that one was wrong.
      message = issue.issues[0]?.message ?? message;
      break;
    case 'too_big':
      message = `must be at most ${String(issue.maximum)}`;
      break;
    default:
      break;
  }
  return { file, ...(doc && lines ? placeOf(doc, lines, path) : {}), field, message };
}

/** One issue for each unknown field, on its key's line (its value may start lines below, or be a section of its own). */
function unknownFields(issue: z.core.$ZodIssueUnrecognizedKeys, file: string, doc?: Document, lines?: LineCounter): PolicyIssue[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  const allowed = allowedKeys(path) ?? [];
  const written = doc && lines ? keyLines(doc, lines, path) : undefined;
  return issue.keys.map((key) => {
    const meant = suggestField(key, allowed);
    const message = `unknown field ${quoted(key)}${meant === undefined ? '' : ` (did you mean '${meant}'?)`}${allowed.length > 0 ? `; allowed here: ${allowed.join(', ')}` : ''}`;
    const place = doc && lines ? (written?.get(key) ?? placeOf(doc, lines, path)) : {};
    return { file, ...place, field: fieldName([...path, key]), message };
  });
}

/** Where each key is written in the mapping at `path` (by the name the schema sees), or nothing when there is none. */
function keyLines(doc: Document, lines: LineCounter, path: readonly (string | number)[]): Map<string, Place> {
  const map = path.length === 0 ? doc.contents : doc.getIn(path, true);
  const found = new Map<string, Place>();
  if (!isMap(map)) return found;
  for (const { key } of map.items) if (isScalar(key) && key.range) found.set(String(key.value), at(lines, key.range[0]));
  return found;
}

/**
 * Keys the schema must never see: one written twice in a mapping (compared as the text the schema gets, so
 * `true` and "true" are one key), and a list, a mapping or an alias as a key, which would reach it as its text (the
 * YAML library warning on stderr that it does), or as what it names, somewhere no line of the text shows.
 * One pass over each mapping, with a set (the YAML library's own check weighs each key against every other).
 */
function keyProblems(doc: Document, lines: LineCounter, file: string): PolicyIssue[] {
  const problems: PolicyIssue[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number>();
      for (const { key } of map.items) {
        const place = at(lines, isNode(key) && key.range ? key.range[0] : 0);
        const { line } = place;
        if (isCollection(key) || isAlias(key)) {
          problems.push({ file, ...place, field: '', message: 'a key is a name written out, not a list, a mapping or an alias (*name)' });
          continue;
        }
        const name = String(isScalar(key) ? key.value : key);
        const first = seen.get(name);
        if (first === undefined) seen.set(name, line);
        else problems.push({ file, ...place, field: '', message: `${quoted(name)} is written twice, first at line ${first}; keep one` });
      }
    },
  });
  return problems;
}

/** A field's dotted path; a key holding a character no one sees is written in brackets, quoted and escaped. */
function fieldName(path: readonly (string | number)[]): string {
  return path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : UNSEEN.test(p) ? `${acc}[${quoted(p)}]` : acc ? `${acc}.${shortened(p)}` : shortened(p)), '');
}

/** A key as the policy wrote it, in quotes: in double quotes, escaped, when it holds a character no one sees. */
function quoted(key: string): string {
  return UNSEEN.test(key) ? `"${escaped(shortened(key))}"` : `'${shortened(key)}'`;
}

/** Most characters of a key a message shows: a key a megabyte long would be printed whole in each message naming it. */
const KEY_SHOWN = 64;

function shortened(key: string): string {
  if (key.length <= KEY_SHOWN) return key;
  // Not between the two halves of a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(key[KEY_SHOWN - 1]!) ? KEY_SHOWN - 1 : KEY_SHOWN;
  return `${key.slice(0, end)}… (${key.length} characters)`;
}

/**
 * The text with each character no one sees written as its \u escape: what the policy holds reaches a terminal
 * in every message, where a line break would print a forged line and an escape act on the terminal.
 */
function escaped(text: string): string {
  return text.replace(new RegExp(UNSEEN, 'gu'), (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`);
}

/** What each process limit counts: a limit written as text ('512M', "30s") is told its unit. */
const LIMIT_UNITS = {
  maxProcesses: 'processes',
  memoryMB: 'megabytes',
  cpus: 'CPUs',
  timeoutMs: 'milliseconds',
  maxOutputBytes: 'bytes',
} as const satisfies Record<keyof typeof PROCESS_DEFAULTS, string>;

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  // JSON has no Infinity (it would read null) nor bigint (it would throw).
  return typeof value === 'string' ? `string ${JSON.stringify(value)}` : `${typeof value} ${String(value)}`;
}

function allowedKeys(path: readonly (string | number)[]): string[] | undefined {
  let schema: unknown = ContainerPolicySchema;
  for (const p of path) {
    schema = unwrap(schema);
    const shape = (schema as { shape?: Record<string, unknown> }).shape;
    if (!shape || typeof p !== 'string') return undefined;
    schema = shape[p];
  }
  const shape = (unwrap(schema) as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape).filter((k) => k !== '$schema') : undefined;
}

function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { innerType?: unknown; options?: unknown[] } } | undefined;
  for (let i = 0; i < 8 && s?.def; i++) {
    if (s.def.innerType) s = s.def.innerType as typeof s;
    else if (s.def.options) s = s.def.options.find((o) => (o as { shape?: unknown }).shape) as typeof s;
    else break;
  }
  return s;
}

/** Where a node starts in the text: 1-based line and column. */
interface Place {
  line: number;
  column: number;
}

function at(lines: LineCounter, offset: number): Place {
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

/** Where the deepest node along `path` that exists in the document starts; nothing when none does. */
function placeOf(doc: Document, lines: LineCounter, path: readonly (string | number)[]): Place | Record<never, never> {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) {
      // A mapping's own range starts at its first key; for a missing child, point at the parent's key instead.
      return at(lines, node.range[0]);
    }
    if (depth === 0 && doc.contents && 'range' in doc.contents && doc.contents.range) return at(lines, doc.contents.range[0]);
  }
  return {};
}
