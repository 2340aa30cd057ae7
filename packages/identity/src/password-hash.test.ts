import assert from 'node:assert/strict';
import { randomBytes, scryptSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { HashGate, hashPassword, isCurrentCost, parsePasswordHash, passwordMatches, PASSWORD_COST } from './password-hash.ts';

describe('hashPassword', () => {
  it('makes scrypt$65536$8$2$salt$key, which a plain RFC 7914 scrypt of the NFKC password reproduces', async () => {
    const hash = await hashPassword('ﬁve ﬁne words'); // ligatures: NFKC makes them "five fine words"
    const [scheme, n, r, p, salt, key] = hash.split('$');
    assert.deepEqual([scheme, n, r, p], ['scrypt', '65536', '8', '2']);
    const reference = scryptSync('five fine words', Buffer.from(salt!, 'base64url'), 32, { N: 2 ** 16, r: 8, p: 2, maxmem: 128 * 2 ** 20 });
    assert.equal(reference.toString('base64url'), key);
    assert.equal(await passwordMatches('five fine words', parsePasswordHash(hash, 'test')), true);
  });
});

describe('parsePasswordHash', () => {
  const salt = randomBytes(16).toString('base64url');
  const key = randomBytes(32).toString('base64url');

  it('reads the cost, salt and key of a hash stored with the old cost, which is not the current one', () => {
    const parsed = parsePasswordHash(`scrypt$32768$8$1$${salt}$${key}`, 'olga');
    assert.deepEqual(parsed.cost, { N: 32768, r: 8, p: 1 });
    assert.equal(parsed.salt.toString('base64url'), salt);
    assert.equal(parsed.key.toString('base64url'), key);
    assert.equal(isCurrentCost(parsed.cost), false);
    assert.equal(isCurrentCost(PASSWORD_COST), true);
  });

  it('takes the largest cost it allows: N=2^20 r=2 p=8 (256 MiB, 2^24 work) is refused for work, N=2^20 r=2 p=4 taken', () => {
    assert.deepEqual(parsePasswordHash(`scrypt$${2 ** 20}$2$4$${salt}$${key}`, 'x').cost, { N: 2 ** 20, r: 2, p: 4 });
    assert.throws(() => parsePasswordHash(`scrypt$${2 ** 20}$2$8$${salt}$${key}`, 'x'), { code: 'IDENTITY_STORE_FAILED' });
  });

  it('names the owner and the rule in its refusal, never the hash', () => {
    const hash = `scrypt$${2 ** 30}$8$1$${salt}$${key}`;
    assert.throws(
      () => parsePasswordHash(hash, 'mallory'),
      (error: Error & { code?: string }) => error.code === 'IDENTITY_STORE_FAILED' && error.message.includes('mallory') && error.message.includes('power of two') && !error.message.includes(salt) && !error.message.includes(key),
    );
  });

  it('refuses an N that is a huge number, so no float or overflow makes it pass as a power of two', () => {
    for (const n of ['9007199254740992', '4294967296', '2147483648', '99999999999']) {
      assert.throws(() => parsePasswordHash(`scrypt$${n}$8$1$${salt}$${key}`, 'x'), { code: 'IDENTITY_STORE_FAILED' });
    }
  });
});

describe('HashGate', () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it('runs at most 2 at once, queues the next in order, and refuses the one past the queue at once without running it', async () => {
    const gate = new HashGate(2, 2);
    const order: number[] = [];
    const releases = new Map<number, () => void>();
    const work = (i: number) => gate.run(() => new Promise<number>((resolve) => {
      order.push(i);
      releases.set(i, () => resolve(i));
    }));
    const running = [work(0), work(1), work(2), work(3)];
    await tick();
    assert.deepEqual(order, [0, 1]);
    assert.deepEqual(gate.load, { running: 2, waiting: 2 });
    let ran = false;
    await assert.rejects(gate.run(async () => { ran = true; }), { code: 'IDENTITY_SIGN_IN_BUSY' });
    assert.equal(ran, false);
    releases.get(1)!();
    await tick();
    assert.deepEqual(order, [0, 1, 2]);
    assert.deepEqual(gate.load, { running: 2, waiting: 1 });
    for (const i of [0, 2, 3]) {
      releases.get(i)!();
      await tick();
    }
    assert.deepEqual(await Promise.all(running), [0, 1, 2, 3]);
    assert.deepEqual(order, [0, 1, 2, 3]);
    assert.deepEqual(gate.load, { running: 0, waiting: 0 });
  });

  it('frees its place when the work fails', async () => {
    const gate = new HashGate(1, 0);
    await assert.rejects(gate.run(async () => { throw new Error('scrypt failed'); }), /scrypt failed/);
    assert.deepEqual(gate.load, { running: 0, waiting: 0 });
    assert.equal(await gate.run(async () => 'ran'), 'ran');
  });
});
