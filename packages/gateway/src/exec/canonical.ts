// The canonical form of a `system.run`: what will actually run, so that the
// policy decision and any approval are about every program in it and never
// about a prefix. A shell wrapper (`sh -c '…'`) is looked through; `env`
// prefixes are unwrapped; a payload chaining commands with `|`, `;`, `&&`,
// `||`, `&` or a newline yields each of them; anything the analysis cannot
// see through (command substitution `$(…)`, backticks, process substitution,
// redirections, quoting it does not model, globs, comments, shell keywords and
// compound commands, builtins that run a string such as `trap`, shell options
// it does not know, a program that runs the command its arguments name, as
// `timeout` does or through a subcommand, as `bundle exec` and `uv run` do)
// is marked opaque, and an opaque run is denied. Git is
// read too (git.ts): a command handed to it (`rebase --exec CMD`) is one more
// command of the run, and one it could be told through a setting or its
// environment (`-c core.fsmonitor=CMD`, `GIT_SSH_COMMAND`) makes it opaque.
import { createHash } from 'node:crypto';
import { canonicalize } from '@corral/audit';
import { GatewayError } from '../errors.ts';
import { gitEnvReason, gitWhere, readGit } from './git.ts';
import { cut } from '../well-formed.ts';

/** A `system.run` request as the protocol carries it (SystemRunParams, the parts that decide what runs). */
export interface RunRequest {
  /** argv. */
  command: string[];
  cwd?: string | null;
  env?: Record<string, string>;
}

export interface CanonicalRun {
  /** The argv as sent (after `env` prefixes are moved into env). */
  argv: string[];
  cwd: string | null;
  /** Caller-set environment, keys sorted. */
  env: Record<string, string>;
  /** Every simple command that will run, in order, each as argv. */
  commands: string[][];
  /**
   * Present when a command of the run changes the working directory (`cd
   * DIR && make`): for each command of `commands`, every working directory it
   * may run in (`cwd` and each one a `cd` before it may have reached, as a cd
   * may fail), and for a command git is handed, each folder git may run it in
   * (gitFolders). Each command is decided in each of them. Absent, every
   * command runs in `cwd`.
   */
  cwds?: Array<Array<string | null>>;
  /**
   * The shells looked through to find them (`sh -c …`), outermost first:
   * they need no permit of their own, but a forbid on one denies the run.
   */
  wrappers: string[][];
  /** True when part of what would run cannot be determined (then only an explicit deny or a refusal applies). */
  opaque: boolean;
  /** Why it is opaque, for the log and the approver. */
  opaqueReason?: string;
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'busybox']);
/**
 * Shells whose ordinary builtins evaluate their arguments as arithmetic (zsh's
 * `printf %d NAME`, `shift NAME`, `exit NAME`; ksh's printf), where a
 * variable's value such as `a[$(cmd)]` runs cmd: a value read from a pipe or
 * the environment, which no word of the payload shows. Their payloads are
 * not looked through.
 */
const ARITHMETIC_SHELLS = new Set(['zsh', 'ksh', 'mksh']);
/**
 * Programs and shell builtins whose arguments name another program or hold
 * code to run (`trap 'rm -rf X' EXIT`), or that change what a name runs
 * (`alias`, `hash -p`, `enable -f`): deciding on them alone would decide nothing.
 */
const RUNNERS = new Set(['eval', 'exec', 'source', '.', 'command', 'builtin', 'trap', 'alias', 'hash', 'enable', 'fc', 'let', 'mapfile', 'readarray', 'bind', 'complete', 'compgen', 'noglob', 'nocorrect', 'sched', 'zpty', 'zmodload', 'autoload', 'emulate', 'xargs', 'nohup', 'nice', 'ionice', 'timeout', 'sudo', 'doas', 'su', 'runuser', 'setsid', 'stdbuf', 'chroot', 'unshare', 'nsenter', 'flock', 'watch', 'strace', 'ltrace', 'time', 'parallel', 'script', 'expect', 'busybox', 'pkexec', 'sg', 'newgrp', 'setpriv', 'chrt', 'taskset', 'prlimit', 'cgexec', 'firejail', 'systemd-run', 'valgrind', 'gdb', 'ssh', 'fish', 'csh', 'tcsh', 'pwsh',
  // Each runs the command its arguments name: `setarch x86_64 CMD`, `ssh-agent CMD`, `fakeroot CMD`, `capsh -- -c CMD`, `run-parts DIR`…
  'setarch', 'linux32', 'linux64', 'i386', 'x86_64', 'ssh-agent', 'dbus-run-session', 'dbus-launch', 'xvfb-run', 'fakeroot', 'faketime', 'eatmydata', 'torsocks', 'torify',
  'proxychains', 'proxychains4', 'tsocks', 'unbuffer', 'rlwrap', 'chronic', 'numactl', 'runcon', 'bwrap', 'capsh', 'run-parts', 'daemonize', 'start-stop-daemon', 'tini',
  'dumb-init', 'catchsegv', 'cpulimit', 'trickle', 'sshpass', 'schroot', 'sem', 'nq', 'tmux', 'screen', 'at', 'batch', 'entr', 'hyperfine', 'perf', 'envdir', 'chpst',
  'softlimit', 'setuidgid', 'setlock', 'toybox', 'lxc-attach', 'lxc-execute', 'ccache', 'distcc',
  // Package runners: each runs a command, or a package it may fetch, named in its arguments (`npx cowsay`, `uvx ruff`); nix-shell runs
  // shell.nix's shellHook and then a shell, or the command given with --run.
  'npx', 'pnpx', 'bunx', 'uvx', 'nix-shell',
  // zsh builtins that assign variables their arguments name in forms Corral does not read (`zparseopts a:=path`), or that run what a widget or socket is given.
  'zparseopts', 'vared', 'getln', 'zstyle', 'zformat', 'strftime', 'sysread', 'zstat', 'zregexparse', 'zle', 'zsocket', 'ztcp', 'private', 'float', 'integer',
  // bash's `jobs -x CMD ARGS` runs CMD.
  'jobs']);
/** How a program runs a command through a subcommand (SUBCOMMAND_RUNNERS). */
interface SubcommandRunner {
  /** Subcommands that run the command, or the package, named after them. */
  runs: ReadonlySet<string>;
  /** Subcommands that take another after them (`docker container exec`, `uv tool run`). */
  groups?: ReadonlySet<string>;
  /** A program's own commands, when any other first word is a command it runs (pnpm's). */
  builtins?: ReadonlySet<string>;
  /** Subcommands that fetch and run a package only when given one (`npm init vite` runs create-vite; `npm init -y` runs none). */
  given?: ReadonlySet<string>;
  /**
   * What a first word none of `builtins` runs besides a package.json script
   * of that name (`pnpm build`: the command build), and the spelling that
   * runs the script alone, which a refusal names instead (`pnpm run`);
   * `runs`, subcommands that run a script or else a command, as such a first
   * word does (`bun run X`), and given nothing list the scripts.
   */
  scripts?: { otherwise: string; instead: string; runs?: ReadonlySet<string> };
  /** A first word, or a word after one of `scripts.runs`, that names a file the program runs (`bun x.ts`), read as a script is, not as a command. */
  files?: RegExp;
  /**
   * Subcommands that exist only to start a program the program's settings
   * name, which a project's .npmrc may set to any (`npm edit PKG`: the
   * editor), or do so only with the word `after` following them (`npm
   * config edit`); what they start, and what to run instead.
   */
  starts?: ReadonlyMap<string, { after?: string; starts: string; instead: string }>;
}

/**
 * pnpm's commands that run no command their arguments name (those that run
 * package.json's scripts, as `npm test` does, among them), and its options
 * that only print. Any other first word is a command pnpm runs in the
 * project (`pnpm touch X`), as one it does not know yet would be.
 */
const PNPM_COMMANDS: ReadonlySet<string> = new Set(['add', 'audit', 'bin', 'c', 'config', 'dedupe', 'deploy', 'doctor', 'fetch', 'help', 'i', 'import', 'init', 'install', 'install-test', 'it', 'licenses', 'link', 'ln', 'list', 'ls', 'll', 'outdated', 'pack', 'patch', 'patch-commit', 'patch-remove', 'prune', 'publish', 'rb', 'rebuild', 'remove', 'rm', 'uninstall', 'un', 'root', 'run', 'run-script', 'start', 'store', 'test', 't', 'unlink', 'up', 'update', 'upgrade', 'why', '--version', '-v', '--help', '-h']);
/**
 * yarn's subcommands that run a command their arguments name anywhere on the
 * system (`exec`, `node`), a package they fetch (`dlx`, `create`), or a
 * command in each workspace named (`workspace`, `workspaces`). Any other
 * first word, and `yarn run X`, runs the package.json script of that name,
 * else a program of the project's dependencies (node_modules/.bin), never
 * one of the PATH: project code, as `npm run X` runs, decided on yarn and
 * shown to an approver as such (runs-code.ts).
 */
const YARN: SubcommandRunner = { runs: new Set(['exec', 'dlx', 'create', 'node', 'workspace', 'workspaces']) };
/**
 * bun's commands that run no command their arguments name (`bun test` runs
 * the project's test files, as `npm test` runs its scripts). Any other first
 * word runs the package.json script of that name, else the file, else a
 * program of node_modules/.bin or the PATH, as `bun run` does.
 */
const BUN_COMMANDS: ReadonlySet<string> = new Set(['test', 'repl', 'install', 'i', 'add', 'a', 'remove', 'rm', 'update', 'outdated', 'audit', 'link', 'unlink', 'publish', 'patch', 'patch-commit', 'pm', 'info', 'why', 'build', 'init', 'upgrade', 'completions', 'help', '--version', '-v', '--help', '-h', '--revision']);
/** npm's subcommands that exist only to start the editor its settings name (SubcommandRunner.starts), by every name npm reads as them. */
const NPM_EDITS = { starts: 'the editor', instead: "edit the package's files and run npm rebuild" };
const NPM_CONFIG_EDITS = { after: 'edit', starts: 'the editor', instead: 'edit the file, or use npm config set' };
const NPM_STARTS: ReadonlyMap<string, { after?: string; starts: string; instead: string }> = new Map([
  ...['edit', 'edi', 'ed'].map((word) => [word, NPM_EDITS] as const),
  ...['config', 'confi', 'conf', 'con', 'c'].map((word) => [word, NPM_CONFIG_EDITS] as const),
]);
/**
 * Programs that run a command their arguments name through one of their
 * subcommands (`bundle exec CMD`, `uv run CMD`, `npm exec CMD`, `docker exec
 * C CMD`): such a run is opaque, as a RUNNERS one is, and `bundle install`,
 * `uv sync`, `npm ci` stay what they are. None is read through as `env` is,
 * since each changes what the command's name runs: it puts a project's
 * programs first on PATH (.venv/bin, node_modules/.bin, the bundle's
 * binstubs, an activated conda or nix environment), so that `uv run rm` may
 * run the project's `rm`, never the system's a permit for rm admits; it
 * builds or fetches code first (`uv run` syncs the project, `npm exec` and
 * `pixi exec` fetch a package, `direnv exec` runs .envrc, `nix develop` a
 * shellHook); or it runs the command elsewhere (a container or a cluster,
 * as ssh runs it on another host). `cmake -E env` and `chdir` change the
 * environment or folder the command runs in. See `runningSubcommand` for
 * how the subcommand is found.
 */
const SUBCOMMAND_RUNNERS: Record<string, SubcommandRunner> = {
  bundle: { runs: new Set(['exec']) },
  // `uv tool run` is uvx.
  uv: { runs: new Set(['run']), groups: new Set(['tool']) },
  poetry: { runs: new Set(['run']) },
  pipenv: { runs: new Set(['run']) },
  pdm: { runs: new Set(['run']) },
  rye: { runs: new Set(['run']) },
  hatch: { runs: new Set(['run']), groups: new Set(['env']) },
  pipx: { runs: new Set(['run']) },
  conda: { runs: new Set(['run']) },
  mamba: { runs: new Set(['run']) },
  micromamba: { runs: new Set(['run']) },
  pixi: { runs: new Set(['run', 'exec']) },
  devbox: { runs: new Set(['run']) },
  // npm takes any unambiguous start of a command's name (or alias): `npm exe` is exec; `npm explore PKG -- CMD` runs CMD in the package's folder;
  // `npm init PKG` (create, innit, `npm cr`…) runs `npm exec create-PKG`.
  // `npm edit PKG` (`ed`, `edi`) and `npm config edit` (`c`, `con`…) start the editor and nothing else: with no terminal, an agent has no use for them.
  npm: { runs: new Set(['exec', 'exe', 'x', 'explore', 'explo', 'explor']), given: new Set(['init', 'ini', 'innit', 'inni', 'inn', 'create', 'creat', 'crea', 'cre', 'cr']), starts: NPM_STARTS },
  // pnpm runs a first word that is none of its commands as `pnpm exec` does (`pnpm touch X`): see PNPM_COMMANDS.
  pnpm: { runs: new Set(['exec', 'dlx', 'create']), builtins: PNPM_COMMANDS, scripts: { otherwise: 'the command', instead: 'pnpm run' } },
  yarn: YARN,
  // Debian's name for yarn.
  yarnpkg: YARN,
  // bun runs a first word none of its commands, and `bun run X`, as a script, a file or a program (BUN_COMMANDS); `bun create` (`c`) a package or template.
  bun: { runs: new Set(['x', 'exec', 'create', 'c']), builtins: BUN_COMMANDS, scripts: { runs: new Set(['run']), otherwise: 'the file, a dependency\'s program or the command', instead: 'npm run' }, files: /\/|\.(?:[cm]?[jt]s|[jt]sx|sh)$/ },
  // corepack runs the package manager it names, fetched at the version the project asks for.
  corepack: { runs: new Set(['npm', 'npx', 'pnpm', 'pnpx', 'yarn', 'yarnpkg']) },
  // `time` changes nothing, but is left opaque with the two that do rather than read by a rule of its own.
  cmake: { runs: new Set(['env', 'time', 'chdir']) },
  // `deno x PKG` runs a package, as npx does.
  deno: { runs: new Set(['x']) },
  // Version managers and toolchains: the command runs with the version's programs first on PATH.
  mise: { runs: new Set(['exec', 'x']) },
  rbenv: { runs: new Set(['exec']) },
  pyenv: { runs: new Set(['exec']) },
  nodenv: { runs: new Set(['exec']) },
  fnm: { runs: new Set(['exec']) },
  volta: { runs: new Set(['run']) },
  rustup: { runs: new Set(['run']) },
  stack: { runs: new Set(['exec']) },
  cabal: { runs: new Set(['exec']) },
  opam: { runs: new Set(['exec']) },
  // tox 4's `exec` (`e`) runs the command in a tox environment it builds first.
  tox: { runs: new Set(['exec', 'e']) },
  guix: { runs: new Set(['shell', 'environment']) },
  // `asdf env CMD UTIL` runs UTIL in CMD's environment.
  asdf: { runs: new Set(['exec', 'env']) },
  direnv: { runs: new Set(['exec']) },
  nix: { runs: new Set(['develop', 'shell', 'run']) },
  scl: { runs: new Set(['enable', 'run']) },
  docker: { runs: new Set(['exec', 'run', 'create']), groups: new Set(['container', 'compose']) },
  podman: { runs: new Set(['exec', 'run', 'create']), groups: new Set(['container', 'compose']) },
  nerdctl: { runs: new Set(['exec', 'run', 'create']), groups: new Set(['container', 'compose']) },
  'docker-compose': { runs: new Set(['exec', 'run']) },
  'podman-compose': { runs: new Set(['exec', 'run']) },
  kubectl: { runs: new Set(['exec', 'run', 'debug']) },
  oc: { runs: new Set(['exec', 'run', 'debug', 'rsh']) },
};
/** Builtins that change how the shell reads the commands after them (`shopt -s expand_aliases`, zsh's `setopt keyword`); `set` is read by `setting`. */
const READING_CHANGERS = new Set(['shopt', 'setopt', 'unsetopt']);
/** Options with which a program runs another one named in its arguments, or with which a bash builtin evaluates an argument as arithmetic (where `a[$(…)]` runs). */
const RUNNING_OPTIONS: Record<string, ReadonlySet<string>> = { find: new Set(['-exec', '-execdir', '-ok', '-okdir']), printf: new Set(['-v']), test: new Set(['-v']), '[': new Set(['-v']) };
/**
 * Build tools and task runners run the recipes of a file in their working
 * directory (approvals/runs-code.ts warns of them); with one of these words
 * they run a command named on their command line instead or besides: make's
 * `--eval` (`-E`, any start of it getopt reads: `$(shell CMD)`) and `SHELL=`
 * (what runs each recipe line), just's `--command` (`-c`), `--shell` and
 * `--chooser`, cargo's `--config` (`target.….runner`, `build.rustc-wrapper`),
 * go's `-exec`, `-toolexec` and `-vettool`, deno's `task --eval`.
 */
const MAKE_RUNNING = /^(?:--ev(?:al?)?(?:=|$)|-[A-Za-z]*E|(?:SHELL|MAKESHELL|\.SHELLFLAGS)=)/;
/** `name` and each of its starts down to `shortest` letters, as alternatives of a pattern: any one a parser reads as that option's name. */
const startsOf = (name: string, shortest: number): string => Array.from({ length: name.length - shortest + 1 }, (_, k) => name.slice(0, name.length - k)).join('|');
/**
 * npm's settings that name a program it starts, or a file that names one or
 * holds code it runs, given on its command line as npm_config_… gives them in
 * the environment (EXECUTION_ENV_PREFIXES): `npm config edit --editor=CMD`,
 * `npm help X --viewer=browser --browser=CMD`, `npm test --script-shell=CMD`,
 * `--node-options`, `--userconfig`, `--init-module`, `--git`; npm reads any
 * unambiguous start of an option's name (`--edit=CMD`).
 */
const NPM_PROGRAM_SETTINGS = [startsOf('editor', 2), startsOf('browser', 2), startsOf('viewer', 2), startsOf('script-shell', 8), startsOf('shell', 3), startsOf('node-options', 6), startsOf('node-gyp', 6), startsOf('userconfig', 4), startsOf('globalconfig', 7), startsOf('init-module', 6), 'git'];
/**
 * pnpm reads npm's settings from its .npmrc, and its own: `npm-path` (the npm
 * it runs to publish) and `use-node-version` (a Node.js it fetches to run
 * scripts with); on its command line as options, and any setting at all as
 * `--config.NAME=` (`pnpm test --config.script-shell=CMD`).
 */
const PNPM_PROGRAM_SETTINGS = [...NPM_PROGRAM_SETTINGS, startsOf('npm-path', 5), startsOf('use-node-version', 5)];
/** A command-line word that sets one of `settings`, as `--NAME` or `--NAME=VALUE`; with `config`, as `--config.NAME=VALUE` too. */
const settingWord = (settings: readonly string[], config = false): RegExp => new RegExp(`^--${config ? '(?:config\\.)?' : ''}(?:${settings.join('|')})(?:=|$)`);
/** Programs of RUNNING_WORDS whose words after `--` are their command's, never their own options. */
const OPTIONS_END_AT_DASHES: ReadonlySet<string> = new Set(['npm', 'pnpm']);
const RUNNING_WORDS: Record<string, RegExp> = {
  make: MAKE_RUNNING,
  npm: settingWord(NPM_PROGRAM_SETTINGS),
  pnpm: settingWord(PNPM_PROGRAM_SETTINGS, true),
  gmake: MAKE_RUNNING,
  just: /^(?:-[A-Za-z]*c|--command(?:=|$)|--shell(?:=|$|-)|--chooser(?:=|$))/,
  cargo: /^--config(?:=|$)/,
  go: /^--?(?:exec|toolexec|vettool)(?:=|$)/,
  deno: /^--eval(?:=|$)/,
};
/**
 * Programs whose option takes its value in the same word as well (`-vNAME`):
 * the shells' `printf -v NAME` (and zsh's `print -v NAME`) assigns NAME, so
 * `printf -vPATH /tmp/x; ls` runs /tmp/x/ls; any word starting so is opaque.
 */
const ATTACHED_RUNNING_OPTIONS: Record<string, string> = { printf: '-v', print: '-v' };
/**
 * The words with which iproute2's `ip` may run another command: `netns`
 * and `vrf` (whose `exec CMD` does), as any prefix ip reads for them (`net`,
 * `v`), and `-batch FILE` (whose lines may be `netns exec …`).
 */
const IP_RUNNING = /^(?:v|vr|vrf|net|netn|netns|--?b(?:a(?:t(?:ch?)?)?)?)$/;
/** Builtins that assign variables: an assignment can change what runs (`export PATH=…`), and bash evaluates a subscript (`a[…]`) as arithmetic. */
const DECLARERS = new Set(['export', 'declare', 'typeset', 'local', 'readonly']);
/**
 * Builtins that assign (or unset) the variables their arguments name, read from input or the shell (see
 * `assignment`): `unset PATH` leaves a shell started after it searching its own default path, the working
 * directory included, and bash evaluates `unset 'a[x]'`'s subscript, where x's value can run a command.
 */
const ASSIGNERS = new Set(['read', 'getopts', 'wait', 'unset']);
/**
 * Reserved words and compound-command syntax of POSIX sh, bash, ksh and zsh:
 * as the first word of a command they begin or continue a compound command
 * (`if true; then rm -rf X; fi`, `for i in 1; do rm X; done`), which Corral
 * does not model, so the run is opaque rather than decided on `then` or `do`
 * as if it were a program.
 */
const SHELL_KEYWORDS = new Set(['if', 'then', 'elif', 'else', 'fi', 'for', 'while', 'until', 'do', 'done', 'case', 'esac', 'in', 'select', 'function', 'coproc', 'time', '{', '}', '!', '[[', ']]', 'repeat', 'foreach', 'end', 'always']);
/**
 * Single-letter shell options that change neither what runs nor how the
 * payload is read, in every shell looked through; any other makes the run
 * opaque (`-i` reads startup files, `-k` turns later words into environment,
 * `-s` reads stdin, mksh's `-T NAME` takes the next word, so that in
 * `mksh -cT 'echo hi' 'rm X'` the payload is `rm X`; ksh's `-E` reads
 * ~/.kshrc; zsh's `-b` ends its options, so that in `zsh -b -c 'echo hi'`
 * `-c` is the script zsh runs, a file of that name in the working directory;
 * ksh93's `-P` makes a profile shell).
 */
const SHELL_FLAGS = new Set(['e', 'u', 'x', 'v', 'f', 'l', 'n', 'a', 'h', 'C']);
/** Values of `-o`/`+o` (and bash's `-O`/`+O`) that change neither what runs nor how the payload is read; any other makes the run opaque. */
const SHELL_OPTION_NAMES = new Set(['errexit', 'nounset', 'xtrace', 'verbose', 'noglob', 'noexec', 'pipefail', 'noclobber', 'allexport', 'posix', 'errtrace', 'functrace', 'physical', 'notify', 'hashall', 'extglob', 'nullglob', 'failglob', 'dotglob', 'globstar', 'nocaseglob', 'lastpipe', 'inherit_errexit']);
/** bash's long options that change neither what runs nor how the payload is read; any other (`--rcfile F`, `--init-file F`, …) makes the run opaque. */
const SHELL_LONG_OPTIONS = new Set(['--norc', '--noprofile', '--posix', '--login', '--noediting']);
/**
 * Environment variables that change which code a program runs: a search
 * path, a preloaded library, a startup file, a helper program, or where a
 * program reads a configuration that names one (`HOME` and `XDG_CONFIG_HOME`
 * hold `.gitconfig` and `.ssh/config`, whose `core.fsmonitor` or
 * `ProxyCommand` run a command of their choosing).
 */
const EXECUTION_ENV = new Set([
  'PATH', 'BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PROMPT_COMMAND', 'IFS', 'GCONV_PATH', 'HOME', 'XDG_CONFIG_HOME', 'ZDOTDIR',
  'NODE_OPTIONS', 'NODE_PATH', 'PYTHONSTARTUP', 'PYTHONPATH', 'PYTHONHOME', 'PYTHONWARNINGS', 'PYTHONBREAKPOINT', 'PERL5OPT', 'PERL5LIB', 'PERLLIB', 'PERL5DB', 'RUBYOPT', 'RUBYLIB', 'JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS',
  // An interpreter's startup file or options that load code besides the script (php.ini's auto_prepend_file, R's profiles, java's
  // -javaagent), or where Python takes its standard library or the compiled modules it runs in place of their sources.
  'NODE_REPL_EXTERNAL_MODULE', 'PYTHONPYCACHEPREFIX', 'PYTHONPLATLIBDIR', 'JDK_JAVA_OPTIONS', 'PHPRC', 'PHP_INI_SCAN_DIR', 'R_PROFILE', 'R_PROFILE_USER', 'R_ENVIRON', 'R_ENVIRON_USER',
  'PAGER', 'EDITOR', 'VISUAL', 'MANPAGER', 'LESSOPEN', 'LESSCLOSE', 'BROWSER', 'SSH_ASKPASS', 'SUDO_ASKPASS',
  // Options a program reads from its environment, with which it runs a command (`TAR_OPTIONS=--checkpoint-action=exec=CMD tar tf x.tar`,
  // `ZIPOPT='-T -TT CMD'`, `MAKEFLAGS=--eval=$(shell CMD)`, GOFLAGS=-toolexec=CMD), a startup file that names one (WGETRC's use_askpass),
  // the remote shell or connect program (RSYNC_RSH, RSYNC_CONNECT_PROG, CVS_RSH), the shell programs start (SHELL) or the compiler a build runs.
  'TAR_OPTIONS', 'ZIPOPT', 'ZIP', 'MAKEFLAGS', 'MFLAGS', 'GNUMAKEFLAGS', 'GOFLAGS', 'WGETRC', 'SYSTEMWGETRC', 'RSYNC_RSH', 'RSYNC_CONNECT_PROG', 'CVS_RSH', 'SHELL',
  'PYTHONUSERBASE', 'SYSTEMD_PAGER', 'SYSTEMD_EDITOR', 'CC', 'CXX', 'CPP', 'LD', 'AR', 'AS',
  // Debian's bash reads ~/.bashrc when it thinks sshd started it (SSH_CLIENT or SSH2_CLIENT set, SHLVL below 2), as a login shell reads
  // ~/.profile: a bash nested in a payload would run what the commands before it wrote there.
  'SSH_CLIENT', 'SSH2_CLIENT', 'SHLVL',
  // zsh's arrays tied to the search paths (`echo /tmp/x | read path; ls` runs /tmp/x/ls in zsh), and where it autoloads functions and modules.
  'path', 'fpath', 'FPATH', 'cdpath', 'module_path', 'MODULE_PATH',
  // Where a cd goes (see workingDirectories): CDPATH sends `cd x` elsewhere, PWD is what a logical `cd ..` starts from.
  'CDPATH', 'PWD', 'OLDPWD',
  // Where the C library finds locales: one of the caller's making can give any name (`en_US.UTF-8`) a character set that reads a shell payload otherwise (see LOCALE_ENV).
  'LOCPATH', 'LOCALE_ARCHIVE',
]);
/** Where git finds the repository whose configuration and hooks it runs (git.ts judges them inert at the top of a run, where the node sees them). */
const GIT_LOCATION_ENV = new Set(['GIT_DIR', 'GIT_CEILING_DIRECTORIES', 'GIT_DISCOVERY_ACROSS_FILESYSTEM']);
/**
 * The variables that choose the character set a shell reads its payload in.
 * In a multibyte set other than UTF-8 (Big5, GBK, Shift JIS) a byte Corral
 * reads as `\` or a quote can be the second half of a character: under
 * `LC_ALL=zh_TW.BIG5`, bash reads `echo 亡\' '` + newline + `touch X #'` as
 * echo and then touch, where Corral reads one echo. Only C, POSIX and UTF-8
 * locales are read as Corral reads them; any other value makes the run opaque.
 */
const LOCALE_ENV = new Set(['LC_ALL', 'LC_CTYPE', 'LANG']);
/** Locale names whose character set is ASCII or UTF-8 (`C`, `POSIX`, `C.UTF-8`, `en_US.utf8`, `de_DE.UTF-8@euro`), or empty (the default). */
const READABLE_LOCALE = /^(?:|C|POSIX|[A-Za-z]+(?:_[A-Za-z]+)?\.(?:UTF-8|utf8)(?:@[A-Za-z0-9]+)?)$/i;
/**
 * …and whole families of them: the loader's, bash's exported functions,
 * npm's and pnpm's (`pnpm_config_script_shell`), yarn's (`YARN_YARN_PATH`: a file yarn runs in its own place) and
 * bun's (`BUN_OPTIONS=--preload F`) settings, corepack's (`COREPACK_HOME`:
 * where the package manager it runs is kept), Lua's startup code, cargo's
 * (`CARGO_TARGET_…_RUNNER`) and the rustc wrapper. Git's (`GIT_SSH_COMMAND`, `GIT_PAGER`,
 * `GIT_CONFIG_COUNT` with `GIT_CONFIG_KEY_0=core.fsmonitor`) are judged by
 * git.ts: every `GIT_*` variable but those known to name no command.
 */
const EXECUTION_ENV_PREFIXES = ['LD_', 'DYLD_', 'BASH_FUNC_', 'NPM_CONFIG_', 'npm_config_', 'PNPM_CONFIG_', 'pnpm_config_', 'YARN_', 'yarn_', 'BUN_', 'COREPACK_', 'LUA_INIT', 'CARGO_', 'RUSTC'];
const MAX_ARGS = 4096;
const MAX_ARG_BYTES = 128 * 1024;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Canonicalizes a run request. Throws GATEWAY_PARAMS_INVALID for a request
 * that is not an argv of strings, has an empty program, or is too large.
 */
export function canonicalRun(request: RunRequest): CanonicalRun {
  const argv = snapshotArgv(request.command);
  const env = snapshotEnv(request.env);
  const cwd = request.cwd === undefined || request.cwd === null ? null : String(request.cwd);
  if (cwd?.isWellFormed() === false) throw new GatewayError('GATEWAY_PARAMS_INVALID', NOT_TEXT('cwd'));
  const unwrapped = unwrapEnv(argv, env);
  const expanded = expand(unwrapped.argv, 0);
  const folders = workingDirectories(expanded.commands, cwd, expanded.places);
  // The node moves to the folder by the kernel's reading, through symlinks, where `..` need not lead where its name says.
  const climbs = cwd !== null && cwd.split('/').includes('..') ? `the working directory ${cut(cwd, 80)}, whose .. the node follows through symlinks` : undefined;
  const opaqueReason = climbs ?? executionEnv(unwrapped.env) ?? expanded.opaqueReason ?? ('opaqueReason' in folders ? folders.opaqueReason : undefined);
  const cwds = 'cwds' in folders && folders.cwds !== undefined ? { cwds: folders.cwds } : {};
  return { argv: unwrapped.argv, cwd, env: sortKeys(unwrapped.env), commands: expanded.commands, ...cwds, wrappers: expanded.wrappers ?? [], opaque: opaqueReason !== undefined, ...(opaqueReason !== undefined ? { opaqueReason } : {}) };
}

/** Builtins that change the shell's working directory for the commands after them (zsh's `chdir` is its `cd`). */
const DIRECTORY_CHANGERS = new Set(['cd', 'chdir', 'pushd']);

/**
 * The working directories each command may run in, once a `cd DIR` (or
 * `pushd DIR`, zsh's `chdir DIR`) has run before it: the run's own, and every
 * folder a cd before it names, since a cd may fail (`cd /missing; rm -rf x`
 * runs rm where the run started) and a cd in a pipe or a nested shell does
 * not outlast it. Over-approximated: a command is decided in each. Opaque:
 * a cd whose folder Corral cannot tell: to the home folder (no operand, `~`
 * is opaque already), back (`cd -`, `pushd +1`), with options (`-P`), two
 * operands (zsh's `cd OLD NEW`). A relative cd from a working directory the
 * request does not give (as an absolute path) leads to one not known either
 * (null). `popd` returns to a folder already among them. A command git is
 * handed (`places`) runs where git puts it, from each of those (gitFolders),
 * and may run in the run's as well. Undefined `cwds` when no command changes the directory.
 */
function workingDirectories(commands: readonly string[][], cwd: string | null, places: ReadonlyArray<GitPlace[] | undefined> = []): { cwds?: Array<Array<string | null>> } | { opaqueReason: string } {
  if (!commands.some((argv) => DIRECTORY_CHANGERS.has(programName(argv[0]!))) && !places.some((p) => p !== undefined)) return {};
  const possible = new Set<string | null>([cwd]);
  const cwds: Array<Array<string | null>> = [];
  for (const [index, argv] of commands.entries()) {
    const own = new Set(possible);
    for (const place of places[index] ?? []) for (const from of [...own]) for (const to of gitFolders(from, place)) own.add(to);
    if (own.size > MAX_FOLDERS) return { opaqueReason: `${cut(programName(argv[0]!), 60)}, which may run in more working directories than Corral decides in` };
    cwds.push([...own]);
    // `./tool` after a cd, or handed to git, is another file than the one the request's folder holds, where the node looks for it (packages/node, sandbox-path.ts).
    if ((own.size > 1 || !own.has(cwd)) && argv[0]!.includes('/') && !argv[0]!.startsWith('/')) return { opaqueReason: `${cut(argv[0]!, 60)}, a program named relative to a working directory a cd or git before it changed` };
    if (!DIRECTORY_CHANGERS.has(programName(argv[0]!))) continue;
    const operands = argv.slice(1);
    const target = operands[0];
    if (operands.length !== 1 || target === undefined || target === '' || /^[-+]/.test(target)) {
      return { opaqueReason: `${programName(argv[0]!)} ${cut(operands.join(' '), 60)}, to a folder Corral cannot tell` };
    }
    for (const from of own) {
      // From a working directory the request does not give (as an absolute path), a relative cd leads to one not known either: decided, as the first command was, without one.
      possible.add(target.startsWith('/') ? joinPath('/', target) : from === null || !from.startsWith('/') ? null : joinPath(from, target));
    }
  }
  return { cwds };
}

/** The most working directories a command is decided in (each is a decision per spelling of its program): more make the run opaque. */
const MAX_FOLDERS = 64;

/**
 * The folders git may run a command it is handed in, when git is started in
 * `from` (null: not known) with `place` (gitWhere): the top of its work tree,
 * `--work-tree`'s folder when given, else the folder `-C` leads to or any
 * folder above it, whichever holds the repository (Corral does not look).
 * A relative folder from one not known is not known either (null).
 */
function gitFolders(from: string | null, place: GitPlace): Array<string | null> {
  const absolute = (base: string | null, to: string): string | null => (to.startsWith('/') ? joinPath('/', to) : base === null || !base.startsWith('/') ? null : joinPath(base, to));
  const folder = place.folder === '' ? from : absolute(from, place.folder);
  if (place.workTree !== undefined) return [folder, absolute(folder, place.workTree)];
  if (folder === null || !folder.startsWith('/')) return [folder, null];
  const above: string[] = [folder];
  for (let at = folder.lastIndexOf('/'); at > 0; at = folder.lastIndexOf('/', at - 1)) above.push(folder.slice(0, at));
  if (folder !== '/') above.push('/');
  return above;
}

/** `target` from `base` as the shell's logical cd resolves it: `..` drops the last folder named, `.` and empty parts nothing. */
function joinPath(base: string, target: string): string {
  const out: string[] = [];
  for (const part of (target.startsWith('/') ? target : `${base}/${target}`).split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return `/${out.join('/')}`;
}

/**
 * The script a run runs, as its node bound it by content (upstream's
 * systemRunPlan.mutableFileOperand): the argv word that names it, where it
 * leads (absolute, links resolved), the sha256 (hex) of what it holds.
 */
export interface FileOperand {
  argvIndex: number;
  path: string;
  sha256: string;
}

/**
 * The digest an approval is bound to: SHA-256 of the RFC 8785 canonical JSON
 * of principal, node, command name and what the command does: for a run, the
 * canonical run (argv, cwd, env, every command) and, for a run of one script
 * file, that file as its node bound it (`operand`: another content is
 * another action); for a named command, its snapshotted params. Any
 * difference in what would happen changes the digest. A run without an
 * operand digests as before there were any.
 */
export function actionDigest(action: { principal: string; nodeId: string; command: string; run: CanonicalRun; operand?: FileOperand } | { principal: string; nodeId: string; command: string; params: Record<string, unknown> }): string {
  const what = 'run' in action ? { argv: action.run.argv, cwd: action.run.cwd, env: action.run.env, commands: action.run.commands, opaque: action.run.opaque, ...(action.operand ? { mutableFileOperand: { argvIndex: action.operand.argvIndex, path: action.operand.path, sha256: action.operand.sha256 } } : {}) } : { params: action.params };
  const body = { principal: action.principal, nodeId: action.nodeId, command: action.command, ...what };
  return createHash('sha256').update(canonicalize(body), 'utf8').digest('hex');
}

/** A lone surrogate cannot be decided, digested or recorded (and would run as U+FFFD): the caller is told to send text. */
const NOT_TEXT = (what: string) => `${what} holds a lone UTF-16 surrogate, which is not text: send the characters meant, as UTF-8 text`;

function snapshotArgv(raw: unknown): string[] {
  if (!Array.isArray(raw) || raw.length === 0) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'command must be a non-empty argv');
  if (raw.length > MAX_ARGS) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'too many arguments');
  let bytes = 0;
  const out: string[] = [];
  for (const arg of raw) {
    if (typeof arg !== 'string') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'every argument must be a string');
    if (arg.includes('\0')) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'an argument contains NUL');
    if (!arg.isWellFormed()) throw new GatewayError('GATEWAY_PARAMS_INVALID', NOT_TEXT('an argument'));
    bytes += Buffer.byteLength(arg);
    out.push(arg);
  }
  if (bytes > MAX_ARG_BYTES) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the command line is too long');
  if (out[0] === '') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the program name is empty');
  return out;
}

function snapshotEnv(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'env must be an object of strings');
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!ENV_NAME.test(key) || typeof value !== 'string' || value.includes('\0')) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'env must map variable names to strings');
    if (!value.isWellFormed()) throw new GatewayError('GATEWAY_PARAMS_INVALID', NOT_TEXT(`env ${key}`));
    out[key] = value;
  }
  return out;
}

function sortKeys(env: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Why the environment makes a run opaque: it sets a variable that changes what
 * code runs. A value of undefined is one not known (`export NAME`). `inside`:
 * set inside a shell payload (a prefix, `export`, `read`), where the node,
 * which checks the repository git will read from the run's own environment,
 * does not see it either (GIT_LOCATION_ENV).
 */
function executionEnv(env: Record<string, string | undefined>, inside = false): string | undefined {
  for (const [name, value] of Object.entries(env)) {
    if (EXECUTION_ENV.has(name) || EXECUTION_ENV_PREFIXES.some((p) => name.startsWith(p))) return `the environment sets ${name}, which changes what runs`;
    if (inside && GIT_LOCATION_ENV.has(name)) return `${name} set inside a shell payload, where the node cannot check the repository (and its configuration and hooks) git will read`;
    if (LOCALE_ENV.has(name) && (value === undefined || !READABLE_LOCALE.test(value))) return `the environment sets ${name} to a locale whose characters Corral may not read as the shell does`;
    const git = gitEnvReason(name, value);
    if (git !== undefined) return git;
  }
  return undefined;
}

/** A program's file name: argv[0] without its directory (`rm` for `/bin/rm`, `./rm` or `rm`). */
export function programName(program: string): string {
  return program.slice(program.lastIndexOf('/') + 1);
}

/** The standard system directories, which only root can write. */
export const SYSTEM_DIRS: readonly string[] = ['/bin', '/sbin', '/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin'];

/**
 * Whether argv[0] names the system's own program of its name: a bare name
 * (found on the node's PATH, which a request cannot change) or a path in a
 * system directory (`/usr//bin/rm` and `/usr/./bin/rm` too; `..` is not
 * followed). Only such an `env` or shell is looked through: `/tmp/x/sh` is
 * whatever program was put there, and runs as itself.
 */
export function isSystemProgram(program: string): boolean {
  const slash = program.lastIndexOf('/');
  if (slash < 0) return true;
  const dir = program.slice(0, slash).replace(/\/(\.\/)+/g, '/').replace(/\/\.$/, '').replace(/\/{2,}/g, '/');
  return SYSTEM_DIRS.includes(dir);
}

/** `env [-i] [-u NAME] [NAME=value]… program args…` → program args…, with the assignments in env. Options it does not know make it opaque later (the env program stays argv[0]). */
function unwrapEnv(argv: string[], env: Record<string, string>): { argv: string[]; env: Record<string, string>; cleared?: true } {
  let current = argv;
  let vars = { ...env };
  let cleared = false;
  for (let depth = 0; depth < 8 && programName(current[0]!) === 'env' && isSystemProgram(current[0]!); depth += 1) {
    let i = 1;
    const next = { ...vars };
    let clear = false;
    for (; i < current.length; i += 1) {
      const arg = current[i]!;
      if (arg === '-i' || arg === '--ignore-environment' || arg === '-') clear = true;
      else if (arg === '--') {
        i += 1;
        break;
      } else if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(arg)) {
        const eq = arg.indexOf('=');
        next[arg.slice(0, eq)] = arg.slice(eq + 1);
      } else if (arg.startsWith('-')) return { argv: current, env: vars }; // an option we do not model: stays opaque
      // env takes every word with `=` for an assignment (`X+=1`, `a/b=1`, `BASH_FUNC_ls%%=…`), not for the program: stays opaque.
      else if (arg.includes('=')) return { argv: current, env: vars };
      else break;
    }
    if (i >= current.length) return { argv: current, env: vars, ...(cleared ? { cleared } : {}) };
    vars = clear ? Object.fromEntries(Object.entries(next).filter(([k]) => !(k in env) || next[k] !== env[k])) : next;
    cleared ||= clear;
    current = current.slice(i);
  }
  return { argv: current, env: vars, ...(cleared ? { cleared } : {}) };
}

/**
 * Where git runs a command it is handed, from where git itself runs (gitWhere):
 * a command handed to a git that another git was handed has one per git, outermost first.
 */
type GitPlace = { folder: string; workTree?: string };

/** The commands an argv will run; for each command a git hands over, where (`places`, parallel to `commands`; absent: none is). */
type Expanded = { commands: string[][]; places?: Array<GitPlace[] | undefined>; wrappers?: string[][]; opaqueReason?: string };

/** Every simple command an argv will run, looking through shell wrappers. */
function expand(argv: string[], depth: number): Expanded {
  const program = programName(argv[0]!);
  if (program === 'env' && isSystemProgram(argv[0]!)) return { commands: [argv], opaqueReason: 'an env wrapper with options Corral does not model' };
  if (SHELL_KEYWORDS.has(argv[0]!)) return { commands: [argv], opaqueReason: `a shell keyword or compound command (${argv[0]!}) Corral does not model` };
  if (RUNNERS.has(program)) return { commands: [argv], opaqueReason: `${program} runs other commands` };
  const subcommand = Object.hasOwn(SUBCOMMAND_RUNNERS, program) ? runningSubcommand(argv, SUBCOMMAND_RUNNERS[program]!) : undefined;
  if (subcommand !== undefined) return { commands: [argv], opaqueReason: subcommandReason(program, subcommand, argv, SUBCOMMAND_RUNNERS[program]!) };
  const running = RUNNING_OPTIONS[program];
  if (running && argv.some((a) => running.has(a))) return { commands: [argv], opaqueReason: `${program} runs other commands` };
  // npm and pnpm read no option after `--`: `npm test -- --browser=x` hands it to the script.
  const own = OPTIONS_END_AT_DASHES.has(program) && argv.includes('--') ? argv.slice(1, argv.indexOf('--')) : argv.slice(1);
  const named = RUNNING_WORDS[program] === undefined ? undefined : own.find((a) => RUNNING_WORDS[program]!.test(a));
  if (named !== undefined) return { commands: [argv], opaqueReason: `${program} ${cut(named, 40)} runs a command named on its command line, which Corral does not read through: permit that command and run it directly` };
  if (program === 'ip' && argv.slice(1).some((a) => IP_RUNNING.test(a))) return { commands: [argv], opaqueReason: 'ip netns exec, ip vrf exec and ip -batch run other commands' };
  const attached = ATTACHED_RUNNING_OPTIONS[program];
  if (attached !== undefined && argv.slice(1).some((a) => a.startsWith(attached))) return { commands: [argv], opaqueReason: `${program} ${attached} assigns a variable, which can change what runs` };
  if (program === 'git' || program.startsWith('git-') || program === 'scalar') return expandGit(argv, program, depth);
  if (DECLARERS.has(program)) {
    const reason = declaration(argv);
    return reason === undefined ? { commands: [argv] } : { commands: [argv], opaqueReason: reason };
  }
  if (READING_CHANGERS.has(program)) return { commands: [argv], opaqueReason: `${program}, which changes how the shell reads the commands after it` };
  if (program === 'set') {
    const reason = setting(argv);
    return reason === undefined ? { commands: [argv] } : { commands: [argv], opaqueReason: reason };
  }
  if (ASSIGNERS.has(program)) {
    const reason = assignment(argv);
    return reason === undefined ? { commands: [argv] } : { commands: [argv], opaqueReason: reason };
  }
  if (!SHELLS.has(program) || !isSystemProgram(argv[0]!)) return { commands: [argv] };
  if (depth > 4) return { commands: [argv], opaqueReason: 'shell wrappers nested too deep' };
  if (ARITHMETIC_SHELLS.has(program)) return { commands: [argv], opaqueReason: `a ${program} payload: its builtins evaluate arguments as arithmetic, where a variable's value can run a command` };
  const shell = shellPayload(argv);
  if ('opaqueReason' in shell) return { commands: [argv], opaqueReason: shell.opaqueReason };
  // A login shell reads ~/.profile and the like: inside a payload, the commands before it may have
  // written them (`printf … | tee ~/.profile; sh -lc 'echo hi'` runs what was written).
  if (depth > 0 && shell.login) return { commands: [argv], opaqueReason: 'a nested login shell, which reads startup files the commands before it could have written' };
  const split = splitShell(shell.payload);
  if (split.opaqueReason !== undefined) return { commands: [argv], opaqueReason: split.opaqueReason };
  const inner = expandEach(split.commands, depth + 1);
  if (inner.opaqueReason !== undefined) return inner;
  if (inner.commands.length === 0) return { commands: [argv], opaqueReason: 'an empty shell payload' };
  return { commands: inner.commands, ...(inner.places ? { places: inner.places } : {}), wrappers: [argv, ...(inner.wrappers ?? [])] };
}

/**
 * The subcommand with which `argv` runs another command (SUBCOMMAND_RUNNERS),
 * or undefined. It is the first word when that is not an option; after an
 * option, which may take the next word as its value (`uv --directory D run`,
 * `docker -H HOST exec`), or a group (`docker container exec`), any word
 * that is one counts, so that an option Corral does not model fails closed
 * (`npm --prefix x exec`, and `docker -D logs run` as well). For a program with
 * `builtins`, a first word that is none of them is the command it runs, an
 * option included. A `given` subcommand runs a package when any word after
 * it is not an option (`npm init vite`, not `npm init -y`).
 */
function runningSubcommand(argv: readonly string[], runner: SubcommandRunner): string | undefined {
  const first = argv[1];
  if (first === undefined) return undefined;
  const file = (word: string | undefined): boolean => word !== undefined && runner.files?.test(word) === true;
  // `yarn run` alone lists the scripts; `bun run x.ts` runs a file.
  if (runner.scripts?.runs?.has(first)) return argv[2] === undefined || file(argv[2]) ? undefined : first;
  if (runner.runs.has(first)) return first;
  const given = (at: number): boolean => runner.given?.has(argv[at]!) === true && argv.slice(at + 1).some((word) => !word.startsWith('-'));
  if (runner.given?.has(first)) return given(1) ? first : undefined;
  // Any later word, not only the next: an option may stand between (`npm config --location user edit`).
  const starts = (at: number): boolean => {
    const start = runner.starts?.get(argv[at]!);
    return start !== undefined && (start.after === undefined || argv.slice(at + 1).includes(start.after));
  };
  if (runner.starts?.has(first)) return starts(1) ? first : undefined;
  if (runner.builtins !== undefined) return runner.builtins.has(first) || file(first) ? undefined : first;
  if (!first.startsWith('-') && runner.groups?.has(first) !== true) return undefined;
  return argv.slice(2).find((word, k) => runner.runs.has(word) || given(k + 2) || starts(k + 2));
}

/**
 * Why a run through a subcommand is opaque. For a package.json script or a
 * command of that name (`pnpm build`, `yarn run build`), how to name the
 * script alone instead; for `npm init PKG`, the package it runs.
 */
function subcommandReason(program: string, subcommand: string, argv: readonly string[], runner: SubcommandRunner): string {
  const word = cut(subcommand, 40);
  const start = runner.starts?.get(subcommand);
  if (start !== undefined) {
    const named = `${program} ${word}${start.after === undefined ? '' : ` ${start.after}`}`;
    return `${named} only starts ${start.starts} ${program}'s settings name, any program a project's .npmrc sets, which Corral does not read through: ${start.instead}`;
  }
  if (runner.given?.has(subcommand)) {
    const operand = argv.slice(argv.indexOf(subcommand) + 1).find((w) => !w.startsWith('-'))!;
    // npm's rule for an unscoped name; a scoped one (`@s`, `@s/x`) becomes `@s/create` or `@s/create-x`.
    const initializer = operand.startsWith('@') ? '' : ` (create-${cut(operand, 40)})`;
    return `${program} ${word} ${cut(operand, 40)} fetches and runs an initializer package${initializer}, which Corral does not read through: permit the initializer's own command and run it directly; ${program} ${word} with options alone (-y) runs none`;
  }
  const scripts = runner.scripts;
  const named = scripts?.runs?.has(subcommand) === true;
  if (scripts === undefined || (runner.runs.has(subcommand) && !named)) return `${program} ${word} runs another command, which Corral does not read through`;
  const name = named ? cut(argv[argv.indexOf(subcommand) + 1]!, 40) : word;
  return `${program} ${named ? `${word} ${name}` : word} runs the package.json script of that name if there is one, else ${scripts.otherwise} ${name}, which Corral does not read through: name a script with ${scripts.instead} ${name}`;
}

/** The simple commands of a payload (or an argv another program runs), each with its `env` prefixes unwrapped and expanded in turn; the first opaque one ends it. */
function expandEach(simple: string[][], depth: number): Expanded {
  const commands: string[][] = [];
  const places: Array<GitPlace[] | undefined> = [];
  const wrappers: string[][] = [];
  for (const words of simple) {
    const unwrapped = unwrapEnv(words, {});
    // Inside a payload the command runs with no PATH (a shell then searches its own default, the working directory
    // included: `env -i bash -c deploy` runs ./deploy); at the top the node starts the program itself.
    const risky = unwrapped.cleared ? 'env -i inside a shell payload: what it starts runs with no PATH, and a shell then searches the working directory' : executionEnv(unwrapped.env, true);
    if (risky !== undefined) return { commands: [...commands, unwrapped.argv], opaqueReason: risky };
    const inner = expand(unwrapped.argv, depth);
    places.push(...inner.commands.map((_, k) => inner.places?.[k]));
    commands.push(...inner.commands);
    wrappers.push(...(inner.wrappers ?? []));
    if (inner.opaqueReason !== undefined) return { commands, opaqueReason: inner.opaqueReason };
  }
  return { commands, ...(places.some((p) => p !== undefined) ? { places } : {}), wrappers };
}

/**
 * Git and the commands handed to it (git.ts): git itself is a command of the
 * run, each command it is handed comes after it, read as `sh -c` reads a
 * payload; what git could be told to run otherwise makes the run opaque.
 */
function expandGit(argv: string[], program: string, depth: number): Expanded {
  const reading = readGit(argv, program);
  if ('opaqueReason' in reading) return { commands: [argv], opaqueReason: reading.opaqueReason };
  if (reading.runs.length === 0) return { commands: [argv] };
  if (depth > 4) return { commands: [argv], opaqueReason: 'commands handed to git nested too deep' };
  // Each command git is handed runs where git puts it (gitWhere), not where git was started.
  const where = gitWhere(argv, program);
  if ('opaqueReason' in where) return { commands: [argv], opaqueReason: where.opaqueReason };
  const commands: string[][] = [argv];
  const places: Array<GitPlace[] | undefined> = [undefined];
  const wrappers: string[][] = [];
  for (const run of reading.runs) {
    // The ssh git's transport runs: its argv as git builds it; the command it asks for runs on the remote host.
    if ('transport' in run) {
      commands.push(run.argv);
      places.push([where]);
      continue;
    }
    let simple: string[][];
    if ('argv' in run) simple = [run.argv];
    else {
      const split = splitShell(run.payload);
      if (split.opaqueReason !== undefined) return { commands, opaqueReason: `a command handed to git: ${split.opaqueReason}` };
      simple = split.commands;
    }
    const inner = expandEach(simple, depth + 1);
    places.push(...inner.commands.map((_, k) => [where, ...(inner.places?.[k] ?? [])]));
    commands.push(...inner.commands);
    wrappers.push(...(inner.wrappers ?? []));
    if (inner.opaqueReason !== undefined) return { commands, opaqueReason: inner.opaqueReason };
  }
  return { commands, places, wrappers };
}

/**
 * The `-c` payload of `sh [options] -c PAYLOAD [name [args…]]`, reading the
 * options as the shell does: a cluster (`-ec`, `-oc`) sets each letter, and
 * each `o`/`O` in it takes the next word as its argument, so in
 * `sh -oc noglob 'rm -rf X'` the payload is `rm -rf X`, not `noglob`. An
 * option Corral does not know, a script file or stdin, or options after the
 * cluster holding `c` make it opaque.
 */
function shellPayload(argv: string[]): { payload: string; login: boolean } | { opaqueReason: string } {
  let command = false;
  let login = false;
  let i = 1;
  for (; i < argv.length && !command; i += 1) {
    const arg = argv[i]!;
    if (arg.startsWith('--')) {
      if (SHELL_LONG_OPTIONS.has(arg)) {
        login ||= arg === '--login';
        continue;
      }
      return { opaqueReason: `the shell option ${cut(arg, 40)} (it may run a file, or Corral does not model it)` };
    }
    if (!/^[-+][A-Za-z]+$/.test(arg)) return { opaqueReason: 'a shell running a script or stdin' };
    for (const letter of arg.slice(1)) {
      if (letter === 'c' && arg[0] === '-') command = true;
      else if (letter === 'l' && arg[0] === '-') login = true;
      else if (letter === 'o' || letter === 'O') {
        i += 1;
        const name = argv[i];
        if (name === undefined || !SHELL_OPTION_NAMES.has(name)) return { opaqueReason: `the shell option ${arg[0]}${letter} ${cut(name ?? '', 40)} Corral does not model` };
      } else if (!SHELL_FLAGS.has(letter)) return { opaqueReason: `the shell option ${arg[0]}${letter} Corral does not model` };
    }
  }
  if (!command) return { opaqueReason: 'a shell running a script or stdin' };
  const payload = argv[i];
  if (payload === undefined) return { opaqueReason: 'a shell with no -c payload' };
  // The shell reads options after -c too: the payload is then not the next word.
  if (/^[-+]/.test(payload)) return { opaqueReason: 'shell options after -c' };
  return { payload, login };
}

/** Why an `export`/`declare`-like builtin is opaque: an option, an assignment that changes what runs, or a subscript bash evaluates as arithmetic. */
function declaration(argv: string[]): string | undefined {
  for (const arg of argv.slice(1)) {
    if (/^[-+]/.test(arg)) return `${argv[0]!} with options Corral does not model`;
    if (arg.includes('[')) return `${argv[0]!} with a subscript, which the shell evaluates`;
    const eq = arg.indexOf('=');
    // `NAME+=value` appends to NAME (bash, ksh, zsh): to an unset LD_PRELOAD it is `LD_PRELOAD=value`; what it appends to is not known.
    const risky = executionEnv(eq < 0 ? { [arg]: undefined } : arg[eq - 1] === '+' ? { [arg.slice(0, eq - 1)]: undefined } : { [arg.slice(0, eq)]: arg.slice(eq + 1) }, true);
    if (risky !== undefined) return risky;
  }
  return undefined;
}

/**
 * Why a `set` builtin is opaque: it sets an option that changes how the shell
 * reads the commands after it (`set -k` and `set -o keyword` make a later
 * `ls BASH_ENV=/dev/stdin` an assignment, not an argument), as the shell's own
 * options on its command line are read (SHELL_FLAGS, SHELL_OPTION_NAMES).
 * Words after `--`, or after the options, set the positional parameters.
 */
function setting(argv: string[]): string | undefined {
  for (let i = 1; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--' || arg === '-' || !/^[-+]/.test(arg)) return undefined;
    if (!/^[-+][A-Za-z]+$/.test(arg)) return `set ${cut(arg, 40)}, an option Corral does not model`;
    for (const letter of arg.slice(1)) {
      if (letter === 'o') {
        i += 1;
        // `set -o` alone lists the options.
        const name = argv[i];
        if (name !== undefined && !SHELL_OPTION_NAMES.has(name)) return `set ${arg[0]}o ${cut(name, 40)}, an option Corral does not model`;
      } else if (!SHELL_FLAGS.has(letter)) return `set ${arg[0]}${letter}, an option that changes how the shell reads what follows, or one Corral does not model`;
    }
  }
  return undefined;
}

/**
 * Why a builtin that assigns the variables its arguments name (`read NAME`,
 * `getopts OPTS NAME`, bash's `wait -p NAME`) is opaque: it names one that
 * changes what runs (`echo /tmp/x | read PATH; ls` runs /tmp/x/ls in zsh, or
 * bash with lastpipe). A name may follow an option letter in its word (`-aPATH`).
 */
function assignment(argv: string[]): string | undefined {
  for (const arg of argv.slice(1)) {
    for (const name of [arg, arg.replace(/^-[A-Za-z]/, '')]) {
      if (name.includes('[')) return `${argv[0]!} with a subscript, which the shell evaluates`;
      const risky = executionEnv({ [name]: undefined }, true);
      // The reason says "sets"; `unset PATH` changes what runs as much (a shell started after it searches its own default).
      if (risky !== undefined) return argv[0] === 'unset' ? `unset ${cut(name, 40)}, which changes what runs` : risky;
    }
  }
  return undefined;
}

/**
 * Splits a shell payload into simple commands on `;`, `&`, `|`, `&&`, `||`
 * and newlines, honouring single and double quotes and backslashes. Any
 * expansion or construct that could run something not written out as a word
 * (`$(…)`, backticks, `<(…)`, `$VAR`, redirections, subshells, braces,
 * heredocs, globs, comments, quoted substitution text) makes it opaque.
 * Shell keywords are words here; `expand` refuses them in command position.
 */
export function splitShell(payload: string): { commands: string[][]; opaqueReason?: string } {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let evaluable = false;
  // The last character added to the word unquoted, or '' when it was quoted: a tilde after an unquoted `=` or `:` expands.
  let bare = '';
  const endWord = (): void => {
    // Quoted `$(…)` or backticks that a builtin may evaluate again (bash evaluates `a[$(…)]` in arithmetic).
    if (inWord && (word.includes('$(') || word.includes('`'))) evaluable = true;
    if (inWord) words.push(word);
    word = '';
    inWord = false;
    bare = '';
  };
  const endCommand = (): void => {
    endWord();
    if (words.length > 0) commands.push(words);
    words = [];
  };
  for (let i = 0; i < payload.length; i += 1) {
    const c = payload[i]!;
    if (c === "'") {
      const close = payload.indexOf("'", i + 1);
      if (close < 0) return { commands, opaqueReason: 'an unterminated quote' };
      word += payload.slice(i + 1, close);
      inWord = true;
      bare = '';
      i = close;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < payload.length && payload[j] !== '"'; j += 1) {
        const d = payload[j]!;
        if (d === '$' || d === '`') return { commands, opaqueReason: 'an expansion inside double quotes' };
        if (d === '\\') {
          // Inside double quotes a backslash escapes only $ ` " \ and a newline; before anything else it stays.
          const e = payload[j + 1];
          if (e === '\n') j += 1;
          else if (e === '$' || e === '`' || e === '"' || e === '\\') {
            word += e;
            j += 1;
          } else word += d;
          continue;
        }
        word += d;
      }
      if (j >= payload.length) return { commands, opaqueReason: 'an unterminated quote' };
      inWord = true;
      bare = '';
      i = j;
    } else if (c === '\\') {
      if (payload[i + 1] === '\n') {
        i += 1;
        continue;
      }
      // A backslash that ends the payload quotes nothing and stays, as sh and bash keep it.
      word += i + 1 < payload.length ? payload[i + 1]! : '\\';
      inWord = true;
      bare = '';
      i += 1;
    } else if (c === '$' || c === '`') {
      return { commands, opaqueReason: c === '`' ? 'command substitution (backticks)' : 'a shell expansion ($…)' };
    } else if (c === ';' || c === '&' || c === '|' || c === '\n') {
      endCommand();
    } else if (c === ' ' || c === '\t') {
      endWord();
    } else if ('<>(){}'.includes(c)) {
      return { commands, opaqueReason: 'redirection, subshell or group in a shell payload' };
    } else if ((c === '*' || c === '?' || c === '[' || c === '~' || c === '#' || c === '!' || c === '=' || c === '-' || c === '%') && !inWord && words.length === 0) {
      return { commands, opaqueReason: 'a glob, comment, tilde, negation or zsh expansion in command position' };
    } else if (c === '#' && !inWord) {
      // A comment runs to the end of the line: a quote inside it would hide the next line from this splitter.
      return { commands, opaqueReason: 'a comment in a shell payload' };
    } else if (c === '*' || c === '?' || c === '[') {
      // What a glob expands to depends on the node's files: the argv that would run is not known.
      return { commands, opaqueReason: 'a glob in a shell payload' };
    } else if (c === '~' && (!inWord || bare === '=' || bare === ':')) {
      // `~`, `~user`, `a=~/x`, `PATH=a:~/b` expand to a home directory (bash does so in any word shaped as an assignment): `rm -rf ~` is not `rm -rf '~'`.
      return { commands, opaqueReason: 'a tilde expansion in a shell payload' };
    } else if (c === '=' && !inWord) {
      // zsh expands a word starting with `=` to the path of the program it names (`=ls` is /usr/bin/ls).
      return { commands, opaqueReason: 'a word starting with = (zsh expands it to a path)' };
    } else {
      word += c;
      inWord = true;
      bare = c;
    }
  }
  endCommand();
  if (evaluable) return { commands, opaqueReason: 'a quoted command substitution the shell may evaluate' };
  for (const command of commands) {
    // `NAME=value`, `NAME+=value` (bash, ksh, zsh), `a.b=value` (ksh93): the program is a later word. A program named with `=` is opaque too.
    if (command[0]!.includes('=')) return { commands, opaqueReason: 'a variable assignment prefix in a shell payload' };
  }
  return { commands };
}
