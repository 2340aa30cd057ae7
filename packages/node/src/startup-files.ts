// The files a shell reads before its `-c` text: a login shell (`sh -lc`,
// `bash --login -c`) its profile in $HOME, bash the file BASH_ENV names, sh
// the one ENV names (a zsh payload, which reads .zshenv, is not looked
// through at all: canonicalRun makes it opaque). Looking through a shell to
// the commands it runs says nothing of them: a profile the sandbox wrote
// runs whatever it holds. Written by an earlier command of the same run
// (`printf … | tee /tmp/.profile; sh -lc 'echo hi'`), or by an earlier run
// in a home that is a read-write grant, it runs programs no allowlist named.
import { isAbsolute } from 'node:path';
import type { SandboxPlan } from '@corral/contain';
import { NodeError } from './errors.ts';
import type { LocalPolicyFile } from './local-policy.ts';
import { writableBy, writtenBefore } from './sandbox-path.ts';
import { shown } from './untrusted-text.ts';

/**
 * Under an allowlist, refuses a run in which a shell looked through
 * (`run.wrappers`, outermost first) reads a startup file the sandbox could
 * have written before that shell starts: in a read-write grant, whichever
 * shell; in the sandbox's own fresh folders (its /tmp, the default HOME),
 * any shell but the outermost, which starts before anything in the run.
 * Throws NODE_RUN_DENIED.
 */
export function refuseWritableStartupFiles(policy: LocalPolicyFile, run: { wrappers: readonly (readonly string[])[] }, plan: SandboxPlan): void {
  if (policy.defaults.security !== 'allowlist') return;
  run.wrappers.forEach((shell, depth) => {
    for (const { variable, path } of startupFolders(shell, plan.env)) {
      // A relative one is taken from the working directory, which may be a read-write grant.
      const who = writtenBefore(isAbsolute(path) ? writableBy(plan, path) : 'grant', depth > 0);
      if (who !== undefined) {
        throw new NodeError('NODE_RUN_DENIED', `${shown(shell[0]!, 200)} reads a startup file from ${variable} (${shown(path, 200)}), which ${who}: what it holds would run unlisted`);
      }
    }
  });
}

/** Where `shell` (a shell's argv, `-c` text and all) reads startup files from, by the variable naming the place. */
function startupFolders(shell: readonly string[], env: Readonly<Record<string, string>>): { variable: string; path: string }[] {
  const out: { variable: string; path: string }[] = [];
  const home = env.HOME;
  if (home !== undefined && login(shell)) out.push({ variable: 'HOME', path: home });
  for (const variable of ['BASH_ENV', 'ENV']) if (env[variable] !== undefined && env[variable] !== '') out.push({ variable, path: env[variable]! });
  return out;
}

/** Whether a shell's options, up to the one holding `c`, make it a login shell (`-l` in a cluster, `--login`). */
function login(shell: readonly string[]): boolean {
  for (const arg of shell.slice(1)) {
    if (arg === '--login') return true;
    if (!/^[-+]/.test(arg)) continue; // an -o option's name
    if (arg[0] === '-' && /^-[A-Za-z]+$/.test(arg) && arg.includes('l')) return true;
    if (/^-[A-Za-z]*c/.test(arg)) return false;
  }
  return false;
}
