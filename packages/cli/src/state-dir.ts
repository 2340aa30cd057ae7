import { existsSync, statfsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { EXIT } from './exit-codes.ts';
import { CliFailure } from './output.ts';

/**
 * The state directory every command shares: `--state-dir`, else
 * `CORRAL_STATE_DIR` (set but empty counts as unset), else `~/.corral`.
 * An empty `--state-dir` (`--state-dir "$DIR"` with DIR unset) is bad usage,
 * exit 2: it names no directory, and never means the default one; so is a
 * name that is not UTF-8, which Node has already read as another one.
 */
export function stateDir(option: string | undefined): string {
  if (option === '') throw new CliFailure('--state-dir names no directory: give one, or leave the option out for $CORRAL_STATE_DIR or ~/.corral', EXIT.usage);
  const chosen = option ?? process.env.CORRAL_STATE_DIR;
  // Node reads each byte of an argument or variable that is not UTF-8 as U+FFFD: the path would name another directory.
  if (chosen?.includes('\uFFFD')) {
    const from = option === undefined ? 'CORRAL_STATE_DIR' : '--state-dir';
    throw new CliFailure(`${from} holds bytes that are not UTF-8 (shown as \uFFFD), so Corral cannot name that directory: give it a UTF-8 name, or a symbolic link with one`, EXIT.usage);
  }
  const dir = chosen ? resolve(chosen) : join(homedir(), '.corral');
  if (onProcfs(dir)) throw new CliFailure(`${dir} is in /proc, the kernel's view of its processes, where no folder can be made: choose another state directory with --state-dir or CORRAL_STATE_DIR`, EXIT.usage);
  return dir;
}

/** procfs's f_type (statfs(2)). */
const PROC_SUPER_MAGIC = 0x9fa0;

/**
 * Whether `path`, or the nearest folder above it that exists, is on procfs.
 * There mkdir answers ENOENT in a folder that exists, and Node's recursive
 * mkdir (every store makes its state directory so) retries for ever, in one
 * synchronous call that Ctrl-C cannot interrupt.
 */
function onProcfs(path: string): boolean {
  for (let p = path; ; p = dirname(p)) {
    try {
      return statfsSync(p).type === PROC_SUPER_MAGIC;
    } catch {
      if (p === dirname(p)) return false;
    }
  }
}

/**
 * `dir`, when it holds `file` (the store a command reads); else a failure
 * naming the directory, exit 3, before anything is created in it: a mistyped
 * --state-dir never reads as an empty install. `setup` says what makes one.
 */
export function existingState(dir: string, file: string, what: string, setup: string): string {
  if (!existsSync(join(dir, file))) throw new CliFailure(`no ${what} in ${dir}: ${setup}, or name the right one with --state-dir`, EXIT.environment);
  return dir;
}

/**
 * Makes `dir` — the state directory, or a folder in it a command writes to —
 * a folder only this user may use, before anything is written there
 * (@corral/node's privateStateDir): made 0700 when missing, or when this
 * user's and others may enter or write it. Whoever else owns it could swap
 * what is written there for a link, and have it written over any file this
 * user may write. Resolves false when it cannot be made (not a folder, no
 * permission): the command then goes without it, or its own write says why.
 * Throws a CliFailure (exit 3) naming it when another user owns it, or
 * others may write it and it cannot be made private.
 */
export async function privateFolder(dir: string): Promise<boolean> {
  const { privateStateDir } = await import('@corral/node/whole-files');
  try {
    // What is at stake is whatever the command writes there.
    privateStateDir(dir, 'NODE_STATE_DIR_UNAVAILABLE', { risk: 'could swap what Corral writes there for a link to any file of yours', remedy: () => 'choose a state directory of your own with --state-dir or CORRAL_STATE_DIR' });
    return true;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'NODE_STATE_DIR_UNAVAILABLE') return false;
    throw new CliFailure((error as Error).message, EXIT.environment, code);
  }
}

/** Where process workspaces live in the state directory: the one part of it a container policy may grant. */
export const PROCESSES_DIR = 'processes';

/**
 * What every sandbox Corral starts on this state directory is kept out of
 * (`corral run`'s and `corral up`'s nodes'): the whole state directory — the
 * audit signing key, the identity database, the gateway token, the nodes' own
 * keys — except the process workspaces, which a container policy may grant;
 * and the other state directories this host's Corral commands use unless told
 * otherwise (`~/.corral`, the one CORRAL_STATE_DIR names), whole: a run with a
 * state directory of its own, granted `~`, read the default one's keys. `~`
 * is HOME and the account's home as well: a gateway or node started with
 * another HOME (a service's) left the user's own ~/.corral to a grant of
 * their home by name.
 */
export function hiddenState(stateDir: string): { dir: string; exposed: string[]; others: string[] } {
  const homes = [homedir(), ...accountHome()];
  const others = [...homes.map((h) => join(h, '.corral')), ...(process.env.CORRAL_STATE_DIR ? [resolve(process.env.CORRAL_STATE_DIR)] : [])].filter((d) => d !== stateDir);
  return { dir: stateDir, exposed: [join(stateDir, PROCESSES_DIR)], others: [...new Set(others)] };
}

/** The home the password database gives this account, whatever HOME says; none when it has no entry (a container's bare uid). */
function accountHome(): string[] {
  try {
    return [userInfo().homedir];
  } catch {
    return [];
  }
}
