import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openAuditLog } from '@corral/audit';
import { Gateway, GatewayClient } from '@corral/gateway';
import { Identity } from '@corral/identity';
import { pairedNodePeer } from '../../../gateway/test/node-peer.ts';
import { CORRAL_BIN, corral } from '../../test/corral.ts';

const EXAMPLE = fileURLToPath(new URL('../../../../examples/invoice-intake/cedar', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'corral-cli-policy-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const state = join(tmp, 'state');
const run = (...args: string[]) => corral(['--state-dir', state, ...args]);

describe('corral policy', () => {
  it('validates the example set', async () => {
    const r = await run('policy', 'validate', EXAMPLE, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).policies.some((p: { id: string; quorum: number }) => p.id === 'intake-pays-large' && p.quorum === 2));
  });

  it('refuses a bad set with exit 2, naming file, line and reason', async () => {
    const bad = join(tmp, 'bad');
    cpSync(EXAMPLE, bad, { recursive: true });
    writeFileSync(join(bad, 'typo.cedar'), '// a typo on line 3\n@id("typo")\npermit(principal is Agent, action, resource) when { principal.stauts == "active" };\n');
    const r = await run('policy', 'validate', bad);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /typo\.cedar:3:\d+: \[typo\] .*stauts/);
    const j = await run('policy', 'validate', bad, '--json');
    assert.equal(j.code, 2);
    assert.deepEqual([JSON.parse(j.stdout).valid, JSON.parse(j.stdout).issues[0].line], [false, 3]);
  });

  it("refuses a set whose entities.json the gateway would refuse, naming it (exit 2; validate read only the Cedar files and said the set was valid, and activating it then failed)", async () => {
    const looped = join(tmp, 'looped');
    cpSync(EXAMPLE, looped, { recursive: true });
    writeFileSync(join(looped, 'entities.json'), JSON.stringify([{ uid: { type: 'Group', id: 'a' }, parents: [{ type: 'Group', id: 'b' }] }, { uid: { type: 'Group', id: 'b' }, parents: [{ type: 'Group', id: 'a' }] }]));
    const r = await run('policy', 'validate', looped);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /entities\.json: .*its own ancestor/);
    const j = await run('policy', 'validate', looped, '--json');
    assert.equal(j.code, 2);
    const report = JSON.parse(j.stdout);
    assert.deepEqual([report.valid, report.code, report.issues[0].file], [false, 'POLICY_ENTITIES_INVALID', 'entities.json']);
  });

  it('passes the example cases, and fails (exit 1) a case that expects otherwise', async () => {
    const ok = await run('policy', 'test', EXAMPLE, join(EXAMPLE, 'cases.yaml'));
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /19 passed, 0 failed/);
    const cases = join(tmp, 'wrong.yaml');
    writeFileSync(cases, `entities: ${join(EXAMPLE, 'entities.json')}\ncases:\n  - name: ssh is fine\n    principal: { type: Agent, id: invoice-bot }\n    action: file.read\n    resource: { type: File, id: /home/agent/.ssh/id_ed25519 }\n    expect: allow\n`);
    const bad = await run('policy', 'test', EXAMPLE, cases);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /FAIL ssh is fine\n +expected allow\n +got +deny by \[no-ssh-keys\]/);
  });

  it("prints a case's name and a decision's reason from a hostile cases file or policy set escaped, never as escape or bidi characters (regression: a name holding ESC[2J cleared the reader's terminal)", async () => {
    const set = join(tmp, 'hostile-reason');
    mkdirSync(set);
    writeFileSync(join(set, 'reads.cedar'), '@id("reads") @reason("fine\\u{1b}]0;owned\\u{7}") permit(principal, action == Action::"record.read", resource);\n');
    const cases = join(tmp, 'hostile.yaml');
    writeFileSync(cases, 'cases:\n  - name: "all good \\e[2J\\u202Eevil"\n    principal: { type: Agent, id: a }\n    action: record.read\n    resource: { type: Record, id: r }\n    expect: deny\n');
    const r = await run('policy', 'test', set, cases);
    assert.equal(r.code, 1, r.stderr);
    assert.doesNotMatch(r.stdout, /[\u001b\u0007\u202e]/);
    assert.match(r.stdout, /^FAIL all good \\u001b\[2J\\u202eevil\n +expected deny\n +got +allow by \[reads\]: .*fine\\u001b\]0;owned\\u0007\n/m);
  });

  it('explains a decision for an agent of the identity store: ask with a quorum of two, naming the policy and its line', async () => {
    assert.equal((await run('agents', 'create', 'invoice-bot', '--process', 'invoice-intake', '--owner', 'alice@example.com')).code, 0);
    const request = join(tmp, 'req.json');
    writeFileSync(request, JSON.stringify({ principal: { type: 'Agent', id: 'invoice-bot' }, action: 'payment.create', resource: { type: 'Record', id: 'PAY-7' }, context: { amount: 2_500_000 } }));
    const entities = join(tmp, 'records.json');
    writeFileSync(entities, JSON.stringify([
      { uid: { type: 'Collection', id: 'payments' }, attrs: {}, parents: [] },
      { uid: { type: 'Record', id: 'PAY-7' }, attrs: { kind: 'payment', classification: 'internal' }, parents: [{ type: 'Collection', id: 'payments' }] },
    ]));
    const r = await run('policy', 'explain', '--request', request, '--policies', EXAMPLE, '--entities', entities);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /decision: ask \(quorum 2\)\npolicies: intake-pays-large \(invoice-intake\.cedar:\d+\)\nreason: +needs approval by 2 distinct approvers/);
    // the same agent, suspended in the identity store, is denied by the guardrail
    assert.equal((await run('agents', 'suspend', 'invoice-bot')).code, 0);
    const j = await run('policy', 'explain', '--request', request, '--policies', EXAMPLE, '--entities', entities, '--json');
    assert.deepEqual([JSON.parse(j.stdout).decision, JSON.parse(j.stdout).policies], ['deny', ['no-suspended-agents']]);
  });

  it("explains a system.run as a gateway decides it: a forbid on another spelling of the program denies (regression: a forbid on Command::\"rm\" was not applied to /usr/bin/rm, explained as allowed while the gateway denied)", async () => {
    const set = join(tmp, 'spellings');
    mkdirSync(set);
    writeFileSync(join(set, 'run.cedar'), '@id("runs") permit(principal, action == Action::"system.run", resource);\n@id("no-rm") forbid(principal, action == Action::"system.run", resource == Command::"rm");\n');
    const request = join(tmp, 'rm.json');
    writeFileSync(request, JSON.stringify({ principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: '/usr/bin/rm' }, context: { argv: ['/usr/bin/rm', 'x'], commandLine: '\n/usr/bin/rm\nx\n' } }));
    const r = await run('policy', 'explain', '--request', request, '--policies', set, '--json');
    assert.equal(r.code, 0, r.stderr);
    const explained = JSON.parse(r.stdout);
    assert.deepEqual([explained.decision, explained.policies, explained.askedAs.resource], ['deny', ['no-rm'], 'rm']);
    assert.ok(explained.askedAs.spellings.includes('/usr/bin/rm'));
    const human = await run('policy', 'explain', '--request', request, '--policies', set);
    assert.match(human.stdout, /^decision: deny\n/);
    assert.match(human.stdout, /asked as: Command::"rm", and for its forbids as .*\/usr\/bin\/rm/);
  });

  it('explains a relative program as the file in the request\'s working directory, as a gateway names it: a forbid on /srv/app/tool denies ./tool run in /srv/app', async () => {
    const set = join(tmp, 'relative');
    mkdirSync(set);
    writeFileSync(join(set, 'run.cedar'), '@id("runs") permit(principal, action == Action::"system.run", resource);\n@id("no-tool") forbid(principal, action == Action::"system.run", resource == Command::"/srv/app/tool");\n');
    const request = join(tmp, 'tool.json');
    writeFileSync(request, JSON.stringify({ principal: { type: 'Human', id: 'operator' }, action: 'system.run', resource: { type: 'Command', id: './tool' }, context: { argv: ['./tool'], commandLine: '\n./tool\n', cwd: '/srv/app' } }));
    const explained = JSON.parse((await run('policy', 'explain', '--request', request, '--policies', set, '--json')).stdout);
    assert.deepEqual([explained.decision, explained.policies, explained.askedAs.resource], ['deny', ['no-tool'], '/srv/app/tool']);
  });

  it('refuses a request outside the schema with exit 2', async () => {
    const request = join(tmp, 'bad-req.json');
    writeFileSync(request, JSON.stringify({ principal: { type: 'Agent', id: 'x' }, action: 'launch.missiles', resource: { type: 'Record', id: 'r' } }));
    const r = await run('policy', 'explain', '--request', request, '--policies', EXAMPLE);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /POLICY_REQUEST_INVALID/);
  });

  it("says a request file that is not there is missing and what a request holds, exit 2 (it printed Node's ENOENT message, the path twice, and no way on)", async () => {
    const missing = join(tmp, 'request.json');
    const r = await run('policy', 'explain', '--request', missing, '--policies', EXAMPLE);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `corral: cannot read the request from ${missing}: there is no such file; write the request there as JSON: { "principal": { "type": "Agent", "id": "invoice-bot" }, "action": "payment.create", "resource": { "type": "Record", "id": "PAY-7" }, "context": { "amount": 250000 } }\n`);
  });

  it('says a request file that is not JSON is not JSON, and what a request holds, exit 2 (regression: "cannot read the request", and no way on)', async () => {
    const yaml = join(tmp, 'request.yaml');
    writeFileSync(yaml, 'principal: invoice-bot\n');
    const r = await run('policy', 'explain', '--request', yaml, '--policies', EXAMPLE);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^corral: the request in \S+request\.yaml is not JSON \(.+\); write it as: \{ "principal": \{ "type": "Agent", "id": "invoice-bot" \}, .*\}\n$/);
  });

  describe('when the entities are spelled or listed unusually', () => {
    const blocked = join(tmp, 'blocked');
    const agent = (id: string, parents: unknown[]) => ({ uid: { __entity: { type: 'Agent', id } }, attrs: { owner: 'x', process: 'p', status: 'active', scopes: [] }, parents });
    const request = join(tmp, 'mallory.json');

    it('decides with every entity of a cases file in the {"__entity"} spelling (all were taken for one, and a blocked agent was allowed)', async () => {
      cpSync(EXAMPLE, blocked, { recursive: true });
      writeFileSync(join(blocked, 'blocked.cedar'), '@id("blocked") forbid(principal in Group::"blocked", action, resource);\n@id("reads") permit(principal, action == Action::"record.read", resource);\n');
      const cases = join(tmp, 'blocked.yaml');
      writeFileSync(cases, JSON.stringify({
        entities: [{ uid: { __entity: { type: 'Group', id: 'blocked' } } }, agent('mallory', [{ type: 'Group', id: 'blocked' }]), agent('alice', [])],
        cases: [
          { name: 'mallory is blocked', principal: { type: 'Agent', id: 'mallory' }, action: 'record.read', resource: { type: 'Record', id: 'r' }, expect: 'deny', policies: ['blocked'] },
          { name: 'alice reads', principal: { type: 'Agent', id: 'alice' }, action: 'record.read', resource: { type: 'Record', id: 'r' }, expect: 'allow' },
        ],
      }));
      const r = await run('policy', 'test', blocked, cases);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    });

    it('refuses an entities file that lists a uid twice, naming both (the last one silently won)', async () => {
      const entities = join(tmp, 'twice.json');
      writeFileSync(entities, JSON.stringify([agent('mallory', [{ type: 'Group', id: 'blocked' }]), { uid: { type: 'Group', id: 'blocked' } }, { ...agent('mallory', []), uid: { type: 'Agent', id: 'mallory' } }]));
      writeFileSync(request, JSON.stringify({ principal: { type: 'Agent', id: 'mallory' }, action: 'record.read', resource: { type: 'Record', id: 'r' } }));
      const r = await run('policy', 'explain', '--request', request, '--policies', blocked, '--entities', entities);
      assert.equal(r.code, 2, r.stdout);
      assert.match(r.stderr, /twice\.json: entity \[2\] Agent::"mallory" is entity \[0\] again/);
    });

    it('names the file and its own index of an entity it refuses, beside the agents of the state directory (regression: its index among them, entities[2] for the first)', async () => {
      const dir = join(tmp, 'numbered');
      assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'invoice-bot', '--process', 'invoice-intake', '--owner', 'alice@example.com'])).code, 0);
      const entities = join(tmp, 'one-bad.json');
      writeFileSync(entities, JSON.stringify([{ uid: { type: 'Record', id: 'r' }, attrs: {}, parents: [{ type: 'Collection' }] }]));
      writeFileSync(request, JSON.stringify({ principal: { type: 'Agent', id: 'invoice-bot' }, action: 'record.read', resource: { type: 'Record', id: 'r' } }));
      const explained = await corral(['--state-dir', dir, 'policy', 'explain', '--request', request, '--policies', EXAMPLE, '--entities', entities, '--json']);
      assert.equal(explained.code, 2, explained.stderr);
      const { error } = JSON.parse(explained.stdout);
      assert.equal(error.code, 'POLICY_ENTITIES_INVALID');
      assert.match(error.message, /^entities\[0\]\./);
      assert.ok(error.message.includes(`entities[0] is the first of ${entities}`), error.message);
      const cases = join(tmp, 'one-bad.yaml');
      writeFileSync(cases, JSON.stringify({ entities: [{ uid: { type: 'Record', id: 'ok' }, attrs: {}, parents: [] }, { uid: { type: 'Record', id: 'r' }, attrs: {}, parents: [{ type: 'Collection' }] }], cases: [{ name: 'reads', principal: { type: 'Agent', id: 'invoice-bot' }, action: 'record.read', resource: { type: 'Record', id: 'r' }, expect: 'allow' }] }));
      const tested = await corral(['--state-dir', dir, 'policy', 'test', EXAMPLE, cases]);
      assert.equal(tested.code, 2, tested.stderr);
      assert.match(tested.stderr, /^corral: entities\[1\]\./);
      assert.ok(tested.stderr.includes(`entities[0] is the first of the entities of ${cases}`), tested.stderr);
    });

    it('gives the code of a refusal as its own field under --json', async () => {
      writeFileSync(request, JSON.stringify({ principal: { type: 'Agent', id: 'mallory' }, action: 'launch.missiles', resource: { type: 'Record', id: 'r' } }));
      const r = await run('policy', 'explain', '--request', request, '--policies', blocked, '--json');
      assert.equal(r.code, 2);
      assert.equal(JSON.parse(r.stdout).error.code, 'POLICY_REQUEST_INVALID');
    });
  });

  it('exits 3 when the identity store of the state directory cannot be opened, as every command does (regression: exit 1, as if a check had failed)', async () => {
    const dir = join(tmp, 'not-a-store');
    mkdirSync(dir, { mode: 0o700 });
    writeFileSync(join(dir, 'identity.db'), 'not a database: text long enough for SQLite to read a header from it\n', { mode: 0o600 });
    const request = join(tmp, 'not-a-store-request.json');
    writeFileSync(request, JSON.stringify({ principal: { type: 'Agent', id: 'invoice-bot' }, action: 'record.read', resource: { type: 'Record', id: 'r' } }));
    for (const args of [['explain', '--request', request, '--policies', EXAMPLE], ['test', EXAMPLE, join(EXAMPLE, 'cases.yaml')], ['replay', '--candidate', EXAMPLE, '--history', '/dev/null']]) {
      const r = await corral(['--state-dir', dir, 'policy', ...args, '--json']);
      assert.equal(r.code, 3, `${args[0]}: ${r.stderr}`);
      assert.equal(JSON.parse(r.stdout).error.code, 'IDENTITY_STORE_FAILED', args[0]);
    }
  });

  it('replays recorded history through a candidate set and lists what would change', async () => {
    const history = join(tmp, 'history.jsonl');
    const req = (amount: number) => ({ principal: { type: 'Agent', id: 'invoice-bot' }, action: 'payment.create', resource: { type: 'Record', id: 'PAY-7' }, context: { amount } });
    writeFileSync(history, [
      { ref: 41, at: '2026-10-01T09:00:00Z', request: req(50_000), decision: 'allow' },
      { ref: 42, at: '2026-10-02T09:00:00Z', request: req(420_000), decision: 'allow' },
    ].map((x) => JSON.stringify(x)).join('\n'));
    const r = await run('policy', 'replay', '--candidate', EXAMPLE, '--history', history, '--entities', join(EXAMPLE, 'entities.json'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.deepEqual([report.total, report.unchanged, report.changed.map((c: { ref: number; after: { decision: string } }) => [c.ref, c.after.decision])], [2, 1, [[42, 'ask']]]);
  });

  it('names the file and line of a history line it cannot read, and a history file that is missing (exit 2)', async () => {
    const history = join(tmp, 'broken-history.jsonl');
    const ok = JSON.stringify({ request: { principal: { type: 'Agent', id: 'invoice-bot' }, action: 'payment.create', resource: { type: 'Record', id: 'PAY-7' }, context: { amount: 1 } }, decision: 'allow' });
    writeFileSync(history, `${ok}\n\n{"request": \n`);
    const broken = await run('policy', 'replay', '--candidate', EXAMPLE, '--history', history);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /broken-history\.jsonl:3: not JSON/);
    writeFileSync(history, `${ok}\n{"request": {}, "decision": "maybe"}\n`);
    assert.match((await run('policy', 'replay', '--candidate', EXAMPLE, '--history', history)).stderr, /broken-history\.jsonl:2: a recorded decision needs request and decision/);
    const missing = await run('policy', 'replay', '--candidate', EXAMPLE, '--history', join(tmp, 'no-such.jsonl'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read history from .*no-such\.jsonl: there is no such file\n/);
  });

  it('replays on a state directory with no audit log: exit 3 with the audit log\'s code, as every command without its log, and says to pass --history (regression: exit 2, CLI_BAD_ARGUMENT, as if the command line were wrong)', async () => {
    const empty = mkdtempSync(join(tmp, 'no-log-'));
    const r = await corral(['--state-dir', empty, 'policy', 'replay', '--candidate', EXAMPLE, '--json']);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, 'AUDIT_STORE_UNAVAILABLE');
    assert.match(r.stderr, /^corral: cannot read the audit log: no audit log at .*; pass --history FILE to replay recorded decisions from a file \[AUDIT_STORE_UNAVAILABLE\]\n$/);
  });

  it('names a history that is a directory, exit 2 (regression: EISDIR alone, naming no file, exit 1)', async () => {
    for (const json of [[], ['--json']]) {
      const r = await run('policy', 'replay', '--candidate', EXAMPLE, '--history', tmp, ...json);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.startsWith(`corral: cannot read history from ${tmp}: it is a directory, not a file\n`), r.stderr);
      if (json.length > 0) assert.equal(JSON.parse(r.stdout).error.code, 'CLI_BAD_ARGUMENT');
    }
  });

  it('reads history from a pipe (--history <(...)), not only from a regular file', async () => {
    const fifo = join(tmp, 'history.fifo');
    execFileSync('mkfifo', [fifo]);
    const line = JSON.stringify({ ref: 7, request: { principal: { type: 'Agent', id: 'invoice-bot' }, action: 'payment.create', resource: { type: 'Record', id: 'PAY-7' }, context: { amount: 420_000 } }, decision: 'allow' });
    const [r] = await Promise.all([run('policy', 'replay', '--candidate', EXAMPLE, '--history', fifo, '--entities', join(EXAMPLE, 'entities.json'), '--json'), writeFile(fifo, `${line}\n`)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).changed.map((c: { ref: number }) => c.ref), [7]);
  });

  it('says on stderr how many recorded decisions it has read while a replay takes long, its report alone on stdout (regression: nothing for as long as it took)', { timeout: 60_000 }, async () => {
    const fifo = join(tmp, 'slow-history.fifo');
    execFileSync('mkfifo', [fifo]);
    const child = spawn(CORRAL_BIN, ['--state-dir', state, 'policy', 'replay', '--candidate', EXAMPLE, '--history', fifo, '--entities', join(EXAMPLE, 'entities.json'), '--json'], {
      env: { ...process.env, CORRAL_NODE: process.execPath },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const closed = once(child, 'close');
    // The history arrives slowly: three decisions, then nothing until the progress line has been seen.
    const history = createWriteStream(fifo);
    const line = JSON.stringify({ request: { principal: { type: 'Agent', id: 'invoice-bot' }, action: 'payment.create', resource: { type: 'Record', id: 'PAY-7' }, context: { amount: 1 } }, decision: 'allow' });
    history.write(`${line}\n${line}\n${line}\n`);
    try {
      while (!stderr.includes('corral: replay: 3 recorded decisions read\n') && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    } finally {
      // Ended at the latest when the test gives up, so that the replay ends.
      history.end();
    }
    const [code] = await closed;
    assert.equal(code, 0, stderr);
    assert.match(stderr, /^(corral: replay: 3 recorded decisions read\n)+$/);
    assert.equal(JSON.parse(stdout).total, 3);
  });

  it('replays the decisions recorded in the audit log of the state directory, a governed run as the gateway decided it (regression: every node.invoke.decide was left out)', async () => {
    const dir = join(tmp, 'audited');
    const identity = Identity.open(dir);
    const agent = identity.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'alice@example.com' });
    identity.close();
    const log = await openAuditLog({ stateDir: dir });
    const pay = (amount: number, effect: 'allow' | 'deny' | 'ask') =>
      log.append({ time: '2026-10-02T09:00:00.000Z', actor: { kind: 'agent', id: agent.id }, action: 'payment.create', resource: { kind: 'record', id: 'PAY-7' }, decision: { effect, policies: ['old-policy'] }, details: { context: { amount, classification: 'internal' } } });
    await pay(50_000, 'allow');
    await pay(420_000, 'allow');
    await log.append({ actor: { kind: 'agent', id: agent.id }, action: 'run.exec', resource: { kind: 'command', id: '/bin/true' }, outcome: { status: 'success' } });
    await log.append({ actor: { kind: 'human', id: 'ops@host' }, action: 'run.exec', resource: { kind: 'command', id: '/bin/true' }, decision: { effect: 'allow', policies: ['container:sha256:00'] } });
    await pay(5_000_000, 'deny');
    // Governed runs as the gateway records them: its program under any spelling, every command a shell runs.
    const run = (argv: string[], commands: string[][]) =>
      log.append({ actor: { kind: 'agent', id: 'invoice-bot' }, action: 'node.invoke.decide', resource: { kind: 'command', id: argv[0]! }, node: 'a'.repeat(64), decision: { effect: 'allow', policies: ['old-policy'] }, details: { digest: 'b'.repeat(64), command: 'system.run', argv, commands, cwd: null, envKeys: [] } });
    await run(['/usr/bin/cat', 'inbox/a.txt'], [['/usr/bin/cat', 'inbox/a.txt']]);
    await run(['sh', '-c', 'cat inbox/a.txt; rm inbox/a.txt'], [['cat', 'inbox/a.txt'], ['rm', 'inbox/a.txt']]);
    await log.close();
    const r = await corral(['--state-dir', dir, 'policy', 'replay', '--candidate', EXAMPLE, '--entities', join(EXAMPLE, 'entities.json'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.total, 5);
    assert.deepEqual(report.changed.map((c: { ref: number; before: string; after: { decision: string; quorum?: number } }) => [c.ref, c.before, c.after.decision, c.after.quorum]), [[1, 'allow', 'ask', 1], [4, 'deny', 'ask', 2], [6, 'allow', 'deny', undefined]]);
    const text = await corral(['--state-dir', dir, 'policy', 'replay', '--candidate', EXAMPLE, '--entities', join(EXAMPLE, 'entities.json')]);
    assert.match(text.stdout, /5 recorded decisions: 3 would change, 2 unchanged, 0 not decidable/);
    assert.match(text.stdout, /6 2026-\S+ {2}Agent::"invoice-bot" system\.run Command::"sh": allow -> deny \(rm: /);
  });

  it("judges an ask an allow-always grant of the candidate covers as the gateway will decide it, allowed by the grant, until the grant is revoked (regression: replayed as deny -> ask, then ran with no one asked)", { timeout: 60_000 }, async () => {
    const dir = join(tmp, 'granted');
    mkdirSync(join(dir, 'policies'), { recursive: true });
    writeFileSync(join(dir, 'policies', 'main.cedar'), '@id("printf-asks") @approval("required") permit (principal, action == Action::"system.run", resource == Command::"printf");\n');
    const token = randomBytes(24).toString('base64url');
    const gw = await Gateway.start({ stateDir: dir, token, port: 0, approvalPollMs: 20 });
    const node = await pairedNodePeer(gw.url, token, gw.identity, ['system.run']);
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    const printf = (timeoutMs = 5_000) => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: ['printf', 'standing'] }, timeoutMs, idempotencyKey: randomUUID() }).then(() => 'ran', () => 'refused');
    try {
      assert.equal(await printf(100), 'refused');
      const id = gw.approvals.list({ status: 'pending' })[0]!.id;
      await gw.invoker.resolveApprovalWhenFree(id, 'allow-always', 'alice');
      assert.equal(await printf(), 'ran');
      // The set with its grant, as a candidate; the one put in force forbids printf.
      const api = async (path: string, body?: unknown) => (await fetch(`${gw.httpUrl}${path}`, { method: body === undefined ? 'GET' : 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })).json() as Promise<{ files: Array<{ name: string; text: string }>; hash: string }>;
      const granted = await api('/api/policies');
      const candidate = join(tmp, 'granted-candidate');
      for (const f of granted.files) {
        mkdirSync(join(candidate, f.name, '..'), { recursive: true });
        writeFileSync(join(candidate, f.name), f.text);
      }
      await api('/api/policies/activate', { files: [...granted.files, { name: 'forbid.cedar', text: '@id("no-printf") forbid (principal, action == Action::"system.run", resource == Command::"printf");\n' }], baseHash: granted.hash });
      assert.equal(await printf(100), 'refused');
      const replay = async () => {
        const r = await corral(['--state-dir', dir, 'policy', 'replay', '--candidate', candidate, '--json']);
        assert.equal(r.code, 0, r.stderr);
        return (JSON.parse(r.stdout) as { changed: Array<{ before: string; after: { decision: string; reason: string } }> }).changed.filter((c) => c.before === 'deny').map((c) => [c.before, c.after.decision, c.after.reason]);
      };
      assert.deepEqual(await replay(), [['deny', 'allow', `allowed always by approval-${id}`]]);
      await gw.invoker.revokeGrant(`approval-${id}`, 'root');
      assert.deepEqual((await replay()).map(([before, after]) => [before, after]), [['deny', 'ask']]);
    } finally {
      await operator.close();
      await node.close();
      await gw.close();
    }
  });
});
