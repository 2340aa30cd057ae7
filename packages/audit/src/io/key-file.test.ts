// The public key an auditor is handed: only one Ed25519 public key, in one
// PEM block, is trusted; anything else is refused naming the file, never
// echoing what it holds.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { keyIdOf, publicKeyPem } from '../checkpoint/key.ts';
import { AuditError } from '../errors.ts';
import { loadOrCreateSigningKey, loadPublicKeyFile, loadSigningKey, PUBLIC_KEY_FILE } from './key-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'corral-audit-public-key-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ed = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
const x25519 = generateKeyPairSync('x25519');
const edPublic = publicKeyPem(ed.publicKey);
const edPrivate = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

/** The refusal, checked to be AUDIT_KEY_UNAVAILABLE and to hold none of the file's key material. */
function refusal(path: string, secret?: string): AuditError {
  let caught: unknown;
  try {
    loadPublicKeyFile(path);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof AuditError, `expected an AuditError, got ${String(caught)}`);
  assert.equal(caught.code, 'AUDIT_KEY_UNAVAILABLE');
  if (secret) {
    const body = secret.split('\n').filter((l) => l !== '' && !l.startsWith('-----'));
    for (const text of [caught.message, String((caught.cause as Error | undefined)?.message ?? '')]) for (const l of body) assert.ok(!text.includes(l.slice(0, 16)), `the error repeats the key: ${text}`);
  }
  return caught;
}

describe('loading the public key an auditor trusts', () => {
  it('loads one Ed25519 public key in SPKI PEM, with text before and after it', () => {
    assert.equal(keyIdOf(loadPublicKeyFile(file('ok.pem', edPublic))), keyIdOf(ed.publicKey));
    assert.equal(keyIdOf(loadPublicKeyFile(file('ok-text.pem', `the audit key of node-1:\n${edPublic}\n`))), keyIdOf(ed.publicKey));
  });
  describe('when the file holds another type of key', () => {
    it('refuses an RSA public key', () => void refusal(file('rsa.pem', rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string)));
    it('refuses an X25519 public key', () => void refusal(file('x25519.pem', x25519.publicKey.export({ type: 'spki', format: 'pem' }) as string)));
  });
  describe('when the file holds a private key', () => {
    it('refuses the Ed25519 private key instead of trusting the public key derived from it, without repeating it (regression: it was accepted)', () => {
      const e = refusal(file('private.pem', edPrivate), edPrivate);
      assert.match(e.message, /private key/);
    });
    it('refuses a private key beside the public key (regression: it was accepted)', () => {
      refusal(file('public-and-private.pem', `${edPublic}${edPrivate}`), edPrivate);
      refusal(file('private-and-public.pem', `${edPrivate}${edPublic}`), edPrivate);
    });
    it('refuses an RSA private key without repeating it', () => void refusal(file('rsa-private.pem', rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string), rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string));
  });
  describe('when the file holds more than one PEM block', () => {
    it('refuses two public keys: which one is trusted would depend on their order (regression: the first was taken)', () => {
      refusal(file('two-keys.pem', `${publicKeyPem(other.publicKey)}${edPublic}`));
    });
    it('refuses an Ed25519 public key followed by an RSA one (regression: the first was taken)', () => {
      refusal(file('ed-then-rsa.pem', `${edPublic}${rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string}`));
    });
  });
  describe('when the file is not PEM', () => {
    it('refuses the raw 32 key bytes', () => void refusal(file('raw.bin', ed.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32))));
    it('refuses DER', () => void refusal(file('key.der', ed.publicKey.export({ type: 'spki', format: 'der' }))));
    it('refuses a JWK', () => void refusal(file('key.jwk', JSON.stringify(ed.publicKey.export({ format: 'jwk' })))));
    it('refuses an empty file', () => void refusal(file('empty.pem', '')));
  });
});

describe('creating the signing key', () => {
  it('replaces a symbolic link planted where the public key goes, and writes nothing through it (regression: the public key overwrote the file it named)', () => {
    const state = join(dir, 'planted');
    mkdirSync(state);
    const victim = file('victim.txt', 'keep me\n');
    symlinkSync(victim, join(state, PUBLIC_KEY_FILE));
    const key = loadOrCreateSigningKey(state);
    assert.equal(readFileSync(victim, 'utf8'), 'keep me\n');
    assert.ok(lstatSync(join(state, PUBLIC_KEY_FILE)).isFile());
    assert.equal(keyIdOf(loadPublicKeyFile(join(state, PUBLIC_KEY_FILE))), key.keyId);
    assert.deepEqual(readdirSync(state).sort(), ['audit-signing-key.pem', PUBLIC_KEY_FILE]);
  });
});

describe('loading the signing key', () => {
  it('refuses a key file another user owns with AUDIT_KEY_UNAVAILABLE: its owner can read it and sign for the log (regression: loaded, owner-only being all that was checked)', (t) => {
    const state = join(dir, 'owned');
    loadOrCreateSigningKey(state);
    const uid = process.getuid?.();
    if (uid === undefined) return t.skip('no user ids on this platform');
    // This process as another user than the one who made the key.
    t.mock.method(process as { getuid: () => number }, 'getuid', () => uid + 1);
    assert.throws(() => loadSigningKey(state), (error: unknown) => error instanceof AuditError && error.code === 'AUDIT_KEY_UNAVAILABLE' && error.message.includes(`uid ${uid}`));
  });
  it('refuses an owner-only FIFO where the key goes with AUDIT_KEY_UNAVAILABLE, without waiting for a writer (regression: read it, waiting for ever)', async (t) => {
    const state = join(dir, 'fifo');
    mkdirSync(state);
    const fifo = join(state, 'audit-signing-key.pem');
    const { execFileSync } = await import('node:child_process');
    try {
      execFileSync('mkfifo', ['-m', '600', fifo]);
    } catch {
      return t.skip('no mkfifo here');
    }
    assert.throws(() => loadSigningKey(state), { code: 'AUDIT_KEY_UNAVAILABLE' });
  });
});
