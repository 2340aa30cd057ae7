import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { createDeviceIdentity, deviceAuthPayloadV3, signDeviceAuth, verifyDeviceProof, type DeviceAuthFields } from './device.ts';
import { IdentityError } from './errors.ts';
import { Identity } from './identity.ts';
import { NodeRegistry } from './nodes.ts';
import { racingDatabase } from '../test/racing-database.ts';

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

  /** A node `dev` connecting to `id` with `commands`: its proof answers a challenge issued now; the thunk authenticates it. */
  const connectAs = (id: Identity, dev: ReturnType<typeof createDeviceIdentity>, commands: string[]) => {
    const { nonce } = id.nodes.challenge();
    const signedAt = Date.now();
    const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform: 'linux' };
    return () => id.nodes.authenticate({ device: { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt, nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [], commands }, nonce);
  };

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

  it('says a prefix starts more than one node\'s id, rather than that there is no such node (regression: "no node abcdef01")', () => {
    const state = mkdtempSync(join(tmpdir(), 'corral-identity-prefix-'));
    const id = Identity.open(state);
    try {
      // Two ids sharing their first 8 hex digits: written as another process would, since no key pair is found to do it.
      const db = new DatabaseSync(join(state, 'identity.db'));
      for (const tail of ['1', '2']) db.prepare("INSERT INTO nodes (device_id, public_key, display_name, platform, status, requested_at) VALUES (?, 'key', 'n', 'linux', 'pending', 0)").run(`abcdef01${tail.repeat(56)}`);
      db.close();
      assert.throws(() => id.nodes.pair('abcdef01', 'ops@example.com'), { code: 'IDENTITY_NODE_NOT_FOUND', message: 'abcdef01 starts the ids of more than one node: give more of the id' });
      assert.equal(id.nodes.get('abcdef011').deviceId, `abcdef01${'1'.repeat(56)}`);
      assert.throws(() => id.nodes.get('abcdef03'), { message: 'no node abcdef03' });
    } finally {
      id.close();
      rmSync(state, { recursive: true, force: true });
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

  describe('the command surface', () => {
    it('pairs a node with the commands it declared, or the part of them an operator names; never one it did not ask for', () => {
      const id = Identity.open(dir);
      try {
        const dev = createDeviceIdentity();
        assert.throws(connectAs(id, dev, ['system.which', 'system.run', 'system.which']), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        const asked = id.nodes.get(dev.deviceId);
        assert.deepEqual([asked.commands, asked.surfaceRequest?.commands], [[], ['system.run', 'system.which']]);
        assert.match(asked.surfaceRequest!.requestId, /^[0-9a-f]{32}$/);
        assert.throws(() => id.nodes.pair(dev.deviceId, 'ops', { commands: ['system.which', 'fs.listDir'] }), (e: IdentityError) => e.code === 'IDENTITY_NODE_SURFACE_INVALID' && e.message.includes('"fs.listDir"'));
        assert.equal(id.nodes.get(dev.deviceId).status, 'pending');
        const paired = id.nodes.pair(dev.deviceId, 'ops', { commands: ['system.which'] });
        assert.deepEqual([paired.status, paired.commands, paired.surfaceRequest], ['paired', ['system.which'], undefined]);
        // It still declares system.run: admitted, with that asked again as a request of a paired node.
        assert.deepEqual(connectAs(id, dev, ['system.run', 'system.which'])().commands, ['system.which']);
        assert.deepEqual(id.nodes.get(dev.deviceId).surfaceRequest?.commands, ['system.run', 'system.which']);
        // Declaring only what was approved withdraws the request.
        connectAs(id, dev, ['system.which'])();
        assert.equal(id.nodes.get(dev.deviceId).surfaceRequest, undefined);
        // An operator may narrow what a paired node is sent.
        assert.deepEqual(id.nodes.pair(dev.deviceId, 'ops', { commands: [] }).commands, []);
      } finally {
        id.close();
      }
    });

    it('decides on a request only by its current id: a surface declared since makes the old id stale', () => {
      const id = Identity.open(dir);
      try {
        const dev = createDeviceIdentity();
        assert.throws(connectAs(id, dev, ['system.which']), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        const seen = id.nodes.get(dev.deviceId).surfaceRequest!.requestId;
        assert.throws(connectAs(id, dev, ['system.which']), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        assert.equal(id.nodes.get(dev.deviceId).surfaceRequest!.requestId, seen, 'the same surface keeps its request');
        assert.throws(connectAs(id, dev, ['system.run']), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        assert.throws(() => id.nodes.pair(dev.deviceId, 'ops', { requestId: seen }), { code: 'IDENTITY_NODE_REQUEST_STALE' });
        assert.throws(() => id.nodes.decline(dev.deviceId, { requestId: seen }), { code: 'IDENTITY_NODE_REQUEST_STALE' });
        assert.equal(id.nodes.byRequest(seen), undefined);
        const current = id.nodes.get(dev.deviceId).surfaceRequest!.requestId;
        assert.equal(id.nodes.byRequest(current)?.deviceId, dev.deviceId);
        assert.deepEqual(id.nodes.pair(dev.deviceId, 'ops', { requestId: current }).commands, ['system.run']);
      } finally {
        id.close();
      }
    });

    it('refuses a surface it could not show or keep whole, rather than shortening or cleaning a command name', () => {
      const id = Identity.open(dir);
      try {
        for (const commands of [['system.run\u202e'], ['a'.repeat(201)], [''], Array.from({ length: 257 }, (_, i) => `c${i}`)]) {
          assert.throws(connectAs(id, createDeviceIdentity(), commands), { code: 'IDENTITY_NODE_SURFACE_INVALID' });
        }
      } finally {
        id.close();
      }
    });

    it('answers a lookup by full id from memory only while no other connection changed the store, and shares it read-only', () => {
      const id = Identity.open(dir);
      const other = Identity.open(dir);
      try {
        const dev = createDeviceIdentity();
        assert.throws(connectAs(id, dev, ['system.which']), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        assert.equal(id.nodes.find(dev.deviceId)?.status, 'pending');
        other.nodes.pair(dev.deviceId, 'ops');
        assert.deepEqual(id.nodes.find(dev.deviceId)?.commands, ['system.which'], 'a pairing from another process counts at once');
        other.nodes.revoke(dev.deviceId);
        assert.equal(id.nodes.find(dev.deviceId)?.status, 'revoked', 'so does a revocation');
        const node = id.nodes.find(dev.deviceId)!;
        assert.throws(() => (node.commands as string[]).push('system.run'));
        assert.equal(id.nodes.find(dev.deviceId), node);
      } finally {
        other.close();
        id.close();
      }
    });

    it('keeps at most 10,000 lookups in memory: the next one empties them, and a lookup then reads the store again', () => {
      // Each device id an attacker names is a lookup: they must not grow the gateway's memory without end.
      const id = Identity.open(dir);
      try {
        const dev = createDeviceIdentity();
        assert.throws(connectAs(id, dev, ['system.which']), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        const unknown = (i: number) => createHash('sha256').update(`no such device ${i}`).digest('hex');
        const first = id.nodes.find(dev.deviceId)!;
        for (let i = 0; i < 9_999; i++) assert.equal(id.nodes.find(unknown(i)), undefined);
        assert.equal(id.nodes.find(dev.deviceId), first, 'the 10,000th lookup kept is still answered from memory');
        assert.equal(id.nodes.find(unknown(9_999)), undefined);
        const again = id.nodes.find(dev.deviceId)!;
        assert.notEqual(again, first, 'past 10,000 the lookups kept were let go');
        assert.deepEqual(again, first);
      } finally {
        id.close();
      }
    });

    it('accepts a challenge for 15 s only, and keeps at most 10,000 waiting: the oldest is let go first', () => {
      let clock = Date.now();
      const id = Identity.open(dir, { now: () => clock });
      try {
        const dev = createDeviceIdentity();
        const answer = (nonce: string) => () => {
          const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: clock, token: '', nonce, platform: 'linux' };
          return id.nodes.authenticate({ device: { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt: clock, nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [] }, nonce);
        };
        const late = id.nodes.challenge().nonce;
        clock += 15_001;
        assert.throws(answer(late), { code: 'IDENTITY_DEVICE_NONCE_MISMATCH' });
        const oldest = id.nodes.challenge().nonce;
        const second = id.nodes.challenge().nonce;
        for (let i = 2; i < 10_000; i++) id.nodes.challenge();
        assert.throws(answer(id.nodes.challenge().nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' }, 'the 10,001st challenge is answered');
        assert.throws(answer(oldest), { code: 'IDENTITY_DEVICE_NONCE_MISMATCH' }, 'the oldest was let go for it');
        assert.throws(answer(second), { code: 'IDENTITY_NODE_NOT_PAIRED' }, 'the next oldest still waits');
      } finally {
        id.close();
      }
    });

    it('opens a store made before surfaces were kept: a node paired then is sent nothing until its surface is approved', async () => {
      const old = mkdtempSync(join(tmpdir(), 'corral-nodes-old-'));
      try {
        const { DatabaseSync } = await import('node:sqlite');
        const db = new DatabaseSync(join(old, 'identity.db'));
        // Every store had its meta table from the first.
        db.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT; CREATE TABLE nodes (device_id TEXT PRIMARY KEY, public_key TEXT NOT NULL, display_name TEXT NOT NULL, platform TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('pending', 'paired', 'revoked')), requested_at INTEGER NOT NULL, paired_at INTEGER, paired_by TEXT) STRICT");
        const dev = createDeviceIdentity();
        db.prepare("INSERT INTO nodes VALUES (?, ?, 'old', 'linux', 'paired', 1, 2, 'ops')").run(dev.deviceId, dev.publicKey);
        db.close();
        const id = Identity.open(old);
        try {
          assert.deepEqual(id.nodes.get(dev.deviceId).commands, []);
          assert.deepEqual(connectAs(id, dev, ['system.run'])().commands, []);
          assert.deepEqual(id.nodes.get(dev.deviceId).surfaceRequest?.commands, ['system.run']);
          assert.deepEqual(id.nodes.pair(dev.deviceId, 'ops').commands, ['system.run']);
        } finally {
          id.close();
        }
      } finally {
        rmSync(old, { recursive: true, force: true });
      }
    });
  });

  describe('when another process changes a node between this operator reading it and writing it', () => {
    /** A registry whose next read of a node by full id lets `step` (another process's write) land right after it. */
    function racing(path: string, step: () => void): { nodes: NodeRegistry; db: DatabaseSync } {
      const db = racingDatabase(path, (sql) => sql === 'SELECT * FROM nodes WHERE device_id = ?', step);
      return { nodes: new NodeRegistry(db), db };
    }

    /** A new node that asked to be paired with `commands`, refused meanwhile as not yet paired: its device id. */
    const pending = (id: Identity, commands: string[]) => {
      const dev = createDeviceIdentity();
      assert.throws(connectAs(id, dev, commands), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      return dev.deviceId;
    };

    it('keeps a node revoked by a second operator revoked: pairing it is refused, not written over the revocation', () => {
      // Before: the pairing wrote status 'paired' whatever the status had become, undoing the revocation.
      const id = Identity.open(dir);
      try {
        const deviceId = pending(id, ['system.run']);
        const { nodes, db } = racing(join(dir, 'identity.db'), () => id.nodes.revoke(deviceId));
        try {
          assert.throws(() => nodes.pair(deviceId, 'ops'), { code: 'IDENTITY_NODE_REVOKED' });
        } finally {
          db.close();
        }
        assert.equal(id.nodes.get(deviceId).status, 'revoked');
      } finally {
        id.close();
      }
    });

    it('refuses a node that an operator unpaired while it was connecting: IDENTITY_NODE_REVOKED, not admitted', () => {
      const id = Identity.open(dir);
      try {
        const dev = createDeviceIdentity();
        const deviceId = dev.deviceId;
        const { nonce: first } = id.nodes.challenge();
        const connect = (nonce: string) => {
          const signedAt = Date.now();
          const fields: DeviceAuthFields = { deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform: 'linux' };
          return { device: { id: deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt, nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [], commands: ['system.run'] };
        };
        assert.throws(() => id.nodes.authenticate(connect(first), first), { code: 'IDENTITY_NODE_NOT_PAIRED' });
        id.nodes.pair(deviceId, 'ops');
        const { nodes, db } = racing(join(dir, 'identity.db'), () => id.nodes.revoke(deviceId));
        try {
          const { nonce } = nodes.challenge();
          assert.throws(() => nodes.authenticate(connect(nonce), nonce), { code: 'IDENTITY_NODE_REVOKED' });
        } finally {
          db.close();
        }
      } finally {
        id.close();
      }
    });

    it('refuses to approve a request the node replaced meanwhile: IDENTITY_NODE_REQUEST_STALE, never the old surface under the new one', () => {
      const id = Identity.open(dir);
      try {
        const deviceId = pending(id, ['system.which']);
        const { nodes, db } = racing(join(dir, 'identity.db'), () => {
          id.nodes.pair(deviceId, 'other-ops');
          id.nodes.pair(deviceId, 'other-ops', { commands: [] });
        });
        try {
          assert.throws(() => nodes.pair(deviceId, 'ops'), { code: 'IDENTITY_NODE_REQUEST_STALE' });
        } finally {
          db.close();
        }
        assert.deepEqual([id.nodes.get(deviceId).pairedBy, id.nodes.get(deviceId).commands], ['other-ops', []]);
      } finally {
        id.close();
      }
    });
  });
});

describe('a connect whose device id reads differently once its proof is checked', () => {
  it('is taken as the device whose key signed it, never as the paired node it names afterwards', () => {
    // Before: authenticate verified the proof's id once, then read connect.device.id again to look the node up,
    // and admitted the caller as whichever node that second read named.
    const dir = mkdtempSync(join(tmpdir(), 'corral-nodes-reread-'));
    const id = Identity.open(dir);
    try {
      const victim = createDeviceIdentity();
      const first = id.nodes.challenge();
      const firstAt = Date.now();
      const victimFields: DeviceAuthFields = { deviceId: victim.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: firstAt, token: '', nonce: first.nonce, platform: 'linux' };
      assert.throws(() => id.nodes.authenticate({ device: { id: victim.deviceId, publicKey: victim.publicKey, signature: signDeviceAuth(victim.privateKeyPem, victimFields), signedAt: firstAt, nonce: first.nonce }, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [] }, first.nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      id.nodes.pair(victim.deviceId, 'ops');

      const rogue = createDeviceIdentity();
      const { nonce } = id.nodes.challenge();
      const signedAt = Date.now();
      const fields: DeviceAuthFields = { deviceId: rogue.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: signedAt, token: '', nonce, platform: 'linux' };
      let reads = 0;
      const device = { get id() { return reads++ === 0 ? rogue.deviceId : victim.deviceId; }, publicKey: rogue.publicKey, signature: signDeviceAuth(rogue.privateKeyPem, fields), signedAt, nonce };
      assert.throws(() => id.nodes.authenticate({ device, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [] }, nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
      assert.equal(id.nodes.get(rogue.deviceId).status, 'pending');
    } finally {
      id.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
