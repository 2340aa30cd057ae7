import { readFileSync } from 'node:fs';
import { PolicyError } from './errors.ts';
import { cedar } from './lib/cedar.ts';

/** A Cedar type as Corral's schema reader sees it (the JSON schema form, names unresolved). */
interface TypeJson {
  type: string;
  element?: TypeJson;
  attributes?: Record<string, TypeJson & { required?: boolean }>;
  name?: string;
}

/** What the decision point needs to know about one action. */
export interface ActionInfo {
  id: string;
  /** Action groups this action is in, transitively. */
  groups: string[];
  principalTypes: string[];
  resourceTypes: string[];
  context?: TypeJson;
}

/** A parsed Corral schema: the text for cedar-wasm, and what Corral checks in JavaScript. */
export interface CorralSchema {
  readonly text: string;
  readonly actions: ReadonlyMap<string, ActionInfo>;
  readonly entityTypes: ReadonlySet<string>;
  /** Each entity type's attributes (a Record type) and tags' type, when it has them. */
  readonly entityShapes: ReadonlyMap<string, { shape?: TypeJson; tags?: TypeJson }>;
  /** Resolves a common type's name to its definition. */
  readonly commonTypes: ReadonlyMap<string, TypeJson>;
}

const SCHEMA_URL = new URL('../schema/corral.cedarschema', import.meta.url);

let defaultSchema: CorralSchema | undefined;

/** Corral's own schema (packages/policy/schema/corral.cedarschema), parsed once. */
export function corralSchema(): CorralSchema {
  defaultSchema ??= parseSchema(readFileSync(SCHEMA_URL, 'utf8'));
  return defaultSchema;
}

/**
 * Parses a Cedar schema (human-readable syntax) with cedar-wasm and extracts the
 * action hierarchy and context types. Throws POLICY_SCHEMA_INVALID.
 */
export function parseSchema(text: string): CorralSchema {
  const answer = cedar.schemaToJsonWithResolvedTypes(text);
  if (answer.type !== 'success') {
    throw new PolicyError('POLICY_SCHEMA_INVALID', `the Cedar schema does not parse: ${answer.errors.map((e) => e.message).join('; ')}`);
  }
  const namespaces = Object.keys(answer.json);
  if (namespaces.length !== 1 || namespaces[0] !== '') {
    throw new PolicyError('POLICY_SCHEMA_INVALID', 'Corral reads schemas with one, empty, namespace');
  }
  const ns = answer.json['']!;
  const raw = new Map<string, { memberOf: string[]; appliesTo?: { principalTypes: string[]; resourceTypes: string[]; context?: TypeJson } }>();
  for (const [id, a] of Object.entries(ns.actions)) {
    raw.set(id, {
      memberOf: (a.memberOf ?? []).map((m) => m.id),
      ...(a.appliesTo ? { appliesTo: a.appliesTo as unknown as { principalTypes: string[]; resourceTypes: string[]; context?: TypeJson } } : {}),
    });
  }
  const actions = new Map<string, ActionInfo>();
  for (const [id, a] of raw) {
    const groups = new Set<string>();
    const queue = [...a.memberOf];
    while (queue.length > 0) {
      const g = queue.pop()!;
      if (groups.has(g)) continue;
      groups.add(g);
      queue.push(...(raw.get(g)?.memberOf ?? []));
    }
    actions.set(id, {
      id,
      groups: [...groups],
      principalTypes: a.appliesTo?.principalTypes ?? [],
      resourceTypes: a.appliesTo?.resourceTypes ?? [],
      ...(a.appliesTo?.context ? { context: a.appliesTo.context } : {}),
    });
  }
  const commonTypes = new Map<string, TypeJson>(Object.entries((ns.commonTypes ?? {}) as Record<string, TypeJson>));
  const entityShapes = new Map(Object.entries(ns.entityTypes as Record<string, { shape?: TypeJson; tags?: TypeJson }>).map(([name, t]) => [name, { ...(t.shape ? { shape: t.shape } : {}), ...(t.tags ? { tags: t.tags } : {}) }]));
  return { text, actions, entityTypes: new Set(Object.keys(ns.entityTypes)), entityShapes, commonTypes };
}

/**
 * Checks a JSON value against a schema type; returns the first problem as
 * text (with its path), or undefined when it fits. Entities must use the
 * explicit `{"__entity": {type, id}}` form.
 */
export function checkValue(schema: CorralSchema, type: TypeJson, value: unknown, path: string): string | undefined {
  return check(schema, type, value, () => path);
}

/** `path` is built only when a problem is reported: the decision hot path checks every request. */
function check(schema: CorralSchema, type: TypeJson, value: unknown, path: () => string): string | undefined {
  const t = resolve(schema, type);
  switch (t.type) {
    case 'String':
      return typeof value === 'string' ? undefined : `${path()} must be a string`;
    case 'Long':
      return Number.isSafeInteger(value) ? undefined : `${path()} must be an integer`;
    case 'Boolean':
      return typeof value === 'boolean' ? undefined : `${path()} must be true or false`;
    case 'Set': {
      if (!Array.isArray(value)) return `${path()} must be an array`;
      for (let i = 0; i < value.length; i++) {
        const bad = check(schema, t.element!, value[i], () => `${path()}[${i}]`);
        if (bad) return bad;
      }
      return undefined;
    }
    case 'Record': {
      if (!isPlainObject(value)) return `${path()} must be an object`;
      const attributes = t.attributes ?? {};
      for (const key in value) {
        if (!Object.hasOwn(attributes, key)) return `${path()}.${key} is not in the schema`;
      }
      for (const key in attributes) {
        const attr = attributes[key]!;
        if (!Object.hasOwn(value, key)) {
          if (attr.required === false) continue;
          return `${path()}.${key} is required`;
        }
        const bad = check(schema, attr, value[key], () => `${path()}.${key}`);
        if (bad) return bad;
      }
      return undefined;
    }
    case 'Entity': {
      // Only key: Cedar reads {"__entity": {…}, "x": 1} as a record, not an entity.
      if (!isPlainObject(value) || !isPlainObject(value.__entity) || Object.keys(value).length !== 1) return `${path()} must be {"__entity": {"type", "id"}}`;
      const e = value.__entity;
      if (e.type !== t.name || typeof e.id !== 'string') return `${path()} must be an entity of type ${t.name}`;
      return undefined;
    }
    default:
      return `${path()} has a type Corral does not check (${t.type})`;
  }
}

/**
 * The first place in `value` (data that fits `type`: Cedar's schema-based
 * parse took it) where an entity or an extension value is written in the
 * form Cedar reads only with a schema — `{"type", "id"}` for
 * `{"__entity": {"type", "id"}}`, `{"fn", "arg"}` for `{"__extn": {…}}` —
 * as a problem naming its path, or undefined. Corral's evaluator and
 * cedar-wasm at decision time read data without the schema, and so would
 * read such a value as a record.
 */
export function implicitEscape(schema: CorralSchema, type: TypeJson, value: unknown, path: string): string | undefined {
  const t = resolve(schema, type);
  switch (t.type) {
    case 'String':
    case 'Long':
    case 'Boolean':
      return undefined;
    case 'Set': {
      if (!Array.isArray(value) || t.element === undefined) return undefined;
      for (let i = 0; i < value.length; i++) {
        const bad = implicitEscape(schema, t.element, value[i], `${path}[${i}]`);
        if (bad) return bad;
      }
      return undefined;
    }
    case 'Record': {
      if (!isPlainObject(value)) return undefined;
      for (const [key, attr] of Object.entries(t.attributes ?? {})) {
        if (!Object.hasOwn(value, key)) continue;
        const bad = implicitEscape(schema, attr, value[key], `${path}.${key}`);
        if (bad) return bad;
      }
      return undefined;
    }
    case 'Entity':
      return isPlainObject(value) && !Object.hasOwn(value, '__entity') ? `${path} names an entity as {"type", "id"}; write {"__entity": {"type", "id"}}, which Corral reads as an entity (it would read this as a record)` : undefined;
    default:
      // An extension type (ipaddr, decimal, datetime, duration).
      return isPlainObject(value) && !Object.hasOwn(value, '__extn') ? `${path} gives a ${t.type} value as {"fn", "arg"}; write {"__extn": {"fn", "arg"}}, which Corral reads as one (it would read this as a record)` : undefined;
  }
}

function resolve(schema: CorralSchema, type: TypeJson): TypeJson {
  let t = type;
  for (let depth = 0; depth < 16; depth++) {
    if (t.type === 'EntityOrCommon') {
      const name = t.name ?? '';
      if (schema.commonTypes.has(name)) t = schema.commonTypes.get(name)!;
      else if (schema.entityTypes.has(name)) return { type: 'Entity', name };
      else return { type: name };
      continue;
    }
    if (schema.commonTypes.has(t.type)) {
      t = schema.commonTypes.get(t.type)!;
      continue;
    }
    if (t.type === 'Bool') return { type: 'Boolean' };
    return t;
  }
  return t;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
