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
    // Fast path: once every object's members are in RFC 8785 order, ECMAScript's
    // JSON.stringify writes exactly the RFC 8785 bytes (the RFC builds on it).
    // Integer-like member names defeat that (ECMAScript lists them first), so
    // those values take the member-by-member writer.
    const ordered = order(value, 0);
    return ordered === INTEGER_KEYS ? write(value, 0) : JSON.stringify(ordered);
  } catch (error) {
    if (error instanceof Refusal) throw new AuditError('AUDIT_NOT_CANONICALIZABLE', `cannot canonicalise $${error.path}: ${error.message}`);
    throw error;
  }
}

/**
 * True when `value`, found `depth` levels inside a document, is JSON that
 * RFC 8785 accepts with every object's members already in order: then
 * ECMAScript's JSON.stringify writes its canonical bytes. False otherwise
 * (canonicalize() then sorts it, or names what it refuses).
 */
export function inCanonicalOrder(value: unknown, depth: number): boolean {
  try {
    return order(value, depth) === value;
  } catch (error) {
    if (error instanceof Refusal) return false;
    throw error;
  }
}

const INTEGER_KEYS = Symbol('integer keys');
const INTEGER_LIKE = /^(?:0|[1-9][0-9]*)$/;

/** A name ECMAScript may list before the others (an array index); only one that starts with a digit can be. */
function integerLike(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 0x30 && c <= 0x39 && INTEGER_LIKE.test(key);
}

/**
 * Checks `value` against the preconditions and returns it with every object's
 * members in UTF-16 code unit order (the value itself when already so, else a
 * sorted copy), or INTEGER_KEYS when some member name is integer-like.
 */
function order(value: unknown, depth: number): unknown {
  if (depth > MAX_DEPTH) refuse(`nested deeper than ${MAX_DEPTH}`);
  const checked = checkedScalar(value);
  if (checked !== CONTAINER) return checked;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      let o: unknown;
      try {
        o = member(item, depth);
      } catch (error) {
        throw within(error, i);
      }
      if (o === INTEGER_KEYS) return INTEGER_KEYS;
      if (o !== item) (copy ??= value.slice())[i] = o;
    }
    return copy ?? value;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) refuse('not a plain object');
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  let sorted = true;
  // Made only once a member is itself a copy: most objects are in order, and this runs for every append.
  let members: unknown[] | undefined;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (!key.isWellFormed()) refuse('member name holds a lone surrogate');
    if (integerLike(key)) return INTEGER_KEYS;
    if (i > 0 && (keys[i - 1] as string) > key) sorted = false;
    const item = record[key];
    let o: unknown;
    try {
      o = member(item, depth);
    } catch (error) {
      throw within(error, key);
    }
    if (o === INTEGER_KEYS) return INTEGER_KEYS;
    if (members) members[i] = o;
    else if (o !== item) {
      members = new Array<unknown>(keys.length);
      for (let j = 0; j < i; j++) members[j] = record[keys[j] as string];
      members[i] = o;
    }
  }
  if (sorted && !members) return value;
  const index = keys.map((_, i) => i);
  if (!sorted) index.sort((a, b) => ((keys[a] as string) < (keys[b] as string) ? -1 : 1));
  // A null-prototype copy: a member named "__proto__" stays a member.
  const copy = Object.create(null) as Record<string, unknown>;
  for (const i of index) copy[keys[i] as string] = members ? members[i] : record[keys[i] as string];
  return copy;
}

/** An array item or member value: scalars checked here, containers by order() one level down (where depth is counted). */
function member(value: unknown, depth: number): unknown {
  const checked = checkedScalar(value);
  return checked === CONTAINER ? order(value, depth + 1) : checked;
}

const CONTAINER = Symbol('container');

/** A scalar `value` checked (itself), CONTAINER for an array or object, or a refusal of anything JSON does not hold. */
function checkedScalar(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) refuse('string holds a lone surrogate');
      return value;
    case 'number':
      if (!Number.isFinite(value)) refuse(`${value} is not a finite number`);
      return value;
    case 'boolean':
      return value;
    case 'object':
      return value === null ? null : CONTAINER;
    default:
      return refuse(`${typeof value} is not JSON`);
  }
}

/** Adds an array index or member name to the path of a refusal passing up through it. */
function within(error: unknown, step: string | number): unknown {
  if (error instanceof Refusal) error.path = (typeof step === 'number' ? `[${step}]` : `.${step}`) + error.path;
  return error;
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
  const checked = checkedScalar(value);
  // ECMAScript's serialisation of a number is what RFC 8785 section 3.2.2.3 specifies (-0 becomes 0), of a string section 3.2.2.2.
  if (checked !== CONTAINER) return JSON.stringify(checked);
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
