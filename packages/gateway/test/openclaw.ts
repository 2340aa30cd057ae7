// The upstream OpenClaw package for interop tests: installed once into a
// cache folder the tests own (node_modules/.cache/corral-openclaw), reused
// when present, and run on this Node 24 in temporary homes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const OPENCLAW_VERSION = '2026.9.6';
const root = fileURLToPath(new URL('../../../', import.meta.url));
export const OPENCLAW_CACHE = join(root, 'node_modules', '.cache', 'corral-openclaw');
const entry = join(OPENCLAW_CACHE, 'node_modules', 'openclaw', 'openclaw.mjs');
const nodeBin = process.execPath;

/**
 * Makes sure openclaw@2026.9.6 is in the cache (about 50 s and 670 MB the
 * first time). Returns the reason it is not available, or undefined.
 */
export function ensureOpenclaw(): string | undefined {
  // Test files run in parallel: one installs under a lock while the others wait, and the
  // marker is written only once the install is whole (npm writes package.json early).
  const marker = join(OPENCLAW_CACHE, `installed-${OPENCLAW_VERSION}`);
  if (existsSync(marker) && existsSync(entry)) return undefined;
  mkdirSync(OPENCLAW_CACHE, { recursive: true });
  if (!existsSync(join(OPENCLAW_CACHE, 'package.json'))) writeFileSync(join(OPENCLAW_CACHE, 'package.json'), '{"name":"corral-openclaw-cache","private":true}\n');
  const npm = join(dirname(nodeBin), 'npm');
  const install = `test -f '${marker}' || { '${existsSync(npm) ? npm : 'npm'}' install --prefix '${OPENCLAW_CACHE}' openclaw@${OPENCLAW_VERSION} --no-audit --no-fund && touch '${marker}'; }`;
  const result = spawnSync('flock', [join(OPENCLAW_CACHE, '.install.lock'), 'sh', '-c', install], {
    env: { ...process.env, PATH: `${dirname(nodeBin)}:${process.env.PATH ?? ''}` },
    stdio: 'ignore',
    timeout: 600_000,
  });
  if (result.status !== 0 || !existsSync(marker) || !existsSync(entry)) return `could not install openclaw@${OPENCLAW_VERSION} into ${OPENCLAW_CACHE}`;
  return undefined;
}

/** A fresh OPENCLAW_HOME. */
export function openclawHome(): string {
  return mkdtempSync(join(tmpdir(), 'corral-openclaw-home-'));
}

function env(home: string, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    PATH: `${dirname(nodeBin)}:/usr/local/bin:/usr/bin:/bin`,
    HOME: home,
    OPENCLAW_HOME: home,
    OPENCLAW_NO_AUTO_UPDATE: '1',
    NODE_COMPILE_CACHE: join(OPENCLAW_CACHE, 'compile-cache'),
    ...extra,
  };
}

/** Runs `openclaw ARGS` to the end. */
export function openclaw(args: string[], options: { home: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(nodeBin, [entry, ...args], { cwd: options.home, env: env(options.home, options.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running `openclaw ARGS` (node host, gateway); its output is collected into `log`. */
export function startOpenclaw(args: string[], options: { home: string; env?: NodeJS.ProcessEnv }): { child: ChildProcess; log: () => string; waitFor: (pattern: RegExp, ms: number) => Promise<RegExpExecArray>; stop: () => Promise<void> } {
  const child = spawn(nodeBin, [entry, ...args], { cwd: options.home, env: env(options.home, options.env ?? {}), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  const listeners = new Set<() => void>();
  const append = (c: Buffer): void => {
    log += c.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    log: () => log,
    waitFor: (pattern, ms) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const match = pattern.exec(log);
          if (!match) return;
          listeners.delete(check);
          clearTimeout(timer);
          resolve(match);
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`openclaw ${args[0]}: no ${pattern} within ${ms} ms; log:\n${log.slice(-2000)}`));
        }, ms);
        listeners.add(check);
        check();
      }),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        child.stdout?.destroy();
        child.stderr?.destroy();
        return;
      }
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
      // Whatever it started goes too, and its pipes are let go of.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // the group is gone
      }
      child.stdout?.destroy();
      child.stderr?.destroy();
    },
  };
}
