// Runs the real `corral` command as a child process, the way a user or a script would.
import { spawn } from 'node:child_process';
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
