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

/**
 * The first key that appears twice in one object of the JSON text `text`,
 * with the UTF-16 index of its second appearance, or undefined. `text` must
 * be JSON (JSON.parse took it): JSON.parse keeps the last of two equal keys
 * silently, so a reader of the file and Corral would see different data.
 * Keys are compared as JSON.parse reads them ("a" and "\u0061" are one key).
 * Without recursion; linear in the text.
 */
export function duplicateKey(text: string): { key: string; at: number } | undefined {
  /** One frame per open bracket: an object's keys so far and whether a key comes next, or undefined for an array. */
  const open: ({ keys: Set<string>; keyNext: boolean } | undefined)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
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
        if (top.keys.has(key)) return { key, at: start };
        top.keys.add(key);
        top.keyNext = false;
      }
    }
  }
  return undefined;
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
