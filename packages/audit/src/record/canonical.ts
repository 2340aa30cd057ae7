// RFC 8785 JSON Canonicalization Scheme (JCS): the one byte sequence every
// implementation hashes for a given JSON value.
import { AuditError } from '../errors.ts';

/** A JSON value as RFC 8785 accepts it (I-JSON: finite numbers, well-formed strings). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const MAX_DEPTH = 64;

/**
 * Serialises `value` the RFC 8785 way: no whitespace, object members sorted by
 * the UTF-16 code units of their names, numbers as ECMAScript's
 * Number.prototype.toString, strings as ECMAScript's JSON.stringify.
 *
 * Preconditions (each checked): only null, booleans, finite numbers,
 * well-formed strings (no lone surrogates), arrays and plain objects; no
 * `undefined` member; nesting at most 64 deep.
 *
 * @throws AuditError AUDIT_NOT_CANONICALIZABLE when a precondition fails.
 */
export function canonicalize(value: unknown): string {
  try {
    return write(value, 0);
  } catch (error) {
    if (error instanceof Refusal) throw new AuditError('AUDIT_NOT_CANONICALIZABLE', `cannot canonicalise $${error.path}: ${error.message}`);
    throw error;
  }
}

/** A refusal on its way up; each level prepends its member name or index to `path`. */
class Refusal extends Error {
  path = '';
}

function refuse(why: string): never {
  throw new Refusal(why);
}

function at<T>(segment: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof Refusal) error.path = segment + error.path;
    throw error;
  }
}

function write(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) refuse(`nested deeper than ${MAX_DEPTH}`);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) refuse(`${value} is not a finite number`);
      // ECMAScript Number serialisation is what RFC 8785 section 3.2.2.3 specifies; -0 becomes 0.
      return JSON.stringify(value);
    case 'string':
      if (!value.isWellFormed()) refuse('string holds a lone surrogate');
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      refuse(`${typeof value} is not JSON`);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item: unknown = value[i];
      out += typeof item === 'object' && item !== null ? at(`[${i}]`, () => write(item, depth + 1)) : scalar(item, `[${i}]`, depth);
    }
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) refuse('not a plain object');
  const record = value as Record<string, unknown>;
  // Default sort compares UTF-16 code units, which is the order RFC 8785 section 3.2.3 asks for.
  const keys = Object.keys(record).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const member = record[key];
    if (!key.isWellFormed()) refuse('member name holds a lone surrogate');
    if (i > 0) out += ',';
    out += JSON.stringify(key);
    out += ':';
    out += typeof member === 'object' && member !== null ? at(`.${key}`, () => write(member, depth + 1)) : scalar(member, `.${key}`, depth);
  }
  return `${out}}`;
}

/** A non-object value; on refusal its path segment is added here (no closure on the fast path). */
function scalar(value: unknown, segment: string, depth: number): string {
  if (typeof value === 'string' && value.isWellFormed()) return JSON.stringify(value);
  if (typeof value === 'number' && Number.isFinite(value)) return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value === undefined) {
    const r = new Refusal('undefined is not JSON');
    r.path = segment;
    throw r;
  }
  return at(segment, () => write(value, depth + 1));
}
