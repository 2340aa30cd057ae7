import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { corralAgentFor, parseAgentMap, requestingAgent } from './agent-map.ts';

describe('the agent map', () => {
  it('maps upstream agent ids to Corral agents, repeated or comma-separated', () => {
    assert.deepEqual({ ...parseAgentMap(['main=invoice-bot', 'ops=ops-bot,qa=qa-bot']) }, { main: 'invoice-bot', ops: 'ops-bot', qa: 'qa-bot' });
    assert.deepEqual({ ...parseAgentMap([]) }, {});
  });

  it('refuses an entry without both sides, a bad Corral name, or one agent mapped twice (NODE_CONFIG_INVALID)', () => {
    for (const bad of [['main'], ['=bot'], ['main='], ['main=Bad Name'], ['main=a', 'main=b'], ['ma in=bot']]) {
      assert.throws(() => parseAgentMap(bad), { code: 'NODE_CONFIG_INVALID' }, JSON.stringify(bad));
    }
  });

  it('denies an agent it does not name, even one named like an object property (NODE_RUN_DENIED)', () => {
    const map = parseAgentMap(['main=invoice-bot']);
    assert.equal(corralAgentFor(map, 'main'), 'invoice-bot');
    for (const other of ['ops', 'constructor', '__proto__', 'toString']) assert.throws(() => corralAgentFor(map, other), { code: 'NODE_RUN_DENIED' });
  });
});

describe('the requesting agent of a system.run', () => {
  it('comes from agentId, or from the session key agent:<id>:…', () => {
    assert.equal(requestingAgent({ agentId: 'main', sessionKey: 'agent:main:main' }), 'main');
    assert.equal(requestingAgent({ sessionKey: 'agent:ops:incident-42' }), 'ops');
    assert.equal(requestingAgent({ agentId: 'main' }), 'main');
  });

  it('is nobody when neither names one (an operator invoke)', () => {
    assert.equal(requestingAgent({}), undefined);
    assert.equal(requestingAgent({ agentId: null, sessionKey: 'global' }), undefined);
  });

  it('is refused when agentId and the session key name different agents, or either is malformed', () => {
    assert.throws(() => requestingAgent({ agentId: 'main', sessionKey: 'agent:ops:x' }), { code: 'NODE_RUN_DENIED' });
    assert.throws(() => requestingAgent({ agentId: 'a b' }), { code: 'NODE_RUN_DENIED' });
    assert.throws(() => requestingAgent({ agentId: 42 }), { code: 'NODE_RUN_DENIED' });
    assert.throws(() => requestingAgent({ sessionKey: 'agent::x' }), { code: 'NODE_RUN_DENIED' });
    assert.throws(() => requestingAgent({ sessionKey: { agent: 'main' } }), { code: 'NODE_RUN_DENIED' });
  });
});
