// Compiles the common subset of Cedar (policy JSON form, as cedar-wasm emits
// it) to JavaScript closures. What it does not cover — extension functions,
// tags, templates — makes `compilePolicy` return undefined, and such policies
// are evaluated by cedar-wasm. The compiled code is differential-tested
// against cedar-wasm (compile.test.ts).
import type { EntityStore } from './entities.ts';
import type { Expr, PolicyJson } from './lib/cedar.ts';
import { CedarRecord, CedarSet, EntityRef, EvalError, Opaque, Unsupported, fromJson, likeMatcher, setHas, valueEquals, type Value } from './lib/values.ts';

/** What a compiled policy sees. */
export interface Env {
  principal: EntityRef;
  action: EntityRef;
  resource: EntityRef;
  context: CedarRecord;
  store: EntityStore;
}

/** A scope constraint, kept as data so the decision point can index on it. */
export type ScopeConstraint =
  | { op: 'All' }
  | { op: '=='; key: string }
  | { op: 'in'; keys: string[] }
  | { op: 'is'; type: string; in?: string };

export interface CompiledPolicy {
  principal: ScopeConstraint;
  action: ScopeConstraint;
  resource: ScopeConstraint;
  /** True when every condition holds; throws EvalError (policy errors) or Unsupported (ask cedar-wasm). */
  conditions: (env: Env) => boolean;
}

type Fn = (env: Env) => Value;

class NotCompilable {}

/** Compiles one policy, or returns undefined when it uses Cedar that Corral does not compile. */
export function compilePolicy(policy: PolicyJson): CompiledPolicy | undefined {
  try {
    const principal = scope(policy.principal as ScopeJson);
    const action = scope(policy.action as ScopeJson);
    const resource = scope(policy.resource as ScopeJson);
    const clauses = policy.conditions.map((c) => ({ when: c.kind === 'when', body: expr(c.body) }));
    const conditions = (env: Env): boolean => {
      for (const clause of clauses) {
        const v = clause.body(env);
        if (typeof v !== 'boolean') throw new EvalError('a condition is not a boolean');
        if (v !== clause.when) return false;
      }
      return true;
    };
    return { principal, action, resource, conditions };
  } catch (error) {
    if (error instanceof NotCompilable) return undefined;
    throw error;
  }
}

/** Whether the request's entity satisfies a scope constraint (never an error in Cedar). */
export function scopeMatches(c: ScopeConstraint, e: EntityRef, store: EntityStore): boolean {
  switch (c.op) {
    case 'All':
      return true;
    case '==':
      return e.key === c.key;
    case 'in':
      for (const k of c.keys) if (store.isIn(e.key, k)) return true;
      return false;
    case 'is':
      return e.type === c.type && (c.in === undefined || store.isIn(e.key, c.in));
  }
}

type UidJson = { type: string; id: string } | { __entity: { type: string; id: string } };
type ScopeJson =
  | { op: 'All' }
  | { op: '=='; entity?: UidJson; slot?: string }
  | { op: 'in'; entity?: UidJson; entities?: UidJson[]; slot?: string }
  | { op: 'is'; entity_type: string; in?: { entity?: UidJson; slot?: string } };

function uidKey(u: UidJson): string {
  const inner = '__entity' in u ? u.__entity : u;
  return new EntityRef(inner.type, inner.id).key;
}

function scope(s: ScopeJson): ScopeConstraint {
  switch (s.op) {
    case 'All':
      return { op: 'All' };
    case '==':
      if (!s.entity) throw new NotCompilable();
      return { op: '==', key: uidKey(s.entity) };
    case 'in':
      if (s.entity) return { op: 'in', keys: [uidKey(s.entity)] };
      if (s.entities) return { op: 'in', keys: s.entities.map(uidKey) };
      throw new NotCompilable();
    case 'is':
      if (s.in === undefined) return { op: 'is', type: s.entity_type };
      if (!s.in.entity) throw new NotCompilable();
      return { op: 'is', type: s.entity_type, in: uidKey(s.in.entity) };
    default:
      throw new NotCompilable();
  }
}

function bool(v: Value): boolean {
  if (typeof v !== 'boolean') throw v instanceof Opaque ? new Unsupported('extension value') : new EvalError('expected a boolean');
  return v;
}

function long(v: Value): number {
  if (typeof v !== 'number') throw v instanceof Opaque ? new Unsupported('extension value') : new EvalError('expected a Long');
  return v;
}

function set(v: Value): CedarSet {
  if (!(v instanceof CedarSet)) throw v instanceof Opaque ? new Unsupported('extension value') : new EvalError('expected a set');
  return v;
}

function entity(v: Value): EntityRef {
  if (!(v instanceof EntityRef)) throw v instanceof Opaque ? new Unsupported('extension value') : new EvalError('expected an entity');
  return v;
}

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** Cedar's checked i64 arithmetic: overflow is an error; an exact result beyond 2^53 is left to cedar-wasm. */
function arith(result: number, exact: () => bigint): number {
  if (Number.isSafeInteger(result)) return result === 0 ? 0 : result;
  const big = exact();
  if (big < I64_MIN || big > I64_MAX) throw new EvalError('integer overflow');
  throw new Unsupported('a Long beyond the safe-integer range');
}

function inOp(left: Value, right: Value, store: EntityStore): boolean {
  const l = entity(left);
  if (right instanceof EntityRef) return store.isIn(l.key, right.key);
  const targets = set(right).items.map(entity); // every element must be an entity, even after a match
  for (const t of targets) if (store.isIn(l.key, t.key)) return true;
  return false;
}

function attribute(v: Value, attr: string, env: Env): Value {
  if (v instanceof EntityRef) {
    const stored = env.store.get(v.key);
    if (!stored) throw new EvalError(`entity ${v.key} does not exist`);
    const a = stored.attrs.get(attr);
    if (a === undefined) throw new EvalError(`${v.key} has no attribute ${attr}`);
    if (a instanceof Opaque) throw new Unsupported('extension value');
    return a;
  }
  if (v instanceof CedarRecord) {
    const a = v.fields.get(attr);
    if (a === undefined) throw new EvalError(`record has no attribute ${attr}`);
    if (a instanceof Opaque) throw new Unsupported('extension value');
    return a;
  }
  if (v instanceof Opaque) throw new Unsupported('extension value');
  throw new EvalError('attribute access on a value that is not an entity or record');
}

function hasAttribute(v: Value, attr: string, env: Env): boolean {
  if (v instanceof EntityRef) {
    const stored = env.store.get(v.key);
    return stored !== undefined && stored.attrs.has(attr);
  }
  if (v instanceof CedarRecord) return v.fields.has(attr);
  if (v instanceof Opaque) throw new Unsupported('extension value');
  throw new EvalError('`has` on a value that is not an entity or record');
}

function binary(e: { left: Expr; right: Expr }): [Fn, Fn] {
  return [expr(e.left), expr(e.right)];
}

function expr(e: Expr): Fn {
  const keys = Object.keys(e);
  if (keys.length !== 1) throw new NotCompilable();
  const op = keys[0]!;
  const body = (e as Record<string, any>)[op];
  switch (op) {
    case 'Value': {
      let v: Value;
      try {
        v = fromJson(body);
      } catch {
        throw new NotCompilable();
      }
      if (v instanceof Opaque) throw new NotCompilable();
      return () => v;
    }
    case 'Var':
      switch (body) {
        case 'principal':
          return (env) => env.principal;
        case 'action':
          return (env) => env.action;
        case 'resource':
          return (env) => env.resource;
        case 'context':
          return (env) => env.context;
      }
      throw new NotCompilable();
    case '!': {
      const a = expr(body.arg);
      return (env) => !bool(a(env));
    }
    case 'neg': {
      const a = expr(body.arg);
      return (env) => {
        const x = long(a(env));
        return arith(-x, () => -BigInt(x));
      };
    }
    case '==': {
      const [l, r] = binary(body);
      return (env) => valueEquals(l(env), r(env));
    }
    case '!=': {
      const [l, r] = binary(body);
      return (env) => !valueEquals(l(env), r(env));
    }
    case 'in': {
      const [l, r] = binary(body);
      return (env) => inOp(l(env), r(env), env.store);
    }
    case '<': {
      const [l, r] = binary(body);
      return (env) => long(l(env)) < long(r(env));
    }
    case '<=': {
      const [l, r] = binary(body);
      return (env) => long(l(env)) <= long(r(env));
    }
    case '>': {
      const [l, r] = binary(body);
      return (env) => long(l(env)) > long(r(env));
    }
    case '>=': {
      const [l, r] = binary(body);
      return (env) => long(l(env)) >= long(r(env));
    }
    case '&&': {
      const [l, r] = binary(body);
      return (env) => bool(l(env)) && bool(r(env));
    }
    case '||': {
      const [l, r] = binary(body);
      return (env) => bool(l(env)) || bool(r(env));
    }
    case '+': {
      const [l, r] = binary(body);
      return (env) => {
        const a = long(l(env));
        const b = long(r(env));
        return arith(a + b, () => BigInt(a) + BigInt(b));
      };
    }
    case '-': {
      const [l, r] = binary(body);
      return (env) => {
        const a = long(l(env));
        const b = long(r(env));
        return arith(a - b, () => BigInt(a) - BigInt(b));
      };
    }
    case '*': {
      const [l, r] = binary(body);
      return (env) => {
        const a = long(l(env));
        const b = long(r(env));
        return arith(a * b, () => BigInt(a) * BigInt(b));
      };
    }
    case 'contains': {
      const [l, r] = binary(body);
      return (env) => {
        const s = set(l(env));
        return setHas(s, r(env));
      };
    }
    case 'containsAll': {
      const [l, r] = binary(body);
      return (env) => {
        const a = set(l(env));
        const b = set(r(env));
        return b.items.every((x) => setHas(a, x));
      };
    }
    case 'containsAny': {
      const [l, r] = binary(body);
      return (env) => {
        const a = set(l(env));
        const b = set(r(env));
        return b.items.some((x) => setHas(a, x));
      };
    }
    case 'isEmpty': {
      const a = expr(body.arg);
      return (env) => set(a(env)).items.length === 0;
    }
    case '.': {
      const l = expr(body.left);
      const attr: string = body.attr;
      return (env) => attribute(l(env), attr, env);
    }
    case 'has': {
      const l = expr(body.left);
      const path: string[] = Array.isArray(body.attr) ? body.attr : [body.attr];
      return (env) => {
        let v = l(env);
        for (let i = 0; i < path.length; i++) {
          if (!hasAttribute(v, path[i]!, env)) return false;
          if (i < path.length - 1) v = attribute(v, path[i]!, env);
        }
        return true;
      };
    }
    case 'like': {
      const l = expr(body.left);
      const matches = likeMatcher(body.pattern);
      return (env) => {
        const v = l(env);
        if (typeof v !== 'string') throw v instanceof Opaque ? new Unsupported('extension value') : new EvalError('`like` on a value that is not a string');
        return matches(v);
      };
    }
    case 'is': {
      const l = expr(body.left);
      const type: string = body.entity_type;
      const within = body.in === undefined ? undefined : expr(body.in);
      return (env) => {
        const v = entity(l(env));
        if (v.type !== type) return false;
        return within === undefined ? true : inOp(v, within(env), env.store);
      };
    }
    case 'if-then-else': {
      const c = expr(body.if);
      const t = expr(body.then);
      const f = expr(body.else);
      return (env) => (bool(c(env)) ? t(env) : f(env));
    }
    case 'Set': {
      const items = (body as Expr[]).map(expr);
      return (env) => new CedarSet(items.map((i) => i(env)));
    }
    case 'Record': {
      const fields = Object.entries(body as Record<string, Expr>).map(([k, v]) => [k, expr(v)] as const);
      return (env) => new CedarRecord(new Map(fields.map(([k, f]) => [k, f(env)])));
    }
    default:
      // Extension function calls, tags, slots: cedar-wasm evaluates these.
      throw new NotCompilable();
  }
}
