// Runs the real `corral` command as a child process, the way a user or a script would.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CORRAL_BIN = fileURLToPath(new URL('../bin/corral', import.meta.url));

export interface CorralRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `corral ARGS` with Node 24 first on PATH; resolves when it exits. */
export function corral(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {}): Promise<CorralRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(CORRAL_BIN, args, {
      cwd: options.cwd,
      env: { ...process.env, CORRAL_NODE: process.execPath, ...options.env },
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
