import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Provider from 'oidc-provider';
import { Identity, createDeviceIdentity, signDeviceAuth } from '@corral/identity';
import { CORRAL_BIN, corral } from '../../test/corral.ts';
import { signInAtIssuer } from '../../../../scripts/testing/oidc-browser.ts';

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

  it('rotates the signing key and publishes both keys through the overlap', async () => {
    const state = join(tmp, 'keys');
    const before = JSON.parse((await corral(['--state-dir', state, 'identity', 'jwks'])).stdout);
    const rotated = await corral(['--state-dir', state, 'identity', 'rotate', '--overlap', '15m', '--json']);
    assert.equal(rotated.code, 0, rotated.stderr);
    const after = JSON.parse((await corral(['--state-dir', state, 'identity', 'jwks'])).stdout);
    assert.deepEqual(after.keys.map((k: { kid: string }) => k.kid), [JSON.parse(rotated.stdout).kid, before.keys[0].kid]);
  });
});

// Sign-in end to end: a real OpenID Connect provider on loopback, the real
// `corral identity login` waiting on its loopback redirect, and this test
// playing the browser.
describe('corral identity login', () => {
  let server: Server;
  let issuer: string;
  let redirect: string;

  before(async () => {
    const free = createNetServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    redirect = `http://127.0.0.1:${(free.address() as AddressInfo).port}/callback`;
    await new Promise<void>((resolve) => free.close(() => resolve()));
    let handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, s) => s.end();
    server = createServer((req, res) => handler(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
    const provider = new Provider(issuer, {
      clients: [{ client_id: 'corral-cli', redirect_uris: [redirect], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' }],
      jwks: { keys: [{ ...key, kid: 'k1', alg: 'RS256', use: 'sig' }] },
      claims: { openid: ['sub'], email: ['email'], profile: ['name', 'roles'] },
      conformIdTokenClaims: false,
      cookies: { keys: ['corral-cli-test'] },
      features: { devInteractions: { enabled: true } },
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub, email: `${sub}@example.com`, roles: ['Corral.Approver'] }) }),
    });
    const callback = provider.callback();
    handler = (req, res) => void callback(req, res);
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('signs a person in through the browser and records them with their mapped role', async () => {
    const state = join(tmp, 'login');
    const config = join(tmp, 'oidc.json');
    writeFileSync(config, JSON.stringify({ issuer, clientId: 'corral-cli', redirectUri: redirect, roleClaim: 'roles', roleMap: { approver: ['Corral.Approver'] } }));
    const child = spawn(CORRAL_BIN, ['--state-dir', state, 'identity', 'login', '--config', config, '--timeout', '60s', '--json'], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        stderr += c;
        const m = /^(http:\/\/\S+\/auth\?\S+)$/m.exec(stderr);
        if (m) resolve(m[1]!);
      });
      child.once('close', () => reject(new Error(`corral exited early: ${stderr}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    // The browser lands on the command's loopback callback, which finishes the sign-in.
    await fetch(await signInAtIssuer(url, 'dana', (target) => target.startsWith(redirect)));
    assert.equal(await exited, 0, stderr);
    const human = JSON.parse(stdout);
    assert.deepEqual([human.email, human.roles], ['dana@example.com', ['approver']]);
    const humans = await corral(['--state-dir', state, 'identity', 'humans', '--json']);
    assert.deepEqual(JSON.parse(humans.stdout).map((h: { email: string }) => h.email), ['dana@example.com']);
  });
});

