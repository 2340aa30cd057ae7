// `corral policy explain` and `replay` decide with the entities a gateway
// would: the policy directory's own entities.json (for replay, the
// candidate's), under the identity store's agents and humans and any
// `--entities` file.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Identity } from '@corral/identity';
import { corral } from '../../test/corral.ts';

const tmp = mkdtempSync(join(tmpdir(), 'corral-cli-set-entities-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const agent = (id: string, groups: string[]) => ({ uid: { type: 'Agent', id }, attrs: { owner: 'alice@example.com', process: 'p', status: 'active', scopes: [] }, parents: groups.map((g) => ({ type: 'Group', id: g })) });
const read = (id: string) => ({ principal: { type: 'Agent', id }, action: 'record.read', resource: { type: 'Record', id: 'r' } });

/** A policy directory whose entities.json puts mallory in Group::"blocked", which a forbid names. */
function blockedSet(name: string, entities: string = JSON.stringify([{ uid: { type: 'Group', id: 'blocked' }, attrs: {}, parents: [] }, agent('mallory', ['blocked'])])): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'set.cedar'), '@id("blocked") forbid(principal in Group::"blocked", action, resource);\n@id("reads") permit(principal, action == Action::"record.read", resource);\n');
  writeFileSync(join(dir, 'entities.json'), entities);
  return dir;
}

describe('corral policy explain and replay with the entities of the policy directory', () => {
  const state = join(tmp, 'state');
  const run = (...args: string[]) => corral(['--state-dir', state, ...args]);

  it("explain decides with the directory's entities.json, as the gateway does (regression: it was ignored, and a blocked agent was explained as allowed)", async () => {
    const set = blockedSet('explain');
    const request = join(tmp, 'mallory.json');
    writeFileSync(request, JSON.stringify(read('mallory')));
    const r = await run('policy', 'explain', '--request', request, '--policies', set, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout).decision, JSON.parse(r.stdout).policies], ['deny', ['blocked']]);
  });

  it("keeps the groups entities.json puts an agent of the identity store in, as a gateway composes them (regression: the store's agent replaced the file's, and a blocked agent was explained as allowed)", async () => {
    const own = join(tmp, 'state-own');
    const identity = Identity.open(own);
    try {
      identity.agents.create({ name: 'mallory', process: 'p', owner: 'alice@example.com' });
    } finally {
      identity.close();
    }
    const request = join(tmp, 'mallory-store.json');
    writeFileSync(request, JSON.stringify(read('mallory')));
    const r = await corral(['--state-dir', own, 'policy', 'explain', '--request', request, '--policies', blockedSet('explain-store'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([JSON.parse(r.stdout).decision, JSON.parse(r.stdout).policies], ['deny', ['blocked']]);
  });

  it('an --entities file still wins over the directory on the same uid', async () => {
    const set = blockedSet('explain-over');
    const request = join(tmp, 'mallory-over.json');
    writeFileSync(request, JSON.stringify(read('mallory')));
    const unblocked = join(tmp, 'unblocked.json');
    writeFileSync(unblocked, JSON.stringify([agent('mallory', [])]));
    const r = await run('policy', 'explain', '--request', request, '--policies', set, '--entities', unblocked, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).decision, 'allow');
  });

  it("replay judges history with the candidate's entities.json (regression: without --entities the candidate's group was empty, and no change was listed)", async () => {
    const set = blockedSet('replay');
    const history = join(tmp, 'history.jsonl');
    writeFileSync(history, [{ ref: 7, request: read('mallory'), decision: 'allow' }, { ref: 8, request: read('alice'), decision: 'allow' }].map((x) => JSON.stringify(x)).join('\n'));
    const r = await run('policy', 'replay', '--candidate', set, '--history', history, '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual(report.changed.map((c: { ref: number; after: { decision: string } }) => [c.ref, c.after.decision]), [[7, 'deny']]);
  });

  it("test decides with the directory's entities.json, as a gateway runs a set's cases (regression: it was ignored, and a case expecting the blocked agent denied failed)", async () => {
    const set = blockedSet('test');
    const cases = join(tmp, 'blocked-cases.yaml');
    writeFileSync(cases, 'cases:\n  - name: mallory is blocked\n    principal: { type: Agent, id: mallory }\n    action: record.read\n    resource: { type: Record, id: r }\n    expect: deny\n    policies: [blocked]\n');
    const r = await run('policy', 'test', set, cases);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /1 passed, 0 failed/);
  });

  it("names the directory's entities.json when it is not JSON, or not a list (exit 2)", async () => {
    const request = join(tmp, 'any.json');
    writeFileSync(request, JSON.stringify(read('alice')));
    for (const [name, text, reason] of [['not-json', '[{', /not-json\/entities\.json/], ['not-a-list', '{"uid": 1}', /not-a-list\/entities\.json must hold a JSON array/]] as const) {
      const r = await run('policy', 'explain', '--request', request, '--policies', blockedSet(name, text));
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, reason);
      assert.doesNotMatch(r.stderr, /\n +at /, 'no stack trace');
    }
    // Where and why, said once (regression: "entities.json is not JSON", then "entities.json: not JSON").
    const r = await run('policy', 'explain', '--request', request, '--policies', blockedSet('not-json-twice', '[\n  {'));
    assert.equal(r.stderr.match(/not-json-twice\/entities\.json:2:4: not JSON \(Expected property name or '\}'\)/g)?.length, 1, r.stderr);
  });

  it("refuses the directory's entities.json, or an --entities file, that gives one key twice in an object, naming the line (exit 2; JSON.parse kept the last \"parents\", and a blocked agent was explained as allowed)", async () => {
    const twice = '[\n{"uid": {"type": "Group", "id": "blocked"}},\n{"uid": {"type": "Agent", "id": "mallory"}, "attrs": {"owner": "o", "process": "p", "status": "active", "scopes": []},\n "parents": [{"type": "Group", "id": "blocked"}],\n "parents": []}\n]';
    const request = join(tmp, 'mallory-twice.json');
    writeFileSync(request, JSON.stringify(read('mallory')));
    const own = await run('policy', 'explain', '--request', request, '--policies', blockedSet('twice', twice));
    assert.equal(own.code, 2, own.stdout);
    assert.match(own.stderr, /twice\/entities\.json:5:2: the key "parents" appears twice/);
    const extra = join(tmp, 'extra-twice.json');
    writeFileSync(extra, twice);
    const given = await run('policy', 'explain', '--request', request, '--policies', blockedSet('twice-given'), '--entities', extra, '--json');
    assert.equal(given.code, 2, given.stdout);
    assert.equal(JSON.parse(given.stdout).error.code, 'POLICY_ENTITIES_INVALID');
  });

  it("numbers an entity the directory's entities.json gives wrongly within that file", async () => {
    const set = blockedSet('numbered', JSON.stringify([agent('ok', []), { uid: { type: 'Record', id: 'r' }, attrs: {}, parents: [{ type: 'Collection' }] }]));
    const request = join(tmp, 'numbered.json');
    writeFileSync(request, JSON.stringify(read('ok')));
    const r = await run('policy', 'explain', '--request', request, '--policies', set, '--json');
    assert.equal(r.code, 2, r.stderr);
    const { error } = JSON.parse(r.stdout);
    assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
    assert.ok(error.message.includes(`entities[0] is the first of ${join(set, 'entities.json')}, in its order, up to entities[1]`), error.message);
  });
});
