// What the console's build puts in front of browsers: React's production code
// and nothing for debugging, whatever environment the process building it
// runs in (corral up builds it inside the gateway's own process), and the
// same files from the same sources.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { buildConsole, buildInto, consoleIsFresh } from '../src/build.ts';

/** Every file under `dir`, by its path relative to `dir`, with its bytes. */
function filesOf(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.set(relative(dir, join(entry.parentPath, entry.name)), readFileSync(join(entry.parentPath, entry.name)));
  }
  return files;
}

function scriptsOf(files: Map<string, Buffer>): string {
  return [...files].filter(([name]) => name.endsWith('.js')).map(([, body]) => body.toString('utf8')).join('\n');
}

describe('the console build', () => {
  const root = mkdtempSync(join(tmpdir(), 'corral-console-build-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  describe('when the process building it runs with NODE_ENV=development', () => {
    let files: Map<string, Buffer>;
    const was = process.env.NODE_ENV;
    before(async () => {
      process.env.NODE_ENV = 'development';
      try {
        await buildInto(join(root, 'development-env'));
      } finally {
        if (was === undefined) delete process.env.NODE_ENV;
        else process.env.NODE_ENV = was;
      }
      files = filesOf(join(root, 'development-env'));
    });

    it("is React's production build all the same (regression: corral up started with NODE_ENV=development served React's development build, its debugging code and all)", () => {
      const scripts = scriptsOf(files);
      assert.ok(scripts.includes('Minified React error'), 'no production React in the build');
      assert.ok(!scripts.includes('jsxDEV'), "React's development JSX runtime is in the build");
    });
  });

  describe('when it is built with npm run build in a shell where NODE_ENV=development', () => {
    it("is React's production build all the same (regression: a build by hand was React's development build, which the gateway then served as fresh)", () => {
      const vite = join(dirname(fileURLToPath(import.meta.resolve('vite/package.json'))), 'bin', 'vite.js');
      const out = join(root, 'by-hand');
      execFileSync(process.execPath, [vite, 'build', '--config', 'vite.config.ts', '--outDir', out, '--emptyOutDir', '--logLevel', 'warn'], { cwd: join(import.meta.dirname, '..'), env: { ...process.env, NODE_ENV: 'development' }, stdio: 'pipe' });
      const scripts = scriptsOf(filesOf(out));
      assert.ok(scripts.includes('Minified React error'), 'no production React in the build');
      assert.ok(!scripts.includes('jsxDEV'), "React's development JSX runtime is in the build");
    });
  });

  describe('as it is built for the gateway', () => {
    let first: Map<string, Buffer>;
    let second: Map<string, Buffer>;
    const was = process.env.NODE_ENV;
    let after: string | undefined;
    before(async () => {
      await buildInto(join(root, 'first'));
      after = process.env.NODE_ENV;
      process.env.NODE_ENV = was;
      if (was === undefined) delete process.env.NODE_ENV;
      await buildInto(join(root, 'second'));
      first = filesOf(join(root, 'first'));
      second = filesOf(join(root, 'second'));
    });

    it("leaves the NODE_ENV of the process building it as it was (regression: building inside corral up's gateway set the gateway's own NODE_ENV to production)", () => {
      assert.equal(after, was);
    });

    it('holds no source map and names none', () => {
      assert.deepEqual([...first.keys()].filter((name) => name.endsWith('.map')), []);
      for (const [name, body] of first) assert.doesNotMatch(body.toString('utf8'), /sourceMappingURL/, name);
    });

    it('holds no inline script, so it runs under default-src self', () => {
      const html = first.get('index.html')?.toString('utf8') ?? '';
      assert.match(html, /<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
    });

    it('is the same files, byte for byte, each time it is built from the same sources', () => {
      assert.deepEqual([...first.keys()].sort(), [...second.keys()].sort());
      for (const [name, body] of first) assert.ok(body.equals(second.get(name) ?? Buffer.alloc(0)), `${name} differs between two builds`);
    });
  });

  describe('when Vite cannot build it', () => {
    it('answers CONSOLE_BUILD_FAILED, with what Vite said as its cause', async () => {
      // A folder inside a file cannot be made.
      const file = join(root, 'a-file');
      writeFileSync(file, '');
      await assert.rejects(buildInto(join(file, 'dist')), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'CONSOLE_BUILD_FAILED');
        assert.ok(error.cause instanceof Error);
        return true;
      });
    });
  });

  describe('when how it is built changes', () => {
    it("is built again before it is served (regression: a console built before the build's own code changed, such as React's development build of a NODE_ENV=development start, went on being served as fresh)", async () => {
      await buildConsole();
      // The build's code as just changed: its file newer than the build served.
      const now = new Date();
      utimesSync(join(import.meta.dirname, '..', 'src', 'build.ts'), now, now);
      assert.equal(consoleIsFresh(), false);
      await buildConsole();
      assert.equal(consoleIsFresh(), true);
    });
  });
});
