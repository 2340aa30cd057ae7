// The identity store's agents and humans in the entities a gateway decides
// with: a policy naming an agent's process applies to every agent of it,
// made before the gateway started or since, by its API or in another process.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Identity } from '@corral/identity';
import { pairedNodePeer } from '../../test/node-peer.ts';
import { policyStateDirs } from '../../test/policy-state.ts';
import { GatewayClient } from '../client/client.ts';
import { identityEntities, watchIdentityEntities, withIdentityEntities, type IdentityEntity } from './identity-entities.ts';
import { startTestGateway, type TestGateway } from './testing.ts';

const agent = (name: string, process: string, status = 'active'): IdentityEntity => ({
  uid: { type: 'Agent', id: name },
  attrs: { owner: 'o@example.com', process, status, scopes: [] },
  parents: [{ type: 'Group', id: process }],
});
const group = (id: string): IdentityEntity => ({ uid: { type: 'Group', id }, attrs: {}, parents: [] });

describe('identityEntities and watchIdentityEntities', () => {
  it("lists each agent in its process's group and each human by email, one with no email by issuer and subject, never by the bare subject (which an issuer's user could make \"operator\")", () => {
    const state = stateDir();
    const identity = Identity.open(state);
    try {
      identity.agents.create({ name: 'pay-bot', process: 'billing', owner: 'o@example.com', scopes: ['payments:create'] });
      identity.humans.record({ issuer: 'https://idp.example.com', subject: 'u1', email: 'alice@example.com', roles: ['approver'], groups: [] });
      identity.humans.record({ issuer: 'https://idp.example.com', subject: 'operator', roles: ['admin'], groups: [] });
      assert.deepEqual(identityEntities(identity), [
        group('billing'),
        { uid: { type: 'Agent', id: 'pay-bot' }, attrs: { owner: 'o@example.com', process: 'billing', status: 'active', scopes: ['payments:create'] }, parents: [{ type: 'Group', id: 'billing' }] },
        { uid: { type: 'Human', id: 'oidc:https://idp.example.com#operator' }, attrs: { email: '', roles: ['admin'] }, parents: [] },
        { uid: { type: 'Human', id: 'alice@example.com' }, attrs: { email: 'alice@example.com', roles: ['approver'] }, parents: [] },
      ]);
    } finally {
      identity.close();
    }
  });

  it('gives the same entities, same digest, until a change to the store changes them; a change that does not (a sign-in with the same roles) keeps them', () => {
    const state = stateDir();
    const identity = Identity.open(state);
    try {
      const watch = watchIdentityEntities(identity);
      const first = watch();
      assert.equal(watch(), first);
      createElsewhere(state, 'pay-bot', 'billing');
      const second = watch();
      assert.notEqual(second.digest, first.digest);
      identity.humans.record({ issuer: 'https://idp.example.com', subject: 'u1', email: 'alice@example.com', roles: ['approver'], groups: [] });
      const third = watch();
      identity.humans.record({ issuer: 'https://idp.example.com', subject: 'u1', email: 'alice@example.com', roles: ['approver'], groups: [] });
      assert.equal(watch(), third);
    } finally {
      identity.close();
    }
  });
});

describe('withIdentityEntities', () => {
  it("takes an agent's attributes from the store and keeps the groups entities.json puts it in beside its process's", () => {
    const set = [{ uid: { type: 'Agent', id: 'bot' }, attrs: { owner: 'old@example.com', process: 'old', status: 'active', scopes: ['x'] }, parents: [{ type: 'Group', id: 'finance' }] }];
    const composed = withIdentityEntities(set, [group('billing'), agent('bot', 'billing', 'suspended')]);
    assert.deepEqual(composed, [
      { uid: { type: 'Agent', id: 'bot' }, attrs: { owner: 'o@example.com', process: 'billing', status: 'suspended', scopes: [] }, parents: [{ type: 'Group', id: 'finance' }, { type: 'Group', id: 'billing' }] },
      group('billing'),
    ]);
  });

  it("keeps entities.json's own group of a process (its name, the groups above it) and lists each process's group once", () => {
    const billing = { uid: { __entity: { type: 'Group', id: 'billing' } }, attrs: { name: 'Billing' }, parents: [{ type: 'Group', id: 'finance' }] };
    assert.deepEqual(withIdentityEntities([billing], [group('billing'), agent('bot', 'billing')]), [billing, agent('bot', 'billing')]);
  });

  it('leaves an entity not of Cedar\'s form as it is, for the decision point to refuse, and adds no second entity of its uid', () => {
    const odd = { uid: { type: 'Agent', id: 'bot' }, attrs: 'not a record', parents: [] };
    assert.deepEqual(withIdentityEntities([odd, 7], [agent('bot', 'p')]), [odd, 7]);
  });

  it("keeps the set's entities in their places, adds each of the store's uids once, and has no uid twice (property)", () => {
    const id = fc.constantFrom('a', 'b', 'c', 'd');
    const ref = fc.record({ type: fc.constantFrom('Agent', 'Human', 'Group'), id });
    const entity = fc.record({ uid: ref, attrs: fc.constant({}), parents: fc.array(fc.record({ type: fc.constant('Group'), id }), { maxLength: 3 }) });
    const key = (e: unknown) => JSON.stringify((e as IdentityEntity).uid);
    const unique = (list: IdentityEntity[]) => [...new Map(list.map((e) => [key(e), e])).values()];
    fc.assert(
      fc.property(fc.array(entity).map(unique), fc.array(entity).map(unique), (set, added) => {
        const composed = withIdentityEntities(set, added);
        assert.deepEqual(composed.slice(0, set.length).map(key), set.map(key));
        assert.equal(new Set(composed.map(key)).size, composed.length);
        assert.deepEqual(new Set(composed.map(key)), new Set([...set, ...added].map(key)));
        for (const e of composed as IdentityEntity[]) {
          const own = added.find((a) => key(a) === key(e));
          if (own !== undefined && own.uid.type !== 'Group') for (const p of own.parents) assert.ok(e.parents.some((q) => JSON.stringify(q) === JSON.stringify(p)));
        }
      }),
      { numRuns: 500 },
    );
  });
});

const POLICIES = {
  'run.cedar': `
@id("billing-runs-true") permit (principal in Group::"billing", action == Action::"system.run", resource == Command::"true");
@id("anyone-runs-echo") permit (principal, action == Action::"system.run", resource == Command::"echo");
@id("quarantine") forbid (principal in Group::"quarantine", action, resource);
@id("finance-no-echo") forbid (principal in Group::"finance", action == Action::"system.run", resource == Command::"echo");
@id("linux-runs-printf") permit (principal, action == Action::"system.run", resource == Command::"printf") when { context has node && context.node.platform == "linux" && context.node.paired };
`,
  'entities.json': JSON.stringify([
    { uid: { type: 'Group', id: 'finance' }, attrs: { name: 'Finance' }, parents: [] },
    { uid: { type: 'Agent', id: 'ledger-bot' }, attrs: { owner: 'o@example.com', process: 'ledger', status: 'active', scopes: [] }, parents: [{ type: 'Group', id: 'finance' }] },
  ]),
  'cases.yaml': `cases:
  - name: a billing agent runs true
    principal: { type: Agent, id: case-bot }
    action: system.run
    resource: { type: Command, id: "true" }
    context: { argv: ["true"] }
    expect: allow
`,
};
const stateDir = policyStateDirs('identity-entities', POLICIES);

/** A gateway on a fresh state directory with a paired node that answers every command as run; `run(agent, argv)` is the agent's answer: 'ran' or the refusal's code. */
async function governed(): Promise<TestGateway & { run(agent: string, argv: string[]): Promise<string>; ran: () => number; nodeId: string }> {
  const t = await startTestGateway({ stateDir: stateDir() });
  const node = await pairedNodePeer(t.gw.url, t.token, t.gw.identity, ['system.run'], () => ({ ok: true, payload: { exitCode: 0 } }));
  const clients: GatewayClient[] = [];
  return {
    ...t,
    ran: () => node.received.length,
    nodeId: node.device.deviceId,
    async run(name, argv) {
      const client = await GatewayClient.connect({ url: t.gw.url, role: 'operator', scopes: ['operator.write'], agentToken: (await t.gw.identity.issueToken(name)).token });
      clients.push(client);
      return client.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs: 20_000, idempotencyKey: randomUUID() }, { timeoutMs: 25_000 }).then(
        () => 'ran',
        (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code ?? 'failed',
      );
    },
    async close() {
      for (const c of clients) c.close();
      await node.close();
      await t.close();
    },
  };
}

/** Makes an agent as `corral agents create` does, in a process of its own on the store. */
function createElsewhere(state: string, name: string, process: string): void {
  const terminal = Identity.open(state);
  try {
    terminal.agents.create({ name, process, owner: 'o@example.com' });
  } finally {
    terminal.close();
  }
}

describe("a gateway deciding for an agent that entities.json does not list", () => {
  let t: Awaited<ReturnType<typeof governed>>;
  before(async () => {
    t = await governed();
  });
  after(() => t.close());

  it("applies a permit on the agent's process to it, for an agent made while the gateway runs (regression: only entities.json's groups counted, and every such agent was denied)", { timeout: 60_000 }, async () => {
    t.gw.identity.agents.create({ name: 'pay-bot', process: 'billing', owner: 'o@example.com' });
    assert.equal(await t.run('pay-bot', ['true']), 'ran');
    createElsewhere(t.state, 'invoice-bot', 'billing');
    assert.equal(await t.run('invoice-bot', ['true']), 'ran');
    t.gw.identity.agents.create({ name: 'mail-bot', process: 'mail', owner: 'o@example.com' });
    assert.equal(await t.run('mail-bot', ['true']), 'SYSTEM_RUN_DENIED', 'a permit on another process is not this one');
  });

  it("applies a forbid on the agent's process to it, made in another process after the gateway decided for others (regression: the forbid missed it and another permit let it run)", { timeout: 60_000 }, async () => {
    t.gw.identity.agents.create({ name: 'refund-bot', process: 'billing', owner: 'o@example.com' });
    assert.equal(await t.run('refund-bot', ['echo', 'hi']), 'ran');
    const before = t.ran();
    createElsewhere(t.state, 'held-bot', 'quarantine');
    assert.equal(await t.run('held-bot', ['echo', 'hi']), 'SYSTEM_RUN_DENIED');
    assert.equal(t.ran(), before, 'nothing reached the node');
  });

  it('keeps the groups entities.json puts a listed agent in: its forbid applies, and the store says which process the agent serves', { timeout: 60_000 }, async () => {
    t.gw.identity.agents.create({ name: 'ledger-bot', process: 'billing', owner: 'o@example.com' });
    assert.equal(await t.run('ledger-bot', ['echo', 'hi']), 'SYSTEM_RUN_DENIED', "entities.json's finance group holds");
    assert.equal(await t.run('ledger-bot', ['true']), 'ran', "the store's process, billing, not entities.json's ledger");
  });

  it("knows the node a command would run on, paired, with the platform it declared (regression: context.node had no attributes, and a permit on them never applied)", { timeout: 60_000 }, async () => {
    t.gw.identity.agents.create({ name: 'print-bot', process: 'billing', owner: 'o@example.com' });
    assert.equal(await t.run('print-bot', ['printf', 'x']), 'ran');
    assert.deepEqual(identityEntities(t.gw.identity).filter((e) => e.uid.type === 'Node'), [{ uid: { type: 'Node', id: t.nodeId }, attrs: { platform: 'linux', paired: true }, parents: [] }]);
  });

  it("runs a candidate's cases with the store's agents, as the set in force decides (regression: the API's cases saw entities.json alone)", { timeout: 60_000 }, async () => {
    t.gw.identity.agents.create({ name: 'case-bot', process: 'billing', owner: 'o@example.com' });
    const files = Object.entries(POLICIES).map(([name, text]) => ({ name, text }));
    const tested = await t.tool().post('/api/policies/test', { files });
    assert.equal(tested.status, 200);
    assert.deepEqual(tested.body.results.map((r: { actual: string }) => r.actual), ['allow'], JSON.stringify(tested.body));
  });
});
