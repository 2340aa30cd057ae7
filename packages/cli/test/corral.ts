// Runs the real `corral` command as a child process, the way a user or a script would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CORRAL_BIN = fileURLToPath(new URL('../bin/corral', import.meta.url));

export interface CorralRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A fresh, empty state directory. */
export function tempStateDir(): string {
  return mkdtempSync(join(tmpdir(), 'corral-state-'));
}

/**
 * Runs `corral ARGS` on this Node; resolves when it exits. Unless the caller
 * names one, each call gets its own empty state directory: tests never touch ~/.corral.
 */
export function corral(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<CorralRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(CORRAL_BIN, args, {
      cwd: options.cwd,
      env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir(), ...options.env },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const started = new Set<ChildProcess>();

/**
 * Starts a long-running `corral ARGS` (a gateway, a node), with `env` added to
 * this process's; resolves once its stdout matches `ready`, with the match, and
 * rejects, with what it wrote, when it ends first or is not ready in 20 s.
 * killStarted() ends every one still running.
 */
export function startCorral(args: string[], ready: RegExp, options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ child: ChildProcess; match: RegExpExecArray; exited: Promise<number | null> }> {
  const child = spawn(CORRAL_BIN, args, { env: { ...process.env, CORRAL_NODE: process.execPath, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no ${ready} from corral ${args.join(' ')}: ${out} ${err}`)), 20_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`corral ${args.join(' ')} ended (${code}) before ${ready}: ${out} ${err}`));
    });
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const match = ready.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, exited });
      }
    });
  });
}

/** Kills (SIGKILL) every command startCorral started that is still running. */
export function killStarted(): void {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  started.clear();
}
