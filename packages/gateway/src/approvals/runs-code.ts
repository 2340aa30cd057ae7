// Commands whose argv does not show what they will do: a program that runs
// code given on its command line (`python3 -c …`, `node -e …`, an awk
// program) or read from stdin (`python3 -`, `xargs`), or that runs it where
// Corral does not look (`ssh host CMD`, `docker run`, `kubectl exec`), or
// that runs the code in a file that may change between one run and the next:
// a script (`python3 build.py`, `sh x.sh`, `awk -f prog.awk`), a program at
// a path outside the system's program folders (`./deploy.sh`, `../tools/x`,
// `/opt/app/bin/x`), or a build tool's recipes in its working directory
// (`make`, `npm test`, `cargo build`). When policy asks a human about such a
// command, the approver reads its argv; this tells them that the argv is not
// the whole story, so a long one-liner is not approved for what it seems to
// be, and no standing grant is made for it (store.ts refuses allow-always): a
// grant for `python3 build.py` would cover whatever build.py holds at each
// later run, which the agent may have rewritten.
//
// A program named bare (found on the node's PATH) or by a path in a system
// directory (/bin, /usr/bin, /usr/local/bin and their sbin: canonical.ts's
// SYSTEM_DIRS, which only root can write; /usr/local/bin is an
// administrator's install, not the agent's) is the system's own, and is not
// flagged for where it lives. A verdict of a script or path names the argv
// word that is the file (`operand`), which Corral's node binds to a prepared
// plan by its sha256 (upstream's systemRunPlan.mutableFileOperand), and the
// gateway binds its own approval of the run to it (invoke.ts
// #boundToScript). Allow-always, a grant bound to that sha256, could follow;
// until then, approve it once or permit it in policy.
//
// Pure and total: any value in, a verdict or null out, never a throw; linear
// in the size of the argv. Programs are matched by file name (`python3` for
// `/usr/bin/python3.12`), so a renamed interpreter is not recognised: this is
// a warning to a person, not a containment boundary.
import { isSystemProgram, programName } from '../exec/canonical.ts';

/** Why an approver cannot judge a command from its argv. */
export interface RunsCode {
  /** The program's file name as given (`python3.12`, `deploy.sh`): plain ASCII, at most 64 characters (`program` for a name that is not). */
  program: string;
  /** How it gets the code: the option (`-c`, `--eval`, `-exec`), `stdin`, `program text` (awk's first operand), `remote host` (ssh), the subcommand (`run`), `script` (a file operand), `path` (the program itself, outside the system's folders), or `recipes` (a build tool's files). */
  via: string;
  /** One sentence for the approver: "python3 runs the code given with -c; Corral cannot see what it does". */
  reason: string;
  /**
   * For `via` `script` or `path`, the file it runs: the index in the argv of
   * the one word that names it (1 for `python3 build.py`, 0 for
   * `./deploy.sh`), or null when a word names it with more besides
   * (`awk -fprog.awk`, `--file=prog.awk`). Absent for every other verdict,
   * and for a script that is no file (`yarn build`, a script of package.json).
   */
  operand?: number | null;
}

/**
 * How a program's options read, for the option walk. Letters are short
 * options (clusters such as `-lne` read letter by letter); long options are
 * matched as `--name` or `--name=value`.
 */
interface Options {
  /** Options whose value is code to run: the rest of the word, else the next word (`-c CODE`, `-cCODE`, `--eval=CODE`). */
  code?: { short?: string; long?: readonly string[] };
  /** Options that take a value that is not code: the rest of the word, else the next word (`-W ignore`), so it is not read as the script. */
  value?: { short?: string; long?: readonly string[] };
  /** Options that take the rest of their word only, maybe empty (perl's `-i.bak`, `-MFoo`). */
  attached?: string;
  /** Options followed by optional digits in the same word (perl's `-0777`, `-l`). */
  digits?: string;
  /** Options that tell it to read its program from stdin (`sh -s`). */
  stdin?: string;
  /** Options naming a file or module to run, or that run files from disk, after which the rest is theirs (`python3 -m http.server`, `php -f x.php`, `node --test`). */
  runs?: { short?: string; long?: readonly string[] };
  /** Options naming a program file, after which operands are data (`awk -f prog.awk`). */
  file?: { short?: string; long?: readonly string[] };
  /** Words with which it only prints something and exits (`--version`). */
  exits?: readonly string[];
}

type Family =
  /**
   * An interpreter: code by option, else a script operand, else (with
   * `stdin`) its program from stdin. With `commands`, an operand may instead
   * be one of its own commands: `recipes` run the project's files (bun's
   * `run`, `test`), `builtins` run none of them (bun's `install`).
   */
  | { kind: 'interpreter'; options: Options; stdin: boolean; commands?: { recipes: ReadonlySet<string>; builtins: ReadonlySet<string> } }
  /** awk: its first operand is the program unless a program file is named. */
  | { kind: 'awk'; options: Options }
  /** A program that runs code whenever one of these words is among its arguments (find's `-exec`, rsync's `-e`). */
  | {
    kind: 'option-anywhere';
    options: Options;
    reason: (program: string, via: string) => string;
    /** getopt_long's: a long option may be given by any prefix of it (`--to-com=CMD`), and the first word may be a cluster with no dash (tar's `xIf`). */
    gnu?: boolean;
  }
  /**
   * A program that runs code with one of these subcommands, wherever it
   * stands among the operands before `--` (docker's `run`); with `stdin`, one
   * that reads its code from stdin given `-` there (`deno run -`); with
   * `builtins`, one whose first operand, unless one of these, names a script
   * of its project to run (`yarn build`), `via` then `script`.
   */
  | { kind: 'subcommand'; subcommands: ReadonlySet<string>; reason: (program: string, via: string) => string; stdin?: boolean; builtins?: ReadonlySet<string> }
  /** A program that always runs code Corral cannot see (xargs, ssh), unless it only prints and exits. */
  | { kind: 'always'; via: string; reason: (program: string) => string; exits?: readonly string[] }
  /** env: `-S` splits a string into a command; otherwise the command after its options and assignments is read in turn. */
  | { kind: 'env'; options: Options }
  /** PowerShell: `-Command`/`-EncodedCommand` in any case and any unambiguous prefix. */
  | { kind: 'pwsh' }
  /** sed: its script (`-e`, `--expression`, else its first operand) runs a shell command with GNU sed's `e` command or the `e` flag of `s`. */
  | { kind: 'sed' }
  /** vim and its kin: Ex commands by `-c`, `--cmd`, `+CMD`, a script of commands or keystrokes (`-S`, `-s`), or from stdin (`-es`). */
  | { kind: 'vim' }
  /** socat: an address that runs a program (`EXEC:`, `SYSTEM:`), anywhere among its arguments. */
  | { kind: 'socat' }
  /** scp and sftp, whose options that take a value are `values`: see sshCopy. */
  | { kind: 'ssh-copy'; values: string }
  /**
   * A database client whose query text can run a shell command (`escape`,
   * read loosely in every argument, so that it warns rather than misses), and
   * that reads its queries from stdin unless `given` finds them in its argv.
   */
  | { kind: 'client'; escape: (word: string) => boolean; via: string; given: (args: readonly string[]) => boolean };

const SEE_NOT = 'Corral cannot see what it does';
/** What an approver of a run of a file that may change can do instead of a standing grant. */
const ONCE = 'approve it once, or permit it in policy';
const EXITS = ['--version', '--help', '-h', '-V', '-v'];

/** npm's commands that run a script of package.json (and its aliases); pnpm and yarn share them. */
const NPM_SCRIPTS = ['run', 'run-script', 'rum', 'urn', 'rr', 'test', 't', 'tst', 'start', 'stop', 'restart', 'install-test', 'it', 'install-ci-test', 'cit'];
/** pnpm's and yarn's commands that run none of the project's scripts: any other first operand is a script's name (`yarn build`). */
const PACKAGE_BUILTINS = new Set(['install', 'i', 'add', 'remove', 'rm', 'up', 'upgrade', 'update', 'why', 'info', 'list', 'ls', 'outdated', 'config', 'cache', 'init', 'login', 'logout', 'publish', 'pack', 'audit', 'link', 'unlink', 'import', 'store', 'licenses', 'version', 'versions', 'help', 'bin', 'root', 'prune', 'dedupe', 'fetch', 'setup', 'env', 'dlx', 'create']);

const SHELL: Family = { kind: 'interpreter', stdin: true, options: { code: { short: 'c' }, value: { short: 'oO', long: ['--rcfile', '--init-file'] }, stdin: 's', exits: ['--version', '--help'] } };

/**
 * The table: programs (by file name, without a version suffix: `python` for
 * `python3.12`) and what makes each run code its argv does not show.
 */
const TABLE: ReadonlyMap<string, Family> = new Map<string, Family>([
  ...names(['python', 'pypy'], { kind: 'interpreter', stdin: true, options: { code: { short: 'c' }, value: { short: 'WXQ', long: ['--check-hash-based-pycs'] }, runs: { short: 'm' }, exits: ['--version', '--help', '-h', '-V', '-VV', '-?', '--help-all', '--help-env', '--help-xoptions'] } }),
  ...names(['node', 'nodejs'], { kind: 'interpreter', stdin: true, options: { code: { short: 'ep', long: ['--eval', '--print'] }, value: { short: 'rC', long: ['--require', '--import', '--loader', '--experimental-loader', '--conditions', '--input-type', '--env-file', '--title', '--disable-warning'] }, runs: { long: ['--test', '--run'] }, exits: ['--version', '--help', '-v', '-h', '--v8-options'] } }),
  ...names(['perl'], { kind: 'interpreter', stdin: true, options: { code: { short: 'eE' }, value: { short: 'I' }, attached: 'MmiFdDxVC', digits: '0l', exits: EXITS } }),
  ...names(['ruby', 'jruby'], { kind: 'interpreter', stdin: true, options: { code: { short: 'e' }, value: { short: 'IrCE' }, attached: 'FxKWi', digits: '0T', exits: ['--version', '--help', '-h', '-v'] } }),
  ...names(['php'], { kind: 'interpreter', stdin: true, options: { code: { short: 'rRBE' }, value: { short: 'cdzt' }, runs: { short: 'fFS' }, exits: ['--version', '--help', '-v', '-h', '-i', '-m'] } }),
  ...names(['lua', 'luajit'], { kind: 'interpreter', stdin: true, options: { code: { short: 'e' }, value: { short: 'l' }, exits: ['-v'] } }),
  // JavaScript runtimes beside node: bun takes code as node does; deno by its eval subcommand, its repl (`--eval`, else stdin) and `run -`.
  ['bun', { kind: 'interpreter', stdin: false, commands: { recipes: new Set(['run', 'test']), builtins: new Set(['install', 'i', 'add', 'a', 'remove', 'rm', 'update', 'outdated', 'link', 'unlink', 'pm', 'build', 'init', 'create', 'c', 'upgrade', 'publish', 'patch', 'audit', 'info', 'completions']) }, options: { code: { short: 'ep', long: ['--eval', '--print'] }, value: { short: 'cr', long: ['--cwd', '--config', '--preload', '--require', '--import', '--env-file', '--define', '--loader', '--conditions', '--tsconfig-override'] }, exits: ['--version', '--help', '-v', '-h', '--revision'] } }],
  ['deno', { kind: 'subcommand', subcommands: new Set(['eval', 'repl', 'run', 'test', 'task', 'bench', 'serve']), stdin: true, reason: (p, via) => (via === 'eval' || via === 'repl' ? `${p} ${via} runs the code given on its command line or stdin; ${SEE_NOT}` : filesReason(p, via).reason) }],
  ['julia', { kind: 'interpreter', stdin: true, options: { code: { short: 'eE', long: ['--eval', '--print'] }, value: { short: 'JptLC', long: ['--sysimage', '--procs', '--threads', '--load', '--cpu-target', '--machine-file'] }, exits: ['--version', '--help', '-v', '-h', '--help-hidden'] } }],
  ...names(['Rscript'], { kind: 'interpreter', stdin: false, options: { code: { short: 'e' }, exits: ['--version', '--help'] } }),
  ...names(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'yash', 'posh', 'csh', 'tcsh'], SHELL),
  ...names(['fish'], { kind: 'interpreter', stdin: true, options: { code: { short: 'cC', long: ['--command', '--init-command'] }, exits: ['--version', '--help', '-v', '-h'] } }),
  ...names(['pwsh', 'powershell'], { kind: 'pwsh' }),
  ...names(['awk', 'gawk', 'mawk', 'nawk'], { kind: 'awk', options: { code: { short: 'e', long: ['--source'] }, file: { short: 'fE', long: ['--file', '--exec'] }, value: { short: 'vFiWl', long: ['--assign', '--field-separator', '--include', '--load'] }, exits: ['--version', '--help', '-V'] } }),
  ['find', { kind: 'option-anywhere', options: { code: { long: ['-exec', '-execdir', '-ok', '-okdir'] } }, reason: (p, via) => `${p} runs the command given with ${via} on every file it finds; Corral cannot see which files` }],
  ['rsync', { kind: 'option-anywhere', options: { code: { short: 'e', long: ['--rsh', '--rsync-path'] } }, reason: (p, via) => `${p} runs the command given with ${via}; ${SEE_NOT}` }],
  ['xargs', { kind: 'always', via: 'stdin', reason: (p) => `${p} runs a command with arguments it reads from stdin; Corral cannot see them`, exits: ['--version', '--help'] }],
  ['ssh', { kind: 'always', via: 'remote host', reason: (p) => `${p} runs commands on another host; Corral cannot see what runs there`, exits: ['-V'] }],
  ['env', { kind: 'env', options: { code: { short: 'S', long: ['--split-string'] }, value: { short: 'uC', long: ['--unset', '--chdir'] } } }],
  ...names(['docker', 'podman', 'nerdctl', 'docker-compose', 'podman-compose'], { kind: 'subcommand', subcommands: new Set(['run', 'exec', 'create', 'start', 'restart', 'build', 'up']), reason: (p, via) => `${p} ${via} runs code inside a container; ${SEE_NOT}` }),
  // Package runners: they run a package they may fetch, which the argv only names and whose code can change between runs.
  ...names(['npx', 'pnpx', 'bunx', 'uvx'], { kind: 'always', via: 'package', reason: (p) => `${p} runs a package it may fetch, whose code can change between runs; ${SEE_NOT}`, exits: ['--version', '--help', '-v', '-h'] }),
  // Their scripts are package.json's, in the working directory: `npm test`, `npm run build`, `yarn build`.
  ['npm', { kind: 'subcommand', subcommands: new Set(['exec', 'x', ...NPM_SCRIPTS]), reason: packageScripts }],
  ...names(['pnpm', 'yarn'], { kind: 'subcommand', subcommands: new Set(['dlx', 'exec', ...NPM_SCRIPTS]), builtins: PACKAGE_BUILTINS, reason: packageScripts }),
  ['pipx', { kind: 'subcommand', subcommands: new Set(['run']), reason: packageRunner }],
  // Build tools: they run recipes from files in their working directory (a Makefile, build.gradle, Cargo.toml's build.rs, conftest.py), whatever their arguments, unless they only print and exit.
  ...names(['make', 'gmake', 'bmake'], recipes('Makefile', ['--version', '-v', '--help', '-h'])),
  ['just', recipes('justfile', ['--version', '-V', '--help', '-h'])],
  ['rake', recipes('Rakefile', ['--version', '-V', '--help', '-h'])],
  ['ninja', recipes('build.ninja', ['--version', '--help', '-h'])],
  ...names(['gradle', 'gradlew'], recipes('build.gradle', ['--version', '-v', '--help', '-h', '-?'])),
  ...names(['mvn', 'mvnw'], recipes('pom.xml', ['--version', '-v', '--help', '-h'])),
  ['ant', recipes('build.xml', ['-version', '-help', '-h'])],
  ['scons', recipes('SConstruct', ['--version'])],
  ['sbt', recipes('build.sbt', ['--version', '--help', '-h'])],
  ...names(['bazel', 'bazelisk'], recipes('its BUILD files', ['--version', 'version', 'help'])),
  ['cargo', recipes('its package (build.rs, its tests)', ['--version', '-V', '--help', '-h', 'version', 'help'])],
  ['pytest', recipes('its test files (conftest.py)', ['--version', '-V', '--help', '-h'])],
  ['tox', recipes('tox.ini', ['--version', '--help', '-h'])],
  ['nox', recipes('noxfile.py', ['--version', '--help', '-h'])],
  ['go', { kind: 'subcommand', subcommands: new Set(['run', 'test', 'generate']), reason: (p, via) => filesReason(p, via).reason }],
  ...names(['kubectl', 'oc'], { kind: 'subcommand', subcommands: new Set(['exec', 'run', 'debug', 'attach']), reason: (p, via) => `${p} ${via} runs code on a cluster; ${SEE_NOT}` }),
  // Programs better known for something else that run a command their options name.
  ['tar', { kind: 'option-anywhere', gnu: true, options: { code: { short: 'IF', long: ['--to-command', '--use-compress-program', '--checkpoint-action', '--info-script', '--new-volume-script', '--rsh-command'] } }, reason: (p, via) => `${p} runs the command given with ${via}; ${SEE_NOT}` }],
  ['zip', { kind: 'option-anywhere', options: { code: { long: ['-TT', '--unzip-command'] } }, reason: (p, via) => `${p} runs the command given with ${via} to test the archive; ${SEE_NOT}` }],
  ['man', { kind: 'option-anywhere', options: { code: { short: 'PH', long: ['--pager', '--html'] } }, reason: (p, via) => `${p} runs the pager or browser given with ${via}; ${SEE_NOT}` }],
  ...names(['nc', 'ncat', 'netcat'], { kind: 'option-anywhere', options: { code: { short: 'ec', long: ['--exec', '--sh-exec', '--lua-exec'] } }, reason: (p, via) => `${p} runs the command given with ${via} for each connection; ${SEE_NOT}` }),
  ...names(['emacs'], { kind: 'option-anywhere', options: { code: { short: 'lf', long: ['--eval', '-eval', '--load', '-load', '--funcall', '-funcall', '--execute', '-execute', '--script', '-script'] } }, reason: (p, via) => `${p} runs the Lisp given with ${via}; ${SEE_NOT}` }),
  ['dc', { kind: 'interpreter', stdin: true, options: { code: { short: 'e', long: ['--expression'] }, runs: { short: 'f', long: ['--file'] }, exits: ['--version', '--help', '-V', '-h'] } }],
  ['sed', { kind: 'sed' }],
  ...names(['vim', 'vi', 'nvim', 'ex', 'view', 'vimdiff', 'rvim', 'gvim', 'evim'], { kind: 'vim' }),
  ['socat', { kind: 'socat' }],
  ['scp', { kind: 'ssh-copy', values: 'cDFiJlPoSX' }],
  ['sftp', { kind: 'ssh-copy', values: 'BbcDFiJlPoRSs' }],
  // Database clients: psql's `\!`, `\o |CMD` (and \g, \w), `\copy … program`; mysql's `system`, `pager`, `\!`; sqlite3's `.shell`, `.system` (any abbreviation) and `.output |CMD` (or .once, .read, .import).
  ['psql', { kind: 'client', escape: (w) => /\\!|\\(?:o|out|g|gx|w|write)\s*\|/.test(w) || (/\bcopy\b/i.test(w) && /\bprogram\b/i.test(w)), via: 'meta-command', given: optionGiven('cflV', ['--command', '--file', '--list', '--version', '--help']) }],
  ...names(['mysql', 'mariadb'], { kind: 'client', escape: (w) => /(?:^|[;\n=]|^-[A-Za-z]*e)\s*(?:(?:system|pager)\b|\\!|\\P)/i.test(w), via: 'client command', given: optionGiven('eV', ['--execute', '--version', '--help']) }),
  // sqlite3 by its unversioned name, as the table is read.
  ['sqlite', { kind: 'client', escape: (w) => /(?:^|\n)\s*\.(?:sh(?:e(?:ll?)?)?|sy(?:s(?:t(?:em?)?)?)?)(?:\s|$)|(?:^|\n)\s*\.[a-z]+\s+['"]?\|/.test(w), via: 'dot-command', given: sqliteQueries }],
]);

function packageRunner(program: string, via: string): string {
  return `${program} ${via} runs a package it may fetch, whose code can change between runs; ${SEE_NOT}`;
}

/** npm, pnpm, yarn: a package they may fetch (`npm exec`, `yarn dlx`), or a script of package.json (`npm test`, `yarn build`: via `script`). */
function packageScripts(program: string, via: string): string {
  if (via !== 'script' && !NPM_SCRIPTS.includes(via)) return packageRunner(program, via);
  return `${program} ${via === 'script' ? 'runs a script' : `${via} runs the scripts`} of package.json in its working directory; what it does is what package.json holds when it runs: ${ONCE}`;
}

function recipes(file: string, exits: readonly string[]): Family {
  return { kind: 'always', via: 'recipes', reason: (p) => `${p} runs the recipes of ${file} in its working directory; what it does is what they hold when it runs: ${ONCE}`, exits };
}

function names(list: readonly string[], family: Family): Array<[string, Family]> {
  return list.map((n) => [n.toLowerCase(), family]);
}

/** Longer than any program name in the table, with a version suffix: a longer argv[0] is none of them, and is not read further. */
const MAX_NAME = 64;
/** How deep env wrappers are read (`env env python3 -c …`). */
const MAX_DEPTH = 8;

/**
 * Whether any command of a run runs code its argv does not show, and why:
 * the first such command's verdict, else null. `action` is an approval's
 * action: its `commands` (every simple command that will run, from the
 * canonical run, wrappers such as `sh -c` already looked through) when it
 * has them, else its `argv`. Anything else (a named command's params, a
 * value that is not an argv of strings) is null. Never throws. What an
 * approver is shown: without `operand`, an index into one command of them.
 */
export function runsCodeOfAction(action: unknown): Omit<RunsCode, 'operand'> | null {
  if (action === null || typeof action !== 'object') return null;
  const { commands, argv } = action as { commands?: unknown; argv?: unknown };
  const shownOf = (found: RunsCode | null) => (found === null ? null : { program: found.program, via: found.via, reason: found.reason });
  if (Array.isArray(commands) && commands.length > 0) {
    for (const command of commands) {
      const found = runsCode(command);
      if (found) return shownOf(found);
    }
    return null;
  }
  return shownOf(runsCode(argv));
}

/**
 * Whether one command (an argv: program first) runs code its argv does not
 * show, and why; null for anything else, including a value that is not an
 * array (a word that is not a string reads as an empty word). Never throws.
 */
export function runsCode(argv: unknown): RunsCode | null {
  if (!Array.isArray(argv) || argv.length === 0) return null;
  try {
    return classify(argv.map((a) => (typeof a === 'string' ? a : '')), 0);
  } catch {
    // Nothing here throws on strings; should it ever, the approver is told rather than nothing.
    return { program: 'unknown', via: 'unknown', reason: 'Corral could not read this command; it may run code Corral cannot see' };
  }
}

/** The table's verdict, else, for a program outside the system's folders (`./deploy.sh`), that it runs a file that may change. */
function classify(argv: readonly string[], depth: number): RunsCode | null {
  const first = argv[0];
  if (first === undefined || depth > MAX_DEPTH) return null;
  return known(argv, first, depth) ?? (isSystemProgram(first) ? null : pathReason(first));
}

function known(argv: readonly string[], first: string, depth: number): RunsCode | null {
  const program = programName(first);
  // ASCII only: no name in the table is otherwise, and a letter such as the Kelvin sign would lowercase into one.
  if (program.length === 0 || program.length > MAX_NAME || !/^[A-Za-z0-9._+-]+$/.test(program)) return null;
  const family = TABLE.get(unversioned(program).toLowerCase());
  if (!family) return null;
  switch (family.kind) {
    case 'interpreter':
      return interpreter(program, argv, family.options, family.stdin, family.commands);
    case 'awk':
      return awk(program, argv, family.options);
    case 'option-anywhere':
      return optionAnywhere(program, argv, family.options, family.reason, family.gnu === true);
    case 'subcommand':
      return subcommand(program, argv, family.subcommands, family.reason, family.stdin === true, family.builtins);
    case 'always':
      if (argv.length === 2 && family.exits?.includes(argv[1]!)) return null;
      if (program === 'ssh' && gitTransport(argv)) return null;
      return { program, via: family.via, reason: family.reason(program) };
    case 'env':
      return env(program, argv, family.options, depth);
    case 'pwsh':
      return pwsh(program, argv);
    case 'sed':
      return sed(program, argv);
    case 'vim':
      return vim(program, argv);
    case 'socat':
      return socat(program, argv);
    case 'ssh-copy':
      return sshCopy(program, argv, family.values);
    case 'client':
      return client(program, argv, family.escape, family.via, family.given);
  }
}

/** The remote command of git's own ssh transport, as the canonical run names it (exec/git.ts): `git-upload-pack 'PATH'` and the like, last, after a few options and the host. */
const GIT_TRANSPORT = /^git-(?:upload-pack|receive-pack|upload-archive) '(?:[^']|'\\[!']')*'$/;
function gitTransport(argv: readonly string[]): boolean {
  return argv.length <= 8 && GIT_TRANSPORT.test(argv[argv.length - 1]!);
}

/** `python3.12` → `python`, `lua5.4` → `lua`, `perl5.36.0` → `perl`: the trailing digits and dots dropped (a loop, not a regex, so a long name costs one pass). */
function unversioned(name: string): string {
  let end = name.length;
  while (end > 0 && /[0-9.]/.test(name[end - 1]!)) end -= 1;
  return end === 0 ? name : name.slice(0, end);
}

const codeReason = (program: string, via: string) => ({ program, via, reason: `${program} runs the code given with ${via}; ${SEE_NOT}` });
const stdinReason = (program: string) => ({ program, via: 'stdin', reason: `${program} reads the code it runs from stdin; ${SEE_NOT}` });

/** A word of the agent's shown in a reason: printable ASCII with no space, short enough to keep the reason under 200 characters; else undefined. */
function shown(word: string): string | undefined {
  return /^[\x21-\x7e]{1,40}$/.test(word) ? word : undefined;
}

/** `python3 build.py`: "python3 runs the script build.py; what it does is what build.py holds when it runs: …"; `operand` is where in the argv it is named (RunsCode.operand). */
function scriptReason(program: string, script: string, operand: number | null): RunsCode {
  const name = shown(script);
  const reason = name === undefined ? `${program} runs the script it names; what it does is what that file holds when it runs: ${ONCE}` : `${program} runs the script ${name}; what it does is what ${name} holds when it runs: ${ONCE}`;
  return { program, via: 'script', reason, operand };
}

/** `python3 -m mod`, `node --test`, `php -S`, `go test`: code from files on disk, which may change between runs. */
function filesReason(program: string, via: string): RunsCode {
  return { program, via, reason: `${program} ${via} runs code from files on disk; what it does is what they hold when it runs: ${ONCE}` };
}

/** `./deploy.sh`, `/opt/tools/x`: a program outside the system's folders, a file that may change. */
function pathReason(path: string): RunsCode {
  const name = programName(path);
  const program = /^[A-Za-z0-9._+-]{1,64}$/.test(name) ? name : 'program';
  return { program, via: 'path', reason: `${shown(path) ?? 'this program'} is a file outside the system's program folders; what it does is what it holds when it runs: ${ONCE}`, operand: 0 };
}

/** Whether an operand names a file in a system directory (`/usr/bin/foo`), which only root can write. */
function systemFile(path: string): boolean {
  return path.includes('/') && isSystemProgram(path);
}

/** What the option walk found: code by an option, stdin, a program named to run, an exit, or where the operands start. */
type Walk = { found: 'code'; via: string } | { found: 'stdin' } | { found: 'runs'; via: string } | { found: 'exits' } | { found: 'operands'; at: number; file: boolean };

/**
 * Reads the options before the first operand, as getopt does: `--` ends
 * them, `-` is an operand, a cluster is read letter by letter, an option
 * that takes a value takes the rest of its word or else the next word.
 */
function walk(argv: readonly string[], options: Options): Walk {
  let file = false;
  let i = 1;
  for (; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') return { found: 'operands', at: i + 1, file };
    if (word === '-' || !word.startsWith('-')) break;
    if (options.exits?.includes(word)) return { found: 'exits' };
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq < 0 ? word : word.slice(0, eq);
      if (options.code?.long?.includes(name)) return { found: 'code', via: name };
      if (options.runs?.long?.includes(name)) return { found: 'runs', via: name };
      if (options.file?.long?.includes(name)) file = true;
      else if (!options.value?.long?.includes(name)) continue;
      if (eq < 0) i += 1;
      continue;
    }
    for (let j = 1; j < word.length; j += 1) {
      const letter = word[j]!;
      const last = j === word.length - 1;
      if (options.code?.short?.includes(letter)) return { found: 'code', via: `-${letter}` };
      if (options.stdin?.includes(letter)) return { found: 'stdin' };
      if (options.runs?.short?.includes(letter)) return { found: 'runs', via: `-${letter}` };
      if (options.file?.short?.includes(letter) || options.value?.short?.includes(letter)) {
        if (options.file?.short?.includes(letter)) file = true;
        if (last) i += 1;
        break;
      }
      if (options.attached?.includes(letter)) break;
      if (options.digits?.includes(letter)) while (j + 1 < word.length && /[0-9]/.test(word[j + 1]!)) j += 1;
    }
  }
  return { found: 'operands', at: i, file };
}

function interpreter(program: string, argv: readonly string[], options: Options, stdin: boolean, commands?: { recipes: ReadonlySet<string>; builtins: ReadonlySet<string> }): RunsCode | null {
  const read = walk(argv, options);
  if (read.found === 'code') return codeReason(program, read.via);
  if (read.found === 'stdin') return stdinReason(program);
  if (read.found === 'runs') return filesReason(program, read.via);
  if (read.found !== 'operands') return null;
  const script = argv[read.at];
  // No script named, or `-`: the program comes from stdin.
  if (script === undefined || script === '-') return stdin ? stdinReason(program) : null;
  if (commands?.builtins.has(script)) return null;
  if (commands?.recipes.has(script)) return filesReason(program, script);
  return systemFile(script) ? null : scriptReason(program, script, read.at);
}

/** awk's program: given by option, else its first operand, else a file named with -f (which may change, as a script may). */
function awk(program: string, argv: readonly string[], options: Options): RunsCode | null {
  const read = walk(argv, options);
  if (read.found === 'code') return codeReason(program, read.via);
  if (read.found !== 'operands') return null;
  if (read.file) return programFile(program, argv, options);
  if (read.at >= argv.length) return null;
  return { program, via: 'program text', reason: `${program} runs the program given as its first argument; ${SEE_NOT}` };
}

/** The first program file named with one of awk's file options (`-f prog.awk`, `--file=prog.awk`), as a script. */
function programFile(program: string, argv: readonly string[], options: Options): RunsCode {
  for (let i = 1; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') break;
    const eq = word.indexOf('=');
    if (options.file?.long?.includes(eq < 0 ? word : word.slice(0, eq))) return eq < 0 ? scriptReason(program, argv[i + 1] ?? '', i + 1) : scriptReason(program, word.slice(eq + 1), null);
    if (/^-[A-Za-z]$/.test(word) && options.file?.short?.includes(word[1]!)) return scriptReason(program, argv[i + 1] ?? '', i + 1);
    if (/^-[A-Za-z]/.test(word) && !word.startsWith('--') && options.file?.short?.includes(word[1]!)) return scriptReason(program, word.slice(2), null);
  }
  return scriptReason(program, '', null);
}

/** Any word before `--` that is one of the options (find's `-exec`, in a cluster for short ones: rsync's `-avze`). */
function optionAnywhere(program: string, argv: readonly string[], options: Options, reason: (program: string, via: string) => string, gnu = false): RunsCode | null {
  for (let i = 1; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') break;
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    const long = options.code?.long?.find((o) => o === name || (gnu && name.startsWith('--') && name.length >= 5 && o.startsWith(name)));
    if (long) return { program, via: long, reason: reason(program, long) };
    if ((/^-[A-Za-z]/.test(word) || (gnu && i === 1 && /^[A-Za-z]+$/.test(word))) && !word.startsWith('--')) {
      // Letters up to the first one that is not a letter: what follows may be a value (`-e'ssh -p 2'`).
      for (let j = word.startsWith('-') ? 1 : 0; j < word.length && /[A-Za-z]/.test(word[j]!); j += 1) {
        if (options.code?.short?.includes(word[j]!)) return { program, via: `-${word[j]!}`, reason: reason(program, `-${word[j]!}`) };
      }
    }
  }
  return null;
}

/** One of the subcommands among the operands before `--` (global options may come first, and take values: `docker -H host run`); with `stdin`, a `-` there. */
function subcommand(program: string, argv: readonly string[], subcommands: ReadonlySet<string>, reason: (program: string, via: string) => string, stdin: boolean, builtins?: ReadonlySet<string>): RunsCode | null {
  const end = argv.indexOf('--');
  const words = argv.slice(1, end < 0 ? argv.length : end);
  // stdin first: `deno run -` reads its code from stdin, as it did before run was a subcommand of the table.
  if (stdin && words.includes('-')) return stdinReason(program);
  for (const word of words) {
    if (subcommands.has(word)) return { program, via: word, reason: reason(program, word) };
  }
  const first = words.find((word) => !word.startsWith('-'));
  if (builtins === undefined || first === undefined || builtins.has(first)) return null;
  return { program, via: 'script', reason: reason(program, 'script') };
}

/** `env -S STRING`, else the command after env's options and NAME=value assignments, read in turn. */
function env(program: string, argv: readonly string[], options: Options, depth: number): RunsCode | null {
  const read = walk(argv, options);
  if (read.found === 'code') return { program, via: read.via, reason: `${program} splits the string given with ${read.via} into a command; Corral cannot see what runs` };
  if (read.found !== 'operands') return null;
  let at = read.at;
  while (at < argv.length && /^[^=]+=/.test(argv[at]!) && !argv[at]!.startsWith('-')) at += 1;
  if (at >= argv.length) return null;
  const inner = classify(argv.slice(at), depth + 1);
  // The file's index is in env's argv, not the command's it reads.
  return typeof inner?.operand === 'number' ? { ...inner, operand: inner.operand + at } : inner;
}

const PWSH_CODE = ['command', 'commandwithargs', 'encodedcommand'];

/**
 * `pwsh -c`, `-Command`, `-EncodedCommand`, `-e`, `-ec`, `-cwa`, in any case
 * and any prefix of three letters or more, anywhere among its arguments (its
 * parameters that take a value are many: a word after one may be that value
 * or the script, so every word is read); `-File -` or no operand at all:
 * stdin; else a script (the first operand, or a value taken for one: it
 * warns rather than misses).
 */
function pwsh(program: string, argv: readonly string[]): RunsCode | null {
  for (let i = 1; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (!word.startsWith('-')) continue;
    const name = word.replace(/^--?/, '').toLowerCase();
    // Matched against ASCII names, so `-${name}` is ASCII: no text of the agent's goes into the reason.
    if (['c', 'e', 'ec', 'cwa'].includes(name) || (name.length >= 3 && PWSH_CODE.some((o) => o.startsWith(name)))) return codeReason(program, `-${name}`);
    if (name === 'f' || (name.length >= 2 && 'file'.startsWith(name))) return argv[i + 1] === '-' ? stdinReason(program) : argv[i + 1] === undefined || systemFile(argv[i + 1]!) ? null : scriptReason(program, argv[i + 1]!, i + 1);
    if (['v', 'version', 'h', 'help', '?'].includes(name)) return null;
  }
  const at = argv.findIndex((word, i) => i > 0 && !word.startsWith('-'));
  const script = at < 0 ? undefined : argv[at]!;
  return script === undefined ? stdinReason(program) : systemFile(script) ? null : scriptReason(program, script, at);
}

/**
 * A sed script that runs a shell command: GNU sed's `e` command (`1e id`,
 * `/x/e`) or the `e` flag of `s` (`s/x/id/e`). Read loosely, so that it
 * warns rather than misses: an `e` where a command may stand, or among what
 * follows the last delimiter of an `s` command.
 */
const SED_E_COMMAND = /(?:^|[\s;{}!,0-9$/])e(?:$|[\s;}])/;
const SED_E_FLAG = /s(.)(?:\\.|(?!\1).)*\1(?:\\.|(?!\1).)*\1[^;\n}]*e/s;

/** sed whose script (each `-e`/`--expression`, else its first operand) runs a command; a script from a file (`-f`) is named, as a script is. */
function sed(program: string, argv: readonly string[]): RunsCode | null {
  const scripts: string[] = [];
  let fromOption = false;
  let operand: string | undefined;
  for (let i = 1; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') {
      operand ??= argv[i + 1];
      break;
    }
    if (word.startsWith('--expression')) {
      fromOption = true;
      scripts.push(word.includes('=') ? word.slice(word.indexOf('=') + 1) : (argv[(i += 1)] ?? ''));
    } else if (word.startsWith('--file')) fromOption = true;
    else if (word === '--line-length') i += 1;
    else if (/^-[A-Za-z]/.test(word) && !word.startsWith('--')) {
      for (let j = 1; j < word.length; j += 1) {
        const letter = word[j]!;
        if (letter === 'e' || letter === 'f' || letter === 'l') {
          if (letter !== 'l') fromOption = true;
          const value = j + 1 < word.length ? word.slice(j + 1) : (argv[(i += 1)] ?? '');
          if (letter === 'e') scripts.push(value);
          break;
        }
        // -i and -E's neighbours: -i takes the rest of its word as a suffix.
        if (letter === 'i') break;
      }
    } else if (!word.startsWith('-') && operand === undefined) operand = word;
  }
  if (!fromOption && operand !== undefined) scripts.push(operand);
  for (const script of scripts) {
    if (SED_E_COMMAND.test(script) || SED_E_FLAG.test(script)) return { program, via: 'e command', reason: `${program} runs the shell command its script gives with e; ${SEE_NOT}` };
  }
  return null;
}

/** vim and its kin given Ex commands or keystrokes to run: `-c CMD`, `--cmd CMD`, `+CMD` (not `+` or `+N`, a line), `-S FILE`, `-s FILE`, and `-e`/`-es` (Ex mode, commands from stdin when it is not a terminal). */
function vim(program: string, argv: readonly string[]): RunsCode | null {
  const end = argv.indexOf('--');
  const words = argv.slice(1, end < 0 ? argv.length : end);
  for (const word of words) {
    if (word.startsWith('+') && !/^\+\d*$/.test(word)) return codeReason(program, '+');
    if (word === '--cmd' || (/^-[A-Za-z]/.test(word) && word.includes('c'))) return codeReason(program, word === '--cmd' ? '--cmd' : '-c');
  }
  for (const word of words) {
    if (!/^-[A-Za-z]/.test(word)) continue;
    for (const letter of ['S', 's', 'e']) if (word.slice(1).includes(letter)) return codeReason(program, `-${letter}`);
  }
  return null;
}

/** socat with an address that runs a program: `EXEC:…`, `SYSTEM:…` (any case, either side). */
function socat(program: string, argv: readonly string[]): RunsCode | null {
  for (const word of argv.slice(1)) {
    const address = /^(exec|system)[:,]/i.exec(word);
    if (address) return { program, via: `${address[1]!.toUpperCase()}:`, reason: `${program} runs the program its ${address[1]!.toUpperCase()}: address names; ${SEE_NOT}` };
  }
  return null;
}

/** A client whose query text runs a shell command, or that reads its queries from stdin. */
function client(program: string, argv: readonly string[], escape: (word: string) => boolean, via: string, given: (args: readonly string[]) => boolean): RunsCode | null {
  const args = argv.slice(1);
  if (args.some(escape)) return { program, via, reason: `${program} runs the shell command a ${via} of its queries gives; ${SEE_NOT}` };
  return given(args) ? null : stdinReason(program);
}

/** Whether one of these options is among the words (a short one in any cluster: `-Atc`), read loosely: a client given its queries, or told only to print and exit. */
function optionGiven(short: string, long: readonly string[]): (args: readonly string[]) => boolean {
  return (args) => args.some((word) => long.some((o) => word === o || word.startsWith(`${o}=`)) || (/^-[A-Za-z?]/.test(word) && [...word.slice(1)].some((letter) => short.includes(letter))));
}

/** sqlite3's options that take a value (two, for -pagecache and -lookaside), with one dash or two. */
const SQLITE_VALUES = new Map([['cmd', 1], ['separator', 1], ['newline', 1], ['nullvalue', 1], ['init', 1], ['vfs', 1], ['maxsize', 1], ['mmap', 1], ['heap', 1], ['pagecache', 2], ['lookaside', 2]]);

/** Whether sqlite3 is given its queries: a statement after the database file, or an option that only prints and exits. */
function sqliteQueries(args: readonly string[]): boolean {
  let operands = 0;
  for (let i = 0; i < args.length; i += 1) {
    const word = args[i]!;
    if (!word.startsWith('-')) operands += 1;
    else if (['version', 'help'].includes(word.replace(/^--?/, ''))) return true;
    else i += SQLITE_VALUES.get(word.replace(/^--?/, '')) ?? 0;
  }
  return operands >= 2;
}

/** The ssh options whose value is a command run on this host. */
const SSH_COMMAND_OPTION = /^\s*(proxycommand|localcommand|knownhostscommand)\s*[=\s]/i;
const SSH_COMMAND_OPTION_NAMES: Record<string, string> = { proxycommand: 'ProxyCommand', localcommand: 'LocalCommand', knownhostscommand: 'KnownHostsCommand' };

/**
 * scp or sftp running a command on this host: the program given with `-S`
 * (the ssh it runs) or `-D` (a local sftp server), or an ssh option naming a
 * command (`-o ProxyCommand=CMD`). Options read as getopt does: an option in
 * `values` takes the rest of its word, else the next word.
 */
function sshCopy(program: string, argv: readonly string[], values: string): RunsCode | null {
  for (let i = 1; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') break;
    if (!/^-[A-Za-z]/.test(word)) continue;
    for (let j = 1; j < word.length; j += 1) {
      const letter = word[j]!;
      if (!values.includes(letter)) continue;
      const value = j + 1 < word.length ? word.slice(j + 1) : (argv[(i += 1)] ?? '');
      if (letter === 'S' || letter === 'D') return { program, via: `-${letter}`, reason: `${program} runs the program given with -${letter} on this host; ${SEE_NOT}` };
      const option = letter === 'o' ? SSH_COMMAND_OPTION.exec(value)?.[1] : undefined;
      if (option !== undefined) {
        const via = `-o ${SSH_COMMAND_OPTION_NAMES[option.toLowerCase()]!}`;
        return { program, via, reason: `${program} runs the command given with ${via} on this host; ${SEE_NOT}` };
      }
      break;
    }
  }
  return null;
}
