// Cedar values in JavaScript, for the compiled evaluator. Longs are JS numbers
// within the safe-integer range; anything else (extension values, larger
// numbers) is `Unsupported`, and the decision falls back to cedar-wasm.

/** An entity reference. `key` is Cedar's own spelling, `Type::"id"`. */
export class EntityRef {
  readonly type: string;
  readonly id: string;
  readonly key: string;
  constructor(type: string, id: string) {
    this.type = type;
    this.id = id;
    this.key = entityKey(type, id);
  }
}

export class CedarSet {
  readonly items: readonly Value[];
  constructor(items: readonly Value[]) {
    this.items = items;
  }
}

export class CedarRecord {
  readonly fields: ReadonlyMap<string, Value>;
  constructor(fields: ReadonlyMap<string, Value>) {
    this.fields = fields;
  }
}

/** A value Corral's evaluator does not model; touching it hands the decision to cedar-wasm. */
export class Opaque {}

export type Value = boolean | number | string | EntityRef | CedarSet | CedarRecord | Opaque;

/** Thrown when a policy's evaluation is an error in Cedar's semantics (the policy is skipped). */
export class EvalError {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** Thrown when the compiled evaluator cannot answer exactly; the caller asks cedar-wasm instead. */
export class Unsupported {
  readonly what: string;
  constructor(what: string) {
    this.what = what;
  }
}

export function entityKey(type: string, id: string): string {
  return `${type}::${JSON.stringify(id)}`;
}

/** Converts Cedar's JSON value form; extension values become Opaque. Throws Unsupported for numbers it cannot hold exactly. */
export function fromJson(json: unknown): Value {
  switch (typeof json) {
    case 'boolean':
    case 'string':
      return json;
    case 'number':
      if (!Number.isSafeInteger(json)) throw new Unsupported('a number outside the safe-integer range');
      return json;
    case 'object': {
      if (json === null) throw new Unsupported('null');
      if (Array.isArray(json)) return new CedarSet(json.map(fromJson));
      const o = json as Record<string, unknown>;
      // Read as Cedar reads data without a schema, as decisions do: an escape only as an object's one key, so
      // {"__entity": {…}, "x": 1} is a record. With a schema Cedar reads that, ["Group", "g"] and more as an entity
      // where one is declared: entity data and contexts are held to the forms read alike either way (schemaOnlyForm).
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === '__entity') {
        const e = o.__entity as { type?: unknown; id?: unknown } | null;
        if (typeof e?.type !== 'string' || typeof e.id !== 'string') throw new Unsupported('a malformed entity reference');
        return new EntityRef(e.type, e.id);
      }
      if (keys.length === 1 && keys[0] === '__extn') return new Opaque();
      const fields = new Map<string, Value>();
      for (const [k, v] of Object.entries(o)) fields.set(k, fromJson(v));
      return new CedarRecord(fields);
    }
    default:
      throw new Unsupported(typeof json);
  }
}

/** Cedar's `==`: values of different types are unequal, never an error. */
export function valueEquals(a: Value, b: Value): boolean {
  if (a === b) return true;
  if (a instanceof Opaque || b instanceof Opaque) throw new Unsupported('comparison of an extension value');
  if (a instanceof EntityRef) return b instanceof EntityRef && a.key === b.key;
  if (a instanceof CedarSet) {
    if (!(b instanceof CedarSet)) return false;
    return a.items.every((x) => setHas(b, x)) && b.items.every((y) => setHas(a, y));
  }
  if (a instanceof CedarRecord) {
    if (!(b instanceof CedarRecord) || a.fields.size !== b.fields.size) return false;
    for (const [k, v] of a.fields) {
      const w = b.fields.get(k);
      if (w === undefined || !valueEquals(v, w)) return false;
    }
    return true;
  }
  return false;
}

export function setHas(set: CedarSet, value: Value): boolean {
  for (const item of set.items) if (valueEquals(item, value)) return true;
  return false;
}

/**
 * Compiles a Cedar `like` pattern (Wildcard / Literal elements) to a matcher.
 * Not a RegExp: with several wildcards a backtracking engine takes quadratic
 * time or worse on an attacker's string. The literals between wildcards are
 * found leftmost-first, which is enough for `*`-only patterns.
 */
export function likeMatcher(elements: readonly ('Wildcard' | { Literal: string })[]): (text: string) => boolean {
  const parts = [''];
  for (const el of elements) {
    if (el === 'Wildcard') parts.push('');
    else parts[parts.length - 1] += el.Literal;
  }
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1);
  if (parts.length === 1) return (text) => text === first;
  return (text) => {
    if (!text.startsWith(first)) return false;
    let at = first.length;
    for (const part of middle) {
      const found = text.indexOf(part, at);
      if (found < 0) return false;
      at = found + part.length;
    }
    return text.length - last.length >= at && text.endsWith(last);
  };
}
