// The configuration an allowed ssh reads before it connects. Its files
// (`-F FILE`, else ~/.ssh/config and /etc/ssh/ssh_config, and every file they
// `Include`) can each name a program ssh runs on its own: ProxyCommand,
// LocalCommand (with PermitLocalCommand), KnownHostsCommand, `Match exec`, a
// PKCS#11 or security-key library it loads, XAuthLocation. Written by an
// earlier run in a read-write grant, or by an earlier command of the same run
// in the sandbox's own /tmp (the home of every user in the sandbox's passwd,
// and the default HOME), they run programs no allowlist named, under the name
// `ssh`; so does a `-o` option of the command line that names such a program.
import { globSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SANDBOX_PASSWD_HOME, type SandboxPlan } from '@corral/contain';
import { NodeError } from './errors.ts';
import type { LocalPolicyFile } from './local-policy.ts';
import { mayWriteBefore } from './git-config.ts';
import { FileReads, lookUp, seen, writableBy } from './sandbox-path.ts';
import { shown } from './untrusted-text.ts';

/** The most bytes of a configuration file read for the files it includes; a larger one is refused. */
const MAX_CONFIG_BYTES = 1 << 20;
/** How deep Includes are followed (OpenSSH's own limit is 16). */
const MAX_INCLUDE_DEPTH = 16;
/** The most configuration files read for one run; a run whose ssh would read more is refused. */
const MAX_CONFIG_FILES = 256;

/**
 * The home OpenSSH takes `~/.ssh/config` and `~` from: its user's passwd entry
 * (getpwuid(getuid())), not $HOME. The /etc/passwd Corral writes into every
 * sandbox gives each user it names (root, and the caller's uid as `corral`)
 * SANDBOX_PASSWD_HOME, whatever the policy sets HOME to; ssh-config.test.ts
 * runs a sandbox to keep this true.
 */
const PASSWD_HOME = SANDBOX_PASSWD_HOME;

/** ssh's options that take an argument (OpenSSH's getopt string). */
const WITH_ARGUMENT = new Set('bceilmopBDEFIJLOPQRSwW'.split(''));

/**
 * Keywords (lower case) whose value is a program ssh runs or a library it
 * loads; `none` (or, for PermitLocalCommand, anything but yes/true) runs nothing.
 */
const RUNS = new Set(['proxycommand', 'localcommand', 'knownhostscommand', 'permitlocalcommand', 'pkcs11provider', 'securitykeyprovider', 'xauthlocation', 'match']);

/**
 * Under an allowlist, refuses a run with an ssh command (`ssh` by name or
 * path, git's ssh transport included) when ssh would read a configuration
 * file the sandbox could have written before ssh starts (in a read-write
 * grant, whatever the run; in the sandbox's own folders, when the run has
 * another command than this ssh, `cd` and the git handing over to it), or
 * when its command line names a program to run or library to load: a `-o`
 * ProxyCommand, LocalCommand, KnownHostsCommand, PKCS11Provider,
 * SecurityKeyProvider or XAuthLocation other than `none`, PermitLocalCommand
 * yes, `-I`; and ProxyJump or `-J`, which run `ssh` again from PATH, when
 * that lookup passes a folder the sandbox can write. Read: `-F FILE` (none
 * for `-F none`), else ~/.ssh/config and /etc/ssh/ssh_config, and every
 * file these include (a `-o Include`, which ssh does not take, is refused;
 * glob patterns, read as glob(3) reads them: their folder must be one the
 * sandbox cannot write); `~` is both the passwd home ssh takes it from (/tmp)
 * and the sandbox's HOME when that differs, each file checked,
 * bounded in depth and count; an include that cannot be read or followed is
 * refused. Throws NODE_RUN_DENIED.
 */
export function refuseWritableSshConfig(policy: LocalPolicyFile, run: { commands: readonly (readonly string[])[] }, plan: SandboxPlan): void {
  if (policy.defaults.security !== 'allowlist') return;
  for (let i = 0; i < run.commands.length; i++) {
    const argv = run.commands[i]!;
    if (basename(argv[0] ?? '') !== 'ssh') continue;
    const options = sshOptions(argv);
    const reads = new SshReads(plan, mayWriteBefore(run.commands, i));
    for (const option of options.settings) reads.setting(option, 'its command line (-o)');
    if (options.pkcs11 !== undefined) refuse(`ssh would load the PKCS#11 library ${shown(options.pkcs11, 200)} its command line names (-I)`, 'Leave -I off, or leave ssh off the allowlist for this sandbox');
    if (options.jump) reads.jump('its command line (-J)');
    if (options.file !== undefined) {
      if (options.file !== 'none') for (const home of homes(plan)) reads.config('the configuration -F names', resolve(plan.cwd, tilde(options.file, home)), 'user', 0);
    } else {
      for (const home of homes(plan)) reads.config('its user configuration', join(home, '.ssh', 'config'), 'user', 0);
      reads.config('its system configuration', '/etc/ssh/ssh_config', 'system', 0);
    }
    // OpenSSH refuses Include on its command line; nothing the caller writes there is globbed here either.
    if (options.includes.length > 0) refuse('ssh was given Include on its command line (-o Include), which it does not take', 'Leave -o Include off');
  }
}

function refuse(why: string, remedy: string): never {
  throw new NodeError('NODE_RUN_DENIED', `${why}: a program named there (ProxyCommand, LocalCommand, KnownHostsCommand, Match exec) would run unlisted. ${remedy}`);
}

/**
 * ssh's command line as OpenSSH's getopt reads it: options (clustered, with
 * their argument joined or next) before the host, and again after it up to
 * the first other word (the remote command) or `--`.
 */
function sshOptions(argv: readonly string[]): { settings: string[]; includes: string[]; file?: string; pkcs11?: string; jump: boolean } {
  const settings: string[] = [];
  let file: string | undefined;
  let pkcs11: string | undefined;
  let jump = false;
  let host = false;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') break;
    if (!arg.startsWith('-') || arg === '-') {
      if (host) break; // the remote command
      host = true;
      continue;
    }
    for (let k = 1; k < arg.length; k++) {
      const flag = arg[k]!;
      if (!WITH_ARGUMENT.has(flag)) continue;
      const value = k + 1 < arg.length ? arg.slice(k + 1) : (argv[++i] ?? '');
      if (flag === 'o') settings.push(value);
      else if (flag === 'F') file = value;
      else if (flag === 'I') pkcs11 = value;
      else if (flag === 'J') jump = true;
      break;
    }
  }
  const includes = settings.flatMap((s) => {
    const { keyword, value } = splitSetting(s);
    return keyword === 'include' ? words(value) : [];
  });
  return { settings, includes, ...(file !== undefined ? { file } : {}), ...(pkcs11 !== undefined ? { pkcs11 } : {}), jump };
}

/** A configuration line's keyword (lower case) and the rest: `Keyword value`, `Keyword=value`, `Keyword = value`. */
function splitSetting(line: string): { keyword: string; value: string } {
  const match = /^\s*([A-Za-z0-9]+)\s*(?:=\s*|\s+|$)(.*)$/.exec(line);
  if (!match) return { keyword: '', value: line.trim() };
  return { keyword: match[1]!.toLowerCase(), value: match[2]!.trim() };
}

/** A value's whitespace-separated words, double quotes taken away. */
function words(value: string): string[] {
  return [...value.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]!);
}

/**
 * The folders `~` may be to the sandbox's ssh: the passwd home it reads, and
 * HOME too when the sandbox sets another (failing closed: each is checked).
 */
function homes(plan: SandboxPlan): string[] {
  const home = plan.env.HOME;
  return home === undefined || home === '' || resolve('/', home) === PASSWD_HOME ? [PASSWD_HOME] : [PASSWD_HOME, home];
}

/** `~` or `~/…` made absolute from `home`; the path itself otherwise. */
function tilde(path: string, home: string): string {
  return path !== '~' && !path.startsWith('~/') ? path : join(home, path.slice(1));
}

/** The checks of one ssh command: what it reads, each file once. */
class SshReads extends FileReads {
  /** Refuses when `path` is one the sandbox could have written before ssh reads it. */
  check(what: string, path: string): void {
    const who = this.writer(path);
    if (who !== undefined) {
      refuse(`ssh reads ${what} at ${shown(path, 200)}, which ${who}`, 'Keep it where the sandbox cannot write (a read-only grant), give ssh `-F none` or a read-only `-F` file, or leave ssh off the allowlist for this sandbox');
    }
  }

  /** A `-o` option or a line of a file: refused when it names a program on the command line; ProxyJump checks the ssh it runs. */
  setting(line: string, where: string): void {
    const { keyword, value } = splitSetting(line);
    if (keyword === 'proxyjump' && value.toLowerCase() !== 'none') this.jump(where);
    if (!RUNS.has(keyword)) return;
    const lower = value.toLowerCase();
    const harmless = keyword === 'permitlocalcommand' ? lower !== 'yes' && lower !== 'true' : lower === 'none';
    if (!harmless) refuse(`ssh would run or load what ${where} names in ${shown(line, 200)}`, 'Give it as `none` or leave it off, or leave ssh off the allowlist for this sandbox');
  }

  /** ProxyJump runs `ssh` again through the shell, found on the sandbox's PATH: refused when that lookup passes a folder the sandbox can write. */
  jump(where: string): void {
    const { found, writable } = lookUp(this.plan, 'ssh');
    if (writable !== undefined || (found !== undefined && writableBy(this.plan, found) !== undefined)) {
      refuse(`ssh would run a jump host (ProxyJump, from ${where}) with the \`ssh\` the sandbox's PATH finds, which passes ${shown(writable ?? found ?? '', 200)}, a folder the sandbox can write`, "Keep PATH's folders up to ssh to ones the sandbox cannot write, or leave ssh off the allowlist for this sandbox");
    }
  }

  /** A configuration file: refused when writable, else read for the files it includes. A missing one is read as empty, as ssh does. */
  config(what: string, file: string, kind: 'user' | 'system', depth: number): void {
    this.check(what, file);
    if (this.read.has(file)) return;
    if (this.read.size >= MAX_CONFIG_FILES) refuse(`ssh would read more than ${MAX_CONFIG_FILES} configuration files, the last at ${shown(file, 200)}`, 'Include fewer files');
    this.read.add(file);
    let text: string;
    try {
      const stat = statSync(file, { throwIfNoEntry: false });
      if (stat === undefined || !seen(this.plan, file)) return;
      if (!stat.isFile()) refuse(`ssh reads ${what} at ${shown(file, 200)}, which is not a regular file`, 'Name a regular file');
      if (stat.size > MAX_CONFIG_BYTES) refuse(`ssh reads ${what} at ${shown(file, 200)}, which is larger than ${MAX_CONFIG_BYTES} bytes: what it includes cannot be told`, 'Keep it smaller');
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if (error instanceof NodeError) throw error;
      refuse(`ssh reads ${what} at ${shown(file, 200)}, which cannot be read here: what it includes cannot be told`, 'Make it readable to the node, or leave ssh off the allowlist for this sandbox');
    }
    for (const line of text.split('\n')) {
      const { keyword, value } = splitSetting(line);
      if (keyword !== 'include') continue;
      for (const pattern of words(value)) this.include(pattern, kind, kind === 'user' ? undefined : '/etc/ssh', depth + 1, file);
    }
  }

  /**
   * One `Include` pattern: relative ones from ~/.ssh (a user file) or
   * /etc/ssh (the system file), `~` from each home ssh may take (see homes);
   * a glob's folder must be one the sandbox cannot write (a file it made
   * there would match), and each file it matches now is read.
   */
  include(pattern: string, kind: 'user' | 'system', base: string | undefined, depth: number, from?: string): void {
    const where = from === undefined ? 'its command line (-o Include)' : shown(from, 200);
    if (depth > MAX_INCLUDE_DEPTH) refuse(`ssh would follow Includes deeper than ${MAX_INCLUDE_DEPTH} from ${where}`, 'Include less deeply');
    const paths = new Set(homes(this.plan).map((home) => resolve(base ?? join(home, '.ssh'), tilde(pattern, home))));
    for (const absolute of paths) {
      if (!/[*?[]/.test(absolute)) {
        this.config(`a file ${where} includes`, absolute, kind, depth);
        continue;
      }
      const fixed = absolute.slice(0, absolute.search(/[*?[]/));
      this.check(`the folder of files ${where} includes`, fixed.endsWith('/') ? fixed.slice(0, -1) || '/' : dirname(fixed));
      // ssh globs as glob(3) does, where `**` is `*` within one folder; Node's `**` would walk every folder below.
      for (const match of globSync(absolute.replace(/\*{2,}/g, '*')).sort()) this.config(`a file ${where} includes`, match, kind, depth);
    }
  }
}
