// The console's files: served with the security headers, index.html for the
// console's own routes, nothing outside the directory, gzip when asked for.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Gateway } from '../gateway.ts';
import { startTestGateway, type TestGateway } from './testing.ts';

const INDEX = '<!doctype html><title>Corral</title><div id="root"></div>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});`;

/** A raw GET, so paths are sent exactly as written (fetch would normalise `..`). */
function rawGet(base: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console files', () => {
  let root: string;
  let t: TestGateway;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'corral-console-'));
    mkdirSync(join(root, 'dist', 'assets'), { recursive: true });
    writeFileSync(join(root, 'dist', 'index.html'), INDEX);
    writeFileSync(join(root, 'dist', 'assets', 'app-1234.js'), SCRIPT);
    writeFileSync(join(root, 'secret.txt'), 'outside the console');
    symlinkSync(join(root, 'secret.txt'), join(root, 'dist', 'leak.txt'));
    t = await startTestGateway({ consoleDir: join(root, 'dist') });
  });
  after(async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html at / and for any path that is not a file, with the security headers: no inline style, no <base>, no form posting elsewhere, never in a frame (regression: style-src allowed unsafe-inline and there was no X-Frame-Options)', async () => {
    for (const path of ['/', '/approvals', '/audit/42']) {
      const res = await fetch(`${t.gw.httpUrl}${path}`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), INDEX);
      assert.match(res.headers.get('content-type')!, /^text\/html/);
      assert.equal(res.headers.get('content-security-policy'), "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'");
      assert.equal(res.headers.get('x-frame-options'), 'DENY');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin');
    }
  });

  it('serves hashed assets as immutable, gzipped when the browser accepts it', async () => {
    const res = await fetch(`${t.gw.httpUrl}/assets/app-1234.js`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/javascript/);
    assert.match(res.headers.get('cache-control')!, /immutable/);
    assert.equal(await res.text(), SCRIPT);
    const raw = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve) => {
      const url = new URL(t.gw.httpUrl);
      request({ host: url.hostname, port: url.port, path: '/assets/app-1234.js', headers: { 'accept-encoding': 'gzip' } }, (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => resolve({ encoding: r.headers['content-encoding'], body: Buffer.concat(chunks) }));
      }).end();
    });
    assert.equal(raw.encoding, 'gzip');
    assert.equal(gunzipSync(raw.body).toString(), SCRIPT);
  });

  it('never serves a file outside the directory: .., encoded .., and a symbolic link leading out all answer index.html', async () => {
    for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/leak.txt', '/%00']) {
      const res = await rawGet(t.gw.httpUrl, path);
      assert.notEqual(res.body, 'outside the console', path);
      assert.ok(res.status === 200 || res.status === 400, `${path}: ${res.status}`);
    }
  });

  it('refuses to start when the directory has no index.html', async () => {
    await assert.rejects(Gateway.start({ stateDir: join(root, 'state'), token: 't'.repeat(32), port: 0, consoleDir: root }), { code: 'GATEWAY_CONFIG_INVALID' });
  });

  it('answers 426 outside /api/ when no console is configured, as before', async () => {
    const plain = await startTestGateway();
    try {
      assert.equal((await fetch(`${plain.gw.httpUrl}/`)).status, 426);
    } finally {
      await plain.close();
    }
  });
});
