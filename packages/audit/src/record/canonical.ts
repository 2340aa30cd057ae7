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
  return write(value, 0, '$');
}

function refuse(path: string, why: string): never {
  throw new AuditError('AUDIT_NOT_CANONICALIZABLE', `cannot canonicalise ${path}: ${why}`);
}

function write(value: unknown, depth: number, path: string): string {
  if (depth > MAX_DEPTH) refuse(path, `nested deeper than ${MAX_DEPTH}`);
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) refuse(path, `${value} is not a finite number`);
      // ECMAScript Number serialisation is what RFC 8785 section 3.2.2.3 specifies; -0 becomes 0.
      return JSON.stringify(value);
    case 'string':
      if (!value.isWellFormed()) refuse(path, 'string holds a lone surrogate');
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      refuse(path, `${typeof value} is not JSON`);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += write(value[i], depth + 1, `${path}[${i}]`);
    }
    return `${out}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) refuse(path, 'not a plain object');
  const record = value as Record<string, unknown>;
  // Default sort compares UTF-16 code units, which is the order RFC 8785 section 3.2.3 asks for.
  const keys = Object.keys(record).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const member = record[key];
    if (member === undefined) refuse(`${path}.${key}`, 'undefined is not JSON');
    if (!key.isWellFormed()) refuse(path, 'member name holds a lone surrogate');
    if (i > 0) out += ',';
    out += `${JSON.stringify(key)}:${write(member, depth + 1, `${path}.${key}`)}`;
  }
  return `${out}}`;
}
