import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { createDeviceIdentity, deviceAuthPayloadV3, signDeviceAuth, verifyDeviceProof, type DeviceAuthFields } from './device.ts';
import { IdentityError } from './errors.ts';
import { Identity } from './identity.ts';

// A naive reference of OpenClaw's device scheme, written from the protocol
// description alone, to cross-check Corral's implementation.
function referenceDevice() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  assert.equal(spki.subarray(0, 12).toString('hex'), '302a300506032b6570032100');
  const raw = spki.subarray(12);
  return { raw, id: createHash('sha256').update(raw).digest('hex'), publicKey: raw.toString('base64url'), privateKey };
}

const NOW = 1_790_000_000_000;
const context = { clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [] as string[], token: 'gateway-token', platform: ' Linux ', deviceFamily: 'Server', expectedNonce: 'n-123', now: NOW };

function referenceProof(dev: ReturnType<typeof referenceDevice>, overrides: { nonce?: string; signedAt?: number; version?: 'v2' | 'v3' } = {}) {
  const signedAt = overrides.signedAt ?? NOW - 1000;
  const nonce = overrides.nonce ?? 'n-123';
  const fields = ['node-host', 'node', 'node', '', String(signedAt), 'gateway-token', nonce];
  const payload = overrides.version === 'v2' ? ['v2', dev.id, ...fields].join('|') : ['v3', dev.id, ...fields, 'linux', 'server'].join('|');
  return { id: dev.id, publicKey: dev.publicKey, signature: sign(null, Buffer.from(payload, 'utf8'), dev.privateKey).toString('base64url'), signedAt, nonce };
}

describe('device identity in OpenClaw’s scheme', () => {
  it('derives the id as the SHA-256 hex of the raw 32-byte key, and signs the v3 string the reference signs', () => {
    const dev = createDeviceIdentity();
    const raw = Buffer.from(dev.publicKey, 'base64url');
    assert.equal(raw.length, 32);
    assert.equal(dev.deviceId, createHash('sha256').update(raw).digest('hex'));
    const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: ['a', 'b'], signedAtMs: 5, token: '', nonce: 'x', platform: 'LINUX', deviceFamily: undefined };
    assert.equal(deviceAuthPayloadV3(fields), `v3|${dev.deviceId}|node-host|node|node|a,b|5||x|linux|`);
    const signature = signDeviceAuth(dev.privateKeyPem, fields);
    assert.equal(signature, sign(null, Buffer.from(deviceAuthPayloadV3(fields)), createPrivateKey(dev.privateKeyPem)).toString('base64url'));
  });

  it('accepts a v3 proof made by the reference implementation', () => {
    const dev = referenceDevice();
    assert.equal(verifyDeviceProof(referenceProof(dev), context).version, 'v3');
  });

  it('accepts a legacy v2 proof', () => {
    const dev = referenceDevice();
    assert.equal(verifyDeviceProof(referenceProof(dev, { version: 'v2' }), context).version, 'v2');
  });

  it('accepts the public key as PEM too', () => {
    const dev = referenceDevice();
    const pem = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), dev.raw]), format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }).toString();
    assert.equal(verifyDeviceProof({ ...referenceProof(dev), publicKey: pem }, context).version, 'v3');
  });

  describe('refuses', () => {
    const dev = referenceDevice();
    const cases: [string, () => unknown, string][] = [
      ['an id that is not the hash of the key', () => verifyDeviceProof({ ...referenceProof(dev), id: referenceDevice().id }, context), 'IDENTITY_DEVICE_ID_MISMATCH'],
      ['a stale signature (older than two minutes)', () => verifyDeviceProof(referenceProof(dev, { signedAt: NOW - 121_000 }), context), 'IDENTITY_DEVICE_SIGNATURE_EXPIRED'],
      ['a proof without a nonce', () => verifyDeviceProof(referenceProof(dev, { nonce: '' }), context), 'IDENTITY_DEVICE_NONCE_REQUIRED'],
      ['a proof for another challenge (replay)', () => verifyDeviceProof(referenceProof(dev, { nonce: 'old-nonce' }), context), 'IDENTITY_DEVICE_NONCE_MISMATCH'],
      ['a signature over other scopes (privilege escalation)', () => verifyDeviceProof(referenceProof(dev), { ...context, scopes: ['operator.admin'] }), 'IDENTITY_DEVICE_SIGNATURE_INVALID'],
      ['a signature by another key', () => verifyDeviceProof({ ...referenceProof(referenceDevice()), id: dev.id, publicKey: dev.publicKey }, context), 'IDENTITY_DEVICE_SIGNATURE_INVALID'],
      ['a key that is not 32 bytes', () => verifyDeviceProof({ ...referenceProof(dev), publicKey: 'AAAA' }, context), 'IDENTITY_DEVICE_PUBLIC_KEY_INVALID'],
      ['a PEM key that is not Ed25519', () => verifyDeviceProof({ ...referenceProof(dev), publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }).toString() }, context), 'IDENTITY_DEVICE_PUBLIC_KEY_INVALID'],
    ];
    for (const [name, fn, code] of cases) it(`${name}: ${code}`, () => assert.throws(fn, { code }));
  });

  it('never lets a foreign exception out of proof parsing (property)', () => {
    fc.assert(
      fc.property(fc.record({ id: fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 })), publicKey: fc.oneof(fc.string(), fc.base64String()), signature: fc.oneof(fc.string(), fc.base64String()), signedAt: fc.oneof(fc.integer(), fc.double(), fc.constant(NOW)), nonce: fc.oneof(fc.string(), fc.constant('n-123')) }, { requiredKeys: [] }), (proof) => {
        try {
          verifyDeviceProof(proof as never, context);
          assert.fail('a random proof verified');
        } catch (error) {
          assert.ok(error instanceof IdentityError, String(error));
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('node pairing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corral-nodes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps a new node waiting until an operator pairs it, then admits it; spent challenges cannot be replayed', () => {
    const id = Identity.open(dir);
    try {
      const dev = createDeviceIdentity();
      const connect = (nonce: string) => {
        const signedAt = Date.now();
        const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform: 'linux' };
        return { device: { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt, nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux', displayName: 'build-01' }, role: 'node', scopes: [] };
      };
      const first = id.nodes.challenge();
      assert.throws(() => id.nodes.authenticate(connect(first.nonce), first.nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      assert.deepEqual(id.nodes.list().map((n) => [n.displayName, n.status]), [['build-01', 'pending']]);
      const again = id.nodes.challenge();
      assert.throws(() => id.nodes.authenticate(connect(again.nonce), again.nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      id.nodes.pair(dev.deviceId.slice(0, 12), 'ops@example.com');
      const ok = id.nodes.challenge();
      const proof = connect(ok.nonce);
      assert.equal(id.nodes.authenticate(proof, ok.nonce).status, 'paired');
      assert.throws(() => id.nodes.authenticate(proof, ok.nonce), { code: 'IDENTITY_DEVICE_NONCE_MISMATCH' });
      id.nodes.revoke(dev.deviceId);
      const late = id.nodes.challenge();
      assert.throws(() => id.nodes.authenticate(connect(late.nonce), late.nonce), { code: 'IDENTITY_NODE_REVOKED' });
      assert.throws(() => id.nodes.pair(dev.deviceId, 'ops@example.com'), { code: 'IDENTITY_NODE_REVOKED' });
      assert.throws(() => id.nodes.pair('00000000', 'ops@example.com'), { code: 'IDENTITY_NODE_NOT_FOUND' });
    } finally {
      id.close();
    }
  });

  it('records a new node\'s display name and platform without control or format characters, so a listing cannot be forged from them', () => {
    const id = Identity.open(dir);
    try {
      const dev = createDeviceIdentity();
      const { nonce } = id.nodes.challenge();
      const signedAt = Date.now();
      // A hostile node writes a fake "paired" row and erases its own line on the operator's terminal.
      const displayName = 'build-02\r\n3f9a0c1e2b4d5a6f  paired    build-01\u001b[2K\u202e';
      const platform = 'linux\u001b]0;owned\u0007';
      const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform };
      const connect = { device: { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt, nonce }, client: { id: 'node-host', mode: 'node', platform, displayName }, role: 'node', scopes: [] };
      assert.throws(() => id.nodes.authenticate(connect, nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      const node = id.nodes.get(dev.deviceId);
      assert.deepEqual([node.displayName, node.platform], ['build-023f9a0c1e2b4d5a6f  paired    build-01[2K', 'linux]0;owned']);
    } finally {
      id.close();
    }
  });
});
