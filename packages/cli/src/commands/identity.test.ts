import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Identity, createDeviceIdentity, signDeviceAuth } from '@corral/identity';
import { CORRAL_BIN, corral, tempStateDir } from '../../test/corral.ts';
import { freePort } from '../../../../scripts/testing/free-port.ts';
import { signInAtIssuer } from '../../../../scripts/testing/oidc-browser.ts';
import { startTestIssuer, publicClient, type TestIssuer } from '../../../../scripts/testing/oidc-issuer.ts';
import { auditEvents } from '../../../../scripts/testing/audit-events.ts';
import { signInThroughIssuer, startTestGateway } from '../../../gateway/src/http/testing.ts';
import { EXIT } from '../exit-codes.ts';

const tmp = mkdtempSync(join(tmpdir(), 'corral-cli-identity-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('corral identity nodes', () => {
  it('lists a node waiting for pairing, pairs it, and the node is then admitted', async () => {
    const state = join(tmp, 'nodes');
    const device = createDeviceIdentity();
    const connect = (id: Identity) => {
      const { nonce } = id.nodes.challenge();
      const signedAt = Date.now();
      const signature = signDeviceAuth(device.privateKeyPem, { deviceId: device.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform: 'linux' });
      return id.nodes.authenticate({ device: { id: device.deviceId, publicKey: device.publicKey, signature, signedAt, nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux', displayName: 'build-01' }, role: 'node', scopes: [] }, nonce);
    };
    const gateway = Identity.open(state);
    try {
      assert.throws(() => connect(gateway), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      const listed = await corral(['--state-dir', state, 'identity', 'nodes', 'list', '--json']);
      assert.deepEqual(JSON.parse(listed.stdout).map((n: { deviceId: string; status: string }) => [n.deviceId, n.status]), [[device.deviceId, 'pending']]);
      const paired = await corral(['--state-dir', state, 'identity', 'nodes', 'pair', device.deviceId.slice(0, 16), '--by', 'ops@example.com']);
      assert.equal(paired.code, 0, paired.stderr);
      assert.equal(connect(gateway).status, 'paired');
    } finally {
      gateway.close();
    }
  });

  it('lists nodes under a header in aligned columns, as corral nodes list does (regression: no header, and each name pushed the next column along)', async () => {
    const state = join(tmp, 'nodes-listed');
    const gateway = Identity.open(state);
    const devices = [['build-01', createDeviceIdentity()], ['x', createDeviceIdentity()]] as const;
    try {
      for (const [displayName, device] of devices) {
        const { nonce } = gateway.nodes.challenge();
        const signedAt = Date.now();
        const signature = signDeviceAuth(device.privateKeyPem, { deviceId: device.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform: 'linux' });
        const connect = { device: { id: device.deviceId, publicKey: device.publicKey, signature, signedAt, nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux', displayName }, role: 'node', scopes: [] };
        assert.throws(() => gateway.nodes.authenticate(connect, nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      }
    } finally {
      gateway.close();
    }
    const listed = await corral(['--state-dir', state, 'identity', 'nodes', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = devices.map(([name, d]) => `${d.deviceId.slice(0, 16)}  pending  ${name.padEnd(8)}  linux\n`);
    assert.deepEqual(listed.stdout.split(/(?<=\n)/), [`NODE              STATUS   NAME      PLATFORM\n`, ...rows]);
  });

  it('rotates the signing key and publishes both keys through the overlap', async () => {
    const state = join(tmp, 'keys');
    const before = JSON.parse((await corral(['--state-dir', state, 'identity', 'jwks'])).stdout);
    const rotated = await corral(['--state-dir', state, 'identity', 'rotate', '--overlap', '15m', '--json']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const after = JSON.parse((await corral(['--state-dir', state, 'identity', 'jwks'])).stdout);
    assert.deepEqual(after.keys.map((k: { kid: string }) => k.kid), [JSON.parse(rotated.stdout).kid, before.keys[0].kid]);
  });

  it('lists a retiring key with the time it verifies until, and a retired one with the time it stopped (regression: "retired until" a time gone by)', async () => {
    const state = join(tmp, 'key-states');
    const run = (...args: string[]) => corral(['--state-dir', state, ...args]);
    await run('identity', 'jwks');
    await run('identity', 'rotate', '--overlap', '1h');
    await run('identity', 'rotate', '--overlap', '0');
    const listed = await run('identity', 'keys');
    assert.equal(listed.code, 0, listed.stderr);
    const states = listed.stdout.trim().split('\n').map((line) => line.split('  ')[1]!.replace(/\d{4}-\S+Z/, 'T'));
    assert.deepEqual(states, ['active', 'retired since T', 'retired since T']);
    await run('identity', 'rotate', '--overlap', '1h');
    assert.match((await run('identity', 'keys')).stdout, /^\S+ {2}retiring until \d{4}-\S+Z {2}created/m);
  });

  it('stops a leaked key at once with --overlap 0: unpublished, and its tokens refused', async () => {
    // Before: "0" was no duration, and an overlap of at least a second was the closest an operator could come.
    const state = join(tmp, 'leaked');
    const run = (...args: string[]) => corral(['--state-dir', state, ...args]);
    await run('agents', 'create', 'leaky-bot', '--process', 'p', '--owner', 'ops@example.com');
    const token = (await run('agents', 'token', 'leaky-bot')).stdout.trim();
    assert.equal((await run('tokens', 'verify', token)).code, 0);
    const rotated = await run('identity', 'rotate', '--overlap', '0', '--json');
    assert.equal(rotated.code, 0, rotated.stderr);
    const jwks = JSON.parse((await run('identity', 'jwks')).stdout);
    assert.deepEqual(jwks.keys.map((k: { kid: string }) => k.kid), [JSON.parse(rotated.stdout).kid]);
    const refused = await run('tokens', 'verify', token, '--json');
    assert.equal(refused.code, 1);
    assert.equal(JSON.parse(refused.stdout).code, 'IDENTITY_TOKEN_KEY_UNKNOWN');
    const fresh = (await run('agents', 'token', 'leaky-bot')).stdout.trim();
    assert.equal((await run('tokens', 'verify', fresh)).code, 0);
    const bad = await run('identity', 'rotate', '--overlap', 'soon', '--json');
    assert.equal(bad.code, 2);
    assert.match(JSON.parse(bad.stdout).error.message, /^--overlap: /);
  });
});

// Sign-in end to end: a real OpenID Connect provider on loopback, the real
// `corral identity login` waiting on its loopback redirect, and this test
// playing the browser.
describe('corral identity login', () => {
  let testIssuer: TestIssuer;
  let issuer: string;
  let redirect: string;
  /** Where a console's sign-in through the same issuer comes back to, and the port its gateway listens on. */
  let consolePort: number;
  let consoleRedirect: string;
  /** Role claims the issuer gives an account now, where not Corral.Approver: an admin there moves people between them. */
  const roles: Record<string, string[]> = {};
  const roleMap = { admin: ['Corral.Admin'], approver: ['Corral.Approver'] };

  before(async () => {
    redirect = `http://127.0.0.1:${await freePort()}/callback`;
    consolePort = await freePort();
    consoleRedirect = `http://127.0.0.1:${consolePort}/api/auth/oidc/callback`;
    // Everyone who signs in there carries the role claim Corral.Approver unless `roles` says otherwise; only admin's address is unverified.
    testIssuer = await startTestIssuer({
      clients: [publicClient('corral-cli', redirect), publicClient('corral-console', consoleRedirect)],
      accounts: (sub) => ({ email: `${sub}@example.com`, email_verified: sub !== 'admin', roles: roles[sub] ?? ['Corral.Approver'] }),
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'roles'] },
    });
    issuer = testIssuer.issuer;
  });
  after(() => testIssuer.close());

  /** Starts `corral identity login` and waits for the sign-in URL it prints. */
  async function startLogin(state: string) {
    const config = join(tmp, 'oidc.json');
    writeFileSync(config, JSON.stringify({ issuer, clientId: 'corral-cli', redirectUri: redirect, roleClaim: 'roles', roleMap }));
    const child = spawn(CORRAL_BIN, ['--state-dir', state, 'identity', 'login', '--config', config, '--timeout', '60s', '--json'], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        out.stderr += c;
        const m = /^(http:\/\/\S+\/auth\?\S+)$/m.exec(out.stderr);
        if (m) resolve(m[1]!);
      });
      child.once('close', () => reject(new Error(`corral exited early: ${out.stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    return { url, exited, out };
  }

  it('signs a person in through the browser and records them with their mapped role', async () => {
    const state = join(tmp, 'login');
    const { url, exited, out } = await startLogin(state);
    // The browser lands on the command's loopback callback, which finishes the sign-in.
    await fetch(await signInAtIssuer(url, 'dana', (target) => target.startsWith(redirect)));
    assert.equal(await exited, 0, out.stderr);
    const human = JSON.parse(out.stdout);
    assert.deepEqual([human.email, human.roles], ['dana@example.com', ['approver']]);
    const humans = await corral(['--state-dir', state, 'identity', 'humans', '--json']);
    assert.deepEqual(JSON.parse(humans.stdout).map((h: { email: string }) => h.email), ['dana@example.com']);
  });

  it('records a person the issuer gives no verified address as oidc:ISSUER#SUBJECT, never by the subject alone', async () => {
    // Before: the audit log named the person signing in with subject "admin" as plain admin, a local user's name.
    const state = join(tmp, 'login-unverified');
    const { url, exited, out } = await startLogin(state);
    await fetch(await signInAtIssuer(url, 'admin', (target) => target.startsWith(redirect)));
    assert.equal(await exited, 0, out.stderr);
    const shown = await corral(['--state-dir', state, 'audit', 'tail', '--json']);
    const login = shown.stdout.trim().split('\n').map((line) => JSON.parse(line) as { event: { action: string; actor: { id: string } } }).find((r) => r.event.action === 'human.login');
    assert.equal(login?.event.actor.id, `oidc:${issuer}#admin`);
    // Before: identity humans listed them as plain admin, the name of the local admin login.
    const listed = await corral(['--state-dir', state, 'identity', 'humans']);
    assert.match(listed.stdout, new RegExp(`^oidc:${issuer.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}#admin  `, 'm'));
  });

  it('refuses the sign-in of a person the issuer moved out of every Corral group, and records them as holding no role, which ends their console session (regression: the refusal recorded nothing, and they stayed admin)', async () => {
    const state = tempStateDir();
    const gateway = await startTestGateway({ stateDir: state, port: consolePort, oidc: { issuer, clientId: 'corral-console', redirectUri: consoleRedirect, roleClaim: 'roles', roleMap } });
    try {
      roles.hana = ['Corral.Admin'];
      const first = await startLogin(state);
      await fetch(await signInAtIssuer(first.url, 'hana', (target) => target.startsWith(redirect)));
      assert.equal(await first.exited, 0, first.out.stderr);
      assert.deepEqual(JSON.parse(first.out.stdout).roles, ['admin']);
      const session = (await signInThroughIssuer(gateway, 'hana')).browser;
      assert.equal((await session.get('/api/agents')).status, 200, 'her console session is an admin one');

      roles.hana = ['Corral.Marketing'];
      const refused = await startLogin(state);
      await fetch(await signInAtIssuer(refused.url, 'hana', (target) => target.startsWith(redirect)));
      assert.equal(await refused.exited, EXIT.failed, refused.out.stderr);
      assert.equal(JSON.parse(refused.out.stdout).error.code, 'IDENTITY_OIDC_NO_ROLE');

      const humans = await corral(['--state-dir', state, 'identity', 'humans', '--json']);
      assert.deepEqual(JSON.parse(humans.stdout).map((h: { email: string; roles: string[] }) => [h.email, h.roles]), [['hana@example.com', []]], 'recorded as holding no role');
      assert.equal((await session.get('/api/agents')).status, 401, 'her console session is over');
      assert.match(refused.out.stderr, /^corral: the sign-in of hana@example\.com is refused: the issuer gives groups "Corral\.Marketing", and none maps to a Corral role .*now recorded as holding no role, which ends their console sessions \[IDENTITY_OIDC_NO_ROLE\]$/m);
      const logins = (await auditEvents(state)).filter((e) => e.action === 'human.login');
      assert.deepEqual(logins.map((e) => [e.actor.id, e.outcome?.status, e.details?.roles]), [['hana@example.com', 'success', ['admin']], ['hana@example.com', 'failure', []]]);
    } finally {
      await gateway.close();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('refuses the sign-in of a person whose groups map to no Corral role, and records no one who never signed in before', async () => {
    const state = tempStateDir();
    try {
      roles.ivan = ['Corral.Marketing'];
      const refused = await startLogin(state);
      await fetch(await signInAtIssuer(refused.url, 'ivan', (target) => target.startsWith(redirect)));
      assert.equal(await refused.exited, EXIT.failed, refused.out.stderr);
      assert.equal(JSON.parse(refused.out.stdout).error.code, 'IDENTITY_OIDC_NO_ROLE');
      assert.match(refused.out.stderr, /an admin at http:\/\/127\.0\.0\.1:\d+ can add them to a group it maps \[IDENTITY_OIDC_NO_ROLE\]$/m);
      assert.deepEqual(JSON.parse((await corral(['--state-dir', state, 'identity', 'humans', '--json'])).stdout), []);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('keeps waiting through a stray request to its callback (any web page can send one), and signs the person in', async () => {
    // Before: the first request to the callback path ended the wait, so a page could abort every sign-in.
    const { url, exited, out } = await startLogin(join(tmp, 'login-stray'));
    for (const query of ['', '?state=forged&code=attacker-code', '?error=access_denied']) {
      const stray = await fetch(`${redirect}${query}`);
      assert.equal(stray.status, 400, query);
    }
    await fetch(await signInAtIssuer(url, 'erin', (target) => target.startsWith(redirect)));
    assert.equal(await exited, 0, out.stderr);
    assert.equal(JSON.parse(out.stdout).email, 'erin@example.com');
  });
});

describe('corral identity login with settings it cannot use', () => {
  it('refuses a redirectUri that is not a URL, and a timeout that is no duration, as bad usage (exit 2) before reaching the issuer', async () => {
    const config = join(tmp, 'bad-oidc.json');
    const settings = { issuer: 'https://issuer.invalid', clientId: 'corral-cli', roleMap: { approver: ['Corral.Approver'] } };
    writeFileSync(config, JSON.stringify({ ...settings, redirectUri: '127.0.0.1:8765/callback' }));
    const notUrl = await corral(['--state-dir', join(tmp, 'bad-login'), 'identity', 'login', '--config', config, '--json']);
    assert.equal(notUrl.code, 2, notUrl.stderr);
    assert.match(JSON.parse(notUrl.stdout).error.message, /redirectUri/);
    writeFileSync(config, JSON.stringify({ ...settings, redirectUri: 'http://127.0.0.1:8765/callback' }));
    const badTimeout = await corral(['--state-dir', join(tmp, 'bad-login'), 'identity', 'login', '--config', config, '--timeout', 'forever', '--json']);
    assert.equal(badTimeout.code, 2, badTimeout.stderr);
    assert.equal(JSON.parse(badTimeout.stdout).error.code, 'IDENTITY_INPUT_INVALID');
  });

  it('refuses a setting of the wrong shape as bad usage naming the file and the setting, without a stack trace', async () => {
    // Before: scopes given as one string failed after discovery with an internal error and its stack (exit 70).
    const config = join(tmp, 'scopes-oidc.json');
    writeFileSync(config, JSON.stringify({ issuer: 'https://issuer.invalid', clientId: 'corral-cli', redirectUri: 'http://127.0.0.1:8765/callback', scopes: 'openid email', roleMap: { approver: ['Corral.Approver'] } }));
    const r = await corral(['--state-dir', join(tmp, 'bad-login'), 'identity', 'login', '--config', config, '--json']);
    assert.equal(r.code, 2, r.stderr);
    const { error } = JSON.parse(r.stdout);
    assert.equal(error.code, 'IDENTITY_INPUT_INVALID');
    assert.ok(error.message.startsWith(`${config}: OIDC setting scopes`), error.message);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  it("says a state directory without oidc.json has no settings, where they go and how to name another file, exit 2 (it printed Node's ENOENT message and no way on)", async () => {
    const state = join(tmp, 'no-settings');
    const r = await corral(['--state-dir', state, 'identity', 'login', '--json']);
    assert.equal(r.code, 2, r.stderr);
    const file = join(state, 'oidc.json');
    assert.equal(JSON.parse(r.stdout).error.message, `cannot read OIDC settings from ${file}: there is no such file; write your issuer's settings there (docs/identity-and-policy.md#humans-single-sign-on), or name another file with --config`);
  });

  it('says where a settings file is not JSON without quoting any of it (the client secret may be there)', async () => {
    // Before: V8's message went out whole, with ten characters of the secret around the mistake.
    const config = join(tmp, 'broken-oidc.json');
    writeFileSync(config, '{"issuer": "https://issuer.invalid", "clientSecret": s3cr3t-VALUE-kept-out-of-output}');
    const r = await corral(['--state-dir', join(tmp, 'bad-login'), 'identity', 'login', '--config', config, '--json']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /broken-oidc\.json is not valid JSON/);
    for (const piece of ['s3cr', 'VALUE', 'kept']) assert.ok(!r.stderr.includes(piece) && !r.stdout.includes(piece), piece);
  });
});

describe('corral identity keys, humans and users list, when there is nothing to list', () => {
  it('say so in words, as agents list and nodes list do (regression: no output at all, as if the command had not run)', async () => {
    const dir = tempStateDir();
    assert.equal((await corral(['--state-dir', dir, 'agents', 'create', 'invoice-bot', '--process', 'p', '--owner', 'a@example.com'])).code, 0);
    for (const [args, said] of [
      [['identity', 'keys'], 'no signing keys yet: the first token issued, or corral identity jwks, makes one\n'],
      [['identity', 'humans'], 'no one has signed in\n'],
      [['users', 'list'], 'no local logins: corral up makes the admin one\n'],
    ] as const) {
      const r = await corral(['--state-dir', dir, ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, said, args.join(' '));
      const json = await corral(['--state-dir', dir, ...args, '--json']);
      assert.ok(JSON.stringify(JSON.parse(json.stdout)).includes('[]'), json.stdout);
    }
  });
});

describe('corral identity sign-out', () => {
  it("ends a person's sessions, named by their address or by issuer and subject, records it, and says so", async () => {
    const state = tempStateDir();
    try {
      const identity = Identity.open(state);
      try {
        identity.humans.record({ issuer: 'https://sso.example.com', subject: 'u-17', email: 'gina@example.com', groups: [], roles: ['approver'] });
        identity.humans.record({ issuer: 'https://sso.example.com', subject: 'u-18', groups: [], roles: ['viewer'] });
      } finally {
        identity.close();
      }
      const byAddress = await corral(['--state-dir', state, 'identity', 'sign-out', 'gina@example.com']);
      assert.equal(byAddress.code, 0, byAddress.stderr);
      assert.match(byAddress.stdout, /^ended every session of gina@example\.com begun before now; they can sign in again only through https:\/\/sso\.example\.com\n$/);
      const bySubject = await corral(['--state-dir', state, 'identity', 'sign-out', 'oidc:https://sso.example.com#u-18', '--json']);
      assert.equal(bySubject.code, 0, bySubject.stderr);
      assert.deepEqual(JSON.parse(bySubject.stdout).map((h: { subject: string }) => h.subject), ['u-18']);
      const after = Identity.open(state);
      try {
        assert.ok(after.humans.signedOutAt('https://sso.example.com', 'u-17')! <= Date.now());
      } finally {
        after.close();
      }
      const tail = await corral(['--state-dir', state, 'audit', 'tail', '--json']);
      const records = tail.stdout.trim().split('\n').map((line) => (JSON.parse(line) as { event: { action: string; resource: { id: string } } }).event);
      assert.deepEqual(records.filter((r) => r.action === 'human.sign-out').map((r) => r.resource.id), ['gina@example.com', 'oidc:https://sso.example.com#u-18']);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('names no one it does not know: exit 2, saying where to look', async () => {
    const state = tempStateDir();
    try {
      Identity.open(state).close();
      const r = await corral(['--state-dir', state, 'identity', 'sign-out', 'nobody@example.com']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /no one who signed in is named "nobody@example\.com": corral identity humans lists who did/);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });
});
