import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { AgentRegistry, type NewAgent } from './agents.ts';
import { Identity } from './identity.ts';
import { parseTtl } from './ttl.ts';
import { racingDatabase } from '../test/racing-database.ts';

describe('agent registry', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-agents-'));
  const id = Identity.open(dir);
  after(() => {
    id.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates an active agent with an owner, a process and scopes, and finds it by name or id', () => {
    const a = id.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'alice@example.com', scopes: ['records:read', 'records:read'] });
    assert.match(a.id, /^agt_[0-9a-f]{20}$/);
    assert.deepEqual([a.status, a.scopes, a.tokenGeneration], ['active', ['records:read'], 1]);
    assert.equal(id.agents.get(a.id).name, 'invoice-bot');
    assert.deepEqual(id.agents.list().map((x) => x.name), ['invoice-bot']);
  });

  it('refuses a second agent with the same name', () => {
    assert.throws(() => id.agents.create({ name: 'invoice-bot', process: 'p', owner: 'a@example.com' }), { code: 'IDENTITY_AGENT_EXISTS' });
  });

  for (const [what, input] of [
    ['an uppercase name', { name: 'Bot', process: 'p', owner: 'a@example.com' }],
    ['a name with a slash', { name: 'a/b', process: 'p', owner: 'a@example.com' }],
    ['an owner that is not an email', { name: 'x', process: 'p', owner: 'alice' }],
    // Each of these passed before: an escape sequence that clears the reader's terminal, and two addresses that print as alice's.
    ['an owner holding an escape sequence', { name: 'x', process: 'p', owner: '\x1b[2Jmallory@example.com' }],
    ['an owner holding a zero-width space', { name: 'x', process: 'p', owner: 'alice\u200b@example.com' }],
    ['an owner holding a bidi override', { name: 'x', process: 'p', owner: 'mallory\u202e\u2066@example.com' }],
    ['an empty process', { name: 'x', process: '', owner: 'a@example.com' }],
    ['a scope with spaces', { name: 'x', process: 'p', owner: 'a@example.com', scopes: ['a b'] }],
  ] as const) {
    it(`refuses ${what}: IDENTITY_INPUT_INVALID`, () => assert.throws(() => id.agents.create(input as NewAgent), { code: 'IDENTITY_INPUT_INVALID' }));
  }

  it('refuses scopes its tokens could not carry: more than 64, more than 2,048 characters in all, or not a list', () => {
    // Before: the agent was created, and every token it was issued was refused by every verifier as too long.
    const scopes = (n: number, width: number) => Array.from({ length: n }, (_, i) => `s${String(i).padStart(width - 1, '0')}`);
    const agent = (name: string, s: unknown) => ({ name, process: 'p', owner: 'a@example.com', scopes: s }) as NewAgent;
    assert.throws(() => id.agents.create(agent('many', scopes(65, 4))), { code: 'IDENTITY_INPUT_INVALID' });
    assert.throws(() => id.agents.create(agent('wide', scopes(20, 128))), { code: 'IDENTITY_INPUT_INVALID' });
    assert.throws(() => id.agents.create(agent('chars', 'records')), { code: 'IDENTITY_INPUT_INVALID' });
    assert.equal(id.agents.create(agent('most', scopes(64, 31))).scopes.join(' ').length, 2047);
    assert.equal(id.agents.find('many'), undefined);
  });

  it('moves through suspend, resume and retire, and refuses the moves its status forbids', () => {
    id.agents.create({ name: 'b', process: 'p', owner: 'a@example.com' });
    assert.throws(() => id.agents.resume('b'), { code: 'IDENTITY_AGENT_STATE' });
    assert.equal(id.agents.suspend('b').status, 'suspended');
    assert.throws(() => id.agents.suspend('b'), { code: 'IDENTITY_AGENT_STATE' });
    assert.equal(id.agents.resume('b').tokenGeneration, 2);
    assert.equal(id.agents.retire('b').status, 'retired');
    assert.throws(() => id.agents.suspend('b'), { code: 'IDENTITY_AGENT_STATE' });
    assert.throws(() => id.agents.get('nobody'), { code: 'IDENTITY_AGENT_NOT_FOUND' });
  });

  it('keeps the issuer fixed for the life of the state directory', () => {
    const again = Identity.open(dir);
    assert.equal(again.settings.issuer, id.settings.issuer);
    again.close();
    assert.throws(() => Identity.open(dir, { issuer: 'https://other.example' }), { code: 'IDENTITY_INPUT_INVALID' });
  });

  it('refuses an empty or overlong issuer or audience, which every token carries', () => {
    const fresh = join(dir, 'fresh');
    for (const options of [{ issuer: '' }, { audience: '' }, { issuer: `https://${'x'.repeat(300)}` }, { audience: 'a'.repeat(257) }]) {
      assert.throws(() => Identity.open(fresh, options), { code: 'IDENTITY_INPUT_INVALID' }, JSON.stringify(options).slice(0, 40));
    }
  });

  it('keeps the audience fixed too: asking for another one is refused, not silently ignored', () => {
    // Before, the stored audience won and the caller verified tokens for an audience it never asked for.
    assert.throws(() => Identity.open(dir, { audience: 'payments-api' }), { code: 'IDENTITY_INPUT_INVALID' });
    const same = Identity.open(dir, { issuer: id.settings.issuer, audience: id.settings.audience });
    same.close();
  });
});

describe('parseTtl', () => {
  it('reads seconds, minutes and hours', () => {
    assert.deepEqual(['90', '90s', '10m', '1h'].map(parseTtl), [90, 90, 600, 3600]);
  });
  for (const bad of ['', '0', '-5m', '10x', '1.5h', '10 m', '0s', '00m', '10y']) {
    it(`refuses "${bad}"`, () => assert.throws(() => parseTtl(bad), { code: 'IDENTITY_INPUT_INVALID' }));
  }

  it('says what is wrong: a lifetime of zero, a unit it does not read (regression: "0s" and "10y" were both told a lifetime looks like 90s, 10m or 1h)', () => {
    assert.throws(() => parseTtl('0s'), { message: 'a lifetime of 0 is none: give one of at least 1s, as 90s, 10m or 1h' });
    assert.throws(() => parseTtl('10y'), { message: 'y is not a unit of lifetime: use s, m or h' });
    assert.throws(() => parseTtl('ten'), { message: 'a lifetime looks like 90s, 10m or 1h' });
  });
});

describe('when another process changes an agent between this command reading it and writing it', () => {
  /** A registry whose next read of an agent lets `step` (another process's write) land right after it. */
  function racing(dir: string, step: () => void): { agents: AgentRegistry; db: DatabaseSync } {
    const db = racingDatabase(join(dir, 'identity.db'), (sql) => sql.startsWith('SELECT * FROM agents WHERE name'), step);
    return { agents: new AgentRegistry(db), db };
  }

  it('retires an agent a second operator resumed meanwhile, instead of reporting it retired while it stays active', () => {
    // Before: the write matched nothing, and retire() answered the agent as it now was (active), as though done.
    const dir = mkdtempSync(join(tmpdir(), 'corral-agents-race-'));
    const other = Identity.open(dir);
    try {
      other.agents.create({ name: 'raced', process: 'p', owner: 'a@example.com' });
      other.agents.suspend('raced');
      const { agents, db } = racing(dir, () => other.agents.resume('raced'));
      assert.equal(agents.retire('raced').status, 'retired');
      db.close();
      assert.equal(other.agents.get('raced').status, 'retired');
    } finally {
      other.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to suspend an agent retired meanwhile: IDENTITY_AGENT_STATE, not a suspension that never happened', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-agents-race-'));
    const other = Identity.open(dir);
    try {
      other.agents.create({ name: 'raced', process: 'p', owner: 'a@example.com' });
      const { agents, db } = racing(dir, () => other.agents.retire('raced'));
      assert.throws(() => agents.suspend('raced'), { code: 'IDENTITY_AGENT_STATE' });
      db.close();
    } finally {
      other.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('watching for the kill switch pulled in another process', () => {
  it('names each agent suspended or retired since the last look, by this handle or another on the store, once', () => {
    // Before: nothing told a gateway that `corral agents suspend` had stopped an agent, so the nodes went on running its commands.
    const dir = mkdtempSync(join(tmpdir(), 'corral-agents-watch-'));
    const gateway = Identity.open(dir);
    const terminal = Identity.open(dir); // a second handle, as `corral agents suspend` would have
    try {
      const bot = gateway.agents.create({ name: 'bot', process: 'p', owner: 'a@example.com' });
      gateway.agents.create({ name: 'other', process: 'p', owner: 'a@example.com' });
      const stopped = gateway.agents.watchStopped();
      const names = () => stopped().map((a) => `${a.name}:${a.status}`);
      assert.deepEqual(names(), [], 'the first look names none');
      terminal.agents.suspend('bot');
      assert.deepEqual(names(), ['bot:suspended']);
      assert.deepEqual(names(), [], 'named once');
      terminal.agents.resume('bot');
      assert.deepEqual(names(), [], 'a resume stops nothing');
      gateway.agents.suspend(bot.id);
      assert.deepEqual(names(), ['bot:suspended'], 'by this handle too');
      // Suspended and resumed between two looks: what ran under the old generation stops all the same.
      terminal.agents.resume('bot');
      terminal.agents.suspend('bot');
      terminal.agents.resume('bot');
      assert.deepEqual(names(), ['bot:active']);
      // An agent made after the first look, and stopped before the next.
      terminal.agents.create({ name: 'late', process: 'p', owner: 'a@example.com' });
      terminal.agents.retire('late');
      terminal.agents.retire('other');
      assert.deepEqual(names().sort(), ['late:retired', 'other:retired']);
    } finally {
      gateway.close();
      terminal.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
