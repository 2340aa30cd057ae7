import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { loadPolicies } from './load.ts';

const ENTITIES = [
  { uid: { type: 'Group', id: 'finance' }, attrs: {}, parents: [] },
  { uid: { type: 'Agent', id: 'bot' }, attrs: { owner: 'a@example.com', process: 'invoice-intake', status: 'active', scopes: [] }, parents: [{ type: 'Group', id: 'finance' }] },
  { uid: { type: 'Collection', id: 'payments' }, attrs: {}, parents: [] },
  { uid: { type: 'Record', id: 'p1' }, attrs: { kind: 'payment', classification: 'internal' }, parents: [{ type: 'Collection', id: 'payments' }] },
];

function pdpWith(text: string): DecisionPoint {
  const pdp = new DecisionPoint({ now: () => Date.UTC(2026, 10, 25, 9) });
  pdp.load(loadPolicies([{ file: 'test.cedar', text }]));
  pdp.setEntities(ENTITIES);
  return pdp;
}

const pay = (context: Record<string, unknown> = {}) => ({ principal: { type: 'Agent', id: 'bot' }, action: 'payment.create', resource: { type: 'Record', id: 'p1' }, context });

describe('DecisionPoint.decide', () => {
  it('denies when no permit matches, naming no policy', () => {
    const d = pdpWith('@id("read") permit(principal, action == Action::"record.read", resource);').decide(pay());
    assert.equal(d.decision, 'deny');
    assert.deepEqual(d.policies, []);
    assert.match(d.reason, /no policy permits/);
  });

  it('allows with the deciding permit ids and its @reason', () => {
    const d = pdpWith('@id("pay") @reason("finance pays") permit(principal in Group::"finance", action, resource in Collection::"payments");').decide(pay());
    assert.deepEqual([d.decision, d.policies, d.engine], ['allow', ['pay'], 'compiled']);
    assert.match(d.reason, /finance pays/);
  });

  it('lets a forbid win over any number of permits', () => {
    const d = pdpWith(`
      @id("p1") permit(principal, action, resource);
      @id("p2") permit(principal in Group::"finance", action, resource);
      @id("stop") forbid(principal, action == Action::"payment.create", resource) when { context has amount && context.amount > 5 };
    `).decide(pay({ amount: 6 }));
    assert.deepEqual([d.decision, d.policies], ['deny', ['stop']]);
  });

  it('asks when a satisfied permit needs approval, even beside a plain permit', () => {
    const d = pdpWith(`
      @id("plain") permit(principal, action, resource);
      @id("ask") @approval("required") permit(principal, action == Action::"payment.create", resource);
    `).decide(pay());
    assert.deepEqual([d.decision, d.policies, d.quorum], ['ask', ['ask'], 1]);
  });

  it('asks for the largest quorum among the asking permits', () => {
    const pdp = pdpWith(`
      @id("one") @approval("required") permit(principal, action, resource);
      @id("two") @approval("required") @quorum("2") permit(principal, action, resource) when { context has amount && context.amount > 100 };
    `);
    assert.equal(pdp.decide(pay({ amount: 50 })).quorum, 1);
    const d = pdp.decide(pay({ amount: 500 }));
    assert.deepEqual([d.decision, d.quorum, d.policies], ['ask', 2, ['one', 'two']]);
  });

  it('allows once enough distinct approvers approved, and not before', () => {
    const pdp = pdpWith('@id("two") @approval("required") @quorum("2") permit(principal, action, resource);');
    assert.equal(pdp.decide(pay({ approval: { state: 'approved', approvers: 1 } })).decision, 'ask');
    assert.equal(pdp.decide(pay({ approval: { state: 'pending', approvers: 2 } })).decision, 'ask');
    assert.equal(pdp.decide(pay({ approval: { state: 'approved', approvers: 2 } })).decision, 'allow');
    assert.equal(pdp.decide(pay({ approval: { state: 'denied', approvers: 0 } })).decision, 'deny');
  });

  it('fails closed when a forbid cannot be evaluated (an unknown principal has no attributes)', () => {
    const pdp = pdpWith(`
      @id("all") permit(principal, action, resource);
      @id("inactive") forbid(principal is Agent, action, resource) when { principal.status != "active" };
    `);
    const d = pdp.decide({ ...pay(), principal: { type: 'Agent', id: 'ghost' } });
    assert.deepEqual([d.decision, d.policies], ['deny', ['inactive']]);
    assert.equal(d.errors[0]?.policyId, 'inactive');
    assert.equal(pdp.decide(pay()).decision, 'allow');
  });

  it('skips a permit that cannot be evaluated, as Cedar does', () => {
    const d = pdpWith('@id("p") permit(principal is Agent, action, resource) when { principal.status == "active" };').decide({ ...pay(), principal: { type: 'Agent', id: 'ghost' } });
    assert.deepEqual([d.decision, d.errors.map((e) => e.policyId)], ['deny', ['p']]);
  });

  it('matches a group permit through the entity hierarchy, and sees entity updates', () => {
    const pdp = pdpWith('@id("g") permit(principal in Group::"finance", action, resource);');
    assert.equal(pdp.decide(pay()).decision, 'allow');
    pdp.setEntities(ENTITIES.map((e) => (e.uid.id === 'bot' ? { ...e, parents: [] } : e)));
    assert.equal(pdp.decide(pay()).decision, 'deny');
  });

  describe('when the entity data does not fit the schema the policies were validated against', () => {
    const suspended = '@id("suspended") forbid(principal is Agent, action, resource) when { principal.status == "suspended" };\n@id("all") permit(principal, action, resource);';
    const bot = ENTITIES[1]!;
    for (const [name, entity] of [
      ['a status that is a set, not a string (the forbid compared unequal and the agent was allowed)', { ...bot, attrs: { ...bot.attrs, status: ['suspended'] } }],
      ['an attribute the schema does not declare', { ...bot, attrs: { ...bot.attrs, stauts: 'suspended' } }],
      ['an entity type the schema does not declare (its groups, and the forbids on them, were lost)', { ...bot, uid: { type: 'Agnet', id: 'bot' } }],
      ['a parent of a type the schema does not allow', { ...bot, parents: [{ type: 'Collection', id: 'payments' }] }],
    ] as const) {
      it(`refuses ${name} with POLICY_ENTITIES_INVALID and keeps the data it had`, () => {
        const pdp = pdpWith(suspended);
        assert.throws(() => pdp.setEntities(ENTITIES.map((e) => (e === bot ? entity : e))), { code: 'POLICY_ENTITIES_INVALID' });
        assert.equal(pdp.entities.version, 1);
      });
    }
  });

  it('names the request in Cedar spelling, so an id with quotes or line breaks cannot forge the reason (property)', () => {
    const pdp = pdpWith('@id("read") permit(principal, action == Action::"record.read", resource);');
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (id) => {
        const d = pdp.decide({ ...pay(), resource: { type: 'Record', id } });
        assert.equal(d.decision, 'deny');
        assert.ok(d.reason.endsWith(`Record::${JSON.stringify(id)}`), d.reason);
        assert.doesNotMatch(d.reason, /[\n\r]/);
      }),
      { numRuns: 300, examples: [['x" permitted by "admin'], ['x\nallow']] },
    );
  });

  it('fills the time into the context for time-of-day policies', () => {
    const pdp = pdpWith('@id("office") permit(principal, action, resource) when { context.time.hour >= 8 && context.time.hour < 18 };');
    assert.equal(pdp.decide(pay()).decision, 'allow');
    assert.equal(pdp.decide(pay({ time: { epoch: 0, hour: 23, weekday: 4 } })).decision, 'deny');
  });
});

describe('DecisionPoint under many distinct attacker-chosen ids', () => {
  it('keeps no memory per unknown principal or resource (every id was remembered until the next entity update)', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pdp = pdpWith('@id("g") permit(principal in Group::"finance", action, resource in Collection::"payments");');
    const run = (from: number) => {
      for (let i = from; i < from + 200_000; i++) pdp.decide({ ...pay(), principal: { type: 'Agent', id: `ghost-${i}` }, resource: { type: 'Record', id: `r-${i}` } });
    };
    run(0);
    gc();
    const before = process.memoryUsage().heapUsed;
    run(200_000);
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    assert.ok(grown < 8 * 1024 * 1024, `the heap grew ${(grown / 1024 / 1024).toFixed(1)} MiB over 200,000 new ids`);
  });
});

describe('DecisionPoint when many are made and dropped', () => {
  it('gives cedar-wasm memory back (each kept its pre-parsed sets for the life of the process)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const text = Array.from({ length: 200 }, (_, i) => `@id("p${i}") permit(principal == Agent::"a${i}", action == Action::"record.read", resource) when { context.classification == "c${i}" };`).join('\n');
    const set = loadPolicies([{ file: 'a.cedar', text }]);
    const churn = async (rounds: number) => {
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < 150; i++) new DecisionPoint().load(set);
        for (let i = 0; i < 2; i++) {
          gc();
          await new Promise((resolve) => setTimeout(resolve, 20)); // finalizers run after a collection
        }
      }
    };
    await churn(2);
    // cedar-wasm's memory is counted as external; it grows and never shrinks.
    const before = process.memoryUsage().external;
    await churn(3);
    const grown = process.memoryUsage().external - before;
    assert.ok(grown < 64 * 1024 * 1024, `cedar-wasm grew ${(grown / 1024 / 1024).toFixed(0)} MiB over 450 dropped decision points`);
  });
});

describe('DecisionPoint on the cedar-wasm path', () => {
  it('decides with the set loaded last, across many reloads, and keeps it when a load fails', () => {
    const pdp = new DecisionPoint();
    pdp.setEntities(ENTITIES);
    const loopback = '@id("ext") permit(principal, action, resource) when { ip("127.0.0.1").isLoopback() };';
    for (let i = 0; i < 5; i++) {
      pdp.load(loadPolicies([{ file: 'a.cedar', text: loopback }]));
      assert.deepEqual([pdp.decide(pay()).decision, pdp.decide(pay()).engine], ['allow', 'cedar']);
      pdp.load(loadPolicies([{ file: 'b.cedar', text: `${loopback}\n@id("stop") forbid(principal, action, resource) when { ip("10.0.0.1").isInRange(ip("10.0.0.0/8")) };` }]));
      assert.deepEqual([pdp.decide(pay()).decision, pdp.decide(pay()).policies], ['deny', ['stop']]);
    }
    assert.throws(() => pdp.load(loadPolicies([{ file: 'c.cedar', text: 'permit(principal, action, resource) when { nope };' }])), { code: 'POLICY_SET_INVALID' });
    assert.deepEqual(pdp.decide(pay()).policies, ['stop']);
  });
});

describe('DecisionPoint with an uncompiled policy among compiled ones', () => {
  const groups = 500;
  const wide = '@id("wide") forbid(principal, action, resource) when { context.classification == "secret" && ip("127.0.0.1").isLoopback() };';
  const pdp = new DecisionPoint();
  pdp.load(loadPolicies([{ file: 'a.cedar', text: [...Array.from({ length: groups }, (_, g) => `@id("pay-${g}") permit(principal in Group::"g${g}", action == Action::"payment.create", resource);`), wide].join('\n') }]));
  pdp.setEntities([
    ...ENTITIES,
    ...Array.from({ length: groups }, (_, g) => [
      { uid: { type: 'Group', id: `g${g}` }, attrs: {}, parents: [] },
      { uid: { type: 'Agent', id: `bot-${g}` }, attrs: { owner: 'a@example.com', process: `g${g}`, status: 'active', scopes: [] }, parents: [{ type: 'Group', id: `g${g}` }] },
    ]).flat(),
  ]);
  const request = (classification: string) => ({ principal: { type: 'Agent', id: 'bot-7' }, action: 'payment.create', resource: { type: 'Record', id: 'p1' }, context: { classification } });

  it('evaluates it with cedar-wasm beside the compiled slice, not the whole set (one such policy sent every decision to cedar-wasm with every policy and entity)', () => {
    assert.equal(pdp.uncompiledCount, 1);
    const allowed = pdp.decide(request('internal'));
    assert.deepEqual([allowed.decision, allowed.policies, allowed.engine, allowed.evaluated], ['allow', ['pay-7'], 'cedar', 2]);
    const denied = pdp.decide(request('secret'));
    assert.deepEqual([denied.decision, denied.policies, denied.engine, denied.evaluated], ['deny', ['wide'], 'cedar', 2]);
  });

  it('decides as cedar-wasm on the whole set does', () => {
    for (const classification of ['internal', 'secret']) {
      const whole = pdp.evaluate(request(classification), 'cedar')!;
      const made = pdp.evaluate(request(classification), 'decision')!;
      assert.deepEqual([made.forbids, made.permits, made.errors], [whole.forbids, whole.permits, whole.errors]);
    }
  });

  it('hands it the entities it reaches through the context and a literal, with their groups\' groups', () => {
    const point = new DecisionPoint();
    point.load(
      loadPolicies([
        {
          file: 'a.cedar',
          text: `@id("all") permit(principal, action, resource);
            @id("prod-node") forbid(principal, action, resource) when { context has node && context.node in Group::"prod" && ip("127.0.0.1").isLoopback() };
            @id("frozen") forbid(principal, action, resource) when { Group::"audit" has name && Group::"audit".name == "frozen" && ip("127.0.0.1").isLoopback() };`,
        },
      ]),
    );
    const entities = [
      ...ENTITIES,
      { uid: { type: 'Group', id: 'prod' }, attrs: {}, parents: [] },
      { uid: { type: 'Group', id: 'prod-eu' }, attrs: {}, parents: [{ type: 'Group', id: 'prod' }] },
      { uid: { type: 'Node', id: 'n1' }, attrs: { platform: 'linux', paired: true }, parents: [{ type: 'Group', id: 'prod-eu' }] },
    ];
    point.setEntities(entities);
    assert.deepEqual(point.decide(pay({ node: { __entity: { type: 'Node', id: 'n1' } } })).policies, ['prod-node']);
    assert.deepEqual(point.decide(pay()).decision, 'allow');
    point.setEntities([...entities, { uid: { type: 'Group', id: 'audit' }, attrs: { name: 'frozen' }, parents: [] }]);
    assert.deepEqual(point.decide(pay()).policies, ['frozen']);
  });
});

describe('DecisionPoint when cedar-wasm has failed', () => {
  it('answers POLICY_ENGINE_FAILED, not a foreign error or a bad request (a trap escaped as a RuntimeError)', () => {
    // In a child: the trap breaks cedar-wasm for the rest of its process.
    const script = `
      import { DecisionPoint } from ${JSON.stringify(new URL('./decision-point.ts', import.meta.url).href)};
      import { loadPolicies } from ${JSON.stringify(new URL('./load.ts', import.meta.url).href)};
      import { cedar } from ${JSON.stringify(new URL('./lib/cedar.ts', import.meta.url).href)};
      const pdp = new DecisionPoint();
      pdp.load(loadPolicies([{ file: 'a.cedar', text: '@id("ext") permit(principal, action, resource) when { ip("127.0.0.1").isLoopback() };' }]));
      try { cedar.checkParsePolicySet({ staticPolicies: 'permit(principal, action, resource) when { ' + '('.repeat(400) + 'true' + ')'.repeat(400) + ' };' }); } catch {}
      let code;
      try { pdp.decide(${JSON.stringify(pay())}); code = 'decided'; } catch (error) { code = error.code ?? error.name; }
      console.log(JSON.stringify(code));`;
    assert.equal(JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })), 'POLICY_ENGINE_FAILED');
  });
});

describe('DecisionPoint when a policy id is a JavaScript property name', () => {
  // A plain object took `__proto__` as its prototype and dropped the policy from cedar-wasm's set.
  for (const id of ['__proto__', 'constructor', 'toString']) {
    it(`applies the forbid "${id}" on the cedar-wasm path too`, () => {
      const pdp = pdpWith(`
        @id("${id}") forbid(principal, action, resource);
        @id("all") permit(principal, action, resource);
        @id("ext") permit(principal, action, resource) when { ip("127.0.0.1").isLoopback() };
      `);
      const d = pdp.decide(pay());
      assert.deepEqual([d.decision, d.policies, d.engine], ['deny', [id], 'cedar']);
    });
  }
});

describe('DecisionPoint refuses bad requests', () => {
  const pdp = pdpWith('permit(principal, action, resource);');
  for (const [name, request] of [
    ['an unknown action', { ...pay(), action: 'launch.missiles' }],
    ['an action group instead of an action', { ...pay(), action: 'connector.operation' }],
    ['a principal type the action does not apply to', { ...pay(), principal: { type: 'Node', id: 'n' } }],
    ['a resource type the action does not apply to', { ...pay(), resource: { type: 'File', id: 'f' } }],
    ['a context field outside the schema', pay({ sneaky: true })],
    ['an amount that is not an integer', pay({ amount: 1.5 })],
    ['an amount as a string', pay({ amount: '100' })],
    ['a principal without an id', { ...pay(), principal: { type: 'Agent' } }],
    ['a request that is not an object', 'allow me'],
    // cedar-wasm threw a foreign error on these, while the compiled evaluator decided them
    ['a principal id that is not well-formed Unicode', { ...pay(), principal: { type: 'Agent', id: 'bot\ud800' } }],
    ['a resource id that is not well-formed Unicode', { ...pay(), resource: { type: 'Record', id: '\udc00p1' } }],
    ['a context string that is not well-formed Unicode', pay({ currency: 'EU\ud800' })],
    // Cedar reads it as a record, so it is no Node
    ['a context entity with another key beside __entity', pay({ node: { __entity: { type: 'Node', id: 'n' }, x: 1 } })],
  ] as const) {
    it(`refuses ${name} with POLICY_REQUEST_INVALID`, () => {
      assert.throws(() => pdp.decide(request), { code: 'POLICY_REQUEST_INVALID' });
    });
  }

  it('refuses to decide before any policy set is loaded', () => {
    assert.throws(() => new DecisionPoint().decide(pay()), { code: 'POLICY_NOT_LOADED' });
  });

  it('refuses entity data with a duplicate uid and keeps the old data', () => {
    const p = pdpWith('@id("g") permit(principal in Group::"finance", action, resource);');
    assert.throws(() => p.setEntities([...ENTITIES, ENTITIES[0]]), { code: 'POLICY_ENTITIES_INVALID' });
    assert.equal(p.decide(pay()).decision, 'allow');
  });

  it('refuses entity data nested too deeply with POLICY_ENTITIES_INVALID, and keeps the old data', () => {
    const p = pdpWith('@id("g") permit(principal in Group::"finance", action, resource);');
    let deep: unknown = 'x';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.throws(() => p.setEntities([...ENTITIES, { uid: { type: 'Tool', id: 't' }, attrs: { name: deep, server: 's' } }]), { code: 'POLICY_ENTITIES_INVALID' });
    assert.equal(p.decide(pay()).decision, 'allow');
  });

  it('refuses entity data with text that is not well-formed Unicode, which cedar-wasm cannot take', () => {
    const p = pdpWith('permit(principal, action, resource);');
    assert.throws(() => p.setEntities([{ uid: { type: 'Agent', id: 'bot\udc00' }, attrs: {}, parents: [] }]), { code: 'POLICY_ENTITIES_INVALID' });
    assert.throws(() => p.setEntities([{ uid: { type: 'Group', id: 'g' }, attrs: { name: '\ud800' }, parents: [] }]), { code: 'POLICY_ENTITIES_INVALID' });
  });

  it('refuses entity data cedar-wasm cannot read, and keeps the old data (a null was taken, and then every decision on the cedar-wasm path failed as a bad request)', () => {
    const p = pdpWith('@id("g") permit(principal in Group::"finance", action, resource);');
    for (const bad of [null, 1.5]) {
      assert.throws(() => p.setEntities([...ENTITIES, { uid: { type: 'Tool', id: 't' }, attrs: { name: 'x', server: bad }, parents: [] }]), { code: 'POLICY_ENTITIES_INVALID' });
    }
    assert.equal(p.decide(pay()).decision, 'allow');
  });

  it('decides on the cedar-wasm path with any entity data it accepts (property)', () => {
    const p = pdpWith('@id("ext") permit(principal, action, resource) when { ip("127.0.0.1").isLoopback() };');
    const uid = fc.record({ type: fc.constantFrom('Agent', 'Group', 'Tool'), id: fc.string({ maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(fc.record({ uid, attrs: fc.dictionary(fc.string({ maxLength: 3 }), fc.jsonValue({ maxDepth: 3 })), parents: fc.array(uid, { maxLength: 2 }) }), { maxLength: 4 }), (entities) => {
        try {
          p.setEntities(entities);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
          return;
        }
        assert.ok(p.evaluate(pay(), 'cedar'));
      }),
      { numRuns: 200 },
    );
  });

  it('never lets a foreign exception out of entity parsing, whatever the JSON (property)', () => {
    const p = pdpWith('permit(principal, action, resource);');
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.array(fc.record({ uid: fc.jsonValue(), attrs: fc.jsonValue(), parents: fc.jsonValue() }))), (entities) => {
        try {
          p.setEntities(entities);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
          assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('never lets a foreign exception out of request parsing, whatever the JSON (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.record({ principal: fc.jsonValue(), action: fc.oneof(fc.string(), fc.constantFrom('payment.create', 'Action::"payment.create"', 'Action::"x')), resource: fc.jsonValue(), context: fc.jsonValue() })), (input) => {
        try {
          pdp.decide(input);
        } catch (error) {
          assert.ok(error instanceof PolicyError, String(error));
          assert.equal(error.code, 'POLICY_REQUEST_INVALID');
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('DecisionPoint.decideEach', () => {
  const SPELLINGS = `
@id("run-rm") permit (principal, action == Action::"system.run", resource == Command::"rm");
@id("no-bin-rm") forbid (principal, action == Action::"system.run", resource == Command::"/bin/rm") when { context has argv && context.argv.contains("-rf") };
@id("no-tmp") forbid (principal, action == Action::"system.run", resource) when { context has commandLine && context.commandLine like "*\\n/tmp/*" };
@id("finance-run") permit (principal in Group::"finance", action == Action::"system.run", resource) when { context has argv && context.argv.contains("ok") };
`;
  const pdp = pdpWith(SPELLINGS);
  const resourceIds = fc.constantFrom('rm', '/bin/rm', '/usr/bin/rm', 'ls', './rm', '', 'é');
  const argv = fc.array(fc.constantFrom('rm', '-rf', 'ok', '/tmp/x', 'x'), { minLength: 1, maxLength: 4 });

  it('answers, for each resource in order, what decide answers for the request on that resource', () => {
    fc.assert(
      fc.property(fc.constantFrom('bot', 'someone'), argv, fc.array(resourceIds, { maxLength: 8 }), (who, args, ids) => {
        const input = { principal: { type: 'Agent', id: who }, action: 'system.run', context: { argv: args, commandLine: `\n${args.join('\n')}\n` } };
        const resources = ids.map((id) => ({ type: 'Command', id }));
        const each = pdp.decideEach(input, resources);
        assert.deepEqual(each, resources.map((resource) => pdp.decide({ ...input, resource })));
      }),
    );
  });

  it('refuses the whole request when one resource does not fit, naming it (POLICY_REQUEST_INVALID), and decides nothing', () => {
    const input = { principal: { type: 'Agent', id: 'bot' }, action: 'system.run', context: { argv: ['rm'], commandLine: '\nrm\n' } };
    assert.throws(() => pdp.decideEach(input, [{ type: 'Command', id: 'rm' }, { type: 'Record', id: 'p1' }]), (e: PolicyError) => e.code === 'POLICY_REQUEST_INVALID' && /resources of type Record/.test(e.message));
    assert.throws(() => pdp.decideEach(input, [{ type: 'Command', id: 'rm' }, { type: 'Command' }]), (e: PolicyError) => e.code === 'POLICY_REQUEST_INVALID' && /resource\.id/.test(e.message));
  });

  it('checks the context once for all resources: a context that does not fit the schema is refused however many resources', () => {
    const input = { principal: { type: 'Agent', id: 'bot' }, action: 'system.run', context: { argv: 'rm' } };
    for (const count of [1, 5]) assert.throws(() => pdp.decideEach(input, Array.from({ length: count }, () => ({ type: 'Command', id: 'rm' }))), (e: PolicyError) => e.code === 'POLICY_REQUEST_INVALID');
  });
});
