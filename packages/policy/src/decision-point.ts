import { compilePolicy, scopeMatches, type CompiledPolicy, type Env, type ScopeConstraint } from './compile.ts';
import { EntityStore, entityKeysIn, storeOfCheckedEntities } from './entities.ts';
import { PolicyError } from './errors.ts';
import { cedar, describeCedarError } from './lib/cedar.ts';
import { CedarRecord, EntityRef, EvalError, Unsupported, entityKey, fromJson } from './lib/values.ts';
import { loadPolicyDir, type LoadedPolicy, type PolicySet } from './load.ts';
import { parseRequest, parseRequests, type DecisionRequest } from './request.ts';
import { corralSchema, type CorralSchema } from './schema.ts';

/** A decision: allow, deny, or ask a human. */
export type DecisionKind = 'allow' | 'deny' | 'ask';

export interface Decision {
  readonly decision: DecisionKind;
  /** The ids of the policies that made this decision (empty for default deny). */
  readonly policies: readonly string[];
  /** One sentence for a human. */
  readonly reason: string;
  /** For `ask`: how many distinct approvers must approve. */
  readonly quorum?: number;
  /** Policies whose evaluation failed (Cedar skips such a permit; Corral denies on such a forbid). */
  readonly errors: readonly { policyId: string; message: string }[];
  /** Which evaluators answered: Corral's compiled predicates alone, or cedar-wasm for some or all of the policies evaluated. */
  readonly engine: 'compiled' | 'cedar';
  /** The fingerprint of the policy set that decided. */
  readonly policySet: string;
  /** How many policies were evaluated: the slice whose scope could match the request. */
  readonly evaluated: number;
}

/**
 * What decides requests: one request, for each of several resources at once
 * (all the spellings of one program a policy could name). A DecisionPoint is
 * one; so is anything that hands on to one.
 */
export interface Decider {
  decideEach(input: unknown, resources: readonly unknown[]): Decision[];
}

/** What Cedar semantics say about a request: which forbids and permits are satisfied, which policies errored. */
export interface Evaluation {
  forbids: string[];
  permits: string[];
  errors: { policyId: string; message: string }[];
  /** Policies evaluated. */
  evaluated?: number;
}

interface Entry {
  policy: LoadedPolicy;
  compiled: CompiledPolicy | undefined;
  /** The entities the policy names (its literals), for cedar-wasm's share of the entities. */
  names: readonly string[];
}

interface Bucket {
  byKey: Map<string, Entry[]>;
  byType: Map<string, Entry[]>;
  any: Entry[];
}

interface Active {
  set: PolicySet;
  byId: Map<string, LoadedPolicy>;
  buckets: Map<string, Bucket>;
  /** Preparsed cedar-wasm sets of the whole set: the reference `evaluate(…, 'cedar')` answers from. */
  cedarForbids: string;
  cedarPermits: string;
  /** Preparsed cedar-wasm sets of the policies the compiler did not cover: what decisions hand to cedar-wasm. */
  uncompiledForbids: string;
  uncompiledPermits: string;
  uncompiled: number;
}

const ANY_ACTION = '*';
let instances = 0;

/** The names cedar-wasm keeps one slot of a decision point's pre-parsed sets under. */
function slotNames(instance: number, slot: number): SlotNames {
  const name = (part: string) => `corral-${instance}-${slot}-${part}`;
  return { forbids: name('forbids'), permits: name('permits'), uncompiledForbids: name('uncompiled-forbids'), uncompiledPermits: name('uncompiled-permits') };
}

interface SlotNames {
  forbids: string;
  permits: string;
  uncompiledForbids: string;
  uncompiledPermits: string;
}

/** cedar-wasm never frees a pre-parsed set; a dropped decision point's two slots are emptied instead (a gateway makes one per candidate). */
const released = new FinalizationRegistry((instance: number) => {
  for (const slot of [0, 1]) {
    for (const name of Object.values(slotNames(instance, slot))) cedar.preparsePolicySet(name, { staticPolicies: {} });
  }
});

/** Decision points that take entities not held to the schema. Not exported from the package: see acceptIllTypedEntities. */
const untyped = new WeakSet<DecisionPoint>();

/**
 * Lets `point` take entity data that does not fit its schema. Not exported
 * from the package: the differential tests use it to hand ill-typed data to
 * both evaluators.
 */
export function acceptIllTypedEntities(point: DecisionPoint): DecisionPoint {
  untyped.add(point);
  return point;
}

/** Swaps a decision point's entity store: set in DecisionPoint's static block, for setCheckedEntities. */
let replaceStore: (point: DecisionPoint, store: EntityStore) => void;

/**
 * As `point.setEntities(entities)`, for entities a decision point of the same
 * schema took already — on a worker thread, parsed from the same JSON text —
 * so without checking the whole again: read in slices, the event loop
 * running between them (storeOfCheckedEntities). Decisions are the same as
 * after setEntities. Not exported from the package: only for data accepted
 * first (decisionPointOffThread). Rejects with POLICY_ENTITIES_INVALID,
 * keeping the old data.
 */
export async function setCheckedEntities(point: DecisionPoint, entities: unknown): Promise<void> {
  replaceStore(point, await storeOfCheckedEntities(point.schema, entities, point.entities.version + 1));
}

/**
 * Corral's policy decision point. Holds one active policy set and one entity
 * store; `decide` is synchronous. Policies are sliced by action and principal
 * so a decision evaluates only the policies whose scope can match, compiled
 * to JavaScript where possible; cedar-wasm evaluates the rest of that slice
 * alone, with only the entities the request can reach.
 */
export class DecisionPoint implements Decider {
  readonly schema: CorralSchema;
  #active: Active | undefined;
  #entities: EntityStore;
  #now: () => number;
  /** cedar-wasm keeps pre-parsed sets by name: two slots per decision point, the active one and the one a load fills. */
  readonly #instance = ++instances;
  #slot = 0;

  static {
    replaceStore = (point, store) => {
      point.#entities = store;
    };
  }

  constructor(options: { schema?: CorralSchema; now?: () => number } = {}) {
    this.schema = options.schema ?? corralSchema();
    this.#entities = new EntityStore(this.schema, []);
    this.#now = options.now ?? Date.now;
    released.register(this, this.#instance);
  }

  /** The active set's fingerprint, or undefined before the first load. */
  get policySet(): PolicySet | undefined {
    return this.#active?.set;
  }

  get entities(): EntityStore {
    return this.#entities;
  }

  /** Policies the compiler did not cover (evaluated by cedar-wasm when they apply). */
  get uncompiledCount(): number {
    return this.#active?.uncompiled ?? 0;
  }

  /** Makes `set` active. The swap is atomic: decisions in flight keep the set they started with. */
  load(set: PolicySet): void {
    const slot = this.#slot ^ 1;
    this.#active = buildActive(set, this.schema, slotNames(this.#instance, slot));
    this.#slot = slot;
  }

  /**
   * Loads a directory and makes it active. A set that fails to load throws
   * (POLICY_UNREADABLE, POLICY_SET_INVALID with file and line) and the
   * previously active set stays active.
   */
  reload(dir: string): PolicySet {
    const set = loadPolicyDir(dir, this.schema);
    this.load(set);
    return set;
  }

  /**
   * Replaces the entity data (Cedar JSON entity array), which must fit the
   * schema, with at most MAX_PARENT_DEPTH (256) levels of parents above any
   * entity, none its own ancestor, and an ancestor relation within
   * MAX_ANCESTOR_PAIRS (1,000,000 ancestors summed over entities) and
   * MAX_PARENT_LINKS (10,000,000 parent links followed finding them): checked
   * before cedar-wasm computes that relation, which took seconds of this
   * thread for wide, deep group graphs. Throws POLICY_ENTITIES_INVALID and keeps
   * the old data; given the `file` the data came from, the error names it
   * (message and issue).
   */
  setEntities(entities: unknown, options: { file?: string } = {}): void {
    try {
      this.#entities = new EntityStore(this.schema, entities, this.#entities.version + 1, !untyped.has(this));
    } catch (error) {
      const { file } = options;
      if (file === undefined || !(error instanceof PolicyError) || error.code !== 'POLICY_ENTITIES_INVALID' || error.issues.length > 0) throw error;
      throw new PolicyError('POLICY_ENTITIES_INVALID', `${file}: ${error.message}`, { cause: error, issues: [{ file, message: error.message }] });
    }
  }

  /**
   * Decides one request. Throws POLICY_NOT_LOADED before any load,
   * POLICY_REQUEST_INVALID for a request that does not fit the schema,
   * POLICY_ENGINE_FAILED when cedar-wasm fails on it.
   */
  decide(input: unknown): Decision {
    const active = this.#active;
    if (!active) throw new PolicyError('POLICY_NOT_LOADED', 'no policy set is loaded');
    return this.#decided(active, parseRequest(input, this.schema, this.#now()));
  }

  /**
   * Decides `input` once for each of `resources` (each replacing its
   * resource), in order: what `decide` answers for each, with the request
   * parsed and checked once. Throws as `decide` does.
   */
  decideEach(input: unknown, resources: readonly unknown[]): Decision[] {
    const active = this.#active;
    if (!active) throw new PolicyError('POLICY_NOT_LOADED', 'no policy set is loaded');
    return parseRequests(input, resources, this.schema, this.#now()).map((request) => this.#decided(active, request));
  }

  #decided(active: Active, request: DecisionRequest): Decision {
    const { evaluation, deferred } = evaluateSlice(active, request, this.#entities, false)!;
    return combine(evaluation, active, request, deferred > 0 ? 'cedar' : 'compiled');
  }

  /**
   * The raw Cedar outcome for a request, from one evaluator: 'compiled'
   * (undefined when any policy of the slice needs cedar-wasm), 'cedar'
   * (cedar-wasm on the whole set and every entity: the reference), or
   * 'decision' (what `decide` evaluates: compiled, and cedar-wasm for the rest
   * of the slice). For tests and tools.
   */
  evaluate(input: unknown, engine: 'compiled' | 'cedar' | 'decision'): Evaluation | undefined {
    const active = this.#active;
    if (!active) throw new PolicyError('POLICY_NOT_LOADED', 'no policy set is loaded');
    const request = parseRequest(input, this.schema, this.#now());
    if (engine === 'cedar') return evaluateCedar(active, request, this.#entities);
    return evaluateSlice(active, request, this.#entities, engine === 'compiled')?.evaluation;
  }
}

function buildActive(set: PolicySet, schema: CorralSchema, names: SlotNames): Active {
  const buckets = new Map<string, Bucket>();
  const byId = new Map<string, LoadedPolicy>();
  const notCompiled: LoadedPolicy[] = [];
  for (const policy of set.policies) {
    byId.set(policy.id, policy);
    const compiled = compilePolicy(policy.json);
    if (!compiled) notCompiled.push(policy);
    const entry: Entry = { policy, compiled, names: [...entityKeysIn(policy.json, new Set())] };
    const actionScope = compiled?.action ?? scopeOf(policy.json.action);
    const principalScope = compiled?.principal ?? scopeOf(policy.json.principal);
    for (const actionKey of actionKeys(actionScope, schema)) {
      let bucket = buckets.get(actionKey);
      if (!bucket) buckets.set(actionKey, (bucket = { byKey: new Map(), byType: new Map(), any: [] }));
      addToBucket(bucket, principalScope, entry);
    }
  }
  const sets = [
    [names.forbids, 'forbid', set.policies],
    [names.permits, 'permit', set.policies],
    [names.uncompiledForbids, 'forbid', notCompiled],
    [names.uncompiledPermits, 'permit', notCompiled],
  ] as const;
  for (const [name, effect, of] of sets) {
    // fromEntries, not assignment: an id "__proto__" must stay an own key, not become a prototype.
    const policies = Object.fromEntries(of.filter((p) => p.effect === effect).map((p) => [p.id, p.text]));
    const answer = cedar.preparsePolicySet(name, { staticPolicies: policies });
    if (answer.type !== 'success') {
      throw new PolicyError('POLICY_ENGINE_FAILED', `cedar-wasm refused a validated policy set: ${answer.errors.map(describeCedarError).join('; ')}`);
    }
  }
  return { set, byId, buckets, cedarForbids: names.forbids, cedarPermits: names.permits, uncompiledForbids: names.uncompiledForbids, uncompiledPermits: names.uncompiledPermits, uncompiled: notCompiled.length };
}

/** The scope of a policy the compiler did not cover, for indexing only (templates' slots index as All). */
function scopeOf(json: unknown): ScopeConstraint {
  const s = json as { op: string; entity?: { type: string; id: string }; entities?: { type: string; id: string }[]; entity_type?: string };
  if (s.op === '==' && s.entity) return { op: '==', key: entityKey(s.entity.type, s.entity.id) };
  if (s.op === 'in' && s.entity) return { op: 'in', keys: [entityKey(s.entity.type, s.entity.id)] };
  if (s.op === 'in' && s.entities) return { op: 'in', keys: s.entities.map((e) => entityKey(e.type, e.id)) };
  if (s.op === 'is' && s.entity_type) return { op: 'is', type: s.entity_type };
  return { op: 'All' };
}

function actionKeys(scope: ScopeConstraint, schema: CorralSchema): string[] {
  if (scope.op === 'All' || scope.op === 'is') return [ANY_ACTION];
  const wanted = scope.op === '==' ? [scope.key] : scope.keys;
  const keys = new Set<string>();
  for (const action of schema.actions.values()) {
    const self = entityKey('Action', action.id);
    const groups = action.groups.map((g) => entityKey('Action', g));
    if (wanted.some((w) => w === self || groups.includes(w))) keys.add(self);
  }
  return [...keys];
}

function addToBucket(bucket: Bucket, scope: ScopeConstraint, entry: Entry): void {
  const push = (map: Map<string, Entry[]>, key: string) => {
    const list = map.get(key);
    if (list) list.push(entry);
    else map.set(key, [entry]);
  };
  switch (scope.op) {
    case 'All':
      bucket.any.push(entry);
      return;
    case '==':
      push(bucket.byKey, scope.key);
      return;
    case 'in':
      if (scope.keys.length === 1) push(bucket.byKey, scope.keys[0]!);
      else bucket.any.push(entry);
      return;
    case 'is':
      push(bucket.byType, scope.type);
      return;
  }
}

/** The policies whose principal and action scope can match the request. */
function candidates(active: Active, request: DecisionRequest, principal: EntityRef, store: EntityStore): Entry[] {
  const out: Entry[] = [];
  const ancestors = store.ancestors(principal.key);
  for (const actionKey of [entityKey('Action', request.action), ANY_ACTION]) {
    const bucket = active.buckets.get(actionKey);
    if (!bucket) continue;
    const own = bucket.byKey.get(principal.key);
    if (own) out.push(...own);
    if (bucket.byKey.size > 0) {
      for (const a of ancestors) {
        const list = bucket.byKey.get(a);
        if (list) out.push(...list);
      }
    }
    const typed = bucket.byType.get(principal.type);
    if (typed) out.push(...typed);
    if (bucket.any.length > 0) out.push(...bucket.any);
  }
  return out;
}

/**
 * A parsed request's context as Cedar values, converted once: the requests
 * of one `decideEach` share one snapshot of it, which nothing changes after
 * parsing. Undefined when it holds a value the compiled code does not model.
 */
const cedarContexts = new WeakMap<object, CedarRecord | undefined>();
function cedarContext(json: Readonly<Record<string, unknown>>): CedarRecord | undefined {
  if (cedarContexts.has(json)) return cedarContexts.get(json);
  let context: CedarRecord | undefined;
  try {
    const value = fromJson(json);
    if (value instanceof CedarRecord) context = value;
  } catch (error) {
    if (!(error instanceof Unsupported)) throw error;
  }
  cedarContexts.set(json, context);
  return context;
}

/**
 * Evaluates the slice of policies whose scope can match the request: each
 * compiled policy in JavaScript, the others — not compiled, or reading a
 * value the compiled code does not model (an extension value, a number beyond
 * 2^53) — with cedar-wasm, on those policies alone. A policy's outcome (satisfied,
 * not, or an error) depends on no other policy, and one outside the slice
 * cannot match, so the union is what Cedar says of the whole set, and
 * forbid-overrides is applied to it by `combine`. With `compiledOnly`,
 * undefined as soon as a policy needs cedar-wasm.
 */
function evaluateSlice(active: Active, request: DecisionRequest, store: EntityStore, compiledOnly: boolean): { evaluation: Evaluation; deferred: number } | undefined {
  const principal = new EntityRef(request.principal.type, request.principal.id);
  const resource = new EntityRef(request.resource.type, request.resource.id);
  const action = new EntityRef('Action', request.action);
  const context = cedarContext(request.context);
  const env: Env | undefined = context ? { principal, action, resource, context, store } : undefined;
  const slice = candidates(active, request, principal, store);
  const result: Evaluation = { forbids: [], permits: [], errors: [], evaluated: slice.length };
  const deferred: Entry[] = [];
  for (const entry of slice) {
    const { policy, compiled } = entry;
    if (!compiled || !env) {
      if (compiledOnly) return undefined;
      deferred.push(entry);
      continue;
    }
    if (!scopeMatches(compiled.principal, principal, store)) continue;
    if (!scopeMatches(compiled.action, action, store)) continue;
    if (!scopeMatches(compiled.resource, resource, store)) continue;
    try {
      if (!compiled.conditions(env)) continue;
    } catch (error) {
      if (error instanceof Unsupported) {
        if (compiledOnly) return undefined;
        deferred.push(entry);
        continue;
      }
      if (error instanceof EvalError) {
        result.errors.push({ policyId: policy.id, message: error.message });
        continue;
      }
      throw error;
    }
    (policy.effect === 'forbid' ? result.forbids : result.permits).push(policy.id);
  }
  if (deferred.length > 0) evaluateDeferred(active, request, store, deferred, result);
  return { evaluation: result, deferred: deferred.length };
}

/**
 * Adds cedar-wasm's outcome for `deferred` (policies of the slice) to `into`.
 * cedar-wasm is handed only the entities the request and these policies can
 * reach, and either the pre-parsed set of every uncompiled policy (those of
 * them outside the slice cannot match) or, when a compiled policy is among
 * `deferred`, just these policies' text. Forbids and permits go separately,
 * so that every satisfied policy is known; an effect none of them has is not asked.
 */
function evaluateDeferred(active: Active, request: DecisionRequest, store: EntityStore, deferred: readonly Entry[], into: Evaluation): void {
  const roots = entityKeysIn(request.context, new Set([entityKey(request.principal.type, request.principal.id), entityKey('Action', request.action), entityKey(request.resource.type, request.resource.id)]));
  for (const entry of deferred) for (const name of entry.names) roots.add(name);
  const entities = store.reachable(roots);
  const allUncompiled = deferred.every((e) => e.compiled === undefined);
  for (const effect of ['forbid', 'permit'] as const) {
    const mine = deferred.filter((e) => e.policy.effect === effect);
    if (mine.length === 0) continue;
    // fromEntries, not assignment: an id "__proto__" must stay an own key, not become a prototype.
    const policies = allUncompiled
      ? { preparsedPolicySetId: effect === 'forbid' ? active.uncompiledForbids : active.uncompiledPermits }
      : { policies: { staticPolicies: Object.fromEntries(mine.map((e) => [e.policy.id, e.policy.text])) } };
    const answer = askCedar(request, entities, policies);
    (effect === 'forbid' ? into.forbids : into.permits).push(...answer.diagnostics.reason);
    for (const e of answer.diagnostics.errors) into.errors.push({ policyId: e.policyId, message: e.error.message });
  }
}

/** One cedar-wasm authorization of `request`; throws POLICY_ENGINE_FAILED when cedar-wasm fails or refuses it. */
function askCedar(request: DecisionRequest, entities: readonly unknown[], policies: { preparsedPolicySetId: string } | { policies: { staticPolicies: Record<string, string> } }): { diagnostics: { reason: string[]; errors: { policyId: string; error: { message: string } }[] } } {
  const call = {
    principal: request.principal,
    action: { type: 'Action', id: request.action },
    resource: request.resource,
    context: request.context as Record<string, never>,
    entities: entities as never,
  };
  let answer: ReturnType<typeof cedar.isAuthorized>;
  try {
    answer = 'preparsedPolicySetId' in policies ? cedar.statefulIsAuthorized({ ...call, ...policies }) : cedar.isAuthorized({ ...call, ...policies });
  } catch (error) {
    // A trap (say, a stack overflow) leaves cedar-wasm failing every call; the request was not at fault.
    throw new PolicyError('POLICY_ENGINE_FAILED', 'cedar-wasm failed', { cause: error });
  }
  // The request fits the schema and the entities parsed when set: a refusal now is the engine's.
  if (answer.type !== 'success') {
    throw new PolicyError('POLICY_ENGINE_FAILED', `cedar-wasm refused a validated request: ${answer.errors.map(describeCedarError).join('; ')}`);
  }
  return answer.response;
}

/** Evaluates the whole active set with cedar-wasm, handed every entity: the reference the tests hold the decision point to. */
function evaluateCedar(active: Active, request: DecisionRequest, store: EntityStore): Evaluation {
  const result: Evaluation = { forbids: [], permits: [], errors: [], evaluated: active.set.policies.length };
  for (const [setId, into] of [[active.cedarForbids, result.forbids], [active.cedarPermits, result.permits]] as const) {
    const answer = askCedar(request, store.json, { preparsedPolicySetId: setId });
    into.push(...answer.diagnostics.reason);
    for (const e of answer.diagnostics.errors) result.errors.push({ policyId: e.policyId, message: e.error.message });
  }
  return result;
}

/**
 * Corral's decision from a Cedar evaluation: a satisfied (or unevaluable)
 * forbid denies; no satisfied permit denies; a satisfied permit with
 * @approval("required") asks — unless the context says enough distinct
 * approvers already approved — and otherwise the request is allowed.
 */
export function combine(evaluation: Evaluation, active: { set: PolicySet; byId: ReadonlyMap<string, LoadedPolicy> }, request: DecisionRequest, engine: 'compiled' | 'cedar'): Decision {
  const base = { errors: evaluation.errors, engine, policySet: active.set.fingerprint, evaluated: evaluation.evaluated ?? 0 };
  const sorted = (ids: string[]) => [...ids].sort();
  const why = (ids: string[]) => ids.map((id) => active.byId.get(id)?.reason).filter((r): r is string => r !== undefined);
  const brokenForbids = evaluation.errors.filter((e) => active.byId.get(e.policyId)?.effect === 'forbid').map((e) => e.policyId);
  if (evaluation.forbids.length > 0) {
    const ids = sorted(evaluation.forbids);
    return { ...base, decision: 'deny', policies: ids, reason: sentence(`forbidden by ${list(ids)}`, why(ids)) };
  }
  if (brokenForbids.length > 0) {
    const ids = sorted(brokenForbids);
    return { ...base, decision: 'deny', policies: ids, reason: `forbid ${list(ids)} could not be evaluated, so Corral denies` };
  }
  // Cedar's spelling escapes quotes and line breaks: an id cannot write its own reason.
  const what = `${entityKey(request.principal.type, request.principal.id)} ${request.action} ${entityKey(request.resource.type, request.resource.id)}`;
  if (evaluation.permits.length === 0) {
    return { ...base, decision: 'deny', policies: [], reason: `no policy permits ${what}` };
  }
  const asking = sorted(evaluation.permits.filter((id) => active.byId.get(id)?.approval));
  if (asking.length > 0) {
    const quorum = Math.max(...asking.map((id) => active.byId.get(id)?.quorum ?? 1));
    const approval = request.context.approval as { state: string; approvers: number };
    if (approval.state === 'denied') {
      return { ...base, decision: 'deny', policies: asking, reason: `an approver denied ${what}` };
    }
    if (approval.state === 'approved' && approval.approvers >= quorum) {
      return { ...base, decision: 'allow', policies: asking, reason: sentence(`approved by ${approval.approvers} of ${quorum} required approver${quorum === 1 ? '' : 's'} under ${list(asking)}`, why(asking)) };
    }
    return { ...base, decision: 'ask', policies: asking, quorum, reason: sentence(`needs approval by ${quorum} distinct approver${quorum === 1 ? '' : 's'} under ${list(asking)}`, why(asking)) };
  }
  const ids = sorted(evaluation.permits);
  return { ...base, decision: 'allow', policies: ids, reason: sentence(`permitted by ${list(ids)}`, why(ids)) };
}

function list(ids: readonly string[]): string {
  return ids.map((id) => `"${id}"`).join(', ');
}

function sentence(head: string, reasons: string[]): string {
  return reasons.length === 0 ? head : `${head}: ${reasons.join('; ')}`;
}
