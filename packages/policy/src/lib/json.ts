import type { PolicyError } from '../errors.ts';
import { isPlainObject } from '../schema.ts';
import { lineAt } from './cedar.ts';

const MAX_JSON_DEPTH = 32;

/**
 * A deep copy of untrusted JSON data (plain objects, arrays, finite numbers,
 * well-formed strings), taken once before it is checked or handed to
 * cedar-wasm. Throws `fail(problem)` for anything else: deeper nesting
 * (recursion here, and in cedar-wasm), text cedar-wasm cannot decode, a
 * getter or class instance. Keys are copied as own keys, `__proto__` too.
 */
export function copyJson(value: unknown, fail: (problem: string) => PolicyError): unknown {
  const copy = (v: unknown, depth: number): unknown => {
    if (depth > MAX_JSON_DEPTH) throw fail(`is nested more than ${MAX_JSON_DEPTH} deep`);
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'string') {
      if (!v.isWellFormed()) throw fail('holds text that is not well-formed Unicode');
      return v;
    }
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw fail('holds a number that is not finite');
      return v;
    }
    if (Array.isArray(v)) return v.map((x) => copy(x, depth + 1));
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [copy(k, depth), copy(x, depth + 1)]));
    throw fail('must be plain JSON');
  };
  return copy(value, 0);
}

/**
 * What JSON.parse reads from a JSON text otherwise than a reader of the text
 * (a person, a Cedar tool) does, at the UTF-16 index `at` of the key's
 * second appearance or of the number.
 */
export type MisreadJson = { kind: 'key-twice'; key: string; at: number } | { kind: 'inexact-number'; literal: string; at: number };

/** An integer written in digits alone, as JSON writes it (JSON.parse took the text, so no other number matches). */
const INTEGER = /^-?\d+$/;

/**
 * The first place in the JSON text `text` that JSON.parse reads otherwise
 * than the text says, or undefined. `text` must be JSON (JSON.parse took
 * it). Found:
 * - a key given a second time in one object: JSON.parse keeps the last
 *   silently. Keys are compared as JSON.parse reads them ("a" and "\u0061"
 *   are one key);
 * - with `numbers`, for data where every number is one of Cedar's (a Long:
 *   an entities file, a cases file), a number that is not an integer within
 *   ±(2^53 − 1) written in digits alone. JSON.parse rounds a larger one
 *   (9007199254740993 reads as …992, which Cedar takes as a Long: Corral
 *   would decide about another number than a Cedar tool reading the file),
 *   and reads 1.0 and 1e2 as the integers 1 and 100, which a Cedar tool
 *   refuses. Past that range no integer is read exactly, and within it
 *   every one is: a literal reads as a safe integer exactly when it is one.
 * Without recursion; linear in the text.
 */
export function misreadJson(text: string, options: { numbers: boolean }): MisreadJson | undefined {
  /** One frame per open bracket: an object's keys so far and whether a key comes next, or undefined for an array. */
  const open: ({ keys: Set<string>; keyNext: boolean } | undefined)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '{') open.push({ keys: new Set(), keyNext: true });
    else if (c === '[') open.push(undefined);
    else if (c === '}' || c === ']') open.pop();
    else if (c === ',') {
      const top = open.at(-1);
      if (top) top.keyNext = true;
    } else if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      const top = open.at(-1);
      if (top?.keyNext) {
        const key = JSON.parse(text.slice(start, i + 1)) as string;
        if (top.keys.has(key)) return { kind: 'key-twice', key, at: start };
        top.keys.add(key);
        top.keyNext = false;
      }
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      const start = i;
      while (i + 1 < text.length && '+-.0123456789eE'.includes(text[i + 1]!)) i++;
      const literal = text.slice(start, i + 1);
      if (options.numbers && !(INTEGER.test(literal) && Number.isSafeInteger(Number(literal)))) return { kind: 'inexact-number', literal, at: start };
    }
  }
  return undefined;
}

/**
 * JSON text `text`, parsed. Throws `fail(problem, at)` when it is not JSON —
 * `not JSON (reason)`, JSON.parse's reason and, when it gives them, the line
 * and column, never the text it quotes (the file may be anything) — or
 * where JSON.parse reads it otherwise than the text says
 * (misreadJsonProblem: a key given twice in one object, a number not held
 * exactly), with the line and column.
 */
export function parseJsonText(text: string, fail: (problem: string, at: { line: number; column: number } | undefined) => PolicyError): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (error) {
    const { reason, at } = syntaxProblem((error as Error).message);
    throw fail(`not JSON (${reason})`, at);
  }
  const misread = misreadJsonProblem(text);
  if (misread !== undefined) throw fail(misread.message, { line: misread.line, column: misread.column });
  return value;
}

/** JSON.parse's error message as its reason alone (`Expected ':' after property name`, `Unexpected end of JSON input`) and where, when it says. */
function syntaxProblem(message: string): { reason: string; at?: { line: number; column: number } } {
  const where = / \(line (\d+) column (\d+)\)$/.exec(message);
  // Cut before where it says (`… in JSON at position 17 (line 3 column 6)`) and what it quotes of the text
  // (`Unexpected token 's', "sk_live_51"... is not valid JSON`: not even the one character).
  const reason = message.replace(/ (in|after) JSON at position \d+.*$/, '').replace(/^Unexpected token .*$/s, 'Unexpected token');
  return where ? { reason, at: { line: Number(where[1]), column: Number(where[2]) } } : { reason };
}

/**
 * misreadJson's finding in `text` (numbers checked) as a sentence for a
 * refusal, with its 1-based line and column (as the policy loader counts
 * them), or undefined when JSON.parse reads `text` as written. Neither a
 * key nor a number is quoted past 64 characters.
 */
export function misreadJsonProblem(text: string): { line: number; column: number; message: string } | undefined {
  const found = misreadJson(text, { numbers: true });
  if (found === undefined) return undefined;
  const { line, column } = lineAt(text, Buffer.byteLength(text.slice(0, found.at), 'utf8'));
  const message = found.kind === 'key-twice' ? `the key ${JSON.stringify(shown(found.key))} appears twice in one object; JSON readers keep one of the two silently` : inexactNumberMessage(found.literal);
  return { line, column, message };
}

/**
 * Why the number written `literal` (in JSON or YAML) is refused, as a
 * sentence: not written in decimal digits alone, past ±(2^53 − 1), or (YAML
 * 1.1 reads 010 as 8) read as another number.
 */
export function inexactNumberMessage(literal: string): string {
  if (!/^[-+]?\d+$/.test(literal)) return `the number ${shown(literal)} is not written in decimal digits alone, as Cedar's numbers (integers, Longs) are; write it so, or as a string`;
  if (!Number.isSafeInteger(Number(literal))) {
    return `the number ${shown(literal)} is past ±9007199254740991 (2^53 − 1), the integers Corral reads exactly (it would read another; Cedar reads it as written); keep numbers within that range, or write this one as a string`;
  }
  return `the number ${shown(literal)} is read as another number (a leading 0 makes it octal in YAML 1.1); write it without leading zeros, or as a string`;
}

/** Text quoted in a message up to 64 characters. */
function shown(text: string): string {
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

/**
 * Whether data as JSON.parse or a YAML parser made it nests arrays and
 * objects more than `limit` deep (`[[]]` is 2). Walks without recursion, and
 * each object once: YAML aliases put one object in many places, and may
 * make a cycle (which nests without end, so it is deeper than any limit).
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const isObject = (v: unknown): v is object => v !== null && typeof v === 'object';
  if (!isObject(value)) return false;
  /** The nesting below each object walked already, itself included. */
  const heights = new Map<object, number>();
  /** The objects on the path from `value` down to the one being walked. */
  const path: Array<{ node: object; children: unknown[]; next: number; height: number }> = [{ node: value, children: Object.values(value), next: 0, height: 1 }];
  if (path.length > limit) return true;
  while (path.length > 0) {
    const top = path.at(-1)!;
    if (top.next < top.children.length) {
      const child = top.children[top.next++];
      if (!isObject(child)) continue;
      const known = heights.get(child);
      if (known !== undefined) {
        if (path.length + known > limit) return true;
        top.height = Math.max(top.height, known + 1);
      } else {
        path.push({ node: child, children: Object.values(child), next: 0, height: 1 });
        if (path.length > limit) return true;
      }
      continue;
    }
    path.pop();
    heights.set(top.node, top.height);
    const parent = path.at(-1);
    if (parent) parent.height = Math.max(parent.height, top.height + 1);
  }
  return false;
}
