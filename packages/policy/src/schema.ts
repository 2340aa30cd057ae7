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
 * text (with its path), or undefined when it fits. Entities must be written
 * in the one form Cedar reads alike with and without a schema (see
 * schemaOnlyForm): `{"__entity": {"type", "id"}}`. Extension values
 * (ipaddr, decimal, datetime, duration) are refused: Corral does not check them.
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
      const escape = escapeField(value, path);
      if (escape) return escape;
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
      const bad = entityForm(t.name!, value);
      if (bad) return `${path()} ${bad}`;
      if ((value as { __entity: { type: string } }).__entity.type !== t.name) return `${path()} must be an entity of type ${t.name}`;
      return undefined;
    }
    default:
      return `${path()} has a type Corral does not check (${t.type})`;
  }
}

/**
 * Keys Cedar reads as an escape when one is an object's only key and no
 * schema says otherwise: `{"__entity": {"type", "id"}}` an entity,
 * `{"__extn": {"fn", "arg"}}` an extension value (`__expr` is refused).
 */
const ESCAPES: ReadonlySet<string> = new Set(['__entity', '__extn', '__expr']);

/** The function Cedar writes each extension type's values with, in `{"__extn": {"fn", "arg"}}`. */
const EXTENSION_FNS: ReadonlyMap<string, string> = new Map([
  ['ipaddr', 'ip'],
  ['decimal', 'decimal'],
  ['datetime', 'datetime'],
  ['duration', 'duration'],
]);

/**
 * The first place in `value` (data that fits `type`: Cedar's schema-based
 * parse took it) written in a form Cedar reads as `type` only when it reads
 * with the schema, as a problem naming its path and the form to write, or
 * undefined. Corral's evaluator and cedar-wasm at decision time read data
 * without the schema, and so read such a value as something else: an
 * entity written `["Group", "g"]` as a set, `{"type", "id"}` or
 * `{"__entity": {…}, "x": 1}` as a record, an ipaddr written "10.0.0.1" as
 * a string; a record whose one field is named `__entity` as an entity. And
 * `principal.manager == Group::"g"`, true to Cedar with the schema, is false,
 * so a forbid on it never applies. Held to one form each, data is read alike
 * by every reader:
 * - an entity: `{"__entity": {"type", "id"}}` (strings), no key beside or inside;
 * - an extension value: `{"__extn": {"fn", "arg"}}` (strings, fn the type's
 *   constructor: ip, decimal, datetime, duration), no key beside or inside;
 * - a record: no field named `__entity`, `__extn` or `__expr`.
 * A type Corral does not know is a problem too (this check fails closed).
 */
function schemaOnlyForm(schema: CorralSchema, type: TypeJson, value: unknown, path: string): string | undefined {
  const t = resolve(schema, type);
  switch (t.type) {
    case 'String':
    case 'Long':
    case 'Boolean':
      return undefined;
    case 'Set': {
      if (!Array.isArray(value) || t.element === undefined) return undefined;
      for (let i = 0; i < value.length; i++) {
        const bad = schemaOnlyForm(schema, t.element, value[i], `${path}[${i}]`);
        if (bad) return bad;
      }
      return undefined;
    }
    case 'Record':
      return isPlainObject(value) ? escapeField(value, () => path) ?? fieldsForm(schema, t, value, path) : undefined;
    case 'Entity': {
      const bad = entityForm(t.name!, value);
      return bad && `${path} ${bad}`;
    }
    default: {
      const fn = EXTENSION_FNS.get(t.type);
      if (fn === undefined) return `${path} has a type Corral does not check (${t.type})`;
      const bad = extensionForm(t.type, fn, value);
      return bad && `${path} ${bad}`;
    }
  }
}

/**
 * As schemaOnlyForm, for the attributes (or tags) of one entity: `fields`
 * is a map of names, not a record value, so a name such as `__entity` is
 * no escape there. `shape` is a Record type.
 */
export function fieldsForm(schema: CorralSchema, shape: TypeJson, fields: Readonly<Record<string, unknown>>, path: string): string | undefined {
  const t = resolve(schema, shape);
  for (const [key, attr] of Object.entries(t.attributes ?? {})) {
    if (!Object.hasOwn(fields, key)) continue;
    const bad = schemaOnlyForm(schema, attr, fields[key], `${path}.${key}`);
    if (bad) return bad;
  }
  return undefined;
}

/** A field of record `value` named as an escape, as a problem, or undefined. */
function escapeField(value: Readonly<Record<string, unknown>>, path: () => string): string | undefined {
  for (const key of Object.keys(value)) {
    if (ESCAPES.has(key)) return `${path()}.${key} is a field named as Cedar's "${key}" escape, which a reader without the schema may take for one (Corral's decisions read data without it); give the field another name in the schema`;
  }
  return undefined;
}

/** Why `value` is not written `{"__entity": {"type", "id"}}`, as the rest of a sentence about it, or undefined. */
function entityForm(name: string, value: unknown): string | undefined {
  const canonical = `write {"__entity": {"type": ${JSON.stringify(name)}, "id": …}}`;
  const read = (what: string, as: string) => `${what}, which Cedar reads as an entity only with the schema (Corral's decisions read data without it, as ${as}); ${canonical}`;
  if (Array.isArray(value)) return read('is an array', 'a set');
  if (typeof value === 'string') return read('is a string', 'a string');
  if (!isPlainObject(value)) return `is not an entity; ${canonical}`;
  if (!Object.hasOwn(value, '__entity')) return read('is an object without "__entity"', 'a record');
  if (Object.keys(value).length !== 1) return read('has keys beside "__entity"', 'a record');
  const inner = value.__entity;
  if (!isPlainObject(inner) || typeof inner.type !== 'string' || typeof inner.id !== 'string' || Object.keys(inner).length !== 2) {
    return `holds in "__entity" other than "type" and "id" (strings, and nothing else); ${canonical}`;
  }
  return undefined;
}

/** Why `value` is not written `{"__extn": {"fn": fn, "arg"}}`, as the rest of a sentence about it, or undefined. */
function extensionForm(type: string, fn: string, value: unknown): string | undefined {
  const canonical = `write {"__extn": {"fn": "${fn}", "arg": …}}`;
  const read = (what: string, as: string) => `${what}, which Cedar reads as ${type === 'ipaddr' ? 'an' : 'a'} ${type} only with the schema (Corral's decisions read data without it, as ${as}); ${canonical}`;
  if (Array.isArray(value)) return read('is an array', 'a set');
  if (typeof value === 'string') return read('is a string', 'a string');
  if (!isPlainObject(value)) return `is not ${type === 'ipaddr' ? 'an' : 'a'} ${type}; ${canonical}`;
  if (!Object.hasOwn(value, '__extn')) return read('is an object without "__extn"', 'a record');
  if (Object.keys(value).length !== 1) return read('has keys beside "__extn"', 'a record');
  const inner = value.__extn;
  if (!isPlainObject(inner) || inner.fn !== fn || typeof inner.arg !== 'string' || Object.keys(inner).length !== 2) {
    return `holds in "__extn" other than "fn": "${fn}" and a string "arg" (and nothing else); ${canonical}`;
  }
  return undefined;
}

/**
 * `type` with common types followed (a common type comes before an entity
 * or extension type of its name, as in Cedar), a Cedar type written in full
 * (`__cedar::ipaddr`, `{"type": "Extension", "name": "ipaddr"}`) by its short
 * name, and Bool as Boolean. A chain of common types longer than 16 is left
 * unresolved, as a type no check knows.
 */
function resolve(schema: CorralSchema, type: TypeJson): TypeJson {
  let t = type;
  for (let depth = 0; depth < 16; depth++) {
    if (t.type === 'EntityOrCommon') {
      const name = t.name ?? '';
      if (schema.commonTypes.has(name)) t = schema.commonTypes.get(name)!;
      else if (schema.entityTypes.has(name)) return { type: 'Entity', name };
      else t = { type: name };
      continue;
    }
    if (schema.commonTypes.has(t.type)) {
      t = schema.commonTypes.get(t.type)!;
      continue;
    }
    if (t.type === 'Extension') return { type: t.name ?? '' };
    if (t.type.startsWith('__cedar::')) t = { ...t, type: t.type.slice('__cedar::'.length) };
    if (t.type === 'Bool') return { ...t, type: 'Boolean' };
    return t;
  }
  return t;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
