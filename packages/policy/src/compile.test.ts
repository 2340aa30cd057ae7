// Differential tests: Corral's compiled evaluator must reach exactly the
// outcome cedar-wasm reaches (satisfied forbids, satisfied permits, errored
// policies) on random policies and requests, including ill-typed ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DecisionPoint, acceptIllTypedEntities } from './decision-point.ts';
import { likeMatcher } from './lib/values.ts';
import { loadPolicies, parseUnvalidated } from './load.ts';

// Ill-typed on purpose (attributes the schema does not declare): both evaluators must agree on such data too.
const ENTITIES = [
  { uid: { type: 'Group', id: 'g0' }, attrs: {}, parents: [] },
  { uid: { type: 'Group', id: 'g1' }, attrs: { name: 'finance' }, parents: [{ type: 'Group', id: 'g0' }] },
  { uid: { type: 'Agent', id: 'a1' }, attrs: { owner: 'alice@example.com', process: 'invoice-intake', status: 'active', scopes: ['records:read', 'payments:create'] }, parents: [{ type: 'Group', id: 'g1' }] },
  { uid: { type: 'Agent', id: 'a2' }, attrs: { owner: 'bob@example.com', process: 'payroll', status: 'suspended', scopes: [] }, parents: [] },
  { uid: { type: 'Human', id: 'h1' }, attrs: { email: 'carol@example.com', roles: ['approver'] }, parents: [{ type: 'Group', id: 'g0' }] },
  { uid: { type: 'File', id: 'f1' }, attrs: { path: '/home/a/.ssh/id_ed25519', classification: 'restricted', owner: { __entity: { type: 'Agent', id: 'a1' } }, meta: { size: 4096, tags: ['key', 'secret'], by: { __entity: { type: 'Group', id: 'g1' } } } }, parents: [] },
  // `look` is a record with a key named __entity: Cedar reads an escape only as an object's one key
  { uid: { type: 'File', id: 'f2' }, attrs: { path: '/srv/invoices/inbox/1.pdf', classification: 'internal', look: { __entity: { type: 'Group', id: 'g1' }, size: 1 } }, parents: [] },
  { uid: { type: 'Collection', id: 'c1' }, attrs: {}, parents: [] },
  { uid: { type: 'Record', id: 'r1' }, attrs: { kind: 'invoice', classification: 'confidential' }, parents: [{ type: 'Collection', id: 'c1' }] },
  { uid: { type: 'Command', id: 'cmd1' }, attrs: { name: '/usr/bin/cat' }, parents: [] },
];

const str = fc.constantFrom('"active"', '"suspended"', '"alice@example.com"', '"restricted"', '""', '"a\\"b"', '"é"');
const entityLit = fc.constantFrom('principal', 'resource', 'Group::"g0"', 'Group::"g1"', 'Agent::"a1"', 'Agent::"a9"', 'File::"f1"', 'Collection::"c1"', 'Action::"file.read"', 'action', 'resource.owner', 'resource.meta.by');
const bigLong = fc.constantFrom('0', '1', '-1', '100000', '9007199254740991', '4611686018427387904', '9223372036854775807', '-9223372036854775808');
const strExpr = fc.oneof(str, fc.constantFrom('principal.owner', 'principal.status', 'resource.path', 'context.classification', 'principal.email', 'resource.name'));
const { bool } = fc.letrec<{ bool: string; long: string; set: string; any: string }>((tie) => ({
  long: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    bigLong,
    fc.integer({ min: -1000, max: 1000 }).map(String),
    fc.constantFrom('context.amount', 'context.approval.approvers', 'context.time.hour', 'principal.owner', 'resource.meta.size'),
    fc.tuple(tie('long'), fc.constantFrom('+', '-', '*'), tie('long')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    tie('long').map((a) => `(-${a})`),
  ),
  set: fc.oneof(
    fc.constantFrom('principal.scopes', 'context.argv', 'principal.roles', '["records:read"]', '[]', '[Group::"g1", Group::"g0"]', '[1, "x"]', 'resource.meta.tags', '[resource.owner, principal]'),
    fc.array(str, { maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
  ),
  any: fc.oneof(strExpr, tie('long'), entityLit, tie('set'), fc.constantFrom('{a: 1, b: "x"}', '{a: 1}', 'context.approval', 'true')),
  bool: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('true', 'false', 'context has amount', 'principal has status', 'resource has path', 'context has approval.state', 'principal is Agent', 'resource is File in Node::"n1"', 'resource has meta.size', 'resource has meta.nope', 'resource.owner has owner', 'resource has look.size', '(resource has look && resource.look == Group::"g1")'),
    fc.tuple(tie('long'), fc.constantFrom('<', '<=', '>', '>=', '==', '!='), tie('long')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    fc.tuple(tie('any'), fc.constantFrom('==', '!='), tie('any')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    fc.tuple(entityLit, fc.oneof(entityLit, fc.constantFrom('[Group::"g1", Group::"g0"]', '[Group::"g1", 3]', '[]'))).map(([a, b]) => `(${a} in ${b})`),
    fc.tuple(tie('set'), fc.constantFrom('contains', 'containsAny', 'containsAll'), tie('any')).map(([s, m, v]) => `${s}.${m}(${m === 'contains' ? v : `[${v}]`})`),
    tie('set').map((s) => `${s}.isEmpty()`),
    fc.tuple(strExpr, fc.constantFrom('"*/.ssh/*"', '"*"', '"/srv/*.pdf"', '"a\\*b"', '""', '"*@example.com"')).map(([s, p]) => `(${s} like ${p})`),
    fc.tuple(tie('bool'), fc.constantFrom('&&', '||'), tie('bool')).map(([a, o, b]) => `(${a} ${o} ${b})`),
    tie('bool').map((a) => `(!${a})`),
    fc.tuple(tie('bool'), tie('bool'), tie('bool')).map(([c, t, e]) => `(if ${c} then ${t} else ${e})`),
    fc.tuple(tie('any'), fc.constantFrom('a', 'b', 'state', 'path')).map(([r, a]) => `(${r} has ${a})`),
    fc.constantFrom('{a: 1, b: "x"}.a == 1', 'context.approval.state == "approved"', 'ip("127.0.0.1").isLoopback()'),
  ),
}));

const principalScope = fc.constantFrom('principal', 'principal == Agent::"a1"', 'principal in Group::"g1"', 'principal in Group::"g0"', 'principal is Agent', 'principal is Agent in Group::"g0"', 'principal == Human::"h1"');
const actionScope = fc.constantFrom('action', 'action == Action::"file.read"', 'action in [Action::"file.read", Action::"payment.create"]', 'action in Action::"file.access"', 'action in Action::"node.command"', 'action == Action::"payment.create"');
const resourceScope = fc.constantFrom('resource', 'resource == File::"f1"', 'resource in Collection::"c1"', 'resource is File', 'resource is Record in Collection::"c1"');
const policyText = fc
  .tuple(fc.constantFrom('permit', 'forbid'), principalScope, actionScope, resourceScope, fc.array(fc.tuple(fc.constantFrom('when', 'unless'), bool), { maxLength: 2 }))
  .map(([effect, p, a, r, conds]) => `${effect}(${p}, ${a}, ${r}) ${conds.map(([k, b]) => `${k} { ${b} }`).join(' ')};`);

const request = fc.record({
  triple: fc.constantFrom(
    [{ type: 'Agent', id: 'a1' }, 'file.read', { type: 'File', id: 'f1' }],
    [{ type: 'Agent', id: 'a2' }, 'file.read', { type: 'File', id: 'f2' }],
    [{ type: 'Agent', id: 'a9' }, 'file.write', { type: 'File', id: 'f9' }],
    [{ type: 'Human', id: 'h1' }, 'payment.create', { type: 'Record', id: 'r1' }],
    [{ type: 'Agent', id: 'a1' }, 'payment.create', { type: 'Record', id: 'r1' }],
    [{ type: 'Agent', id: 'a1' }, 'system.run', { type: 'Command', id: 'cmd1' }],
  ),
  amount: fc.option(fc.oneof(fc.integer({ min: -5, max: 2_000_000 }), fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER)), { nil: undefined }),
  argv: fc.option(fc.array(fc.constantFrom('cat', '~/.ssh', 'records:read'), { maxLength: 3 }), { nil: undefined }),
  approvers: fc.integer({ min: 0, max: 3 }),
  classification: fc.constantFrom('public', 'restricted'),
});

function toInput(r: { triple: readonly unknown[]; amount: number | undefined; argv: string[] | undefined; approvers: number; classification: string }) {
  const [principal, action, resource] = r.triple;
  return {
    principal,
    action,
    resource,
    context: {
      classification: r.classification,
      approval: { state: r.approvers > 0 ? 'approved' : 'none', approvers: r.approvers },
      time: { epoch: 1_790_000_000, hour: 9, weekday: 3 },
      ...(r.amount !== undefined ? { amount: r.amount } : {}),
      ...(r.argv !== undefined ? { argv: r.argv } : {}),
    },
  };
}

const sorted = (xs: readonly string[]) => [...xs].sort();

describe('the compiled evaluator', () => {
  it('reads an attribute {"__entity": {…}, "size": 1} as the record Cedar reads, not as an entity (a forbid on its field went unseen)', () => {
    const pdp = acceptIllTypedEntities(new DecisionPoint());
    pdp.load(loadPolicies([{ file: 'a.cedar', text: '@id("sized") forbid(principal, action, resource) when { resource has look.size };\n@id("all") permit(principal, action, resource);' }]));
    pdp.setEntities(ENTITIES);
    const input = { principal: { type: 'Agent', id: 'a1' }, action: 'file.read', resource: { type: 'File', id: 'f2' } };
    assert.deepEqual(pdp.evaluate(input, 'cedar')!.forbids, ['sized']);
    assert.deepEqual([pdp.decide(input).decision, pdp.decide(input).engine], ['deny', 'compiled']);
  });

  it('reaches the same satisfied and errored policies as cedar-wasm on random policies and requests', () => {
    let compared = 0;
    let satisfied = 0;
    let errored = 0;
    fc.assert(
      fc.property(fc.array(policyText, { minLength: 1, maxLength: 6 }), fc.array(request, { minLength: 1, maxLength: 4 }), (texts, requests) => {
        const set = parseUnvalidated(texts.map((text, i) => ({ file: `p${i}.cedar`, text: `@id("p${i}")\n${text}` })));
        const pdp = acceptIllTypedEntities(new DecisionPoint());
        pdp.load(set);
        pdp.setEntities(ENTITIES);
        for (const r of requests) {
          const input = toInput(r);
          const reference = pdp.evaluate(input, 'cedar')!;
          const compiled = pdp.evaluate(input, 'compiled');
          if (compiled === undefined) continue; // deferred to cedar-wasm: nothing to compare
          compared++;
          satisfied += reference.forbids.length + reference.permits.length;
          errored += reference.errors.length;
          assert.deepEqual(sorted(compiled.forbids), sorted(reference.forbids), `forbids for ${JSON.stringify(input)}\n${texts.join('\n')}`);
          assert.deepEqual(sorted(compiled.permits), sorted(reference.permits), `permits for ${JSON.stringify(input)}\n${texts.join('\n')}`);
          assert.deepEqual(sorted(compiled.errors.map((e) => e.policyId)), sorted(reference.errors.map((e) => e.policyId)), `errors for ${JSON.stringify(input)}\n${texts.join('\n')}`);
          // and the decision Corral makes from either is the same
          assert.equal(pdp.decide(input).engine, 'compiled');
        }
      }),
      // CORRAL_FC_RUNS=5000 for a longer hunt; 300 keeps the suite to seconds.
      { numRuns: Number(process.env.CORRAL_FC_RUNS ?? 300) },
    );
    assert.ok(compared > 300, `only ${compared} requests were compared`);
    // not vacuous: policies were satisfied and policies errored
    assert.ok(satisfied > 50 && errored > 10, `satisfied ${satisfied}, errored ${errored}`);
  });

  it('hands a policy with an extension function to cedar-wasm and still decides', () => {
    const set = parseUnvalidated([{ file: 'x.cedar', text: '@id("ext") permit(principal, action, resource) when { ip("127.0.0.1").isLoopback() };' }]);
    const pdp = acceptIllTypedEntities(new DecisionPoint());
    pdp.load(set);
    pdp.setEntities(ENTITIES);
    const input = toInput({ triple: [{ type: 'Agent', id: 'a1' }, 'file.read', { type: 'File', id: 'f1' }], amount: undefined, argv: undefined, approvers: 0, classification: 'public' });
    assert.equal(pdp.uncompiledCount, 1);
    assert.equal(pdp.evaluate(input, 'compiled'), undefined);
    const d = pdp.decide(input);
    assert.equal(d.engine, 'cedar');
    assert.equal(d.decision, 'allow');
    assert.deepEqual(d.policies, ['ext']);
  });
});

describe('like', () => {
  type Pattern = ('Wildcard' | { Literal: string })[];
  /** The naive reference: the pattern as a regular expression. */
  const reference = (pattern: Pattern, text: string) =>
    new RegExp(`^${pattern.map((el) => (el === 'Wildcard' ? '[\\s\\S]*' : el.Literal.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))).join('')}$`, 'u').test(text);
  const chars = fc.constantFrom('a', 'b', '*', '.', '\n', 'é', '😀');
  const pattern = fc.array(fc.oneof(fc.constant('Wildcard' as const), fc.array(chars, { minLength: 1, maxLength: 3 }).map((xs) => ({ Literal: xs.join('') }))), { maxLength: 6 });

  it('matches exactly as the regular expression does (property)', () => {
    fc.assert(
      fc.property(pattern, fc.array(chars, { maxLength: 12 }).map((xs) => xs.join('')), (p, text) => {
        assert.equal(likeMatcher(p)(text), reference(p, text), JSON.stringify({ p, text }));
      }),
      { numRuns: 2000 },
    );
  });

  it('decides a pattern with several wildcards over a long command line in linear time (a regular expression backtracked for seconds)', () => {
    const pdp = new DecisionPoint();
    pdp.load(loadPolicies([{ file: 'a.cedar', text: '@id("curl") forbid(principal, action, resource) when { context has commandLine && context.commandLine like "*curl*http*" };\n@id("all") permit(principal, action, resource);' }]));
    const started = performance.now();
    const d = pdp.decide({ principal: { type: 'Agent', id: 'a' }, action: 'system.run', resource: { type: 'Command', id: 'curl' }, context: { commandLine: 'curl'.repeat(50_000) } });
    assert.deepEqual([d.decision, d.engine], ['allow', 'compiled']);
    assert.ok(performance.now() - started < 1000, `took ${performance.now() - started} ms`);
  });
});
