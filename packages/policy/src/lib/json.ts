import type { PolicyError } from '../errors.ts';
import { isPlainObject } from '../schema.ts';

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
