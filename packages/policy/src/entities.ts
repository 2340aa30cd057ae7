import { PolicyError } from './errors.ts';
import { cedar, describeCedarError, type EntityJson } from './lib/cedar.ts';
import { copyJson } from './lib/json.ts';
import { EntityRef, Opaque, Unsupported, entityKey, fromJson, type Value } from './lib/values.ts';
import { fieldsForm, isPlainObject, type CorralSchema } from './schema.ts';

const NO_ANCESTORS: ReadonlySet<string> = new Set();

/**
 * Most levels of parents above any entity: far above a real org chart (a
 * few dozen). cedar-wasm walks a hierarchy recursively on its fixed stack:
 * a chain of some 3,000 (or a loop that long) overflows it, and the trap
 * leaves cedar-wasm failing every later call in its thread.
 */
export const MAX_PARENT_DEPTH = 256;

/**
 * Most ancestor pairs in all: the sum over entities of how many ancestors
 * each has (Cedar's `in` relation, which cedar-wasm and Corral's store both
 * compute in full when the entities are loaded, at about 1–4 µs a pair).
 * A real org chart (10,000 humans each in 3 of 1,000 groups nested 5 deep,
 * each group in 1–3 groups above) has some 220,000; the limit leaves room
 * for an organisation several times that size (a load of 1–4 s: on the
 * gateway's thread at start, on a worker when a candidate is replayed or
 * activated, see storeOfCheckedEntities). Groups each a member of many
 * groups, layer on layer, reach millions within the depth limit (an 11-wide,
 * 256-deep layered graph: 3.9 million), and loading them held the loading
 * thread for tens of seconds.
 */
export const MAX_ANCESTOR_PAIRS = 1_000_000;

/**
 * Most parent links followed walking every entity's ancestors, entity by
 * entity, as cedar-wasm does when it loads them (at least one a pair, more
 * where groups share ancestors): bounds that walk's time as
 * MAX_ANCESTOR_PAIRS bounds what it keeps.
 */
export const MAX_PARENT_LINKS = 10_000_000;

interface StoredEntity {
  readonly uid: EntityRef;
  /** Attribute values, parsed once; Opaque where Corral does not model the value. */
  readonly attrs: ReadonlyMap<string, Value>;
  readonly parents: readonly string[];
}

/**
 * Entities read one at a time into the maps a store keeps: each snapshotted
 * (copyJson), its uid unique and not an action, its attributes parsed. What
 * the store's constructor reads before it checks the whole, and what
 * storeOfCheckedEntities reads in slices.
 */
class ReadEntities {
  readonly byKey = new Map<string, StoredEntity>();
  /** Each entity's Cedar JSON, and the keys its data names (parents, and entity references anywhere in its attributes and tags). */
  readonly jsonByKey = new Map<string, { json: EntityJson; names: readonly string[] }>();
  readonly json: EntityJson[] = [];

  /** Reads `raw`, entities[index]. Throws POLICY_ENTITIES_INVALID. */
  add(raw: unknown, index: number): void {
    const entity = snapshotEntity(copyJson(raw, (problem) => new PolicyError('POLICY_ENTITIES_INVALID', `entities[${index}] ${problem}`)), index);
    const uid = new EntityRef(entity.uid.type, entity.uid.id);
    if (this.byKey.has(uid.key)) throw new PolicyError('POLICY_ENTITIES_INVALID', `entity ${uid.key} appears twice`);
    if (uid.type === 'Action') throw new PolicyError('POLICY_ENTITIES_INVALID', `entity ${uid.key}: actions come from the schema`);
    const attrs = new Map<string, Value>();
    for (const [k, v] of Object.entries(entity.attrs)) {
      try {
        attrs.set(k, fromJson(v));
      } catch (error) {
        if (!(error instanceof Unsupported)) throw error;
        attrs.set(k, new Opaque());
      }
    }
    const parents = entity.parents.map((p) => entityKey(p.type, p.id));
    this.byKey.set(uid.key, { uid, attrs, parents });
    this.jsonByKey.set(uid.key, { json: entity as EntityJson, names: [...entityKeysIn(entity.tags ?? {}, entityKeysIn(entity.attrs, new Set(parents)))] });
    this.json.push(entity as EntityJson);
  }

  /** Adds the schema's actions and their groups, after every entity of the data. */
  addActions(schema: CorralSchema): void {
    for (const action of schema.actions.values()) {
      const uid = new EntityRef('Action', action.id);
      const parents = action.groups.map((g) => ({ type: 'Action', id: g }));
      this.byKey.set(uid.key, { uid, attrs: new Map(), parents: parents.map((p) => entityKey(p.type, p.id)) });
      const actionJson: EntityJson = { uid: { type: 'Action', id: action.id }, attrs: {}, parents };
      this.jsonByKey.set(uid.key, { json: actionJson, names: parents.map((p) => entityKey(p.type, p.id)) });
      this.json.push(actionJson);
    }
  }

  /**
   * Checks the whole: the hierarchy's depth, loops and weight, and that
   * cedar-wasm reads the entities (fitting `schema` when `typed`). Throws
   * POLICY_ENTITIES_INVALID. Seconds for a large organisation (cedar-wasm
   * computes the ancestor relation in full).
   */
  check(schema: CorralSchema, typed: boolean): void {
    // Before cedar-wasm sees the hierarchy: its walk of a chain thousands long traps. (Nesting inside an entity is bounded by copyJson.)
    const problem = hierarchyProblem(new Map([...this.byKey].map(([key, e]) => [key, e.parents])));
    if (problem?.kind === 'deep') {
      throw new PolicyError('POLICY_ENTITIES_INVALID', `entity ${problem.key} has more than ${MAX_PARENT_DEPTH} levels of parents above it (Corral takes at most ${MAX_PARENT_DEPTH}); make it a member of the groups higher up directly`);
    }
    if (problem?.kind === 'cycle') {
      throw new PolicyError('POLICY_ENTITIES_INVALID', `entity ${problem.key} is its own ancestor (its parents lead back to it); remove a parent on that loop`);
    }
    // Before cedar-wasm computes the ancestor relation: within the depth limit it can still be millions of pairs, seconds of work.
    const weight = hierarchyWeight(new Map([...this.byKey].map(([key, e]) => [key, e.parents])));
    if (weight.over !== undefined) {
      const what = weight.pairs > MAX_ANCESTOR_PAIRS
        ? `more than ${MAX_ANCESTOR_PAIRS} ancestors in all (counting each entity's ancestors, summed over entities)`
        : `more than ${MAX_PARENT_LINKS} parent links to follow finding each entity's ancestors (summed over entities)`;
      throw new PolicyError('POLICY_ENTITIES_INVALID', `the entities have ${what}, passed at entity ${weight.over} (Corral takes at most ${MAX_ANCESTOR_PAIRS} ancestors and ${MAX_PARENT_LINKS} links); make entities members of fewer, flatter groups`);
    }
    // What cedar-wasm cannot read (a null, a fraction) would fail every decision on the fallback path, long after this store was accepted.
    // Policies are validated against the schema, so they trust data to fit it: a status that is a set compares
    // unequal to "suspended", an agent of a misspelt type has none of its groups, and a forbid on either never applies.
    const parsed = cedar.checkParseEntities({ entities: this.json, ...(typed ? { schema: schema.text } : {}) } as never);
    if (parsed.type !== 'success') {
      throw new PolicyError('POLICY_ENTITIES_INVALID', `the entities do not fit the schema or Cedar cannot read them: ${parsed.errors.map(describeCedarError).join('; ')}`);
    }
    // Held to the schema, Cedar reads ["Group", "g"] as an entity where one is declared; decisions read data without it, as a set.
    if (typed) {
      for (const [index, entity] of this.json.entries()) {
        const uid = entity.uid as { type: string; id: string };
        const { shape, tags } = schema.entityShapes.get(uid.type) ?? {};
        const where = `entities[${index}]`;
        const bad = (shape && fieldsForm(schema, shape, entity.attrs, `${where}.attrs`)) || (tags && fieldsForm(schema, { type: 'Record', attributes: Object.fromEntries(Object.keys(entity.tags ?? {}).map((k) => [k, tags])) }, entity.tags ?? {}, `${where}.tags`));
        if (bad) throw new PolicyError('POLICY_ENTITIES_INVALID', `entity ${entityKey(uid.type, uid.id)}: ${bad}`);
      }
    }
  }
}

/** Entities read and checked: what a store is made of. Only this module makes them. */
class CheckedEntities {
  readonly #read: ReadEntities;
  constructor(read: ReadEntities) {
    this.#read = read;
  }

  get read(): ReadEntities {
    return this.#read;
  }

  /** Whether `value` is one: a brand check, which no proxy or look-alike object passes. */
  static is(value: unknown): value is CheckedEntities {
    return typeof value === 'object' && value !== null && #read in value;
  }
}

/**
 * The entities decisions are made about (agents, humans, groups, nodes, files …),
 * parsed once. Immutable: a change is a new store with a new `version`.
 * Action entities and their groups come from the schema.
 */
export class EntityStore {
  readonly version: number;
  /** The entities in Cedar's JSON form, as handed to cedar-wasm on the fallback path. */
  readonly json: readonly EntityJson[];
  readonly #byKey: ReadonlyMap<string, StoredEntity>;
  /** Each entity's Cedar JSON, and the keys its data names (parents, and entity references anywhere in its attributes). */
  readonly #jsonByKey: ReadonlyMap<string, { json: EntityJson; names: readonly string[] }>;
  readonly #ancestors = new Map<string, ReadonlySet<string>>();

  /**
   * Throws POLICY_ENTITIES_INVALID on malformed input (an entity with a key
   * other than uid, attrs, parents and tags among it), a duplicate uid, or
   * (unless `typed` is false) an entity that does not fit `schema`: its type,
   * attributes and parents' types; and on a hierarchy deeper than
   * MAX_PARENT_DEPTH, with a loop, or heavier than MAX_ANCESTOR_PAIRS or
   * MAX_PARENT_LINKS (see hierarchyWeight).
   */
  constructor(schema: CorralSchema, entities: unknown, version = 0, typed = true) {
    // Inside this module only: entities read and checked already (storeOfCheckedEntities).
    const read = (CheckedEntities.is(entities) ? entities : readAndCheck(schema, entities, typed)).read;
    this.#byKey = read.byKey;
    this.#jsonByKey = read.jsonByKey;
    this.json = read.json;
    this.version = version;
  }

  get(key: string): StoredEntity | undefined {
    return this.#byKey.get(key);
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /**
   * The entities Cedar can read evaluating a policy whose entity values all
   * come from `roots` (the request's principal, action, resource and context,
   * the policy's literals): those, and every entity their data names, their
   * parents and their references in attributes, transitively. Handed to
   * cedar-wasm in place of every entity: what it is not handed, it could
   * never have reached.
   */
  reachable(roots: Iterable<string>): EntityJson[] {
    const seen = new Set<string>();
    const out: EntityJson[] = [];
    const queue = [...roots];
    while (queue.length > 0) {
      const key = queue.pop()!;
      if (seen.has(key)) continue;
      seen.add(key);
      const entity = this.#jsonByKey.get(key);
      if (!entity) continue;
      out.push(entity.json);
      for (const name of entity.names) if (!seen.has(name)) queue.push(name);
    }
    return out;
  }

  /** Every entity `key` is in, transitively (not including itself). Memoised for stored entities only: request ids are the attacker's, and unbounded. */
  ancestors(key: string): ReadonlySet<string> {
    const known = this.#ancestors.get(key);
    if (known) return known;
    if (!this.#byKey.has(key)) return NO_ANCESTORS;
    const seen = new Set<string>();
    const queue = [...(this.#byKey.get(key)?.parents ?? [])];
    while (queue.length > 0) {
      const k = queue.pop()!;
      if (seen.has(k)) continue;
      seen.add(k);
      queue.push(...(this.#byKey.get(k)?.parents ?? []));
    }
    this.#ancestors.set(key, seen);
    return seen;
  }

  /** Cedar's `in`: equal, or an ancestor. */
  isIn(key: string, ancestorKey: string): boolean {
    return key === ancestorKey || this.ancestors(key).has(ancestorKey);
  }
}

/** `entities` read whole, then checked whole; throws POLICY_ENTITIES_INVALID. */
function readAndCheck(schema: CorralSchema, entities: unknown, typed: boolean): CheckedEntities {
  if (!Array.isArray(entities)) throw new PolicyError('POLICY_ENTITIES_INVALID', 'entities must be a JSON array');
  const read = new ReadEntities();
  for (const [index, raw] of entities.entries()) read.add(raw, index);
  read.addActions(schema);
  read.check(schema, typed);
  return new CheckedEntities(read);
}

/** Longest this thread reads entities for storeOfCheckedEntities before it lets the event loop run, ms. */
const SLICE_MS = 5;

/**
 * A store of `entities` (held to `schema`), for data a store was made of
 * already — on another thread, from the same JSON text — and so passed every
 * check the constructor makes. Each entity is read as the constructor reads
 * it (snapshot, uid, attributes), in slices of about SLICE_MS between which
 * this yields to the event loop; the checks of the whole are not made again
 * (hierarchy depth, loops and weight, and cedar-wasm's parse, which computes
 * the ancestor relation in full): they held this thread 1–4 s for a large
 * organisation. The store decides as the constructor's would: the maps it
 * holds are the same, and ancestors are found when a decision asks, as
 * there. Not exported from the package: a caller must have had the same
 * data accepted first (see decisionPointOffThread). Rejects with
 * POLICY_ENTITIES_INVALID for what an entity's own reading refuses.
 */
export async function storeOfCheckedEntities(schema: CorralSchema, entities: unknown, version: number): Promise<EntityStore> {
  if (!Array.isArray(entities)) throw new PolicyError('POLICY_ENTITIES_INVALID', 'entities must be a JSON array');
  const read = new ReadEntities();
  let sliceStart = performance.now();
  for (const [index, raw] of entities.entries()) {
    read.add(raw, index);
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
  read.addActions(schema);
  return new EntityStore(schema, new CheckedEntities(read), version);
}

/** What is wrong with an entity hierarchy: an entity too deep in it, or one its own ancestor. */
export interface HierarchyProblem {
  key: string;
  kind: 'deep' | 'cycle';
}

/**
 * The first problem in the hierarchy `parents` (each entity's key → its
 * parents' keys, in the order given): an entity with more than `limit`
 * levels of parents above it on some path, named as the first such entity
 * the walk starts from, or an entity that is its own ancestor. A parent
 * with no entry has no parents (Cedar takes a parent that is not in the
 * data). A loop is named before an entity too deep. Walks without
 * recursion, each entity once: O(entities + parents).
 */
export function hierarchyProblem(parents: ReadonlyMap<string, readonly string[]>, limit: number = MAX_PARENT_DEPTH): HierarchyProblem | undefined {
  /** Levels of parents above each entity walked already; ON_PATH while it is on the path being walked. */
  const heights = new Map<string, number>();
  const ON_PATH = -1;
  // A loop is the more useful thing to name (a deep chain may be one), so the walk goes on past the first entity too deep.
  let deep: HierarchyProblem | undefined;
  for (const [start, startParents] of parents) {
    if (heights.has(start)) continue;
    heights.set(start, ON_PATH);
    const path = [{ key: start, parents: startParents, next: 0, height: 0 }];
    while (path.length > 0) {
      const top = path.at(-1)!;
      if (top.next < top.parents.length) {
        const parent = top.parents[top.next++]!;
        const known = heights.get(parent);
        const own = parents.get(parent);
        if (known === ON_PATH) return { key: parent, kind: 'cycle' };
        if (known !== undefined) {
          top.height = Math.max(top.height, known + 1);
        } else if (own === undefined) {
          top.height = Math.max(top.height, 1);
        } else {
          heights.set(parent, ON_PATH);
          path.push({ key: parent, parents: own, next: 0, height: 0 });
        }
      } else {
        path.pop();
        heights.set(top.key, top.height);
        const below = path.at(-1);
        if (below) below.height = Math.max(below.height, top.height + 1);
      }
      // The entity the walk started from is at least this many levels below the top of the path.
      const current = path.at(-1);
      if (current && path.length - 1 + current.height > limit) deep ??= { key: start, kind: 'deep' };
    }
  }
  return deep;
}

/** How much the ancestor relation of a hierarchy weighs, counted up to a limit. */
export interface HierarchyWeight {
  /** Sum over entities of the number of ancestors each has (itself only when a loop leads back to it), up to where counting stopped. */
  pairs: number;
  /** Parent links followed walking each entity's ancestors, up to where counting stopped. */
  links: number;
  /** The entity whose ancestors passed a limit, when one was passed (it lies on a heaviest path); counting stopped there. */
  over?: string;
}

/**
 * Counts the ancestor relation of the hierarchy `parents` (each entity's key
 * → its parents' keys; a parent with no entry has no parents): for each
 * entity in turn, its ancestors (each once, however many paths reach it) and
 * the parent links followed to find them. Stops as soon as `pairs` passes
 * `limits.pairs` or `links` passes `limits.links`, naming the entity being
 * walked, so its time is O(entities + limits). Without recursion; a loop of
 * parents is counted, not followed forever (hierarchyProblem names loops).
 */
export function hierarchyWeight(
  parents: ReadonlyMap<string, readonly string[]>,
  limits: { pairs: number; links: number } = { pairs: MAX_ANCESTOR_PAIRS, links: MAX_PARENT_LINKS },
): HierarchyWeight {
  // Entities as numbers, and every entity's parents in one array of numbers (entity n's at first[n] … first[n + 1]): the walk below touches no strings.
  const index = new Map<string, number>();
  const keys = [...parents.keys()];
  for (const key of keys) index.set(key, index.size);
  let linkCount = 0;
  for (const own of parents.values()) linkCount += own.length;
  const first = new Int32Array(keys.length + 1);
  const up = new Int32Array(linkCount);
  let at = 0;
  for (const [n, own] of [...parents.values()].entries()) {
    first[n] = at;
    for (const key of own) {
      let parent = index.get(key);
      if (parent === undefined) index.set(key, (parent = index.size));
      up[at++] = parent;
    }
  }
  first[keys.length] = at;
  /** seenBy[n] is the walk (1 + the entity's number) that last reached n: one array for every walk, no set per entity. */
  const seenBy = new Int32Array(index.size);
  const stack = new Int32Array(index.size);
  let pairs = 0;
  let links = 0;
  for (let start = 0; start < keys.length; start++) {
    const walk = start + 1;
    let top = 0;
    stack[top++] = start;
    while (top > 0) {
      const n = stack[--top]!;
      // A parent with no entry of its own has no parents.
      if (n >= keys.length) continue;
      const end = first[n + 1]!;
      links += end - first[n]!;
      for (let i = first[n]!; i < end; i++) {
        const parent = up[i]!;
        if (seenBy[parent] === walk) continue;
        seenBy[parent] = walk;
        pairs++;
        // The walk began by following start's own parents: reached again, it is counted as its own ancestor, not walked twice.
        if (parent !== start) stack[top++] = parent;
      }
      if (pairs > limits.pairs || links > limits.links) return { pairs, links, over: keys[start]! };
    }
  }
  return { pairs, links };
}

/**
 * Adds to `into` the key of every entity `json` (Cedar JSON: entity data, a
 * context, a policy's JSON form) can name: each `{"__entity": {type, id}}`,
 * and — more than Cedar reads as an entity, which only makes the set larger —
 * each object with string `type` and `id`. Returns `into`.
 */
export function entityKeysIn(json: unknown, into: Set<string>): Set<string> {
  if (Array.isArray(json)) {
    for (const v of json) entityKeysIn(v, into);
  } else if (typeof json === 'object' && json !== null) {
    const o = json as Record<string, unknown>;
    if (typeof o.type === 'string' && typeof o.id === 'string') into.add(entityKey(o.type, o.id));
    for (const v of Object.values(o)) entityKeysIn(v, into);
  }
  return into;
}

/** The keys of an entity in Cedar's JSON form. */
const ENTITY_KEYS: ReadonlySet<string> = new Set(['uid', 'attrs', 'parents', 'tags']);

/**
 * One entity of the data, checked for its shape: a key other than uid,
 * attrs, parents and tags is refused (a misspelt "parent" would drop the
 * entity's groups, and with them every forbid on them), and tags are kept
 * for cedar-wasm, which reads them (and refuses them on a type the schema
 * gives none). Throws POLICY_ENTITIES_INVALID naming `entities[index]`.
 */
function snapshotEntity(raw: unknown, index: number): { uid: { type: string; id: string }; attrs: Record<string, unknown>; parents: { type: string; id: string }[]; tags?: Record<string, unknown> } {
  const where = `entities[${index}]`;
  if (!isPlainObject(raw)) throw new PolicyError('POLICY_ENTITIES_INVALID', `${where} must be an object`);
  const unknown = Object.keys(raw).find((key) => !ENTITY_KEYS.has(key));
  if (unknown !== undefined) {
    const named = JSON.stringify(unknown.length > 64 ? `${unknown.slice(0, 64)}…` : unknown);
    throw new PolicyError('POLICY_ENTITIES_INVALID', `${where} has the key ${named}; an entity has only uid, attrs, parents and tags`);
  }
  const uid = snapshotUid(raw.uid, `${where}.uid`);
  const attrs = raw.attrs ?? {};
  if (!isPlainObject(attrs)) throw new PolicyError('POLICY_ENTITIES_INVALID', `${where}.attrs must be an object`);
  const parents = raw.parents ?? [];
  if (!Array.isArray(parents)) throw new PolicyError('POLICY_ENTITIES_INVALID', `${where}.parents must be an array`);
  const tags = raw.tags;
  if (tags !== undefined && !isPlainObject(tags)) throw new PolicyError('POLICY_ENTITIES_INVALID', `${where}.tags must be an object`);
  return { uid, attrs, parents: parents.map((p, i) => snapshotUid(p, `${where}.parents[${i}]`)), ...(tags === undefined ? {} : { tags }) };
}

function snapshotUid(raw: unknown, where: string): { type: string; id: string } {
  const inner = isPlainObject(raw) && isPlainObject(raw.__entity) ? raw.__entity : raw;
  if (!isPlainObject(inner) || typeof inner.type !== 'string' || typeof inner.id !== 'string' || inner.type === '') {
    throw new PolicyError('POLICY_ENTITIES_INVALID', `${where} must be {"type", "id"} strings`);
  }
  return { type: inner.type, id: inner.id };
}
