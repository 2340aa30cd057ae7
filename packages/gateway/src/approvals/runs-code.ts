// Commands whose argv does not show what they will do: a program that runs
// code given on its command line (`python3 -c …`, `node -e …`, an awk
// program) or read from stdin (`python3 -`, `xargs`), or that runs it where
// Corral does not look (`ssh host CMD`, `docker run`, `kubectl exec`), or
// that runs the code in a file that may change between one run and the next:
// a script (`python3 build.py`, `sh x.sh`, `awk -f prog.awk`, `sed -f x.sed`,
// `java -jar x.jar`), a program at a path outside the system's program
// folders (`./deploy.sh`, `../tools/x`, `/opt/app/bin/x`), a build tool's
// recipes in its working directory (`make`, `npm test`, `cargo build`,
// `cmake`, `terraform apply`), or the install scripts of what a package
// manager installs (`npm install`, `pip install .`); or that starts code
// outside the run, or later (`crontab FILE`, `at`, `systemd-run`). A wrapper
// (`timeout 5 ./deploy.sh`, `sudo`, `nice`, `busybox sh x.sh`) is read as
// the command it runs. When policy asks a human about such a command, the
// approver reads its argv; this tells them that the argv is not the whole
// story, so a long one-liner is not approved for what it seems to be, and no
// standing grant is made for it (store.ts refuses allow-always) unless its
// node bound the one file it runs by content (bound-script.ts): a grant for
// `python3 build.py` would otherwise cover whatever build.py holds at each
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
// #boundToScript), and an allow-always grant to it (bound-script.ts). A
// numeric operand therefore says that file is all the code the argv does not
// show: a run whose code comes from more (`uv run python3 x.py`, where the
// project's environment runs too) names none.
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
  /**
   * Of the options above, those that load code from another file before the
   * script (node's `--require ./x.js`, ruby's `-r`, perl's `-MFoo`, php's
   * `-d auto_prepend_file=`): the script is then not all the code the argv
   * does not show, and no one file can be bound for it. With `when`, only
   * given a value it holds (python3's `-X pycache_prefix=DIR`, compiled
   * modules run in place of the standard library's).
   */
  loads?: { short?: string; long?: readonly string[]; when?: (value: string) => boolean };
  /**
   * Options with which the script is found elsewhere than by its name from
   * the working directory (ruby's `-C DIR` and bun's `--cwd DIR` change
   * directory first; perl's and ruby's `-S` look it up on PATH): the file a
   * node reads by that name is not the one run, and none can be bound.
   */
  elsewhere?: { short?: string; long?: readonly string[] };
  /**
   * Whether this table knows too little of the program's options to tell
   * which take the next word: any option before the script leaves it
   * unbound (flagged, approved once), since the word read as the script may
   * be that option's value and the script the word after it.
   */
  strict?: boolean;
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

/**
 * A package manager's install commands: they run the install (or build)
 * scripts of what they install and of the project in the working directory
 * (npm's preinstall and postinstall, a package's setup.py, composer.json's
 * scripts), unless given one of `unless` (`--ignore-scripts`); with `bare`,
 * so does the program given no command at all (`yarn`).
 */
interface Installs {
  commands: ReadonlySet<string>;
  unless?: readonly string[];
  bare?: boolean;
}

type Family =
  /**
   * An interpreter: code by option, else a script operand, else (with
   * `stdin`) its program from stdin. With `commands`, an operand may instead
   * be one of its own commands: `recipes` run the project's files (bun's
   * `run`, `test`), `builtins` run none of them (bun's `install`).
   */
  | { kind: 'interpreter'; options: Options; stdin: boolean; commands?: { recipes: ReadonlySet<string>; builtins: ReadonlySet<string>; installs?: Installs } }
  /** java: its first operand is a source file (`Main.java`) or, after `-jar`, a jar, run as a script; else a class of its class path, from files on disk. */
  | { kind: 'java'; options: Options }
  /** awk: its first operand is the program unless a program file is named. */
  | { kind: 'awk'; options: Options }
  /** A program that runs code whenever one of these words is among its arguments (find's `-exec`, rsync's `-e`), or a script file named by one of its `file` options (gdb's `-x FILE`). */
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
   * of its project to run (`yarn build`), `via` then `script`; with
   * `installs`, one whose install commands run the install scripts of what
   * they install (`npm install`); with `inner`, subcommands whose first
   * operand is a command it runs, read in turn (`uv run python3 -c CODE`),
   * else the subcommand's own verdict (`bundle exec rspec`, and `uv run
   * python3 x.py`: the project's environment runs too, so no one file holds
   * its code); with `pairs`, subcommands of two words, matched before any
   * one word (`yarn plugin import`), `via` both.
   */
  | { kind: 'subcommand'; subcommands: ReadonlySet<string>; reason: (program: string, via: string) => string; stdin?: boolean; builtins?: ReadonlySet<string>; installs?: Installs; inner?: ReadonlySet<string>; pairs?: ReadonlyMap<string, ReadonlySet<string>> }
  /** A program that always runs code Corral cannot see (xargs, ssh), unless it only prints and exits; with `options`, a script file named by one of its `file` options is that script (`cmake -P x.cmake`). */
  | { kind: 'always'; via: string; reason: (program: string) => string; exits?: readonly string[]; options?: Options }
  /**
   * A wrapper (env, timeout, nice, sudo, busybox): the command after its
   * options, `operands` words of its own (timeout's duration, flock's lock
   * file) and NAME=value assignments is read in turn, so `timeout 5
   * ./deploy.sh` is what `./deploy.sh` is; a `code` option runs a string
   * as a command (env's `-S`, split into words; flock's `-c`, by a shell).
   */
  | { kind: 'wrapper'; options: Options; operands?: number; split?: boolean }
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
/** What an approver of a run of files that may change can do instead of a standing grant. */
const ONCE = 'approve it once, or permit it in policy';
/** What an approval of a run of one file its node binds by content covers (bound-script.ts): allowed always too, it allows that content only. */
const BOUND = 'an approval covers what it holds now';
const EXITS = ['--version', '--help', '-h', '-V', '-v'];

/** npm's commands that run a script of package.json (and its aliases); pnpm and yarn share them. */
const NPM_SCRIPTS = ['run', 'run-script', 'rum', 'urn', 'rr', 'test', 't', 'tst', 'start', 'stop', 'restart', 'install-test', 'it', 'install-ci-test', 'cit'];
/** pnpm's and yarn's commands that run none of the project's scripts: any other first operand is a script's name (`yarn build`). */
const PACKAGE_BUILTINS = new Set(['remove', 'rm', 'why', 'info', 'list', 'ls', 'outdated', 'config', 'cache', 'init', 'login', 'logout', 'audit', 'unlink', 'store', 'licenses', 'version', 'versions', 'help', 'bin', 'root', 'prune', 'dedupe', 'fetch', 'setup', 'env', 'dlx', 'create']);
/**
 * yarn's own commands (yarn 1's and yarn 2 and later's). Any other first word
 * runs the package.json script of that name, else a program of the
 * project's dependencies (node_modules/.bin), as `yarn run` does.
 */
const YARN_COMMANDS: ReadonlySet<string> = new Set(['access', 'add', 'audit', 'autoclean', 'bin', 'cache', 'check', 'config', 'constraints', 'dedupe', 'explain', 'generate-lock-entry', 'global', 'help', 'import', 'info', 'init', 'install', 'licenses', 'link', 'list', 'login', 'logout', 'npm', 'outdated', 'owner', 'pack', 'patch', 'patch-commit', 'plugin', 'policies', 'publish', 'rebuild', 'remove', 'search', 'set', 'stage', 'tag', 'team', 'unlink', 'unplug', 'up', 'upgrade', 'upgrade-interactive', 'version', 'versions', 'why', '--version', '-v', '--help', '-h']);
/**
 * npm's commands that start the browser or help viewer its settings name,
 * which a project's .npmrc may set to any program (`browser=CMD`, and
 * `viewer=browser` for help), by every name npm reads as them: `npm docs`
 * (`home`), `bugs` (`issues`), `repo`, `fund PKG`, `help TOPIC`.
 */
const NPM_OPENS: ReadonlySet<string> = new Set(['docs', 'home', 'hom', 'ho', 'bugs', 'bug', 'bu', 'b', 'issues', 'issue', 'issu', 'iss', 'repo', 'rep', 'fund', 'fun', 'fu', 'help', 'hlep', 'hle', 'hl']);
/**
 * yarn's commands that fetch code every later yarn run of the project
 * executes: a plugin (`plugin import URL|PATH`, yarn 2 and later), yarn
 * itself (`set version URL|PATH`, yarn 1's `policies set-version`), each
 * named in .yarnrc.yml or .yarnrc, which yarn loads before any command.
 */
const YARN_FETCHES: ReadonlyMap<string, ReadonlySet<string>> = new Map([['plugin', new Set(['import'])], ['set', new Set(['version'])], ['policies', new Set(['set-version'])]]);
/** npm's commands that run the lifecycle scripts of what they install, or of the project (`npm pack`: prepack, prepare), and their aliases. */
const NPM_INSTALLS: Installs = { commands: new Set(['install', 'i', 'in', 'ins', 'inst', 'insta', 'instal', 'isnt', 'isnta', 'isntal', 'isntall', 'add', 'ci', 'clean-install', 'ic', 'install-clean', 'isntall-clean', 'update', 'up', 'upgrade', 'udpate', 'rebuild', 'rb', 'link', 'ln', 'pack', 'publish']), unless: ['--ignore-scripts'] };
/** pnpm's and yarn's (yarn given no command installs). */
const PACKAGE_INSTALLS: Installs = { commands: new Set(['install', 'i', 'add', 'up', 'upgrade', 'update', 'rebuild', 'rb', 'link', 'ln', 'import', 'pack', 'publish']), unless: ['--ignore-scripts'] };
/** The Python and Ruby package managers' commands that build what they install (a package's setup.py or build backend, a gem's extconf.rb), the project's own among it. */
const BUILDS = (commands: readonly string[]): Installs => ({ commands: new Set(commands) });
/** Wrappers' options that only print and exit. */
const WRAPPER_EXITS = ['--version', '--help'];

const SHELL: Family = { kind: 'interpreter', stdin: true, options: { code: { short: 'c' }, value: { short: 'oO', long: ['--rcfile', '--init-file'] }, stdin: 's', exits: ['--version', '--help'] } };

/** What the strict interpreters print and exit with. */
const STRICT_EXITS = ['--version', '--help', '-v', '-h', '-V'];

/**
 * node's options that take a value (`node --help`), which may be given as the
 * next word: `node --redirect-warnings FILE x.js` runs x.js, not FILE.
 * `--inspect` and its kin take theirs after `=` only.
 */
const NODE_VALUES = [
  '--require', '--import', '--loader', '--experimental-loader', '--conditions', '--input-type', '--env-file', '--env-file-if-exists', '--title', '--disable-warning',
  '--allow-fs-read', '--allow-fs-write', '--build-snapshot-config', '--cpu-prof-dir', '--cpu-prof-interval', '--cpu-prof-name', '--diagnostic-dir', '--disable-proto',
  '--dns-result-order', '--experimental-package-map', '--experimental-sea-config', '--heap-prof-dir', '--heap-prof-interval', '--heap-prof-name',
  '--heapsnapshot-near-heap-limit', '--heapsnapshot-signal', '--icu-data-dir', '--inspect-publish-uid', '--localstorage-file', '--max-http-header-size',
  '--max-old-space-size-percentage', '--network-family-autoselection-attempt-timeout', '--openssl-config', '--redirect-warnings', '--report-dir', '--report-directory',
  '--report-filename', '--report-signal', '--secure-heap', '--secure-heap-min', '--snapshot-blob', '--tls-cipher-list', '--tls-keylog', '--trace-event-categories',
  '--trace-event-file-pattern', '--trace-require-module', '--unhandled-rejections', '--use-largepages', '--v8-pool-size', '--watch-kill-signal', '--watch-path',
  '--stack-trace-limit', '--experimental-config-file',
];

/**
 * The table: programs (by file name, without a version suffix: `python` for
 * `python3.12`) and what makes each run code its argv does not show.
 */
const TABLE: ReadonlyMap<string, Family> = new Map<string, Family>([
  ...names(['python', 'pypy'], { kind: 'interpreter', stdin: true, options: { code: { short: 'c' }, value: { short: 'WXQ', long: ['--check-hash-based-pycs'] }, loads: { short: 'X', when: (value) => /^pycache_prefix(?:=|$)/.test(value) }, runs: { short: 'm' }, exits: ['--version', '--help', '-h', '-V', '-VV', '-?', '--help-all', '--help-env', '--help-xoptions'] } }),
  ...names(['node', 'nodejs'], { kind: 'interpreter', stdin: true, options: { code: { short: 'ep', long: ['--eval', '--print'] }, value: { short: 'rC', long: NODE_VALUES }, loads: { short: 'r', long: ['--require', '--import', '--loader', '--experimental-loader', '--env-file', '--env-file-if-exists', '--openssl-config', '--snapshot-blob', '--experimental-config-file'] }, runs: { long: ['--test', '--run'] }, exits: ['--version', '--help', '-v', '-h', '--v8-options'] } }),
  ...names(['perl'], { kind: 'interpreter', stdin: true, options: { code: { short: 'eE' }, value: { short: 'I' }, loads: { short: 'Mmd' }, elsewhere: { short: 'S' }, attached: 'MmiFdDxVC', digits: '0l', exits: EXITS } }),
  ...names(['ruby', 'jruby'], { kind: 'interpreter', stdin: true, options: { code: { short: 'e' }, value: { short: 'IrCE', long: ['--enable', '--disable'] }, loads: { short: 'r' }, elsewhere: { short: 'CS' }, attached: 'FxKWi', digits: '0T', exits: ['--version', '--help', '-h', '-v'] } }),
  ...names(['php'], { kind: 'interpreter', stdin: true, options: { code: { short: 'rRBE', long: ['--run', '--process-code', '--process-begin', '--process-end'] }, value: { short: 'cdzt', long: ['--php-ini', '--define', '--zend-extension', '--docroot'] }, loads: { short: 'cdz', long: ['--php-ini', '--define', '--zend-extension'] }, runs: { short: 'fFS', long: ['--file', '--process-file', '--server'] }, exits: ['--version', '--help', '-v', '-h', '-i', '-m'] } }),
  ...names(['lua', 'luajit'], { kind: 'interpreter', stdin: true, options: { code: { short: 'e' }, value: { short: 'l' }, loads: { short: 'l' }, exits: ['-v'] } }),
  // Interpreters whose options this table does not list (strict): a script named first is bound, after any option it is not.
  ...names(['tsx', 'ts-node', 'babel-node', 'esno', 'vite-node', 'zx', 'coffee'], { kind: 'interpreter', stdin: true, options: { code: { short: 'ep', long: ['--eval', '--print'] }, strict: true, exits: STRICT_EXITS } }),
  ...names(['qjs', 'elixir', 'groovy', 'raku', 'gnuplot', 'racket'], { kind: 'interpreter', stdin: true, options: { code: { short: 'e', long: ['--eval'] }, strict: true, exits: STRICT_EXITS } }),
  ...names(['gjs', 'jython', 'ipython', 'expect', 'xonsh', 'nu', 'guile'], { kind: 'interpreter', stdin: true, options: { code: { short: 'c', long: ['--commands'] }, strict: true, exits: STRICT_EXITS } }),
  ...names(['octave', 'sbcl'], { kind: 'interpreter', stdin: true, options: { code: { long: ['--eval'] }, strict: true, exits: STRICT_EXITS } }),
  ...names(['escript', 'runghc', 'runhaskell', 'jshell', 'jbang'], { kind: 'interpreter', stdin: true, options: { strict: true, exits: STRICT_EXITS } }),
  // JavaScript runtimes beside node: bun takes code as node does; deno by its eval subcommand, its repl (`--eval`, else stdin) and `run -`.
  ['bun', { kind: 'interpreter', stdin: false, commands: { recipes: new Set(['run', 'test']), builtins: new Set(['remove', 'rm', 'outdated', 'unlink', 'pm', 'build', 'init', 'create', 'c', 'upgrade', 'publish', 'patch', 'audit', 'info', 'completions']), installs: { commands: new Set(['install', 'i', 'add', 'a', 'update', 'link']), unless: ['--ignore-scripts'] } }, options: { code: { short: 'ep', long: ['--eval', '--print'] }, value: { short: 'cr', long: ['--cwd', '--config', '--preload', '--require', '--import', '--env-file', '--define', '--loader', '--conditions', '--tsconfig-override'] }, loads: { short: 'cr', long: ['--config', '--preload', '--require', '--import', '--env-file', '--loader'] }, elsewhere: { long: ['--cwd'] }, exits: ['--version', '--help', '-v', '-h', '--revision'] } }],
  ['deno', { kind: 'subcommand', subcommands: new Set(['eval', 'repl', 'run', 'test', 'task', 'bench', 'serve']), stdin: true, reason: (p, via) => (via === 'eval' || via === 'repl' ? `${p} ${via} runs the code given on its command line or stdin; ${SEE_NOT}` : filesReason(p, via).reason) }],
  ['julia', { kind: 'interpreter', stdin: true, options: { code: { short: 'eE', long: ['--eval', '--print'] }, value: { short: 'JptLC', long: ['--sysimage', '--procs', '--threads', '--load', '--cpu-target', '--machine-file'] }, exits: ['--version', '--help', '-v', '-h', '--help-hidden'] } }],
  ...names(['Rscript'], { kind: 'interpreter', stdin: false, options: { code: { short: 'e' }, exits: ['--version', '--help'] } }),
  ...names(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'yash', 'posh', 'csh', 'tcsh'], SHELL),
  ...names(['fish'], { kind: 'interpreter', stdin: true, options: { code: { short: 'cC', long: ['--command', '--init-command'] }, exits: ['--version', '--help', '-v', '-h'] } }),
  ...names(['pwsh', 'powershell'], { kind: 'pwsh' }),
  ...names(['awk', 'gawk', 'mawk', 'nawk'], { kind: 'awk', options: { code: { short: 'e', long: ['--source'] }, file: { short: 'fE', long: ['--file', '--exec'] }, value: { short: 'vFiWl', long: ['--assign', '--field-separator', '--include', '--load'] }, loads: { short: 'il', long: ['--include', '--load'] }, exits: ['--version', '--help', '-V'] } }),
  ['find', { kind: 'option-anywhere', options: { code: { long: ['-exec', '-execdir', '-ok', '-okdir'] } }, reason: (p, via) => `${p} runs the command given with ${via} on every file it finds; Corral cannot see which files` }],
  ['rsync', { kind: 'option-anywhere', options: { code: { short: 'e', long: ['--rsh', '--rsync-path'] } }, reason: (p, via) => `${p} runs the command given with ${via}; ${SEE_NOT}` }],
  ['xargs', { kind: 'always', via: 'stdin', reason: (p) => `${p} runs a command with arguments it reads from stdin; Corral cannot see them`, exits: ['--version', '--help'] }],
  ['ssh', { kind: 'always', via: 'remote host', reason: (p) => `${p} runs commands on another host; Corral cannot see what runs there`, exits: ['-V'] }],
  ['env', { kind: 'wrapper', split: true, options: { code: { short: 'S', long: ['--split-string'] }, value: { short: 'uC', long: ['--unset', '--chdir'] } } }],
  // Wrappers that run the command after their own words as it is, with a time limit, a priority, another user, a lock: read as that command.
  ['nohup', { kind: 'wrapper', options: { exits: WRAPPER_EXITS } }],
  ['timeout', { kind: 'wrapper', operands: 1, options: { value: { short: 'sk', long: ['--signal', '--kill-after'] }, exits: WRAPPER_EXITS } }],
  ['nice', { kind: 'wrapper', options: { value: { short: 'n', long: ['--adjustment'] }, exits: WRAPPER_EXITS } }],
  ['sudo', { kind: 'wrapper', options: { value: { short: 'CDghpRrtTUu', long: ['--close-from', '--chdir', '--group', '--host', '--prompt', '--chroot', '--role', '--type', '--command-timeout', '--other-user', '--user'] }, exits: ['-V', '--version', '-h', '--help', '-l', '--list', '-v', '--validate', '-e', '--edit', '-k', '-K', '--remove-timestamp'] } }],
  ['doas', { kind: 'wrapper', options: { value: { short: 'uC' } } }],
  ['stdbuf', { kind: 'wrapper', options: { value: { short: 'ioe', long: ['--input', '--output', '--error'] }, exits: WRAPPER_EXITS } }],
  ['setsid', { kind: 'wrapper', options: { exits: ['-h', '-V', ...WRAPPER_EXITS] } }],
  // ionice -p, chrt -p and taskset -p name processes, not a command: the words after them are numbers, which run nothing.
  ['ionice', { kind: 'wrapper', options: { value: { short: 'cnpPu', long: ['--class', '--classdata', '--pid', '--pgid', '--uid'] }, exits: ['-h', '-V', ...WRAPPER_EXITS] } }],
  ['chrt', { kind: 'wrapper', operands: 1, options: { value: { short: 'TPD', long: ['--sched-runtime', '--sched-period', '--sched-deadline'] }, exits: ['-h', '-V', '-m', '--max', ...WRAPPER_EXITS] } }],
  ['taskset', { kind: 'wrapper', operands: 1, options: { exits: ['-h', '-V', ...WRAPPER_EXITS] } }],
  // flock FILE CMD, or flock FILE -c CMD (run by a shell).
  ['flock', { kind: 'wrapper', operands: 1, options: { code: { short: 'c', long: ['--command'] }, value: { short: 'wE', long: ['--timeout', '--wait', '--conflict-exit-code'] }, exits: ['-h', '-V', ...WRAPPER_EXITS] } }],
  ['xvfb-run', { kind: 'wrapper', options: { value: { short: 'efnpsw', long: ['--error-file', '--auth-file', '--server-num', '--xauth-protocol', '--server-args', '--wait'] }, exits: ['-h', '--help'] } }],
  ['time', { kind: 'wrapper', options: { value: { short: 'fo', long: ['--format', '--output'] }, exits: WRAPPER_EXITS } }],
  // busybox APPLET ARGS is the applet: `busybox sh x.sh` is `sh x.sh`.
  ...names(['busybox', 'toybox'], { kind: 'wrapper', options: { exits: ['--help', '--list', '--list-full', '--install'] } }),
  // Programs that start their command outside the run being approved, or later: a service, a scheduled job, a crontab.
  ['systemd-run', { kind: 'always', via: 'service', reason: (p) => `${p} starts a command as a service or timer, outside this run and maybe later; ${SEE_NOT} then`, exits: ['--version', '--help', '-h'] }],
  ...names(['at', 'batch'], { kind: 'always', via: 'schedule', reason: (p) => `${p} schedules commands it reads from stdin or a file to run later, outside this run; ${SEE_NOT}`, exits: ['-l', '-V', '--version', '--help'] }),
  ['crontab', { kind: 'always', via: 'schedule', reason: (p) => `${p} installs a table of commands that cron runs later, outside this run; ${SEE_NOT}`, exits: ['-l', '-r', '-V', '--version', '--help'] }],
  ...names(['docker', 'podman', 'nerdctl', 'docker-compose', 'podman-compose'], { kind: 'subcommand', subcommands: new Set(['run', 'exec', 'create', 'start', 'restart', 'build', 'up']), reason: (p, via) => `${p} ${via} runs code inside a container; ${SEE_NOT}` }),
  // Package runners: they run a package they may fetch, which the argv only names and whose code can change between runs.
  ...names(['npx', 'pnpx', 'bunx', 'uvx'], { kind: 'always', via: 'package', reason: (p) => `${p} runs a package it may fetch, whose code can change between runs; ${SEE_NOT}`, exits: ['--version', '--help', '-v', '-h'] }),
  // Their scripts are package.json's, in the working directory: `npm test`, `npm run build`, `yarn build`.
  ['npm', { kind: 'subcommand', subcommands: new Set(['exec', 'x', ...NPM_SCRIPTS, ...NPM_OPENS]), installs: NPM_INSTALLS, reason: (p, via) => (NPM_OPENS.has(via) ? opensReason(p, via) : projectScripts('package.json')(p, via)) }],
  ['pnpm', { kind: 'subcommand', subcommands: new Set(['dlx', 'exec', ...NPM_SCRIPTS]), builtins: PACKAGE_BUILTINS, installs: PACKAGE_INSTALLS, reason: projectScripts('package.json') }],
  // yarn's scripts are run by their name (`yarn test`, a first word none of its commands) or `yarn run`, else a dependency's program of that name; yarnpkg is Debian's name for it.
  ...names(['yarn', 'yarnpkg'], { kind: 'subcommand', subcommands: new Set(['dlx', 'exec', 'run']), builtins: YARN_COMMANDS, installs: { ...PACKAGE_INSTALLS, bare: true }, pairs: YARN_FETCHES, reason: (p, via) => (via.includes(' ') ? fetchesReason(p, via) : projectScripts('package.json', "else a dependency's program")(p, via)) }),
  // composer's scripts are composer.json's (`composer test`); its install commands run them unless given --no-scripts.
  ['composer', {
    kind: 'subcommand',
    subcommands: new Set(['run-script', 'run', 'exec']),
    builtins: new Set(['about', 'archive', 'audit', 'browse', 'home', 'bump', 'check-platform-reqs', 'clear-cache', 'clearcache', 'cc', 'config', 'depends', 'why', 'diagnose', 'fund', 'global', 'help', 'init', 'licenses', 'list', 'outdated', 'prohibits', 'why-not', 'search', 'self-update', 'selfupdate', 'show', 'info', 'status', 'suggests', 'validate']),
    installs: { commands: new Set(['install', 'i', 'update', 'u', 'upgrade', 'require', 'r', 'remove', 'rm', 'create-project', 'dump-autoload', 'dumpautoload', 'reinstall']), unless: ['--no-scripts'] },
    reason: (p, via) => (via === 'exec' ? filesReason(p, via).reason : projectScripts('composer.json')(p, via)),
  }],
  ['pipx', { kind: 'subcommand', subcommands: new Set(['run']), installs: BUILDS(['install', 'upgrade', 'reinstall', 'inject', 'install-all', 'upgrade-all', 'reinstall-all']), reason: packageRunner }],
  ['pip', { kind: 'subcommand', subcommands: new Set(), installs: BUILDS(['install', 'download', 'wheel']), reason: packageRunner }],
  // Project runners: `uv run CMD` runs CMD in the project's environment, which it builds first; CMD is read in turn (`uv run python3 x.py` is a run of x.py).
  ['uv', { kind: 'subcommand', subcommands: new Set(['run']), inner: new Set(['run']), installs: BUILDS(['sync', 'add', 'install', 'build']), reason: (p, via) => filesReason(p, via).reason }],
  ['poetry', { kind: 'subcommand', subcommands: new Set(['run']), inner: new Set(['run']), installs: BUILDS(['install', 'add', 'update', 'sync', 'build']), reason: (p, via) => filesReason(p, via).reason }],
  ['pipenv', { kind: 'subcommand', subcommands: new Set(['run']), inner: new Set(['run']), installs: BUILDS(['install', 'sync', 'update']), reason: (p, via) => filesReason(p, via).reason }],
  // bundler reads the Gemfile, Ruby, for every command; `bundle exec CMD` runs CMD with the bundle's gems.
  ['bundle', { kind: 'subcommand', subcommands: new Set(['exec']), inner: new Set(['exec']), installs: BUILDS(['install', 'update', 'add']), reason: (p, via) => filesReason(p, via).reason }],
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
  // A project's MSBuild targets, meson.build, CMakeLists.txt (or the build it generated), Taskfile.yml and playbooks run what they hold.
  ['dotnet', { kind: 'subcommand', subcommands: new Set(['run', 'test', 'build', 'publish', 'pack', 'msbuild', 'restore', 'watch', 'exec']), reason: (p, via) => filesReason(p, via).reason }],
  ['meson', { kind: 'subcommand', subcommands: new Set(['setup', 'configure', 'compile', 'test', 'install', 'devenv', 'dist']), reason: (p, via) => filesReason(p, via).reason }],
  ['cmake', recipes('CMakeLists.txt, or of the build it made,', ['--version', '-version', '--help', '-help', '-h', '--system-information'], { file: { short: 'P' }, loads: { short: 'C' } })],
  ['task', recipes('Taskfile.yml', ['--version', '--help', '-h', '--list', '-l', '--list-all', '-a'])],
  // mise's tasks are mise.toml's, or files of mise-tasks/ and .mise/tasks/ (`mise run build`, `mise r`, `mise tasks run`, `mise watch`).
  ['mise', { kind: 'subcommand', subcommands: new Set(['run', 'r', 'watch', 'w']), reason: (p, via) => `${p} ${via} runs the tasks of mise.toml or its task files in its working directory; what it does is what they hold when it runs: ${ONCE}` }],
  ['ansible-playbook', { kind: 'always', via: 'playbook', reason: (p) => `${p} runs the tasks of the playbooks it names on the hosts of its inventory; what it does is what they hold when it runs: ${ONCE}`, exits: ['--version', '--help', '-h'] }],
  // Terraform's providers are programs it runs, and a provisioner's local-exec runs a command of the configuration's.
  ...names(['terraform', 'tofu'], { kind: 'subcommand', subcommands: new Set(['apply', 'plan', 'destroy', 'import', 'refresh', 'console', 'test', 'validate']), reason: (p, via) => `${p} ${via} runs the providers and provisioners its configuration names; what it does is what they hold when it runs: ${ONCE}` }),
  ...names(['kubectl', 'oc'], { kind: 'subcommand', subcommands: new Set(['exec', 'run', 'debug', 'attach']), reason: (p, via) => `${p} ${via} runs code on a cluster; ${SEE_NOT}` }),
  // Programs better known for something else that run a command their options name.
  ['tar', { kind: 'option-anywhere', gnu: true, options: { code: { short: 'IF', long: ['--to-command', '--use-compress-program', '--checkpoint-action', '--info-script', '--new-volume-script', '--rsh-command'] } }, reason: (p, via) => `${p} runs the command given with ${via}; ${SEE_NOT}` }],
  ['zip', { kind: 'option-anywhere', options: { code: { long: ['-TT', '--unzip-command'] } }, reason: (p, via) => `${p} runs the command given with ${via} to test the archive; ${SEE_NOT}` }],
  ['man', { kind: 'option-anywhere', options: { code: { short: 'PH', long: ['--pager', '--html'] } }, reason: (p, via) => `${p} runs the pager or browser given with ${via}; ${SEE_NOT}` }],
  ...names(['nc', 'ncat', 'netcat'], { kind: 'option-anywhere', options: { code: { short: 'ec', long: ['--exec', '--sh-exec', '--lua-exec'] } }, reason: (p, via) => `${p} runs the command given with ${via} for each connection; ${SEE_NOT}` }),
  ...names(['emacs'], { kind: 'option-anywhere', options: { code: { short: 'lf', long: ['--eval', '-eval', '--load', '-load', '--funcall', '-funcall', '--execute', '-execute', '--script', '-script'] } }, reason: (p, via) => `${p} runs the Lisp given with ${via}; ${SEE_NOT}` }),
  ['java', { kind: 'java', options: { value: { long: ['-cp', '-classpath', '--class-path', '-p', '--module-path', '--upgrade-module-path', '--add-modules', '--limit-modules', '--source'] }, runs: { long: ['-m', '--module'] }, exits: ['-version', '--version', '-help', '--help', '-h', '-?', '-X', '--help-extra', '-fullversion', '--full-version'] } }],
  ['swift', { kind: 'interpreter', stdin: true, commands: { recipes: new Set(['build', 'test', 'run', 'package']), builtins: new Set(['help']) }, options: { value: { short: 'IFL', long: ['-module-name', '-target', '-sdk'] }, exits: ['--version', '-version', '--help', '-help', '-h'] } }],
  ...names(['tclsh', 'wish'], { kind: 'interpreter', stdin: true, options: { value: { long: ['-encoding'] } } }),
  // gdb's command files and -ex commands can run a shell command (`shell CMD`).
  ['gdb', { kind: 'option-anywhere', options: { code: { long: ['-ex', '--ex', '-eval-command', '--eval-command', '-iex', '--iex', '-init-eval-command', '--init-eval-command'] }, file: { long: ['-x', '--x', '-command', '--command', '-ix', '--ix', '-init-command', '--init-command'] } }, reason: (p, via) => `${p} runs the debugger commands given with ${via}, which can run shell commands; ${SEE_NOT}` }],
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

/** `npm docs`, `npm help X`: the program npm's settings name for it, any a project's .npmrc sets. */
function opensReason(program: string, via: string): string {
  return `${program} ${via} starts the browser or viewer ${program}'s settings name, any program a project's .npmrc sets; ${SEE_NOT}`;
}

/** `yarn plugin import URL`, `yarn set version URL`: code fetched now, run by every later yarn command of the project. */
function fetchesReason(program: string, via: string): string {
  return `${program} ${via} fetches code that every later ${program} command in the project runs (a plugin, or ${program} itself); ${SEE_NOT}, nor what later runs will do`;
}

/**
 * npm, pnpm, yarn, composer: a package they may fetch (`npm exec`, `yarn dlx`), or a script of `file` (`npm test`,
 * `yarn build`: via `script`), `otherwise` what runs when it has no script of that name (yarn's dependencies' programs).
 */
function projectScripts(file: string, otherwise?: string): (program: string, via: string) => string {
  return (program, via) => {
    if (via !== 'script' && !NPM_SCRIPTS.includes(via)) return packageRunner(program, via);
    const runs = `${program} ${via === 'script' ? 'runs a script' : `${via} runs the scripts`} of ${file}${otherwise ? `, ${otherwise},` : ''} in its working directory`;
    return `${runs}; what it does is what ${otherwise ? 'the project holds' : `${file} holds`} when it runs: ${ONCE}`;
  };
}

/** `npm install`: the install scripts of what it installs run, unless it is given one of `unless` (`--ignore-scripts`) or only prints its help. */
function installs(program: string, via: string, argv: readonly string[], spec: Installs): RunsCode | null {
  if (argv.includes('--help') || argv.includes('-h') || spec.unless?.some((option) => argv.includes(option) || argv.includes(`${option}=true`))) return null;
  return { program, via, reason: `${program} ${via} runs the install or build scripts of the packages it installs and of the project in its working directory; ${SEE_NOT}` };
}

/** A build tool; with `options`, one that runs a script file its `file` option names instead (`cmake -P x.cmake`). */
function recipes(file: string, exits: readonly string[], options?: Options): Family {
  return { kind: 'always', via: 'recipes', reason: (p) => `${p} runs the recipes of ${file} in its working directory; what it does is what they hold when it runs: ${ONCE}`, exits, ...(options ? { options } : {}) };
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
    case 'java':
      return java(program, argv, family.options);
    case 'awk':
      return awk(program, argv, family.options);
    case 'option-anywhere':
      return optionAnywhere(program, argv, family.options, family.reason, family.gnu === true);
    case 'subcommand':
      return subcommand(program, argv, family, depth);
    case 'always':
      if (argv.length === 2 && family.exits?.includes(argv[1]!)) return null;
      if (program === 'ssh' && gitTransport(argv)) return null;
      return (family.options && programFile(program, argv, family.options)) ?? { program, via: family.via, reason: family.reason(program) };
    case 'wrapper':
      return wrapper(program, argv, family, depth);
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
  const covers = operand === null ? ONCE : BOUND;
  const reason = name === undefined ? `${program} runs the script it names; what it does is what that file holds when it runs: ${covers}` : `${program} runs the script ${name}; what it does is what ${name} holds when it runs: ${covers}`;
  return { program, via: 'script', reason, operand };
}

/** `node --require ./x.js build.js`: the script and code an option loads besides (a system script too), so no one file holds it all: no operand. */
function loadsReason(program: string, script: string, via: string): RunsCode {
  const name = shown(script);
  return { program, via: 'script', reason: `${program} runs the script ${name ?? 'it names'} and the code ${via} loads; what it does is what those files hold when it runs: ${ONCE}` };
}

/** `ruby -C dir x.rb`, `perl -S x.pl`: a script found elsewhere than by its name from the working directory (Options.elsewhere): no operand. */
function elsewhereReason(program: string, script: string, via: string): RunsCode {
  return { program, via: 'script', reason: `${program} runs the script ${shown(script) ?? 'it names'}, found through ${via}; what it does is what that file holds when it runs: ${ONCE}` };
}

/** `python3 -m mod`, `node --test`, `php -S`, `go test`: code from files on disk, which may change between runs. */
function filesReason(program: string, via: string): RunsCode {
  return { program, via, reason: `${program} ${via} runs code from files on disk; what it does is what they hold when it runs: ${ONCE}` };
}

/** `./deploy.sh`, `/opt/tools/x`: a program outside the system's folders, a file that may change. */
function pathReason(path: string): RunsCode {
  const name = programName(path);
  const program = /^[A-Za-z0-9._+-]{1,64}$/.test(name) ? name : 'program';
  return { program, via: 'path', reason: `${shown(path) ?? 'this program'} is a file outside the system's program folders; what it does is what it holds when it runs: ${BOUND}`, operand: 0 };
}

/** Whether an operand names a file in a system directory (`/usr/bin/foo`), which only root can write. */
function systemFile(path: string): boolean {
  return path.includes('/') && isSystemProgram(path);
}

/** What the option walk found: code by an option, stdin, a program named to run, an exit, or where the operands start. */
type Walk = { found: 'code'; via: string } | { found: 'stdin' } | { found: 'runs'; via: string } | { found: 'exits' } | { found: 'operands'; at: number; file: boolean; loads?: string; elsewhere?: string; unsure?: boolean };

/**
 * Reads the options before the first operand, as getopt does: `--` ends
 * them, `-` is an operand, a cluster is read letter by letter, an option
 * that takes a value takes the rest of its word or else the next word.
 */
function walk(argv: readonly string[], options: Options): Walk {
  let file = false;
  // The first option that loads code besides the script (Options.loads).
  let loads: string | undefined;
  // The first option with which the script is found elsewhere (Options.elsewhere).
  let elsewhere: string | undefined;
  // An option of a program whose options are not all known (Options.strict).
  let unsure = false;
  const found = (at: number): Walk => ({ found: 'operands', at, file, ...(loads ? { loads } : {}), ...(elsewhere ? { elsewhere } : {}), ...(unsure ? { unsure } : {}) });
  let i = 1;
  for (; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') return found(i + 1);
    if (word === '-' || !word.startsWith('-')) break;
    if (options.exits?.includes(word)) return { found: 'exits' };
    if (options.strict) unsure = true;
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    // A long option, or one of a single dash the program lists as a name of its own (java's `-cp`, tclsh's `-encoding`).
    if (word.startsWith('--') || [options.code, options.runs, options.file, options.value].some((o) => o?.long?.includes(name))) {
      if (options.code?.long?.includes(name)) return { found: 'code', via: name };
      if (options.runs?.long?.includes(name)) return { found: 'runs', via: name };
      if (options.loads?.long?.includes(name) && (options.loads.when?.(eq < 0 ? (argv[i + 1] ?? '') : word.slice(eq + 1)) ?? true)) loads ??= name;
      if (options.elsewhere?.long?.includes(name)) elsewhere ??= name;
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
      if (options.loads?.short?.includes(letter) && (options.loads.when?.(last ? (argv[i + 1] ?? '') : word.slice(j + 1)) ?? true)) loads ??= `-${letter}`;
      if (options.elsewhere?.short?.includes(letter)) elsewhere ??= `-${letter}`;
      if (options.file?.short?.includes(letter) || options.value?.short?.includes(letter)) {
        if (options.file?.short?.includes(letter)) file = true;
        if (last) i += 1;
        break;
      }
      if (options.attached?.includes(letter)) break;
      if (options.digits?.includes(letter)) while (j + 1 < word.length && /[0-9]/.test(word[j + 1]!)) j += 1;
    }
  }
  return found(i);
}

function interpreter(program: string, argv: readonly string[], options: Options, stdin: boolean, commands?: { recipes: ReadonlySet<string>; builtins: ReadonlySet<string>; installs?: Installs }): RunsCode | null {
  const read = walk(argv, options);
  if (read.found === 'code') return codeReason(program, read.via);
  if (read.found === 'stdin') return stdinReason(program);
  if (read.found === 'runs') return filesReason(program, read.via);
  if (read.found !== 'operands') return null;
  const script = argv[read.at];
  // No script named, or `-`: the program comes from stdin.
  if (script === undefined || script === '-') return stdin ? stdinReason(program) : null;
  if (commands?.installs?.commands.has(script)) return installs(program, script, argv, commands.installs);
  if (commands?.builtins.has(script)) return null;
  if (commands?.recipes.has(script)) return filesReason(program, script);
  if (read.loads !== undefined) return loadsReason(program, script, read.loads);
  if (read.elsewhere !== undefined) return elsewhereReason(program, script, read.elsewhere);
  // Not knowing whether an option took the word read as the script, no one word can be bound.
  if (read.unsure) return { program, via: 'script', reason: `${program} runs the script it names; what it does is what that file holds when it runs: ${ONCE}` };
  return systemFile(script) ? null : scriptReason(program, script, read.at);
}

/**
 * java's options that load code besides its main class or jar (an agent, a
 * native library, classes ahead of its own) or run a command (`-XX:OnError`),
 * and a file of more options (`-XX:Flags=`, `-XX:VMOptionsFile=`).
 */
const JAVA_LOADS = ['-javaagent', '-agentpath', '-agentlib', '-Xbootclasspath', '--patch-module', '-XX:On', '-XX:Flags', '-XX:VMOptionsFile'];

/** java's first operand: a source file, or a jar after `-jar`, run as a script; else a class of its class path. Given none, it prints its usage. */
function java(program: string, argv: readonly string[], options: Options): RunsCode | null {
  const read = walk(argv, options);
  if (read.found === 'runs') return filesReason(program, read.via);
  if (read.found !== 'operands' || read.at >= argv.length) return null;
  const main = argv[read.at]!;
  const loads = argv.slice(1, read.at).find((word) => JAVA_LOADS.some((prefix) => word.startsWith(prefix)));
  if (loads !== undefined) return loadsReason(program, main, loads.replace(/[:=].*$/, ''));
  if (argv.slice(1, read.at).includes('-jar') || main.endsWith('.java')) return systemFile(main) ? null : scriptReason(program, main, read.at);
  return { program, via: 'class', reason: `${program} runs a class of its class path, from files on disk; what it does is what they hold when it runs: ${ONCE}` };
}

/** awk's program: given by option, else its first operand, else a file named with -f (which may change, as a script may). */
function awk(program: string, argv: readonly string[], options: Options): RunsCode | null {
  const read = walk(argv, options);
  if (read.found === 'code') return codeReason(program, read.via);
  if (read.found !== 'operands') return null;
  if (read.file) return programFile(program, argv, options) ?? scriptReason(program, '', null);
  if (read.at >= argv.length) return null;
  return { program, via: 'program text', reason: `${program} runs the program given as its first argument; ${SEE_NOT}` };
}

/** The first program file named with one of the file options (awk's `-f prog.awk`, `--file=prog.awk`; gdb's `-x cmds`), as a script; null when none is. */
function programFile(program: string, argv: readonly string[], options: Options): RunsCode | null {
  let first: { name: string; at: number | null } | undefined;
  // A second program file, or an option that loads code besides (gawk's `-i lib.awk`, cmake's `-C init.cmake`): the first is not all of it.
  let more: string | undefined;
  for (let i = 1; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') break;
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    const short = /^-[A-Za-z]/.test(word) && !word.startsWith('--') ? word[1]! : undefined;
    let named: { name: string; at: number | null } | undefined;
    if (options.file?.long?.includes(name)) named = eq < 0 ? { name: argv[i + 1] ?? '', at: i + 1 } : { name: word.slice(eq + 1), at: null };
    else if (short !== undefined && options.file?.short?.includes(short)) named = word.length === 2 ? { name: argv[i + 1] ?? '', at: i + 1 } : { name: word.slice(2), at: null };
    if (named !== undefined && first === undefined) first = named;
    else if (named !== undefined) more ??= short !== undefined ? `-${short}` : name;
    else if (options.loads?.long?.includes(name) || (short !== undefined && options.loads?.short?.includes(short))) more ??= short !== undefined ? `-${short}` : name;
  }
  if (first === undefined) return null;
  return more !== undefined ? loadsReason(program, first.name, more) : scriptReason(program, first.name, first.at);
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
  return programFile(program, argv, options);
}

/**
 * One of the subcommands or install commands among the operands before `--`
 * (global options may come first, and take values: `docker -H host run`);
 * with `stdin`, a `-` there; a subcommand of `inner`'s verdict is its
 * command's, where that has one.
 */
function subcommand(program: string, argv: readonly string[], family: Extract<Family, { kind: 'subcommand' }>, depth: number): RunsCode | null {
  const end = argv.indexOf('--');
  const words = argv.slice(1, end < 0 ? argv.length : end);
  // stdin first: `deno run -` reads its code from stdin, as it did before run was a subcommand of the table.
  if (family.stdin === true && words.includes('-')) return stdinReason(program);
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i]!;
    if (family.pairs?.get(word)?.has(words[i + 1] ?? '') === true) return { program, via: `${word} ${words[i + 1]!}`, reason: family.reason(program, `${word} ${words[i + 1]!}`) };
    if (family.subcommands.has(word)) {
      const own = { program, via: word, reason: family.reason(program, word) };
      if (!family.inner?.has(word)) return own;
      // Its command is the first word after it that is not an option (words[i] is argv[i + 1]).
      const at = argv.findIndex((w, j) => j > i + 1 && !w.startsWith('-'));
      const inner = at < 0 ? null : classify(argv.slice(at), depth + 1);
      // A script it runs is not all the run's code: the project's environment (a Gemfile, pyproject.toml's build) is loaded or built first, so no one file is named, and no grant bound to one could cover it.
      return inner !== null && inner.operand === undefined ? inner : own;
    }
    if (family.installs?.commands.has(word)) return installs(program, word, argv, family.installs);
  }
  const first = words.find((word) => !word.startsWith('-'));
  if (first === undefined && family.installs?.bare === true && !words.some((word) => EXITS.includes(word))) return installs(program, 'install', argv, family.installs);
  if (family.builtins === undefined || first === undefined || family.builtins.has(first)) return null;
  return { program, via: 'script', reason: family.reason(program, 'script') };
}

/**
 * A wrapper's command, after its options, its own operands and NAME=value
 * assignments, read in turn; `env -S STRING` and `flock FILE -c CMD` run a
 * string as a command.
 */
function wrapper(program: string, argv: readonly string[], family: Extract<Family, { kind: 'wrapper' }>, depth: number): RunsCode | null {
  const read = walk(argv, family.options);
  const code = (via: string) => (family.split === true ? { program, via, reason: `${program} splits the string given with ${via} into a command; Corral cannot see what runs` } : codeReason(program, via));
  if (read.found === 'code') return code(read.via);
  if (read.found !== 'operands') return null;
  let at = read.at + (family.operands ?? 0);
  const after = argv[at];
  if (after !== undefined && (family.options.code?.long?.includes(after) || (/^-[A-Za-z]$/.test(after) && family.options.code?.short?.includes(after[1]!) === true))) return code(after);
  while (at < argv.length && /^[^=]+=/.test(argv[at]!) && !argv[at]!.startsWith('-')) at += 1;
  if (at >= argv.length) return null;
  const inner = classify(argv.slice(at), depth + 1);
  // The file's index is in the wrapper's argv, not the command's it reads.
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

/**
 * sed whose script (each `-e`/`--expression`, else its first operand) runs a
 * command; else one whose script is a file (`-f x.sed`), which may hold the
 * `e` command, or be rewritten to, between runs: that file, as a script.
 */
function sed(program: string, argv: readonly string[]): RunsCode | null {
  const scripts: string[] = [];
  let fromOption = false;
  let operand: string | undefined;
  let file: { name: string; at: number | null } | undefined;
  // Script files named after the first: each runs as well.
  let files = 0;
  for (let i = 1; i < argv.length; i += 1) {
    const word = argv[i]!;
    if (word === '--') {
      operand ??= argv[i + 1];
      break;
    }
    if (word.startsWith('--expression')) {
      fromOption = true;
      scripts.push(word.includes('=') ? word.slice(word.indexOf('=') + 1) : (argv[(i += 1)] ?? ''));
    } else if (word.startsWith('--file')) {
      fromOption = true;
      const named = word.includes('=') ? { name: word.slice(word.indexOf('=') + 1), at: null } : { name: argv[i + 1] ?? '', at: (i += 1) };
      if (file !== undefined) files += 1;
      file ??= named;
    }
    else if (word === '--line-length') i += 1;
    else if (/^-[A-Za-z]/.test(word) && !word.startsWith('--')) {
      for (let j = 1; j < word.length; j += 1) {
        const letter = word[j]!;
        if (letter === 'e' || letter === 'f' || letter === 'l') {
          if (letter !== 'l') fromOption = true;
          const attached = j + 1 < word.length;
          const value = attached ? word.slice(j + 1) : (argv[(i += 1)] ?? '');
          if (letter === 'e') scripts.push(value);
          if (letter === 'f' && file !== undefined) files += 1;
          if (letter === 'f') file ??= { name: value, at: attached ? null : i };
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
  // `-f -` reads the script from stdin.
  if (file?.name === '-') return stdinReason(program);
  if (file !== undefined && files > 0) return loadsReason(program, file.name, '-f');
  return file === undefined || systemFile(file.name) ? null : scriptReason(program, file.name, file.at);
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
