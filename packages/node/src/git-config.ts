// The configuration an allowed git reads before it does what it was asked.
// Its global files (~/.gitconfig, $XDG_CONFIG_HOME/git/config), the
// repository it finds from its working directory (.git/config, the hooks it
// runs) and the files these include or point at can each name a command git
// runs on its own: core.fsmonitor on every status, core.hooksPath or a hook
// on a commit or checkout, core.sshCommand, core.pager, an alias with `!`, a
// filter or diff driver. Written by an earlier run in a read-write grant (a
// repository in the agent's workspace, a home that outlives the run), or by
// an earlier command of the same run in the sandbox's own /tmp, they run
// programs no allowlist named, under the name `git`.
//
// Such a run is refused, not run with git's configuration switched off:
// GIT_CONFIG_GLOBAL=/dev/null and GIT_CONFIG_NOSYSTEM=1 reach only the
// global and system files, nothing switches the repository's own config off,
// and overriding its keys one by one (`-c core.hooksPath=/dev/null`) cannot
// name every key that runs a command (any filter.<driver>.clean, any
// diff.<driver>.textconv); it would also run an argv other than the one the
// allowlist and any approval were asked about.
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { SandboxPlan } from '@corral/contain';
import { NodeError } from './errors.ts';
import type { LocalPolicyFile } from './local-policy.ts';
import { FileReads, seen } from './sandbox-path.ts';
import { shown } from './untrusted-text.ts';

/** The most bytes of a configuration file read for the files it includes or points at; a larger one is refused. */
const MAX_CONFIG_BYTES = 1 << 20;
/** How deep includes are followed (git's own limit is 10). */
const MAX_INCLUDE_DEPTH = 10;

/**
 * Under an allowlist, refuses a run with a git command (`git`, `git-*`, by
 * name or path) when a file git would read its configuration or hooks from
 * is one the sandbox could have written before git starts: in a read-write
 * grant, whatever the run; in the sandbox's own fresh folders (its /tmp, the
 * default HOME), when the run has another command than git and `cd`, which
 * may have written there first. Looked
 * at: the system file (GIT_CONFIG_SYSTEM, else /etc/gitconfig, unless
 * GIT_CONFIG_NOSYSTEM), the global ones (GIT_CONFIG_GLOBAL, else
 * $XDG_CONFIG_HOME/git/config or $HOME/.config/git/config, and
 * $HOME/.gitconfig), GIT_CONFIG; the repository git would take (GIT_DIR or
 * --git-dir, else the first `.git` or bare repository from each folder git
 * may start in, the working directory with any `-C` and any `cd` of the run
 * applied, up to /): the repository folder itself, its config,
 * config.worktree, commondir and hooks, and the common folder's; every file
 * those include, and the folders core.hooksPath and init.templateDir name;
 * and --exec-path. A `.git` that could be made where git looks before it
 * finds the real one is refused as well. Throws NODE_RUN_DENIED.
 */
export function refuseWritableGitConfig(policy: LocalPolicyFile, run: { commands: readonly (readonly string[])[] }, plan: SandboxPlan): void {
  if (policy.defaults.security !== 'allowlist') return;
  const at = run.commands.flatMap((argv, i) => (isGit(argv[0] ?? '') ? [i] : []));
  if (at.length === 0) return;
  const gits = at.map((i) => run.commands[i]!);
  const reader = new GitReads(plan, at.some((i) => mayWriteBefore(run.commands, i)));
  const env = plan.env;
  const home = nonEmpty(env.HOME);
  const starts = startFolders(run.commands, plan.cwd, home);
  for (const argv of gits) {
    const options = globalOptions(argv);
    if (options.execPath !== undefined) reader.check("the folder its helper programs are taken from (--exec-path)", options.execPath, plan.cwd);
    if (!truthy(env.GIT_CONFIG_NOSYSTEM)) reader.config('its system configuration', nonEmpty(env.GIT_CONFIG_SYSTEM) ?? '/etc/gitconfig', plan.cwd);
    const global = nonEmpty(env.GIT_CONFIG_GLOBAL);
    if (global !== undefined) {
      reader.config('its global configuration (GIT_CONFIG_GLOBAL)', global, plan.cwd);
    } else {
      const xdg = nonEmpty(env.XDG_CONFIG_HOME) ?? (home !== undefined ? join(home, '.config') : undefined);
      if (xdg !== undefined) reader.config('its global configuration', join(xdg, 'git', 'config'), plan.cwd);
      if (home !== undefined) reader.config('its global configuration', join(home, '.gitconfig'), plan.cwd);
    }
    if (nonEmpty(env.GIT_CONFIG) !== undefined) reader.config('the configuration GIT_CONFIG names', env.GIT_CONFIG!, plan.cwd);
    for (const start of starts) {
      const from = options.chdirs.reduce((dir, to) => resolve(dir, to), start);
      const gitDir = options.gitDir ?? nonEmpty(env.GIT_DIR);
      if (gitDir !== undefined) reader.repository(resolve(from, gitDir), from);
      else reader.discover(from);
    }
  }
}

/**
 * Whether a command of the run other than the one at `at` could write files
 * before it starts: any but a change of folder (a redirection of its output
 * included; git itself writes its configuration, `git config`) — not what a
 * git run hands over to (it starts once that git has read its
 * configuration), nor the git that hands over to the one at `at`.
 */
export function mayWriteBefore(commands: readonly (readonly string[])[], at: number): boolean {
  return commands.some((argv, j) => j !== at && !['cd', 'pushd', 'popd'].includes(argv[0] ?? '') && !handedBack(commands[j - 1], argv) && !(j === at - 1 && handedBack(argv, commands[at]!)));
}

/**
 * Whether `argv` is what the git run `before` hands over to, as the gateway's
 * reading of git puts it right after that run: the git-NAME for its
 * subcommand NAME (`git -C d hi x` → `d/git-hi x`), or the ssh of its ssh
 * transport (`ssh … HOST "git-upload-pack 'PATH'"`).
 */
function handedBack(before: readonly string[] | undefined, argv: readonly string[]): boolean {
  if (before === undefined || !isGit(before[0] ?? '')) return false;
  if (argv[0] === 'ssh') return /^git-(?:upload-pack|receive-pack|upload-archive) '/.test(argv.at(-1) ?? '');
  const at = globalOptions(before).subcommand;
  const name = before[at];
  if (name === undefined || !basename(argv[0] ?? '').startsWith('git-') || !(argv[0] ?? '').endsWith(`git-${name}`)) return false;
  const rest = before.slice(at + 1);
  return argv.length === rest.length + 1 && rest.every((arg, i) => arg === argv[i + 1]);
}

/** Whether `program` (an argv[0]) is git, one of its helpers (`git-upload-pack`) or scalar (which runs git on the same configuration), by name or path. */
function isGit(program: string): boolean {
  const name = basename(program);
  return name === 'git' || name.startsWith('git-') || name === 'scalar';
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/** Git's reading of a boolean variable: set and not false, no, off or 0. */
function truthy(value: string | undefined): boolean {
  return value !== undefined && value !== '' && !['false', 'no', 'off', '0'].includes(value.toLowerCase());
}

/**
 * The folders git may start in: the run's working directory, and each one a
 * `cd` or `pushd` of the run moves to (taken in order from there; to HOME
 * with no folder named). A `cd -` returns to one already counted.
 */
function startFolders(commands: readonly (readonly string[])[], cwd: string, home: string | undefined): string[] {
  const out = [cwd];
  let at = cwd;
  for (const argv of commands) {
    if (argv[0] !== 'cd' && argv[0] !== 'pushd') continue;
    const to = argv.slice(1).find((a) => !/^-[LPe@]*$/.test(a) || a === '-');
    if (to === '-') continue;
    const target = to === undefined ? home : to === '~' || to.startsWith('~/') ? (home !== undefined ? join(home, to.slice(1)) : undefined) : to;
    if (target === undefined) continue;
    at = resolve(at, target);
    out.push(at);
  }
  return [...new Set(out)];
}

/** What git's own options (those before its subcommand) say about where it reads from, and where its subcommand is. */
function globalOptions(argv: readonly string[]): { chdirs: string[]; gitDir?: string; execPath?: string; subcommand: number } {
  const chdirs: string[] = [];
  let gitDir: string | undefined;
  let execPath: string | undefined;
  let i = 1;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('-')) break; // the subcommand
    if (arg === '-C') chdirs.push(argv[++i] ?? '');
    else if (arg === '--git-dir') gitDir = argv[++i];
    else if (arg.startsWith('--git-dir=')) gitDir = arg.slice('--git-dir='.length);
    else if (arg.startsWith('--exec-path=')) execPath = arg.slice('--exec-path='.length);
    else if (arg === '-c' || arg === '--work-tree' || arg === '--namespace' || arg === '--config-env' || arg === '--list-cmds') i++;
  }
  return { chdirs: chdirs.filter((d) => d !== ''), ...(gitDir !== undefined && gitDir !== '' ? { gitDir } : {}), ...(execPath !== undefined && execPath !== '' ? { execPath } : {}), subcommand: i };
}

/** The checks of one run: what git reads, each path judged once. */
class GitReads extends FileReads {
  /** Refuses when `path` (taken from `base` when relative) is one the sandbox could have written before git reads it. */
  check(what: string, path: string, base: string): void {
    const absolute = resolve(base, path);
    const who = this.writer(absolute);
    if (who !== undefined) {
      throw new NodeError('NODE_RUN_DENIED', `git reads ${what} at ${shown(absolute, 200)}, which ${who}: a command named there (core.fsmonitor, a hook, core.hooksPath, an alias with !, a filter) would run unlisted. Keep it where the sandbox cannot write (a read-only grant), or leave git off the allowlist for this sandbox`);
    }
  }

  /** A configuration file: refused when writable, else read for the files it includes and the folders it points at. */
  config(what: string, path: string, base: string, depth = 0): void {
    const file = resolve(base, path);
    this.check(what, file, base);
    if (this.read.has(file) || depth > MAX_INCLUDE_DEPTH) return;
    this.read.add(file);
    let text: string;
    try {
      const stat = statSync(file);
      if (!stat.isFile() || !seen(this.plan, file)) return;
      if (stat.size > MAX_CONFIG_BYTES) throw new NodeError('NODE_RUN_DENIED', `git reads ${what} at ${shown(file, 200)}, which is larger than ${MAX_CONFIG_BYTES} bytes: what it includes cannot be told`);
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if (error instanceof NodeError) throw error;
      return; // not there, or not readable: git reads nothing from it either
    }
    const home = nonEmpty(this.plan.env.HOME);
    for (const { key, value } of pathSettings(text)) {
      const expanded = value.startsWith('~/') ? (home !== undefined ? join(home, value.slice(2)) : undefined) : value;
      if (expanded === undefined) continue;
      if (key === 'path') this.config(`a file ${shown(file, 200)} includes`, expanded, dirname(file), depth + 1);
      else this.check(`the ${key} ${shown(file, 200)} sets`, expanded, base);
    }
  }

  /** The repository at `gitDir` (worktree `base`): the folder itself, its config, hooks and common folder. */
  repository(gitDir: string, base: string): void {
    this.check('its repository', gitDir, base);
    for (const name of ['config', 'config.worktree', 'commondir', 'hooks']) this.check(`its repository's ${name}`, join(gitDir, name), base);
    this.config("its repository's configuration", join(gitDir, 'config'), base);
    this.config("its repository's configuration", join(gitDir, 'config.worktree'), base);
    const common = readSmall(join(gitDir, 'commondir')).trim();
    if (common === '') return;
    const commonDir = resolve(gitDir, common);
    this.check("its repository's common folder", commonDir, base);
    this.check("its repository's hooks", join(commonDir, 'hooks'), base);
    this.config("its repository's configuration", join(commonDir, 'config'), base);
  }

  /** Git's search for a repository from `start` up to /: a `.git` folder or file, or a bare repository. */
  discover(start: string): void {
    for (let dir = start; ; dir = dirname(dir)) {
      const dotGit = join(dir, '.git');
      // One the sandbox could make or replace here is found before any further up.
      this.check('the repository it looks for', dotGit, dir);
      if (seen(this.plan, dotGit)) {
        const stat = statSync(dotGit, { throwIfNoEntry: false });
        if (stat?.isDirectory()) return this.repository(dotGit, dir);
        if (stat?.isFile()) {
          const target = /^gitdir: (.+)$/m.exec(readSmall(dotGit))?.[1]?.trim();
          if (target !== undefined) return this.repository(resolve(dir, target), dir);
        }
      }
      if (seen(this.plan, dir) && bare(dir)) return this.repository(dir, dir);
      if (dirname(dir) === dir) return;
    }
  }
}

/** A regular file of at most 4 KiB (a `.git` or `commondir` file holds one line), else '': never a FIFO waited on. */
function readSmall(path: string): string {
  try {
    const stat = statSync(path);
    return stat.isFile() && stat.size <= 4096 ? readFileSync(path, 'utf8') : '';
  } catch {
    return '';
  }
}

/** Whether `dir` looks like a bare repository to git: a HEAD file, objects and refs folders. */
function bare(dir: string): boolean {
  return statSync(join(dir, 'HEAD'), { throwIfNoEntry: false })?.isFile() === true && statSync(join(dir, 'objects'), { throwIfNoEntry: false })?.isDirectory() === true && statSync(join(dir, 'refs'), { throwIfNoEntry: false })?.isDirectory() === true;
}

/**
 * The settings of a git configuration text that name a file or folder git
 * reads or runs from: include.path and includeIf.*.path (`path`),
 * core.hooksPath, init.templateDir, and core.fsmonitor when it is a path.
 * Read leniently (a section header, `key = value`, quotes and trailing
 * comments); anything else is left to git.
 */
function pathSettings(text: string): { key: string; value: string }[] {
  const out: { key: string; value: string }[] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    const header = /^\[\s*([A-Za-z0-9.-]+)(?:\s+"(?:[^"\\]|\\.)*")?\s*\]\s*(.*)$/.exec(line);
    if (header) {
      section = header[1]!.toLowerCase();
      line = header[2]!.trim(); // `[core] hooksPath = x` on one line
      if (line === '') continue;
    }
    const setting = /^([A-Za-z][A-Za-z0-9-]*)\s*=\s*(.*)$/.exec(line);
    if (!setting) continue;
    const key = setting[1]!.toLowerCase();
    const value = unquote(setting[2]!);
    if (value === '') continue;
    const subsection = section.split('.')[0];
    if ((subsection === 'include' || subsection === 'includeif') && key === 'path') out.push({ key: 'path', value });
    else if (section === 'core' && key === 'hookspath') out.push({ key: 'core.hooksPath', value });
    else if (section === 'init' && key === 'templatedir') out.push({ key: 'init.templateDir', value });
    else if (section === 'core' && key === 'fsmonitor' && value.includes('/')) out.push({ key: 'core.fsmonitor', value });
  }
  return out;
}

/** A configuration value with its quotes and a trailing `#` or `;` comment taken away. */
function unquote(value: string): string {
  let out = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) out += value[++i];
    else if (c === '"') quoted = !quoted;
    else if (!quoted && (c === '#' || c === ';')) break;
    else out += c;
  }
  return out.trim();
}
