// A hostile differential property: random entity hierarchies with hostile ids
// and attribute names, random policies over every operator the compiler
// covers (and some it hands to cedar-wasm), random requests with hostile text.
// The compiled evaluator must reach cedar-wasm's outcome exactly, and every
// decision must be the one Cedar's own answer on the whole set implies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint, acceptIllTypedEntities } from './decision-point.ts';
import { cedar } from './lib/cedar.ts';
import { parseUnvalidated } from './load.ts';

/** Text in Cedar's string syntax; in a `like` pattern a literal `*` is escaped too. */
function quote(text: string, pattern = false): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\' || ch === '"' || (pattern && ch === '*')) out += `\\${ch}`;
    else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) out += `\\u{${cp.toString(16)}}`;
    else out += ch;
  }
  return `"${out}"`;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED = new Set(['true', 'false', 'if', 'then', 'else', 'in', 'is', 'like', 'has', 'principal', 'action', 'resource', 'context', '__cedar']);
const access = (attr: string) => (IDENT.test(attr) && !RESERVED.has(attr) ? `.${attr}` : `[${quote(attr)}]`);
const hasAttr = (attr: string) => (IDENT.test(attr) && !RESERVED.has(attr) ? attr : quote(attr));

const HOSTILE = ['', '*', '**', '\\', '\\*', '\0', 'a\0b', 'é', 'e\u0301', '😀', '\u{10FFFF}', '\n', '\r\n', '"', "'", 'a*b', 'ab', 'aXb', '/home/a/.ssh/id', '.ssh', '\u200b', 'İ', 'ß', '\uFEFF', '__proto__', 'x'.repeat(3000)];
const text = fc.oneof(
  fc.constantFrom(...HOSTILE),
  fc.array(fc.constantFrom('a', 'b', '*', '\\', 'é', '😀', '\0', '"', '\n'), { maxLength: 6 }).map((xs) => xs.join('')),
  fc.string({ unit: 'binary', maxLength: 8 }).filter((s) => s.isWellFormed()),
);
const ATTRS = ['owner', 'status', 'path', 'tags', 'n', 'rec', 'ref', 'ip', '__proto__', 'a b', '', '*', 'é', 'if'];
const attrName = fc.constantFrom(...ATTRS);

// ---- entities: a pool of uids with hostile ids; parents only later in the pool, so the graph is a DAG
const POOL = [
  { type: 'Agent', id: 'a' },
  { type: 'Agent', id: '*' },
  { type: 'Human', id: 'h\0' },
  { type: 'Node', id: '😀' },
  { type: 'File', id: '/home/a/.ssh/id' },
  { type: 'File', id: '\\' },
  { type: 'Command', id: 'rm' },
  { type: 'Record', id: 'r"1' },
  { type: 'Tool', id: 't' },
  { type: 'Host', id: 'example.com' },
  { type: 'Collection', id: 'c' },
  { type: 'Node', id: 'n2' },
  { type: 'Group', id: 'g1' },
  { type: 'Group', id: '' },
  { type: 'Group', id: 'g0' },
];
const uidLit = (u: { type: string; id: string }) => `${u.type}::${quote(u.id)}`;

const json = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    fc.constantFrom(0, 1, -1, 7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 60),
    fc.boolean(),
    fc.constantFrom(...POOL).map((u) => ({ __entity: u })),
    fc.constantFrom(
      { __extn: { fn: 'ip', arg: '10.0.0.1' } },
      { __extn: { fn: 'decimal', arg: '1.50' } },
      { __extn: { fn: 'datetime', arg: '2024-10-15T11:35:00Z' } },
      { __extn: { fn: 'duration', arg: '1h30m' } },
      { __entity: { type: 'Group', id: 'g1' }, x: 1 },
    ),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(attrName, tie('value'), { maxKeys: 3 }),
  ),
})).value;

// Tags too (hasTag, getTag): cedar-wasm evaluates them, with the entities a request reaches through them.
const tags = fc.option(fc.dictionary(attrName, json, { maxKeys: 3 }), { nil: undefined });
const entities = fc
  .tuple(...POOL.map((_, i) => fc.record({ present: fc.boolean(), attrs: fc.dictionary(attrName, json, { maxKeys: 4 }), tags, parents: fc.subarray(POOL.slice(i + 1), { maxLength: Math.min(3, POOL.length - i - 1) }) })))
  .map((rows) => rows.flatMap((row, i) => (row.present ? [{ uid: POOL[i]!, attrs: row.attrs, parents: row.parents, ...(row.tags === undefined ? {} : { tags: row.tags }) }] : [])));

// ---- expressions (ill-typed mixtures included: both evaluators must error alike)
const strLit = text.map((s) => quote(s));
const entityExpr = fc.oneof(fc.constantFrom('principal', 'resource', 'action', 'context.node', 'Action::"file.access"', 'Action::"system.run"'), fc.constantFrom(...POOL).map(uidLit));
const pattern = fc
  .array(fc.oneof(fc.constant(null), fc.constantFrom('a', 'b', '*', '\\', 'é', '😀', '\0', '"', '\n', '/.ssh/', 'x'.repeat(20))), { maxLength: 5 })
  .map((els) => `"${els.map((el) => (el === null ? '*' : quote(el, true).slice(1, -1))).join('')}"`);

const { bool } = fc.letrec<{ bool: string; str: string; long: string; set: string; any: string }>((tie) => ({
  str: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    strLit,
    fc.constantFrom('context.commandLine', 'context.classification', 'context.cwd', 'context.currency', 'context.approval.state'),
    fc.tuple(fc.constantFrom('principal', 'resource', 'context.node'), attrName).map(([e, a]) => `${e}${access(a)}`),
    fc.tuple(tie('bool'), tie('str'), tie('str')).map(([c, t, e]) => `(if ${c} then ${t} else ${e})`),
  ),
  long: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('0', '1', '-1', '9007199254740991', '-9007199254740991', '4611686018427387904', '9223372036854775807'),
    fc.constantFrom('context.amount', 'context.approval.approvers', 'context.time.hour', 'principal.n', 'resource.n', 'principal.rec.n'),
    fc.tuple(tie('long'), fc.constantFrom('+', '-', '*'), tie('long')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    tie('long').map((a) => `(-${a})`),
  ),
  set: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('context.argv', 'principal.tags', 'resource.tags', 'principal.rec.tags', '[]'),
    fc.array(tie('any'), { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
  ),
  any: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    tie('str'),
    tie('long'),
    entityExpr,
    tie('set'),
    fc.constantFrom('context', 'context.time', 'context.approval', 'principal.rec', 'resource.ref', 'principal.ref', 'true', 'principal.ip'),
    fc.array(fc.tuple(attrName, tie('any')), { maxLength: 2 }).map((fields) => `{${[...new Map(fields)].map(([k, v]) => `${quote(k)}: ${v}`).join(', ')}}`),
    fc.tuple(tie('any'), attrName).map(([e, a]) => `(${e})${access(a)}`),
  ),
  bool: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('true', 'false', 'context has amount', 'context has node', 'context.node in Group::"g1"'),
    fc.tuple(tie('long'), fc.constantFrom('<', '<=', '>', '>='), tie('long')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    fc.tuple(tie('any'), fc.constantFrom('==', '!='), tie('any')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    fc.tuple(entityExpr, fc.oneof(entityExpr, fc.array(entityExpr, { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`), tie('set'))).map(([a, b]) => `(${a} in ${b})`),
    fc.tuple(tie('any'), attrName).map(([e, a]) => `((${e}) has ${hasAttr(a)})`),
    // a dotted path names identifiers only
    fc.tuple(tie('any'), fc.array(fc.constantFrom(...ATTRS.filter((a) => IDENT.test(a) && !RESERVED.has(a))), { minLength: 2, maxLength: 3 })).map(([e, path]) => `((${e}) has ${path.join('.')})`),
    fc.tuple(tie('str'), pattern).map(([s, p]) => `(${s} like ${p})`),
    fc.tuple(tie('set'), fc.constantFrom('contains', 'containsAny', 'containsAll'), tie('any')).map(([s, m, v]) => `${s}.${m}(${m === 'contains' ? v : `[${v}]`})`),
    fc.tuple(tie('set'), fc.constantFrom('containsAny', 'containsAll'), tie('any')).map(([s, m, v]) => `${s}.${m}(${v})`),
    tie('set').map((s) => `${s}.isEmpty()`),
    fc.tuple(entityExpr, fc.constantFrom('Agent', 'Group', 'File', 'Node', 'Action'), fc.option(entityExpr, { nil: undefined })).map(([e, t, within]) => `(${e} is ${t}${within ? ` in ${within}` : ''})`),
    fc.tuple(tie('bool'), fc.constantFrom('&&', '||'), tie('bool')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    tie('bool').map((a) => `(!${a})`),
    fc.tuple(tie('bool'), tie('bool'), tie('bool')).map(([c, t, e]) => `(if ${c} then ${t} else ${e})`),
    // handed to cedar-wasm: the decision must still be Cedar's
    fc.constantFrom('principal.ip.isLoopback()', 'ip("10.0.0.1").isInRange(ip("10.0.0.0/8"))', 'decimal("1.5").lessThan(decimal("2.0"))', 'principal.n < decimal("1.0")'),
    fc.constantFrom('(principal.n < datetime("2024-10-15"))', '(resource.n == duration("1h30m"))', '(principal.n.offset(duration("-1d")) < datetime("2024-10-15T11:35:00Z"))', '(principal.n < resource.n)', '(principal.ip == principal.ip)'),
    fc.tuple(fc.constantFrom('principal', 'resource', 'context.node', ...POOL.map(uidLit)), attrName).map(([e, t]) => `(${e}).hasTag(${quote(t)})`),
    fc.tuple(fc.constantFrom('principal', 'resource', 'context.node'), attrName, fc.constantFrom(...POOL)).map(([e, t, g]) => `((${e}).getTag(${quote(t)}) in ${uidLit(g)})`),
    fc.tuple(fc.constantFrom('principal', 'resource'), attrName, tie('any')).map(([e, t, v]) => `((${e}).getTag(${quote(t)}) == ${v})`),
  ),
}));

const principalScope = fc.oneof(
  { arbitrary: fc.constant('principal'), weight: 6 },
  fc.constantFrom(...POOL).map((u) => `principal == ${uidLit(u)}`),
  fc.constantFrom(...POOL).map((u) => `principal in ${uidLit(u)}`),
  fc.constantFrom('principal is Agent', 'principal is Human in Group::"g0"', 'principal is Node in Group::""'),
);
const actionScope = fc.constantFrom('action', 'action', 'action', 'action == Action::"file.read"', 'action in Action::"file.access"', 'action in Action::"node.command"', 'action in [Action::"system.run", Action::"tool.call"]', 'action == Action::"payment.create"');
const resourceScope = fc.oneof(
  { arbitrary: fc.constant('resource'), weight: 6 },
  fc.constantFrom(...POOL).map((u) => `resource == ${uidLit(u)}`),
  fc.constantFrom(...POOL).map((u) => `resource in ${uidLit(u)}`),
  fc.constantFrom('resource is File', 'resource is Command in Node::"😀"'),
);
const policy = fc
  .record({
    effect: fc.constantFrom('permit', 'forbid'),
    ask: fc.constantFrom('', '', '@approval("required")\n', '@approval("required")\n@quorum("2")\n'),
    p: principalScope,
    a: actionScope,
    r: resourceScope,
    conds: fc.array(fc.tuple(fc.constantFrom('when', 'unless'), bool), { maxLength: 2 }),
  })
  .map(({ effect, ask, p, a, r, conds }) => `${effect === 'permit' ? ask : ''}${effect}(${p}, ${a}, ${r}) ${conds.map(([k, b]) => `${k} { ${b} }`).join(' ')};`);

// ---- requests
const TRIPLES: { principals: string[]; actions: string[]; resources: string[] }[] = [
  { principals: ['Agent', 'Human', 'Node'], actions: ['file.read', 'file.delete'], resources: ['File'] },
  { principals: ['Agent', 'Human', 'Node'], actions: ['system.run'], resources: ['Command'] },
  { principals: ['Agent', 'Human'], actions: ['tool.call'], resources: ['Tool'] },
  { principals: ['Agent', 'Human'], actions: ['payment.create'], resources: ['Record', 'Collection'] },
];
const uidOf = (types: string[]) => fc.oneof({ arbitrary: fc.constantFrom(...POOL.filter((u) => types.includes(u.type))), weight: 3 }, fc.tuple(fc.constantFrom(...types), text).map(([type, id]) => ({ type, id })));
const request = fc.constantFrom(...TRIPLES).chain((t) =>
  fc.record({
    principal: uidOf(t.principals),
    action: fc.constantFrom(...t.actions),
    resource: uidOf(t.resources),
    context: fc.record(
      {
        classification: text,
        time: fc.constant({ epoch: 1_790_000_000, hour: 9, weekday: 3 }),
        approval: fc.record({ state: fc.constantFrom('none', 'approved', 'denied'), approvers: fc.integer({ min: 0, max: 3 }) }),
        amount: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER)),
        currency: text,
        argv: fc.array(text, { maxLength: 3 }),
        commandLine: text,
        cwd: text,
        node: fc.constantFrom(...POOL.filter((u) => u.type === 'Node')).map((u) => ({ __entity: u })),
      },
      { requiredKeys: ['classification', 'time', 'approval'] },
    ),
  }),
);

const sorted = (xs: readonly string[]) => [...xs].sort();
const ids = (evaluation: { forbids: string[]; permits: string[]; errors: { policyId: string }[] }) => ({
  forbids: sorted(evaluation.forbids),
  permits: sorted(evaluation.permits),
  errors: sorted(evaluation.errors.map((e) => e.policyId)),
});

interface Seen {
  compared: number;
  deferred: number;
  mixed: number;
  satisfied: number;
  errored: number;
  forbidden: number;
  allowed: number;
  /** Decisions where a policy cedar-wasm evaluated was satisfied or errored. */
  byCedar: number;
}

/**
 * Loads `texts` over `data` and holds every request's outcome to cedar-wasm's:
 * the compiled evaluator's, where it answers alone; what a decision evaluates
 * (compiled, and cedar-wasm for the rest of the slice, with the entities it
 * can reach), always; and the decision to the one Cedar's answer on the whole
 * set, every entity given, implies.
 */
function holdsToCedar(texts: readonly string[], data: unknown, requests: readonly Request[], seen: Seen): void {
  const sources = texts.map((t, i) => ({ file: `p${i}.cedar`, text: `@id("p${i}")\n${t}` }));
  const set = parseUnvalidated(sources);
  const pdp = acceptIllTypedEntities(new DecisionPoint());
  pdp.load(set);
  pdp.setEntities(data);
  const effects = new Map(set.policies.map((p) => [p.id, p]));
  for (const input of requests) {
    const where = `${JSON.stringify(input)}\n${JSON.stringify(data)}\n${texts.join('\n')}`;
    const reference = pdp.evaluate(input, 'cedar')!;
    const compiled = pdp.evaluate(input, 'compiled');
    if (compiled === undefined) seen.deferred++;
    else {
      seen.compared++;
      seen.satisfied += reference.forbids.length + reference.permits.length;
      seen.errored += reference.errors.length;
      assert.deepEqual(ids(compiled), ids(reference), `compiled outcome for ${where}`);
    }
    assert.deepEqual(ids(pdp.evaluate(input, 'decision')!), ids(reference), `decision's outcome for ${where}`);
    // Cedar on the whole set, as one call, handed the data as given (not Corral's copy of it) and the schema's actions: what Corral decides must follow from its answer.
    const whole = cedar.isAuthorized({
      principal: input.principal,
      action: { type: 'Action', id: input.action },
      resource: input.resource,
      context: input.context as never,
      policies: { staticPolicies: Object.fromEntries(set.policies.map((p) => [p.id, p.text])) },
      entities: [...(data as unknown[]), ...pdp.entities.json.filter((e) => (e.uid as { type: string }).type === 'Action')] as never,
    });
    assert.equal(whole.type, 'success', where);
    if (whole.type !== 'success') return;
    const { decision, diagnostics } = whole.response;
    const forbids = decision === 'deny' ? diagnostics.reason : [];
    const permits = decision === 'allow' ? diagnostics.reason : [];
    const brokenForbid = diagnostics.errors.some((e) => effects.get(e.policyId)?.effect === 'forbid');
    const asking = permits.filter((id) => effects.get(id)!.approval);
    const quorum = Math.max(1, ...asking.map((id) => effects.get(id)!.quorum));
    const { state, approvers } = input.context.approval;
    const expected =
      forbids.length > 0 || brokenForbid || permits.length === 0 ? 'deny'
      : asking.length === 0 ? 'allow'
      : state === 'denied' ? 'deny'
      : state === 'approved' && approvers >= quorum ? 'allow'
      : 'ask';
    const made = pdp.decide(input);
    assert.equal(made.decision, expected, `decision for ${where}`);
    if (forbids.length > 0) assert.deepEqual(made.policies, sorted(forbids), `forbids for ${where}`);
    if (forbids.length > 0) seen.forbidden++;
    if (made.decision === 'allow') seen.allowed++;
    if (made.engine === 'cedar' && made.evaluated < set.policies.length) seen.mixed++;
    const outcome = [...reference.forbids, ...reference.permits, ...reference.errors.map((e) => e.policyId)];
    if (made.engine === 'cedar' && outcome.some((id) => UNCOMPILED.test(effects.get(id)!.text))) seen.byCedar++;
  }
}

type Request = { principal: { type: string; id: string }; action: string; resource: { type: string; id: string }; context: { approval: { state: string; approvers: number } } & Record<string, unknown> };
const UNCOMPILED = /ip\(|decimal\(|\.ip\b|datetime\(|duration\(|Tag\(/;
const none = (): Seen => ({ compared: 0, deferred: 0, mixed: 0, satisfied: 0, errored: 0, forbidden: 0, allowed: 0, byCedar: 0 });

describe('the compiled evaluator against cedar-wasm, on hostile policies, entities and requests', () => {
  it('reaches the same satisfied and errored policies, and every decision is the one Cedar\'s answer implies (property)', () => {
    const seen = none();
    fc.assert(
      fc.property(fc.array(policy, { minLength: 1, maxLength: 6 }), entities, fc.array(request, { minLength: 1, maxLength: 3 }), (texts, data, requests) => holdsToCedar(texts, data, requests, seen)),
      // CORRAL_FC_RUNS=5000 for a longer hunt; 250 keeps the suite to seconds.
      { numRuns: Number(process.env.CORRAL_FC_RUNS ?? 250) },
    );
    // not vacuous: both paths taken, policies satisfied, errored, forbidding and allowing (allowed: 20–43 in 250 runs)
    assert.ok(seen.compared > 150 && seen.deferred > 20, JSON.stringify(seen));
    assert.ok(seen.satisfied > 50 && seen.errored > 25 && seen.forbidden > 20 && seen.allowed > 8, JSON.stringify(seen));
  });
});

// Entities whose data names others: a reference in `ref`, one inside a record in `rec`, and random attributes beside them.
const linkedEntities = fc
  .tuple(
    ...POOL.map(() =>
      fc.record({
        present: fc.boolean(),
        ref: fc.constantFrom(...POOL),
        tagged: fc.constantFrom(...POOL),
        attrs: fc.dictionary(attrName, json, { maxKeys: 3 }),
        owner: fc.option(text, { nil: undefined }),
        parents: fc.subarray(POOL, { maxLength: 2 }),
      }),
    ),
  )
  .map((rows) =>
    rows.flatMap((row, i) => {
      if (!row.present) return [];
      const attrs = { ...row.attrs, ref: { __entity: row.ref }, rec: { ref: { __entity: row.ref } }, ...(row.owner === undefined ? {} : { owner: row.owner }) };
      // parents only later in the pool, so the graph is a DAG; a tag names an entity too
      return [{ uid: POOL[i]!, attrs, parents: row.parents.filter((p) => POOL.indexOf(p) > i), tags: { ref: { __entity: row.tagged } } }];
    }),
  );

// What an uncompiled policy may read: data of entities it reaches through a literal, an attribute or the context.
const dataRead = fc.oneof(
  fc.tuple(fc.constantFrom(...POOL), fc.constantFrom('owner', 'ref', ...ATTRS)).map(([u, a]) => `(${uidLit(u)} has ${hasAttr(a)})`),
  fc.constantFrom(...POOL).map((u) => `(${uidLit(u)}.ref has owner)`),
  fc.tuple(fc.constantFrom('principal.ref', 'resource.ref', 'principal.rec.ref', 'resource.ref.ref', 'context.node'), fc.constantFrom('owner', 'ref', ...ATTRS)).map(([e, a]) => `((${e}) has ${hasAttr(a)})`),
  fc.tuple(fc.constantFrom('principal.ref', 'resource.rec.ref', 'context.node', ...POOL.map(uidLit)), fc.constantFrom(...POOL)).map(([e, g]) => `((${e}) in ${uidLit(g)})`),
  fc.tuple(fc.constantFrom('principal', 'resource', 'context.node', 'principal.ref'), fc.constantFrom(...POOL)).map(([e, g]) => `((${e}).getTag("ref") in ${uidLit(g)})`),
  fc.tuple(fc.constantFrom('principal', 'resource'), fc.constantFrom('owner', 'ref', ...ATTRS)).map(([e, a]) => `((${e}).getTag("ref") has ${hasAttr(a)})`),
  bool,
);
// A clause only cedar-wasm evaluates: always true, always false, reading the principal's extension value (or erring), or reading data as above.
const uncompiledClause = fc.oneof(
  { arbitrary: fc.tuple(fc.constantFrom('when', 'unless'), dataRead).map(([kind, read]) => `${kind} { ip("127.0.0.1").isLoopback() && ${read} }`), weight: 3 },
  fc.constantFrom(
    'when { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) }',
    'unless { decimal("1.0").lessThan(decimal("0.5")) }',
    'when { decimal("2.5").lessThan(decimal("1.0")) }',
    'when { principal.ip.isLoopback() }',
    'unless { principal has ip && principal.ip.isIpv6() }',
  ),
);
// Uncompiled policies, half of them as wide as a policy gets: on every decision's slice.
const uncompiledPolicy = fc.tuple(fc.oneof(policy, fc.constantFrom('permit(principal, action, resource);', 'forbid(principal, action, resource);')), uncompiledClause).map(([p, clause]) => `${p.slice(0, -1)} ${clause};`);

describe('a set of compiled and uncompiled policies, against cedar-wasm on the whole set', () => {
  // A decision hands cedar-wasm only the uncompiled policies of its slice and the entities the request can reach;
  // whatever the mix, its outcome is Cedar's on the whole set with every entity (one uncompiled policy sent every decision there).
  it('reaches Cedar\'s satisfied and errored policies and decision, with the uncompiled policies among compiled ones (property)', () => {
    const seen = none();
    const mixed = fc
      .tuple(fc.array(policy, { minLength: 1, maxLength: 8 }), fc.array(uncompiledPolicy, { minLength: 1, maxLength: 3 }))
      .chain(([plain, forced]) => fc.shuffledSubarray([...plain, ...forced], { minLength: plain.length + forced.length }));
    fc.assert(
      fc.property(mixed, fc.oneof(entities, linkedEntities), fc.array(request, { minLength: 1, maxLength: 4 }), (texts, data, requests) => holdsToCedar(texts, data, requests, seen)),
      { numRuns: Number(process.env.CORRAL_FC_RUNS ?? 250) },
    );
    // not vacuous: decisions that evaluated part of the set with cedar-wasm, whose uncompiled policies mattered, forbidding and allowing
    assert.ok(seen.mixed > 100 && seen.byCedar > 50, JSON.stringify(seen));
    assert.ok(seen.forbidden > 20 && seen.allowed > 8, JSON.stringify(seen));
  });
});
