// `corral up` as a user runs it: a real process on a free port, in a fresh
// state directory; then what it serves, the governed path through its node,
// a clean stop that seals the audit log, a second start, and the failures a
// user meets first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '@corral/gateway';
import { createDeviceIdentity, Identity } from '@corral/identity';
import { corral } from '../../test/corral.ts';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { startUp, type UpProcess } from '../../test/corral-up.ts';

const root = join(tmpdir(), `corral-up-test-${randomUUID().slice(0, 8)}`);
mkdirSync(root);
after(() => rmSync(root, { recursive: true, force: true }));

const URL_LINE = /^(http:\/\/127\.0\.0\.1:\d+\/)$/m;
const PASSWORD = /password: (\S+)\n/;

const wsUrl = (http: string) => http.replace(/^http/, 'ws').replace(/\/$/, '');

/** Opens the identity store of a state directory for one look. */
function withIdentity<T>(state: string, look: (identity: Identity) => T | Promise<T>): Promise<T> {
  const identity = Identity.open(state);
  return Promise.resolve(look(identity)).finally(() => identity.close());
}

// Bounds that a loaded machine stays well inside; a hang fails here rather than holding the suite.
describe('corral up', { timeout: 300_000 }, () => {
  const state = join(root, 'state');
  let port: number;
  let upProcess: UpProcess;
  let url: string;
  let password: string;
  let token: string;

  before(async () => {
    port = await freePort();
    upProcess = startUp(state, ['--port', String(port)]);
    url = (await upProcess.waitFor(URL_LINE))[1]!;
    password = (await upProcess.waitFor(PASSWORD))[1]!;
    token = readFileSync(join(state, 'gateway-token'), 'utf8').trim();
  });
  after(async () => {
    await upProcess.stop('SIGKILL');
  });

  describe('on a fresh state directory', () => {
    it('prints the loopback URL on a line of its own, and the console and its API answer there', async () => {
      assert.equal(url, `http://127.0.0.1:${port}/`);
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);
      assert.equal((await fetch(`${url}api/status`)).status, 401);
      const status = (await (await fetch(`${url}api/status`, { headers: { authorization: `Bearer ${token}` } })).json()) as { nodes: { connected: number; paired: number }; agents: { active: number } };
      assert.deepEqual([status.nodes.connected, status.nodes.paired, status.agents.active], [1, 1, 1]);
    });

    it('answers GET /metrics to the scrape token corral gateway metrics-token prints, and nothing else to it (regression: corral up was scraped with the gateway token only)', async () => {
      const printed = await corral(['--state-dir', state, 'gateway', 'metrics-token']);
      const scrape = printed.stdout.trim();
      const metrics = await fetch(`${url}metrics`, { headers: { authorization: `Bearer ${scrape}` } });
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^corral_nodes_connected 1$/m);
      assert.equal((await fetch(`${url}api/status`, { headers: { authorization: `Bearer ${scrape}` } })).status, 401);
    });

    it('shows progress on stderr, as plain lines when stderr is not a terminal', () => {
      assert.match(upProcess.stderr(), /^corral: ok: gateway \(ws:\/\/127\.0\.0\.1:\d+\)/m);
      assert.match(upProcess.stderr(), /^corral: ok: node paired and connected/m);
      assert.doesNotMatch(upProcess.stderr(), /\x1b\[/);
    });

    it('creates an admin login whose printed password signs in to the console, stored only as a hash', async () => {
      assert.ok(password.length >= 20);
      const signIn = (pw: string) => fetch(`${url}api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: pw }) });
      const session = await signIn(password);
      assert.equal(session.status, 200);
      assert.deepEqual(((await session.json()) as { user: { roles: string[] } }).user.roles, ['admin']);
      assert.equal((await signIn(`${password}x`)).status, 401);
      for (const file of ['identity.db', 'gateway.db', 'audit.db', 'up.json', 'gateway-token']) {
        if (existsSync(join(state, file))) assert.ok(!readFileSync(join(state, file)).includes(password), file);
      }
      assert.doesNotMatch(upProcess.stderr(), new RegExp(password));
    });

    it('pairs the node of this machine itself, and it is connected', async () => {
      const nodes = await withIdentity(state, (identity) => identity.nodes.list());
      assert.equal(nodes.length, 1);
      assert.deepEqual([nodes[0]!.status, nodes[0]!.pairedBy], ['paired', 'corral up']);
      const operator = await GatewayClient.connect({ url: wsUrl(url), token, role: 'operator', scopes: ['operator.read'] });
      try {
        const { nodes: listed } = (await operator.request('node.list', {})) as { nodes: Array<{ nodeId: string; connected: boolean }> };
        assert.deepEqual(listed.map((n) => [n.nodeId, n.connected]), [[nodes[0]!.deviceId, true]]);
      } finally {
        await operator.close();
      }
    });

    it("keeps the gateway's log in STATE/gateway.log, readable by its owner alone: JSON lines, the node's connection among them, no token nor password (the gateway was given no log: nothing was kept)", () => {
      const path = join(state, 'gateway.log');
      assert.equal(statSync(path).mode & 0o777, 0o600);
      const text = readFileSync(path, 'utf8');
      const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { event?: string; role?: string; level?: number });
      assert.ok(lines.some((l) => l.event === 'connected' && l.role === 'node'), text);
      assert.equal(text.includes(token), false);
      assert.equal(text.includes(password), false);
      assert.match(upProcess.stderr(), new RegExp(`the gateway's log is ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    });

    it('sets up the invoice-intake example: its agent, its Cedar rules in STATE/policies, its container policy and profile', async () => {
      const agent = await withIdentity(state, (identity) => identity.agents.find('invoice-bot'));
      assert.deepEqual([agent?.process, agent?.status], ['invoice-intake', 'active']);
      assert.ok(existsSync(join(state, 'policies', 'invoice-intake.cedar')));
      assert.ok(existsSync(join(state, 'policies', 'guardrails.cedar')));
      assert.match(readFileSync(join(state, 'processes', 'invoice-intake', 'policy.yaml'), 'utf8'), /api\.invoices\.example:443/);
      assert.deepEqual(JSON.parse(readFileSync(join(state, 'profiles', 'invoice-bot.json'), 'utf8')), { agent: 'invoice-bot', containerPolicy: 'processes/invoice-intake/policy.yaml' });
      const cases = await corral(['--state-dir', state, 'policy', 'test', join(state, 'policies'), join(state, 'policies', 'cases.yaml')]);
      assert.equal(cases.code, 0, cases.stdout + cases.stderr);
    });

    describe('a system.run from the invoice-intake agent', () => {
      let agent: GatewayClient;
      let nodeId: string;
      before(async () => {
        const agentToken = await withIdentity(state, async (identity) => (await identity.issueToken('invoice-bot')).token);
        nodeId = (await withIdentity(state, (identity) => identity.nodes.list()))[0]!.deviceId;
        agent = await GatewayClient.connect({ url: wsUrl(url), token, role: 'operator', scopes: ['operator.write'], agentToken });
      });
      after(() => agent.close());
      const run = (command: string[]) =>
        agent.request('node.invoke', { nodeId, command: 'system.run', params: { command, agentId: 'invoice-bot' }, timeoutMs: 20_000, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 }) as Promise<{
          payload: { exitCode: number; stdout: string; contained: { policyDigest: string } };
        }>;

      it('runs contained in its workspace, under its container policy', async () => {
        const result = await run(['cat', 'inbox/invoice-0001.txt']);
        assert.equal(result.payload.exitCode, 0);
        assert.match(result.payload.stdout, /Northwind Traders/);
        assert.match(result.payload.contained.policyDigest, /\S/);
      });

      it('runs under its container policy even when the request does not name the agent', async () => {
        const result = (await agent.request('node.invoke', { nodeId, command: 'system.run', params: { command: ['cat', 'inbox/invoice-0002.txt'] }, timeoutMs: 20_000, idempotencyKey: randomUUID() }, { timeoutMs: 30_000 })) as { payload: { exitCode: number; stdout: string } };
        assert.equal(result.payload.exitCode, 0);
        assert.match(result.payload.stdout, /Contoso Cleaning/);
      });

      it('cannot read what its container policy denies, though Cedar allows cat', async () => {
        const result = await run(['cat', 'inbox/private/bank-details.txt']);
        assert.notEqual(result.payload.exitCode, 0);
        assert.doesNotMatch(result.payload.stdout, /IBAN/);
      });

      it('is denied by policy for a program its rules do not name, and for ~/.ssh', async () => {
        const denied = (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED';
        await assert.rejects(run(['curl', 'https://api.invoices.example/']), denied);
        await assert.rejects(run(['cat', '~/.ssh']), denied);
      });
    });

    describe('a payment.create from the invoice-intake agent', () => {
      // The company's payment system, as a node that declares payment.create; paired by an operator.
      const received: Array<Record<string, unknown>> = [];
      let payments: GatewayClient;
      let paymentsNode: string;
      let agent: GatewayClient;
      before(async () => {
        const device = createDeviceIdentity();
        paymentsNode = device.deviceId;
        const options = { url: wsUrl(url), token, role: 'node' as const, device, client: { displayName: 'payments' }, commands: ['payment.create'] };
        await assert.rejects(GatewayClient.connect(options), (e: { wire?: { code: string } }) => e.wire?.code === 'NOT_PAIRED');
        await withIdentity(state, (identity) => identity.nodes.pair(device.deviceId, 'operator'));
        payments = await GatewayClient.connect(options);
        payments.on('node.invoke.request', (payload) => {
          const request = payload as { id: string; nodeId: string; paramsJSON?: string | null };
          received.push(JSON.parse(request.paramsJSON ?? '{}') as Record<string, unknown>);
          void payments.request('node.invoke.result', { id: request.id, nodeId: request.nodeId, ok: true, payloadJSON: JSON.stringify({ paymentId: `PAY-${received.length}` }) });
        });
        const agentToken = await withIdentity(state, async (identity) => (await identity.issueToken('invoice-bot')).token);
        agent = await GatewayClient.connect({ url: wsUrl(url), token, role: 'operator', scopes: ['operator.write'], agentToken });
      });
      after(async () => {
        await agent.close();
        await payments.close();
      });
      const pay = (amount: number, timeoutMs: number) =>
        agent.request('node.invoke', { nodeId: paymentsNode, command: 'payment.create', params: { amount, currency: 'EUR', payee: 'Northwind Traders' }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 }) as Promise<{ payload: { paymentId: string } }>;

      it('of 250.00 goes through without asking anyone', async () => {
        assert.equal((await pay(25_000, 10_000)).payload.paymentId, 'PAY-1');
      });

      it('of 4,200.00 waits for one approver; once the admin approves it in the console, it reaches the payment system', async () => {
        const paid = pay(420_000, 30_000);
        const signIn = await fetch(`${url}api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
        const { csrf } = (await signIn.json()) as { csrf: string };
        const session = { cookie: signIn.headers.getSetCookie()[0]!.split(';')[0]!, 'x-corral-csrf': csrf };
        let pending: { id: string; quorum: number } | undefined;
        for (let i = 0; i < 100 && !pending; i++) {
          const { approvals } = (await (await fetch(`${url}api/approvals`, { headers: session })).json()) as { approvals: Array<{ id: string; quorum: number }> };
          pending = approvals[0];
          if (!pending) await new Promise((r) => setTimeout(r, 100));
        }
        assert.equal(pending?.quorum, 1);
        assert.equal(received.length, 1);
        const approve = await fetch(`${url}api/approvals/${pending!.id}/approve`, { method: 'POST', headers: { ...session, 'content-type': 'application/json' }, body: JSON.stringify({ decision: 'allow-once' }) });
        assert.equal(approve.status, 200);
        assert.equal((await paid).payload.paymentId, 'PAY-2');
        assert.equal(received[1]!.amount, 420_000);
      });

      it('of 25,000.00 asks two distinct approvers, and does not go through meanwhile', async () => {
        await assert.rejects(pay(2_500_000, 500), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'APPROVAL_PENDING');
        const { approvals } = (await (await fetch(`${url}api/approvals`, { headers: { authorization: `Bearer ${token}` } })).json()) as { approvals: Array<{ quorum: number }> };
        assert.deepEqual(approvals.map((a) => a.quorum), [2]);
        assert.equal(received.length, 2);
      });
    });

    it('refuses a second corral up on the same state directory while this one runs (exit 3), touching nothing, its state directory step failed (regression: said ok, then refused)', async () => {
      const other = startUp(state, ['--port', String(await freePort())]);
      assert.equal(await other.exited, 3, other.stderr());
      assert.match(other.stderr(), new RegExp(`another corral up \\(pid ${upProcess.child.pid}\\) is running on the state directory`));
      assert.match(other.stderr(), /failed: state directory /);
      assert.doesNotMatch(other.stderr(), /ok: state directory /);
      assert.ok(existsSync(join(state, 'up.json')));
      assert.equal((await fetch(`${url}api/status`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    });

    it('on SIGINT stops with exit 0, and the audit log verifies with a checkpoint sealed at shutdown', async () => {
      assert.equal(await upProcess.stop('SIGINT'), 0);
      assert.equal(existsSync(join(state, 'up.lock')), false);
      const sealed = /audit checkpoint sealed at (\d+) records/.exec(upProcess.stderr());
      assert.ok(sealed, upProcess.stderr());
      const verify = await corral(['--state-dir', state, 'audit', 'verify', '--json']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      const report = JSON.parse(verify.stdout) as { verified: number; sealed: number };
      assert.equal(report.verified, Number(sealed[1]));
      assert.equal(report.sealed, report.verified);
      const actions = (await corral(['--state-dir', state, 'audit', 'tail', '--lines', '1000', '--json'])).stdout;
      for (const action of ['corral.up.init', 'node.pair', 'corral.up.start', 'node.invoke.decide', 'corral.up.stop']) assert.match(actions, new RegExp(`"${action.replace(/\./g, '\\.')}"`), action);
    });
  });

  describe('a second start on the same state directory', () => {
    let second: UpProcess;
    before(async () => {
      // As if the first had been killed without a chance to stop: its lock names a process that is gone.
      const gone = spawnSync('true').pid!;
      writeFileSync(join(state, 'up.lock'), `${gone}\n`);
      second = startUp(state, ['--port', String(port)]);
      await second.waitFor(/^sign in as admin.*\n/m);
    });
    after(() => second.stop('SIGKILL'));

    it('takes over the lock a process that is gone left behind', () => {
      assert.equal(readFileSync(join(state, 'up.lock'), 'utf8').trim(), String(second.child.pid));
    });

    it('reuses everything: no new password, and says how to set one', async () => {
      assert.doesNotMatch(second.stdout(), PASSWORD);
      assert.match(second.stdout(), /corral users passwd admin/);
      const url2 = (await second.waitFor(URL_LINE))[1]!;
      const session = await fetch(`${url2}api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password }) });
      assert.equal(session.status, 200);
      const [agents, nodes] = await withIdentity(state, (identity) => [identity.agents.list(), identity.nodes.list()] as const);
      assert.equal(agents.length, 1);
      // Its own node again (the other is the payment system's).
      assert.deepEqual(nodes.filter((n) => n.pairedBy === 'corral up').map((n) => n.status), ['paired']);
    });

    it('stops cleanly again', async () => {
      assert.equal(await second.stop('SIGTERM'), 0);
      const verify = await corral(['--state-dir', state, 'audit', 'verify']);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    });

    it('corral users passwd admin prints a new password once; the old one stops working', async () => {
      const r = await corral(['--state-dir', state, 'users', 'passwd', 'admin', '--json']);
      assert.equal(r.code, 0, r.stderr);
      const fresh = (JSON.parse(r.stdout) as { password: string }).password;
      assert.notEqual(fresh, password);
      assert.ok(await withIdentity(state, (identity) => identity.localUsers.verify('admin', fresh)));
      assert.equal(await withIdentity(state, (identity) => identity.localUsers.verify('admin', password)), null);
      const list = await corral(['--state-dir', state, 'users', 'list', '--json']);
      assert.deepEqual((JSON.parse(list.stdout) as { users: Array<{ username: string; roles: string[] }> }).users.map((u) => [u.username, u.roles]), [['admin', ['admin']]]);
      assert.doesNotMatch(list.stdout, /scrypt|password/);
      const unknown = await corral(['--state-dir', state, 'users', 'passwd', 'nobody']);
      assert.equal(unknown.code, 2, 'a name that names nothing');
      assert.match(unknown.stderr, /IDENTITY_USER_NOT_FOUND/);
    });
  });
});

describe('corral up, stopped by Ctrl-C while it starts', { timeout: 120_000 }, () => {
  it('says at once that it stops once what is starting has started, then stops cleanly, exit 0 (regression: nothing was said until it was ready)', async () => {
    const r = startUp(join(root, 'interrupted'), ['--port', String(await freePort())]);
    const deadline = Date.now() + 30_000;
    while (!/ok: port /.test(r.stderr()) && r.child.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    r.child.kill('SIGINT');
    const said = /SIGINT: stopping once what is starting has started/;
    while (!said.test(r.stderr()) && r.child.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    // Said before the start went on to its end: the sandbox runner alone takes most of a second.
    assert.match(r.stderr(), said);
    assert.doesNotMatch(r.stderr(), /ready in/);
    assert.equal(await r.exited, 0, r.stderr());
    assert.match(r.stderr(), /stopped; audit checkpoint sealed/);
  });
});

describe('corral up, when it cannot start', { timeout: 180_000 }, () => {
  it('names the port in use and what to do, exits 3, and creates nothing', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const { port } = blocker.address() as { port: number };
    const state = join(root, 'port-in-use');
    try {
      const r = startUp(state, ['--port', String(port)]);
      assert.equal(await r.exited, 3, r.stderr());
      assert.match(r.stderr(), new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*--port`));
      assert.doesNotMatch(r.stderr(), /\n\s+at /);
      assert.equal(existsSync(state), false);
    } finally {
      blocker.close();
    }
  });

  it('names a state directory it cannot write, exits 3', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, '');
    const r = startUp(join(file, 'state'), ['--port', String(await freePort())]);
    assert.equal(await r.exited, 3, r.stderr());
    assert.match(r.stderr(), /cannot write the state directory .*a-file\/state.*--state-dir/);
  });

  it('does not pair its node again once an operator unpaired it: exit 3, saying how to pair a new one', async () => {
    const state = join(root, 'revoked');
    const first = startUp(state, ['--port', String(await freePort())]);
    await first.waitFor(URL_LINE);
    assert.equal(await first.stop(), 0);
    const [node] = await withIdentity(state, (identity) => identity.nodes.list());
    assert.equal((await corral(['--state-dir', state, 'nodes', 'revoke', node!.deviceId])).code, 0);
    const r = startUp(state, ['--port', String(await freePort())]);
    assert.equal(await r.exited, 3, r.stderr());
    assert.match(r.stderr(), /node .* was unpaired by an operator; to pair a new one, remove .*node-device\.json/);
    assert.equal((await withIdentity(state, (identity) => identity.nodes.list()))[0]!.status, 'revoked');
  });

  it('names broken policies, each problem by file and line, and how to go on, exits 2, and keeps the state as it was', async () => {
    const state = join(root, 'broken');
    const first = startUp(state, ['--port', String(await freePort())]);
    await first.waitFor(URL_LINE);
    assert.equal(await first.stop(), 0);
    writeFileSync(join(state, 'policies', 'typo.cedar'), '@id("typo")\npermit(principal, action, resource) when { principal.stauts == };\n');
    const r = startUp(state, ['--port', String(await freePort())]);
    assert.equal(await r.exited, 2, r.stderr());
    assert.match(r.stderr(), /policies in .*broken\/policies do not load.*\ntypo\.cedar:2:\d+: .*\n.*corral policy validate/);
    assert.ok(existsSync(join(state, 'up.json')));
    assert.ok(existsSync(join(state, 'identity.db')));
  });
});

describe('corral up --json --no-console', { timeout: 120_000 }, () => {
  it('refuses a --public-url it could not use, exit 2 naming the flag, and leaves nothing behind', async () => {
    const state = join(root, 'bad-public-url');
    const r = startUp(state, ['--port', String(await freePort()), '--public-url', 'http://corral.example.com']);
    assert.equal(await r.exited, 2, r.stderr());
    assert.match(r.stderr(), /--public-url "http:\/\/corral\.example\.com" must be https:\/\/.*\[GATEWAY_PUBLIC_URL_INVALID\]/);
    assert.equal(existsSync(state), false);
  });

  it('refuses OpenTelemetry headers it could not send, exit 2 naming the variable and never its value, and leaves nothing behind', async () => {
    const state = join(root, 'bad-otel-headers');
    const secret = 'sk-live-not-to-be-printed';
    const r = startUp(state, ['--port', String(await freePort())], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_HEADERS: `api-key=${secret}%0Ax-injected=1` });
    assert.equal(await r.exited, 2, r.stderr());
    assert.match(r.stderr(), /OTEL_EXPORTER_OTLP_HEADERS must be a list of name=value pairs.*\[GATEWAY_TRACING_INVALID\]/);
    assert.equal(r.stderr().includes(secret), false);
    assert.doesNotMatch(r.stderr(), /^\s+at /m);
    assert.equal(existsSync(state), false);
  });

  it('serves the console behind a reverse proxy with --public-url and --trust-proxy: the admin signs in through the public name with a Secure __Host- cookie', async () => {
    const state = join(root, 'behind-proxy');
    const up = startUp(state, ['--port', String(await freePort()), '--json', '--public-url', 'https://corral.example.com', '--trust-proxy', '127.0.0.1']);
    try {
      await up.waitFor(/^}\n/m);
      const ready = JSON.parse(up.stdout()) as { url: string; admin: { username: string; password: string } };
      const { port } = new URL(ready.url);
      const signIn = await new Promise<{ status: number; cookies: string[] }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/api/session', method: 'POST', agent: false, headers: { host: 'corral.example.com', 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.2' } }, (res) => {
          res.resume();
          res.once('end', () => resolve({ status: res.statusCode ?? 0, cookies: res.headers['set-cookie'] ?? [] }));
        });
        req.once('error', reject);
        req.end(JSON.stringify({ username: ready.admin.username, password: ready.admin.password }));
      });
      assert.equal(signIn.status, 200);
      assert.match(signIn.cookies[0]!, /^__Host-corral_session=[^;]+;.*; Secure$/);
    } finally {
      assert.equal(await up.stop('SIGTERM'), 0);
    }
  });

  it('prints one JSON document when ready, with the admin password on first start, and serves the API without the console', async () => {
    const state = join(root, 'json');
    const up = startUp(state, ['--port', String(await freePort()), '--json', '--no-console']);
    try {
      await up.waitFor(/^}\n/m);
      const ready = JSON.parse(up.stdout()) as { url: string; console: boolean; admin: { username: string; password?: string }; agent: { name: string }; node: { deviceId: string }; readyMs: number };
      assert.equal(ready.console, false);
      assert.equal(ready.admin.username, 'admin');
      assert.ok(typeof ready.admin.password === 'string' && ready.admin.password.length >= 20);
      assert.equal(ready.agent.name, 'invoice-bot');
      assert.match(ready.node.deviceId, /^[0-9a-f]{64}$/);
      const page = await fetch(ready.url);
      assert.doesNotMatch(page.headers.get('content-type') ?? '', /html/);
      await page.body?.cancel();
    } finally {
      assert.equal(await up.stop('SIGTERM'), 0);
    }
  });
});

describe('corral up --openclaw', { timeout: 120_000 }, () => {
  it('refuses --model-url without --openclaw (exit 2)', async () => {
    const r = await corral(['--state-dir', join(root, 'no-claw'), 'up', '--model-url', 'http://127.0.0.1:9/v1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--model-url and --model go with --openclaw/);
  });

  it('refuses a --model-url that is not a URL (exit 2) before starting anything (regression: it started everything, then failed with exit 1)', async () => {
    for (const modelUrl of ['http://a b/v1', 'http://[::1/v1', 'http://:80/v1']) {
      const state = join(root, 'bad-model-url');
      const r = await corral(['--state-dir', state, 'up', '--port', '0', '--openclaw', '--model-url', modelUrl], { env: { CORRAL_OPENCLAW_DIR: join(root, 'no-openclaw-here') } });
      assert.equal(r.code, 2, `${modelUrl}: ${r.stderr}`);
      assert.match(r.stderr, /--model-url must be an http:\/\/ or https:\/\/ URL/);
      assert.equal(r.stdout, '');
      assert.equal(existsSync(state), false, 'nothing was created');
    }
  });

  it('says how to install OpenClaw when it is not and exits 3 before starting anything (regression: it started everything, then stopped it)', async () => {
    const state = join(root, 'claw-missing');
    const r = await corral(['--state-dir', state, 'up', '--port', '0', '--openclaw'], { env: { CORRAL_OPENCLAW_DIR: join(root, 'no-openclaw-here') } });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /OpenClaw is not installed in .*no-openclaw-here: run `npm install --prefix DIR openclaw@/);
    assert.equal(existsSync(state), false, 'nothing was created');
  });
});

describe('corral up, after an operator narrowed what its node may be sent', { timeout: 180_000 }, () => {
  it('keeps the commands an operator narrowed its node to on the next start (regression: corral up approved all its node declared again)', async () => {
    const state = join(root, 'narrowed');
    const first = startUp(state, ['--port', String(await freePort())]);
    await first.waitFor(URL_LINE);
    assert.equal(await first.stop(), 0);
    const [node] = await withIdentity(state, (identity) => identity.nodes.list());
    assert.equal((await corral(['--state-dir', state, 'nodes', 'pair', node!.deviceId, '--commands', 'system.which', '--by', 'alice'])).code, 0);
    const second = startUp(state, ['--port', String(await freePort())]);
    try {
      await second.waitFor(URL_LINE);
      const [after] = await withIdentity(state, (identity) => identity.nodes.list());
      assert.deepEqual([after!.commands, after!.pairedBy], [['system.which'], 'alice']);
      // What its node declares beyond that waits for an operator.
      assert.ok(after!.surfaceRequest?.commands.includes('system.run'));
    } finally {
      await second.stop();
    }
  });
});
