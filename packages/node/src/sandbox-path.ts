// Where the programs a run names are found inside the sandbox, and whether
// the sandbox could have put them there. A bare allowlist entry matches a
// bare argv[0] because the program the sandbox's PATH finds lies in a folder
// nobody inside can write, and a path entry names one program; but a
// container policy may set or pass PATH (or LD_PRELOAD, PYTHONPATH…) to a
// folder the sandbox can write (a read-write grant, its /tmp), a relative
// program is taken from a working directory the caller chooses, and a
// granted folder may hold the program itself: what an earlier command put
// there would then run under a listed name.
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { SandboxPlan } from '@corral/contain';
import { NodeError } from './errors.ts';
import { SYSTEM_BIN_DIRS, type LocalPolicyFile } from './local-policy.ts';
import { shown } from './untrusted-text.ts';

/**
 * Under an allowlist, refuses a run in which a program the allowlist is
 * asked about (a command, or a shell looked through) may be one the sandbox
 * wrote: a bare name whose lookup on the sandbox's PATH (lookUp) passes a
 * folder the sandbox can write before the folder it is found in, or finds a
 * program that leads (through its symlinks) where the sandbox can write; a
 * path, taken from the sandbox's working directory when relative (`./tool`),
 * that lies where the sandbox can write (writableBy), itself or through its
 * symlinks. Either way what runs under that name is not what the allowlist
 * entry says. A folder the sandbox can write after the one the program is
 * found in is no matter: the lookup never reaches it. The system directories
 * are taken as only root writes them. Throws NODE_RUN_DENIED, naming the
 * PATH entry or the path that is the problem.
 */
export function refuseWritablePrograms(policy: LocalPolicyFile, run: { commands: readonly (readonly string[])[]; wrappers: readonly (readonly string[])[] }, plan: SandboxPlan): void {
  if (policy.defaults.security !== 'allowlist') return;
  const programs = [...run.wrappers, ...run.commands].map((argv) => argv[0] ?? '');
  for (const program of programs) {
    if (program.includes('/')) continue;
    const { writable, found } = lookUp(plan, program);
    const name = shown(program, 200);
    if (writable !== undefined) {
      const before = found === undefined ? 'and no folder after it holds one yet' : found === join(writable, program) ? `and it holds the ${name} found now, which a command may have put there` : `searched before ${shown(found, 200)}, the ${name} it finds now`;
      throw new NodeError('NODE_RUN_DENIED', `${name} would be looked up on the sandbox's PATH, whose entry ${shown(writable, 200)} is a folder the sandbox can write, ${before}: a program of that name put there runs in its place. Name the program by its path, or keep PATH's folders up to it to ones the sandbox cannot write`);
    }
    if (found !== undefined && !systemDir(found) && writableBy(plan, found) !== undefined) {
      throw new NodeError('NODE_RUN_DENIED', `${name} is found on the sandbox's PATH as ${shown(found, 200)}, which leads where the sandbox can write: what runs under that name may be what a command put there, not the program the allowlist names`);
    }
  }
  for (const program of programs) {
    if (!program.includes('/') || systemDir(program)) continue;
    if (writableBy(plan, resolve(plan.cwd, program)) !== undefined) throw new NodeError('NODE_RUN_DENIED', `${shown(program, 200)} lies where the sandbox can write: what runs under that name may be what a command put there, not the program the allowlist names`);
  }
}

/** Whether `program` (a path) lies directly in a system directory. */
function systemDir(program: string): boolean {
  return SYSTEM_BIN_DIRS.includes(program.slice(0, program.lastIndexOf('/')));
}

/**
 * A bare program `name` looked up on the plan's PATH, entry by entry, as a
 * command inside the sandbox looks it up: `found`, the first entry's
 * `<entry>/<name>` that is an executable file the sandbox sees (its folder,
 * as written or with its symlinks resolved, bound in the sandbox); `writable`,
 * the first entry searched before that (or anywhere, when none holds it) that
 * the sandbox could put a program in (as writablePathEntry judges each: a
 * relative or empty one, one below its own writable folders or a read-write
 * grant). Read on this host when the run is planned.
 */
export function lookUp(plan: SandboxPlan, name: string): { found?: string; writable?: string } {
  let writable: string | undefined;
  for (const entry of (plan.env.PATH ?? '').split(':')) {
    if (writable === undefined && writableEntry(plan, entry)) writable = entry === '' ? '.' : entry;
    if (!isAbsolute(entry) || name === '' || name === '.' || name === '..') continue;
    const candidate = join(entry, name);
    if (executableFile(candidate) && seen(plan, candidate)) return { found: candidate, ...(writable !== undefined ? { writable } : {}) };
  }
  return writable !== undefined ? { writable } : {};
}

/** Whether a command inside the sandbox could put a program in the PATH entry `entry`. */
function writableEntry(plan: SandboxPlan, entry: string): boolean {
  if (SYSTEM_BIN_DIRS.includes(entry)) return false;
  return !isAbsolute(entry) || writableBy(plan, entry) !== undefined;
}

/** Whether `path` is an executable file on this host (through its symlinks). */
function executableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Whether the sandbox sees the host's `path`: its deepest mount, as written or with its symlinks resolved, binds it. */
export function seen(plan: SandboxPlan, path: string): boolean {
  let real: string | undefined;
  try {
    real = realpathSync(path);
  } catch {
    real = undefined;
  }
  return [path, real].some((p) => {
    const mount = p === undefined ? undefined : deepestMount(plan, p);
    return mount !== undefined && (mount.kind === 'ro' || mount.kind === 'rw') && !SANDBOX_WRITABLE.includes(mount);
  });
}

/** The folders every sandbox has of its own, writable (a tmpfs each), whatever its policy says: /tmp, /dev/shm and Corral's ingress folder. A grant bound inside one is what its own mount says. */
const SANDBOX_WRITABLE: SandboxPlan['mounts'] = ['/tmp', '/dev/shm', '/run/corral/ingress'].map((path) => ({ kind: 'rw', path }));

/**
 * The first entry of the plan's PATH that a command inside the sandbox
 * could put a program in: a relative one (the working directory), one below
 * the sandbox's own writable folders, or one whose deepest mount, as written
 * or with its symlinks resolved on this host, is a read-write grant. The
 * system directories (SYSTEM_BIN_DIRS) are taken as only root writes them, as
 * everywhere in the local policy. Undefined when there is none.
 */
export function writablePathEntry(plan: SandboxPlan): string | undefined {
  const entry = (plan.env.PATH ?? '').split(':').find((e) => writableEntry(plan, e));
  return entry === '' ? '.' : entry;
}

/**
 * Who makes the absolute `path` writable inside the sandbox, by the deepest
 * mount holding it as written, with `..` taken away, or with its symlinks
 * resolved on this host: `sandbox` for a folder of the sandbox's own (a fresh
 * tmpfs each run), `grant` for a read-write grant (which outlives the run);
 * undefined when neither.
 */
export function writableBy(plan: SandboxPlan, path: string): 'sandbox' | 'grant' | undefined {
  let real: string | undefined;
  try {
    real = realpathSync(path);
  } catch {
    real = undefined; // nothing there on the host: inside, only a writable mount could hold it
  }
  const found = [path, resolve(path), real].map((p) => (p === undefined ? undefined : deepestMount(plan, p)));
  if (found.some((m) => m?.kind === 'rw' && !SANDBOX_WRITABLE.includes(m))) return 'grant';
  if (found.some((m) => m?.kind === 'rw')) return 'sandbox';
  return undefined;
}

/**
 * Who, by `by` (writableBy's answer for a file a program reads), could have
 * written it before the program reads it, as a refusal says it: an earlier
 * run, for a read-write grant; an earlier command of this run, for the
 * sandbox's own folders, when one may run before (`earlier`); undefined when
 * nobody could.
 */
export function writtenBefore(by: 'sandbox' | 'grant' | undefined, earlier: boolean): string | undefined {
  if (by === 'grant') return 'an earlier run may have written';
  return by === 'sandbox' && earlier ? 'an earlier command of this run can write' : undefined;
}

/**
 * The files one program of a run reads before it does what it was asked (its
 * configuration and what that includes or points at): who could have written
 * each before the program starts, and which were read already.
 */
export class FileReads {
  protected readonly plan: SandboxPlan;
  /** Whether another command of the run may write the sandbox's own folders before the program starts. */
  readonly #earlier: boolean;
  /** The files read so far, each read once. */
  protected readonly read = new Set<string>();

  constructor(plan: SandboxPlan, earlier: boolean) {
    this.plan = plan;
    this.#earlier = earlier;
  }

  /** Who could have written the absolute `path` before the program reads it, as writtenBefore says it; undefined when nobody could. */
  protected writer(path: string): string | undefined {
    return writtenBefore(writableBy(this.plan, path), this.#earlier);
  }
}

/** The deepest mount holding `dir` (of two at one path, the later), the sandbox's own writable folders among them. */
function deepestMount(plan: SandboxPlan, dir: string): SandboxPlan['mounts'][number] | undefined {
  let deepest: SandboxPlan['mounts'][number] | undefined;
  for (const mount of [...SANDBOX_WRITABLE, ...plan.mounts]) if (within(dir, mount.path) && (deepest === undefined || mount.path.length >= deepest.path.length)) deepest = mount;
  return deepest;
}

function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/**
 * Variables naming files or folders a program loads code from (the loader's
 * preloads and library path, a language's module path, startup script or
 * options, which may `--require` a file; git's helper folders). A request
 * never sets them (canonicalRun makes such a run opaque); a container policy
 * may set or pass them.
 */
const LOAD_VARIABLES = new Set(['GCONV_PATH', 'PYTHONPATH', 'PYTHONHOME', 'PYTHONSTARTUP', 'PERL5LIB', 'PERLLIB', 'PERL5OPT', 'RUBYLIB', 'RUBYOPT', 'NODE_PATH', 'NODE_OPTIONS', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'GIT_EXEC_PATH', 'GIT_TEMPLATE_DIR', 'LUA_PATH', 'LUA_CPATH', 'LUA_INIT']);

/** Of those, the ones holding a list of folders (`:`-separated; `;` for Lua's). */
const SEARCH_PATHS = new Set(['LD_LIBRARY_PATH', 'GCONV_PATH', 'PYTHONPATH', 'PYTHONHOME', 'PERL5LIB', 'PERLLIB', 'RUBYLIB', 'NODE_PATH', 'GIT_EXEC_PATH', 'GIT_TEMPLATE_DIR', 'LUA_PATH', 'LUA_CPATH']);

/**
 * Under an allowlist, refuses a run whose sandbox environment names a place
 * the sandbox can write in a variable that loads code (LD_*, LOAD_VARIABLES):
 * a library or module a command of this run, or an earlier one, put there
 * would run inside every listed program that loads it. A relative path is
 * taken as writable (the working directory may be a grant). Throws NODE_RUN_DENIED.
 */
export function refuseWritableLoadPaths(policy: LocalPolicyFile, plan: SandboxPlan): void {
  if (policy.defaults.security !== 'allowlist') return;
  for (const [variable, value] of Object.entries(plan.env)) {
    if (!variable.startsWith('LD_') && !LOAD_VARIABLES.has(variable)) continue;
    for (const word of SEARCH_PATHS.has(variable) ? value.split(/[:;]/) : value.split(/[\s:;,=]+/).filter((w) => w !== '')) {
      const path = word.startsWith('@') ? word.slice(1) : word; // a Java option file (@/path)
      // In a search path every entry is a folder, an empty one the working directory; elsewhere a word is a path when it looks like one.
      const relative = !isAbsolute(path) && (SEARCH_PATHS.has(variable) || path.startsWith('.') || path.includes('/'));
      if (relative || (isAbsolute(path) && writableBy(plan, path) !== undefined)) {
        throw new NodeError('NODE_RUN_DENIED', `the sandbox's ${variable} names ${shown(path, 200)}, which the sandbox can write: what it loads from there would run inside listed programs`);
      }
    }
  }
}
