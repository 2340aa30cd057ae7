// The console's first page load, as the bundle bench measures it.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { measureFirstLoad } from '../src/first-load.ts';
import { buildConsole, consoleDir, consoleIsFresh } from '../src/index.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function site(html: string, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'corral-first-load-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), html);
  for (const [name, body] of Object.entries(files)) writeFileSync(join(dir, name), body);
  return dir;
}

describe('measureFirstLoad', () => {
  it('counts the entry script and every module preload, once each, gzip-compressed', () => {
    const entry = 'export const a = 1;'.repeat(50);
    const shared = 'export const b = 2;'.repeat(80);
    const dir = site(
      `<script type="module" crossorigin src="/assets/entry.js"></script>
       <link rel="modulepreload" crossorigin href="/assets/shared.js">
       <link rel="modulepreload" href="/assets/shared.js">
       <link rel="stylesheet" href="/assets/app.css">`,
      { 'assets/entry.js': entry, 'assets/shared.js': shared, 'assets/app.css': 'body{margin:0}', 'assets/lazy.js': 'x'.repeat(10_000) },
    );
    const load = measureFirstLoad(dir);
    assert.deepEqual(load.files.map((f) => f.path), ['/assets/entry.js', '/assets/shared.js', '/assets/app.css']);
    assert.equal(load.jsBytes, entry.length + shared.length);
    assert.equal(load.jsGzipBytes, gzipSync(entry).length + gzipSync(shared).length);
  });

  it('does not count a chunk loaded only later, or a data: URL', () => {
    const dir = site('<link rel="icon" href="data:,"><script type="module" src="/assets/entry.js"></script>', { 'assets/entry.js': 'import("./lazy.js")', 'assets/lazy.js': 'x'.repeat(10_000) });
    assert.deepEqual(measureFirstLoad(dir).files.map((f) => f.path), ['/assets/entry.js']);
  });
});

describe('the built console', () => {
  it('is fresh after buildConsole, and its first load is within 300 KB of JavaScript, gzip', async () => {
    const load = measureFirstLoad(await buildConsole());
    assert.ok(consoleIsFresh());
    assert.ok(load.files.some((f) => f.kind === 'js'), 'index.html names a script');
    assert.ok(load.jsGzipBytes <= 300 * 1024, `${load.jsGzipBytes} bytes`);
  });

  it('is built again when the workspace\'s package-lock.json changes (regression: an upgraded React or Vite was never built into the console served)', async () => {
    const lock = join(import.meta.dirname, '..', '..', '..', 'package-lock.json');
    await buildConsole();
    // Only the time changes: what `npm update` leaves, as far as freshness can tell.
    const later = new Date(Math.max(Date.now(), statSync(join(consoleDir(), 'index.html')).mtimeMs + 1));
    utimesSync(lock, later, later);
    assert.equal(consoleIsFresh(), false);
    await buildConsole();
    assert.ok(consoleIsFresh());
  });
});
