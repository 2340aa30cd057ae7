import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { KEY_FILE, loadOrCreateSigningKey, loadPublicKeyFile, loadSigningKey } from '../io/key-file.ts';
import { checkpointJson, checkpointSigningInput, parseCheckpoint } from './checkpoint.ts';
import { generateSigningKey, keyIdOf, privateKeyFromPem, publicKeyPem } from './key.ts';
import { signCheckpoint } from './sign.ts';
import { verifyCheckpointSignature } from './verify.ts';

const { privateKey, publicKey } = generateSigningKey();
const body = { size: 42, root: 'ab'.repeat(32), time: '2026-11-25T12:00:00.000Z', keyId: keyIdOf(publicKey) };
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('checkpoints', () => {
  it('sign the context line and the canonical body', () => {
    assert.equal(checkpointSigningInput(body).toString(), `corral-audit-checkpoint/v1\n{"keyId":"${body.keyId}","root":"${body.root}","size":42,"time":"${body.time}","v":1}`);
  });
  it('verify under the key that signed them, after a JSON round trip', () => {
    const signed = parseCheckpoint(JSON.stringify(checkpointJson(signCheckpoint(privateKey, body))));
    verifyCheckpointSignature(publicKey, signed);
  });
  describe('when a signed checkpoint is altered', () => {
    for (const [name, change] of [
      ['its root', { root: 'cd'.repeat(32) }],
      ['its size', { size: 43 }],
      ['its time', { time: '2026-11-25T12:00:00.001Z' }],
    ] as [string, object][]) {
      it(`refuses a changed ${name} as AUDIT_CHECKPOINT_FORGED`, () => {
        assert.throws(() => verifyCheckpointSignature(publicKey, { ...signCheckpoint(privateKey, body), ...change }), { code: 'AUDIT_CHECKPOINT_FORGED' });
      });
    }
    it('refuses a checkpoint re-signed by another key as AUDIT_CHECKPOINT_FORGED', () => {
      const other = generateSigningKey();
      const resigned = signCheckpoint(other.privateKey, { ...body, keyId: keyIdOf(other.publicKey) });
      assert.throws(() => verifyCheckpointSignature(publicKey, resigned), { code: 'AUDIT_CHECKPOINT_FORGED' });
    });
    it('refuses any other spelling of the same signature bytes as AUDIT_CHECKPOINT_FORGED: unused base64 bits, characters base64 decoding skips (property)', () => {
      const signed = signCheckpoint(privateKey, body);
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
      const sig = signed.signature;
      // The 86th character carries 2 bits of the signature and 4 that are dropped.
      const paddingBits = fc.integer({ min: 1, max: 15 }).map((x) => `${sig.slice(0, 85)}${alphabet[alphabet.indexOf(sig[85] as string) ^ x]}==`);
      const skipped = fc.tuple(fc.nat(sig.length), fc.constantFrom(' ', '\n', '\r', '\t', '.', '*')).map(([at, c]) => sig.slice(0, at) + c + sig.slice(at));
      fc.assert(
        fc.property(fc.oneof(paddingBits, skipped), (signature) => {
          assert.deepEqual(Buffer.from(signature, 'base64'), Buffer.from(sig, 'base64'));
          assert.throws(() => verifyCheckpointSignature(publicKey, { ...signed, signature }), { code: 'AUDIT_CHECKPOINT_FORGED' });
        }),
      );
    });
    it('refuses another key signing under our key id as AUDIT_CHECKPOINT_FORGED', () => {
      const other = generateSigningKey();
      assert.throws(() => verifyCheckpointSignature(publicKey, signCheckpoint(other.privateKey, body)), { code: 'AUDIT_CHECKPOINT_FORGED' });
    });
  });
  describe('when a checkpoint document is malformed', () => {
    const good = checkpointJson(signCheckpoint(privateKey, body));
    for (const [name, input] of [
      ['text that is not JSON', '{"size": 4'],
      ['a JSON array', '[]'],
      ['an unknown version', { ...good, v: 2 }],
      ['a negative size', { ...good, size: -1 }],
      ['a short root', { ...good, root: 'ab' }],
      ['a time without milliseconds', { ...good, time: '2026-11-25T12:00:00Z' }],
      ['a signature of the wrong length', { ...good, signature: 'AAAA' }],
    ] as [string, unknown][]) {
      it(`refuses ${name} with AUDIT_CHECKPOINT_MALFORMED`, () => assert.throws(() => parseCheckpoint(input), { code: 'AUDIT_CHECKPOINT_MALFORMED' }));
    }
  });
});

describe('the signing key on disk', () => {
  it('is created owner-only (0600) on first use, and loads again with the same id', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-audit-key-'));
    dirs.push(dir);
    const key = loadOrCreateSigningKey(join(dir, 'state'));
    assert.equal(statSync(join(dir, 'state', KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(loadSigningKey(join(dir, 'state')).keyId, key.keyId);
  });
  it('is refused when others can read it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-audit-key-'));
    dirs.push(dir);
    loadOrCreateSigningKey(dir);
    chmodSync(join(dir, KEY_FILE), 0o644);
    assert.throws(() => loadSigningKey(dir), { code: 'AUDIT_KEY_UNAVAILABLE' });
  });
  it('is refused when missing', () => {
    assert.throws(() => loadSigningKey(join(tmpdir(), 'corral-no-such-dir')), { code: 'AUDIT_KEY_UNAVAILABLE' });
  });
  it('is refused when it is not Ed25519', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    assert.throws(() => privateKeyFromPem(rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 'rsa.pem'), { code: 'AUDIT_KEY_UNAVAILABLE' });
  });
  it('gives auditors a public key file they can load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-audit-key-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'pub.pem'), publicKeyPem(publicKey));
    assert.equal(keyIdOf(loadPublicKeyFile(join(dir, 'pub.pem'))), keyIdOf(publicKey));
    writeFileSync(join(dir, 'junk.pem'), 'not a key');
    assert.throws(() => loadPublicKeyFile(join(dir, 'junk.pem')), { code: 'AUDIT_KEY_UNAVAILABLE' });
  });
});
