// What a git command line runs besides git. Git runs commands of the
// caller's choosing through its own arguments: handed over explicitly
// (`rebase --exec CMD`, `bisect run CMD`, `submodule foreach CMD`,
// `difftool -x CMD`, `grep -OCMD`, `merge-index CMD`), named by a setting given on the command
// line (`-c core.fsmonitor=CMD`, `-c alias.x='!CMD'`, `--config-env`,
// `clone --config`), by a transport (`ext::CMD`), by an option whose command
// runs on the other side of a local transport (`fetch --upload-pack=CMD`,
// `push --receive-pack=CMD`), or by a template folder whose hooks a clone
// runs (`clone --template=DIR`). A name that is not one of git's own
// commands (`git lfs`, `git x/y`) runs `git-<name>` from git's exec path, the
// PATH or the working directory, or an alias: it is handed back as that
// program. So is the ssh an ssh address makes git run (`clone git@host:r`,
// `fetch ssh://host/r`), as the argv git builds (see sshTransport). Opaque: a remote helper (`fetch foo::ADDRESS`, `foo://`) or a
// merge strategy (`merge -s foo`), which git finds the same way as
// `git-remote-foo` or `git-merge-foo`; a diff or merge tool, a browser or a
// manual viewer git picks from its configuration; gitk for a bare `bisect
// visualize` when a display is there; a pager for `grep -O`
// given no command; signing and verifying (`commit -S`, `tag -s`, `push
// --signed`, `verify-commit`, `log --show-signature`, `%G?`), which run gpg,
// gpgsm, ssh-keygen or whatever gpg.format and gpg.program name; and
// maintenance that schedules git to run later, outside governance
// (`maintenance start`, `scalar register`). Daemons git starts (`daemon
// --detach`, `credential-cache--daemon`, `fsmonitor--daemon start`) are git
// alone: they are git's own, and they end with the run, whose contained
// process tree is killed whole when its command ends (packages/contain: the
// run's PID namespace, whose every process the kernel kills once the first
// one ends, and its cgroups).
// Scalar, git's companion, is read with the same rules as git (its `-c`).
// A permit for `git` must not permit those.
//
// An explicit command is handed back to be decided as one more command of the
// run (the policy must permit it too); anything else that can name a command
// makes the run opaque. Settings are read against an allow-list of keys
// known to name no command (`user.name`, `color.ui`, `core.pager=cat`), not
// a list of dangerous ones: git has many keys whose value runs (any
// `filter.<driver>.clean`, `diff.<driver>.textconv`, `credential.helper`,
// `gpg.program`, `include.path` of a file that sets any of them) and gains
// more. Configuration git reads from files (the repository's, the user's) is
// the node's to check (packages/node, git-config.ts), and so are the hooks and
// aliases defined there.

import { cut } from '../well-formed.ts';

/** A command git would run, handed to it on its command line. */
export type GitRun =
  /** Run by a shell (`sh -c PAYLOAD`), or as one word. */
  | { payload: string }
  /** Run as this argv. */
  | { argv: string[] }
  /**
   * Run as this argv, built by git's ssh transport (`ssh … HOST "git-upload-pack 'PATH'"`):
   * decided as it is, not read again as a program that runs the command it is given, since
   * that command runs on the other machine and git allows no option through the address.
   */
  | { argv: string[]; transport: 'ssh' };

/** The commands a git command line runs besides git, or why that cannot be told. */
export type GitReading = { runs: GitRun[] } | { opaqueReason: string };

/** The characters that make git run a command through `sh -c` rather than execute it as one word (run-command.c). */
const SHELL_METACHARACTERS = /[|&;<>()$`\\"' \t\n*?[#~=%]/;

/** Configuration sections none of whose keys names a command, a file that could, or a program. */
const INERT_SECTIONS = new Set(['user', 'author', 'committer', 'color', 'advice', 'i18n', 'column']);
/** Configuration keys (`section.name`, lowercase) that name no command, file or program whatever their value. */
const INERT_KEYS = new Set([
  'core.quotepath', 'core.autocrlf', 'core.safecrlf', 'core.eol', 'core.filemode', 'core.ignorecase', 'core.abbrev', 'core.precomposeunicode',
  'init.defaultbranch', 'pull.rebase', 'pull.ff', 'merge.ff', 'merge.conflictstyle', 'merge.autostash', 'rebase.autostash', 'rebase.autosquash', 'rebase.updaterefs',
  'diff.algorithm', 'diff.renames', 'diff.colormoved', 'diff.noprefix', 'diff.mnemonicprefix', 'diff.relative', 'log.decorate', 'log.date', 'log.follow', 'log.abbrevcommit',
  'status.short', 'status.branch', 'status.showuntrackedfiles', 'fetch.prune', 'fetch.prunetags', 'push.default', 'push.autosetupremote', 'commit.verbose',
  'tag.sort', 'branch.sort', 'gc.auto', 'maintenance.auto', 'protocol.version',
]);
/** Git's reading of a boolean (config.c): true/yes/on, false/no/off, an integer, or empty. */
const BOOLEAN = /^(?:true|yes|on|false|no|off|-?\d+|)$/i;

/**
 * Whether git's configuration setting `key` (as `-c key[=value]`,
 * `--config-env` or `clone --config` gives it) is known to name no command,
 * file or program. `value` is null for a key with no `=` (git's boolean
 * true), undefined for one whose value is not known. Git reads the section and the last name of a
 * key in any case (`Core.FSMonitor` is `core.fsmonitor`).
 */
function inertSetting(key: string, value: string | null | undefined): boolean {
  const parts = key.split('.');
  const section = parts[0]!.toLowerCase();
  const name = parts.at(-1)!.toLowerCase();
  if (parts.length < 2 || name === '') return false;
  if (INERT_SECTIONS.has(section)) return true;
  if (parts.length !== 2) return false;
  const plain = `${section}.${name}`;
  if (INERT_KEYS.has(plain)) return true;
  // git runs no pager for an empty one or `cat` (pager.c), and no editor for `:` (editor.c).
  if (plain === 'core.pager') return value === '' || value === 'cat';
  if (section === 'pager') return value === null || (value !== undefined && (value === 'cat' || BOOLEAN.test(value)));
  if (plain === 'core.editor' || plain === 'sequence.editor') return value === ':';
  // An empty helper only clears the list of credential helpers.
  if (plain === 'credential.helper') return value === '';
  return false;
}

/** Why `-c TEXT` / `clone --config TEXT` (`key=value`, or `key` alone) may name a command, or undefined. Names the key only: a value may hold a secret. */
function settingReason(option: string, text: string): string | undefined {
  const eq = text.indexOf('=');
  const key = eq < 0 ? text : text.slice(0, eq);
  if (inertSetting(key, eq < 0 ? null : text.slice(eq + 1))) return undefined;
  return `${option} sets ${cut(key, 60)}, which Corral does not know to name no command`;
}

/**
 * Environment variables git reads that name no command, no file of
 * configuration and no program (their names); with values, those inert
 * only at that value. Any other `GIT_*` variable makes a run opaque
 * (`GIT_TRACE=FILE` too: it appends text naming the argv to a file of the
 * caller's choosing, such as a shell's startup file; `GIT_WORK_TREE` too: git
 * runs the commands it is handed there, in a folder an `export` or an `env`
 * prefix can set where Corral does not follow it, see gitWhere):
 * `GIT_SSH_COMMAND`, `GIT_PAGER=less`, `GIT_EDITOR`, `GIT_EXTERNAL_DIFF`,
 * `GIT_ASKPASS`, `GIT_CONFIG_*`, `GIT_ALLOW_PROTOCOL` and more run a
 * command or let one be named.
 */
const INERT_GIT_ENV = new Set([
  'GIT_AUTHOR_NAME', 'GIT_AUTHOR_EMAIL', 'GIT_AUTHOR_DATE', 'GIT_COMMITTER_NAME', 'GIT_COMMITTER_EMAIL', 'GIT_COMMITTER_DATE',
  'GIT_TERMINAL_PROMPT', 'GIT_OPTIONAL_LOCKS', 'GIT_MERGE_AUTOEDIT', 'GIT_ADVICE', 'GIT_FLUSH', 'GIT_CEILING_DIRECTORIES', 'GIT_DISCOVERY_ACROSS_FILESYSTEM',
  'GIT_LITERAL_PATHSPECS', 'GIT_GLOB_PATHSPECS', 'GIT_NOGLOB_PATHSPECS', 'GIT_ICASE_PATHSPECS', 'GIT_DIR', 'GIT_INDEX_FILE',
  'GIT_DEFAULT_HASH', 'GIT_NO_REPLACE_OBJECTS', 'GIT_REFLOG_ACTION', 'GIT_MERGE_VERBOSITY', 'GIT_PROGRESS_DELAY',
  'GIT_SSL_CAINFO', 'GIT_SSL_CAPATH', 'GIT_HTTP_USER_AGENT', 'GIT_HTTP_LOW_SPEED_LIMIT', 'GIT_HTTP_LOW_SPEED_TIME', 'GIT_LFS_SKIP_SMUDGE',
]);

/** Why the environment variable `name` set to `value` (undefined: not known) may make git run a command, or undefined; only `GIT_*` names are judged here. */
export function gitEnvReason(name: string, value: string | undefined): string | undefined {
  if (!name.startsWith('GIT_') || INERT_GIT_ENV.has(name)) return undefined;
  if (name === 'GIT_PAGER' && (value === '' || value === 'cat')) return undefined;
  if ((name === 'GIT_EDITOR' || name === 'GIT_SEQUENCE_EDITOR') && value === ':') return undefined;
  return `the environment sets ${name}, which git may read as a command or configuration Corral does not model`;
}

/** Git's own options that take the next argument as their value (git.c). */
const GLOBAL_WITH_VALUE = new Set(['-C', '--git-dir', '--work-tree', '--namespace', '--super-prefix', '--attr-source', '--shallow-file']);
/** Git's own options that change neither what runs nor which configuration is read beyond where the node checks. */
const GLOBAL_FLAGS = new Set([
  '-p', '--paginate', '-P', '--no-pager', '--no-replace-objects', '--no-lazy-fetch', '--no-optional-locks', '--no-advice', '--bare',
  '--literal-pathspecs', '--no-literal-pathspecs', '--glob-pathspecs', '--noglob-pathspecs', '--icase-pathspecs',
  '--exec-path', '--html-path', '--man-path', '--info-path', '-v', '--version', '-h', '--help',
]);
/**
 * Git's own commands: its built-ins (git 2.39 to 2.51) and the programs git
 * installs in its exec path, with git-svn and git-send-email. For any other
 * name git runs `git-<name>` from its exec path or the PATH (a name with a
 * slash: from the working directory), else an alias of its configuration
 * (git.c run_argv). Contrib commands that drive another program (`p4`,
 * `cvsimport`, `gui`) are not listed: they are decided as `git-<name>`.
 */
const GIT_COMMANDS = new Set([
  'add', 'am', 'annotate', 'apply', 'archive', 'backfill', 'bisect', 'bisect--helper', 'blame', 'branch', 'bugreport', 'bundle', 'cat-file', 'check-attr', 'check-ignore', 'check-mailmap',
  'check-ref-format', 'checkout', 'checkout--worker', 'checkout-index', 'cherry', 'cherry-pick', 'clean', 'clone', 'column', 'commit', 'commit-graph', 'commit-tree', 'config',
  'count-objects', 'credential', 'credential-cache', 'credential-cache--daemon', 'credential-store', 'describe', 'diagnose', 'diff', 'diff-files', 'diff-index', 'diff-pairs', 'diff-tree',
  'difftool', 'env--helper', 'fast-export', 'fast-import', 'fetch', 'fetch-pack', 'fmt-merge-msg', 'for-each-ref', 'for-each-repo', 'format-patch', 'fsck', 'fsck-objects',
  'fsmonitor--daemon', 'gc', 'get-tar-commit-id', 'grep', 'hash-object', 'help', 'hook', 'index-pack', 'init', 'init-db', 'interpret-trailers', 'last-modified', 'log', 'ls-files', 'ls-remote',
  'ls-tree', 'mailinfo', 'mailsplit', 'maintenance', 'merge', 'merge-base', 'merge-file', 'merge-index', 'merge-ours', 'merge-recursive', 'merge-recursive-ours', 'merge-recursive-theirs',
  'merge-subtree', 'merge-tree', 'mktag', 'mktree', 'multi-pack-index', 'mv', 'name-rev', 'notes', 'pack-objects', 'pack-redundant', 'pack-refs', 'patch-id', 'pickaxe', 'prune',
  'prune-packed', 'pull', 'push', 'range-diff', 'read-tree', 'rebase', 'receive-pack', 'reflog', 'refs', 'remote', 'remote-ext', 'remote-fd', 'repack', 'replace', 'replay', 'repo', 'rerere',
  'reset', 'restore', 'rev-list', 'rev-parse', 'revert', 'rm', 'send-pack', 'shortlog', 'show', 'show-branch', 'show-index', 'show-ref', 'sparse-checkout', 'stage', 'stash', 'status',
  'stripspace', 'submodule', 'submodule--helper', 'switch', 'symbolic-ref', 'tag', 'unpack-file', 'unpack-objects', 'update-index', 'update-ref', 'update-server-info', 'upload-archive',
  'upload-archive--writer', 'upload-pack', 'var', 'verify-commit', 'verify-pack', 'verify-tag', 'version', 'whatchanged', 'worktree', 'write-tree',
  'add--interactive', 'daemon', 'difftool--helper', 'filter-branch', 'http-backend', 'http-fetch', 'http-push', 'imap-send', 'instaweb', 'merge-octopus', 'merge-one-file', 'merge-resolve',
  'mergetool', 'quiltimport', 'remote-ftp', 'remote-ftps', 'remote-http', 'remote-https', 'request-pull', 'sh-i18n--envsubst', 'shell', 'subtree', 'web--browse', 'svn', 'send-email',
]);
/** Options with which `git help` only prints a list; with any other, or a page to show, it runs man, info or a browser. */
const HELP_LISTS = new Set([
  '-a', '--all', '-g', '--guides', '-c', '--config', '--user-interfaces', '--developer-interfaces', '--verbose', '--no-verbose',
  '--external-commands', '--no-external-commands', '--aliases', '--no-aliases',
]);
/** Subcommands that run code their options name, in ways Corral does not model: the run is opaque whatever follows. */
const OPAQUE_SUBCOMMANDS = new Map<string, string>(Object.entries({
  'filter-branch': 'evaluates the shell code its filters give',
  'send-email': 'runs the commands its options and settings name (--to-cmd, --sendmail-cmd, --smtp-server)',
  instaweb: 'runs the web server and browser its options name',
  'for-each-repo': 'runs a git command in each repository a setting lists',
  'submodule--helper': 'is the internal helper of git submodule',
  'bisect--helper': 'is the internal helper of git bisect',
  'remote-ext': 'runs the command its address names',
  shell: 'runs the programs of a folder in its home (git-shell-commands)',
  mergetool: 'runs the merge tool its configuration or --tool names',
  'difftool--helper': 'runs the diff tool or command its environment and configuration name',
  'web--browse': 'runs the browser its options or configuration name',
}));
/** Subcommands that reach a remote through a transport. */
const TRANSPORT_SUBCOMMANDS = new Set(['fetch', 'pull', 'clone', 'ls-remote', 'push', 'archive', 'fetch-pack', 'send-pack', 'upload-archive']);
/** Their long options whose value is a command git runs on the other side of the transport, which for a local one is this machine. */
const REMOTE_PROGRAM_OPTIONS = ['upload-pack', 'receive-pack'];
/** Subcommands that take an address, to reach now or to store for a later fetch (`remote add`, `submodule add`). */
const ADDRESS_SUBCOMMANDS = new Set([...TRANSPORT_SUBCOMMANDS, 'remote', 'submodule']);
/**
 * Transports git speaks itself or through a helper it installs
 * (transport.c): for any other `<name>::<address>` or `<scheme>://` git runs
 * `git-remote-<name>` from its exec path or PATH. Compared as spelled: git
 * reads `SSH://` as the helper git-remote-SSH.
 */
const GIT_TRANSPORTS = new Set(['http', 'https', 'ftp', 'ftps', 'git', 'ssh', 'git+ssh', 'ssh+git', 'file']);
/** `<name>::` or `<scheme>://` at the start of an argument or an option's value, as git reads a helper's name (is_urlschemechar). */
const HELPER_ADDRESS = /(?:^|=)([A-Za-z][A-Za-z0-9+.-]*)(::|:\/\/)/;
/** Subcommands whose `--exec` names the remote program (as --upload-pack or --receive-pack do). */
const EXEC_IS_REMOTE_PROGRAM = new Set(['push', 'send-pack', 'fetch-pack', 'ls-remote', 'archive', 'upload-archive']);

/**
 * Reads a git command line: `program` is argv[0]'s file name, `git` (by any
 * path) or a dashed `git-<subcommand>`. Returns the commands the line hands
 * git to run, or why what it runs cannot be told. Never throws.
 */
export function readGit(argv: readonly string[], program: string): GitReading {
  const args = program === 'git' || program === 'scalar' ? argv.slice(1) : [program.slice('git-'.length), ...argv.slice(1)];
  // The ext transport is `ext::CMD`, as an address or an option's value (`--url=ext::…`, `-c remote.x.url=ext::…`).
  if (args.some((a) => /^ext::|=ext::/i.test(a))) return { opaqueReason: 'a git ext:: address, which runs the command it names' };
  if (program === 'scalar') return scalar(args);
  let i = 0;
  let help = false;
  // The folder each `-C` moves to, from the run's working directory, as git joins them: '' for none.
  let folder = '';
  // The protocol version git asks for (protocol.c): 2 unless `-c protocol.version=N` says otherwise.
  let protocol = 2;
  if (program === 'git') {
    for (; i < args.length; i += 1) {
      const arg = args[i]!;
      if (!arg.startsWith('-')) break;
      if (arg === '--help' || arg === '-h') help = true;
      else if (arg === '-c') {
        i += 1;
        const reason = settingReason('git -c', args[i] ?? '');
        if (reason !== undefined) return { opaqueReason: reason };
        protocol = protocolSetting(args[i]!) ?? protocol;
      } else if (arg === '--config-env' || arg.startsWith('--config-env=')) {
        const text = arg === '--config-env' ? (args[++i] ?? '') : arg.slice('--config-env='.length);
        const key = text.slice(0, Math.max(0, text.lastIndexOf('=')));
        if (!inertSetting(key, undefined)) return { opaqueReason: `git --config-env sets ${cut(key, 60)} from the environment, which Corral does not know to name no command` };
      } else if (arg.startsWith('--exec-path=')) return { opaqueReason: 'git --exec-path= takes its subcommands from a folder of the caller\'s choosing' };
      else if (arg === '-C') {
        i += 1;
        folder = chdir(folder, args[i] ?? '');
      } else if (GLOBAL_WITH_VALUE.has(arg)) i += 1;
      else if (GLOBAL_FLAGS.has(arg) || [...GLOBAL_WITH_VALUE].some((o) => o.startsWith('--') && arg.startsWith(`${o}=`)) || arg.startsWith('--list-cmds=')) continue;
      else return { opaqueReason: `the git option ${cut(arg, 40)}, which Corral does not model` };
    }
  }
  const subcommand = args[i];
  if (subcommand === undefined) return { runs: [] };
  const rest = args.slice(i + 1);
  // `git --help X`, `git X --help` and `git help X` are `git help X` (git.c), which runs man, info or a browser.
  if (help || rest[0] === '--help' || (subcommand === 'help' && !rest.every((a) => HELP_LISTS.has(a)))) {
    return { opaqueReason: `git help ${cut(subcommand === 'help' ? rest.join(' ') : subcommand, 40)}, which shows a manual through the man, info or browser its configuration names` };
  }
  const opaque = OPAQUE_SUBCOMMANDS.get(subcommand);
  if (opaque !== undefined) return { opaqueReason: `git ${subcommand}, which ${opaque}` };
  if (program === 'git' && !GIT_COMMANDS.has(subcommand)) return { runs: [{ argv: [external(folder, subcommand), ...rest] }] };
  for (const arg of ADDRESS_SUBCOMMANDS.has(subcommand) ? rest : []) {
    const helper = HELPER_ADDRESS.exec(arg);
    // `http::` too is a helper's name (git-remote-http), which git installs; only `ssh://` and the like are spoken by git itself.
    if (helper !== null && !(GIT_TRANSPORTS.has(helper[1]!) && (helper[2] === '://' || /^(?:https?|ftps?)$/.test(helper[1]!)))) {
      return { opaqueReason: `git ${subcommand} with the address ${cut(helper[1]!, 40)}${helper[2]}, which runs git-remote-${cut(helper[1]!, 40)} from the node's PATH` };
    }
  }
  const strategy = strategyReason(subcommand, rest);
  if (strategy !== undefined) return { opaqueReason: strategy };
  const signing = signingReason(subcommand, rest);
  if (signing !== undefined) return { opaqueReason: signing };
  for (let j = 0; j < rest.length && TRANSPORT_SUBCOMMANDS.has(subcommand); j += 1) {
    const long = longOption(rest[j]!, EXEC_IS_REMOTE_PROGRAM.has(subcommand) ? [...REMOTE_PROGRAM_OPTIONS, 'exec'] : REMOTE_PROGRAM_OPTIONS);
    if (long !== undefined) return { opaqueReason: `git ${subcommand} --${long.name}, which names a program git runs` };
  }
  const ssh = sshTransport(subcommand, rest, protocol);
  if ('opaqueReason' in ssh) return ssh;
  const reading = readSubcommand(subcommand, rest);
  return 'opaqueReason' in reading || ssh.runs.length === 0 ? reading : { runs: [...ssh.runs, ...reading.runs] };
}

/**
 * Where git runs the commands it is handed, read from its own options:
 * `folder`, the folder its `-C` options lead to from the run's working
 * directory (each relative to the one before, '' for none), and `workTree`,
 * the folder `--work-tree` names (relative to `folder`), if any. Git moves to
 * the top of its work tree before it runs a command it is handed (`rebase
 * --exec` and `bisect run` run there, not where git was started): that is
 * `workTree` when given, else `folder` or a folder above it, whichever holds
 * the repository (canonical.ts decides in each). Opaque: a `-C` or
 * `--work-tree` with `..`, which git follows through symlinks, not by name as
 * Corral would. `program` is as readGit takes it. Never throws.
 */
export function gitWhere(argv: readonly string[], program: string): { folder: string; workTree?: string } | { opaqueReason: string } {
  let folder = '';
  let workTree: string | undefined;
  for (let i = 1; program === 'git' && i < argv.length && argv[i]!.startsWith('-'); i += 1) {
    const arg = argv[i]!;
    let named: string | undefined;
    if (arg === '-C') folder = chdir(folder, (named = argv[++i] ?? ''));
    else if (arg === '--work-tree') workTree = named = argv[++i] ?? '';
    else if (arg.startsWith('--work-tree=')) workTree = named = arg.slice('--work-tree='.length);
    else if (arg === '-c' || arg === '--config-env' || GLOBAL_WITH_VALUE.has(arg)) i += 1;
    if (named?.split('/').includes('..') === true) return { opaqueReason: `git ${arg.split('=')[0]!} ${cut(named, 60)}, a folder with .., which git follows through symlinks` };
  }
  return workTree === undefined ? { folder } : { folder, workTree };
}

/** What a git subcommand is handed to run, read from its own arguments. */
function readSubcommand(subcommand: string, rest: readonly string[]): GitReading {
  switch (subcommand) {
    case 'rebase':
      return explicit(subcommand, rest, 'exec', 'x', true);
    case 'difftool':
      return difftool(rest);
    case 'grep':
      return grep(rest);
    case 'maintenance':
      return maintenance(rest);
    case 'bisect':
      return bisect(rest);
    case 'merge-index':
      return mergeIndex(rest);
    case 'config':
      return config(rest);
    case 'submodule':
      return submodule(rest);
    case 'clone':
    case 'init':
      return cloneOrInit(subcommand, rest);
    case 'daemon':
      return rest.some((a) => a.startsWith('--access-hook')) ? { opaqueReason: 'git daemon --access-hook, which names a command it runs' } : { runs: [] };
    case 'svn':
      return rest.some((a) => longOption(a.replace(/^-(?!-)/, '--'), ['authors-prog']) !== undefined) ? { opaqueReason: 'git svn --authors-prog, which names a command it runs' } : { runs: [] };
    default:
      return { runs: [] };
  }
}

/**
 * A long option `--NAME[=VALUE]` whose NAME is one of `names` or a prefix of
 * one (git accepts an unambiguous abbreviation: `--exe=CMD`), with its
 * inline value if any.
 */
function longOption(arg: string, names: readonly string[]): { name: string; inline?: string } | undefined {
  if (!arg.startsWith('--') || arg.length === 2) return undefined;
  const body = arg.slice(2);
  const eq = body.indexOf('=');
  const given = eq < 0 ? body : body.slice(0, eq);
  const name = names.find((n) => given !== '' && n.startsWith(given));
  if (name === undefined) return undefined;
  return eq < 0 ? { name } : { name, inline: body.slice(eq + 1) };
}

/**
 * Each spelling in `rest` of an option: a short one, one of `letters`,
 * alone or in a cluster (`-S`, `-aS`, `-SKEY`) unless a letter before it is
 * one of `valueLetters`, whose value the rest of the cluster is; or a long
 * one, one of `longs` or an abbreviation (`--gpg`), but not a spelling in
 * `others`, another option's whole name. `inline` is what follows the option
 * in its word (after `=` for a long one), undefined when nothing does. Every
 * argument is read as a possible option, values of other options included:
 * one is never missed, at worst one too many is found.
 */
function findOptions(rest: readonly string[], longs: readonly string[], letters: string, valueLetters: string, others: readonly string[] = []): { spelling: string; inline?: string }[] {
  const found: { spelling: string; inline?: string }[] = [];
  for (const arg of rest) {
    const long = longOption(arg, longs);
    if (long !== undefined && !others.includes(arg.split('=')[0]!.slice(2))) found.push({ spelling: `--${long.name}`, ...(long.inline !== undefined ? { inline: long.inline } : {}) });
    if (letters === '' || !/^-[^-]/.test(arg)) continue;
    for (let at = 1; at < arg.length; at += 1) {
      const letter = arg[at]!;
      if (letters.includes(letter)) {
        found.push({ spelling: `-${letter}`, ...(at + 1 < arg.length ? { inline: arg.slice(at + 1) } : {}) });
        break;
      }
      if (valueLetters.includes(letter) || !/[A-Za-z0-9]/.test(letter)) break;
    }
  }
  return found;
}

/**
 * Subcommands whose options sign (`-S`, `--gpg-sign`, `tag -s`, `-u`, `push
 * --signed`) or verify (`--verify-signatures`, `tag -v`): their short
 * letters, the short options whose value is the rest of a cluster (so that
 * `commit -mSave` is a message), and other options a long one's abbreviation
 * must not be read as (`merge --verify`, its hooks).
 */
const SIGNING_OPTIONS = new Map<string, { longs: string[]; letters: string; valueLetters: string; others?: string[] }>(Object.entries({
  commit: { longs: ['gpg-sign'], letters: 'S', valueLetters: 'mFcCtuM' },
  merge: { longs: ['gpg-sign', 'verify-signatures'], letters: 'S', valueLetters: 'sXmF', others: ['verify'] },
  pull: { longs: ['gpg-sign', 'verify-signatures'], letters: 'S', valueLetters: 'rsXjo', others: ['verify'] },
  rebase: { longs: ['gpg-sign'], letters: 'S', valueLetters: 'CxrsX' },
  'cherry-pick': { longs: ['gpg-sign'], letters: 'S', valueLetters: 'mX' },
  revert: { longs: ['gpg-sign'], letters: 'S', valueLetters: 'mX' },
  am: { longs: ['gpg-sign'], letters: 'S', valueLetters: 'Cp' },
  'commit-tree': { longs: ['gpg-sign'], letters: 'S', valueLetters: 'pmF' },
  tag: { longs: ['sign', 'local-user', 'verify'], letters: 'suv', valueLetters: 'mFn' },
  push: { longs: ['signed'], letters: '', valueLetters: '' },
  'send-pack': { longs: ['signed'], letters: '', valueLetters: '' },
}));
/** Subcommands that always verify (`verify-commit`, `verify-tag`), or may sign or verify as their input says (`fast-import`: `option git signed-commits=sign-if-invalid`). */
const SIGNING_SUBCOMMANDS = new Set(['verify-commit', 'verify-tag', 'fast-import']);
/** A pretty format's placeholder that verifies a commit's signature (`%G?`, `%GK`; pretty.c), or ref-filter's atom (`%(signature)`). */
const SIGNATURE_PLACEHOLDER = /%G|%\(signature/;

/**
 * Why a subcommand signs or verifies a signature, or undefined. Git runs the
 * program of gpg.format (openpgp, x509, ssh) and gpg.program or
 * gpg.<format>.program, with gpg.ssh.defaultKeyCommand and the key
 * user.signingKey names: settings of configuration files Corral cannot read
 * (the node refuses only files the sandbox could have written), so the
 * program is not known and the run is opaque. On git's command line these
 * settings, and those that sign or verify (commit.gpgSign, tag.gpgSign,
 * push.gpgSign, log.showSignature, merge.verifySignatures), are not known to
 * name no command (`inertSetting`). Read on the command line: a subcommand's
 * options (`SIGNING_OPTIONS`), one that always does (`SIGNING_SUBCOMMANDS`),
 * `--show-signature` (revision.c, exact) and a placeholder that verifies in
 * an option's value (`--format=%G?`, `--format %(signature)`).
 */
function signingReason(subcommand: string, rest: readonly string[]): string | undefined {
  const why = 'which runs the signing program its configuration names (gpg, gpgsm or ssh-keygen by gpg.format, or gpg.program), which Corral cannot read';
  if (SIGNING_SUBCOMMANDS.has(subcommand)) return `git ${subcommand}, which may sign or verify, ${why}`;
  const options = SIGNING_OPTIONS.get(subcommand);
  // `push --signed=no` (git's false: no, false, off, 0, or empty) does not sign.
  const found = options === undefined ? [] : findOptions(rest, options.longs, options.letters, options.valueLetters, options.others);
  const signs = found.find((o) => !(o.spelling === '--signed' && /^(?:no|false|off|0*)$/i.test(o.inline ?? 'yes')));
  if (signs !== undefined) return `git ${subcommand} ${signs.spelling}, which signs or verifies, ${why}`;
  if (rest.includes('--show-signature')) return `git ${subcommand} --show-signature, which verifies, ${why}`;
  const format = rest.find((a, j) => SIGNATURE_PLACEHOLDER.test(a) && (a.startsWith('--') || (rest[j - 1]?.startsWith('--') === true && !rest[j - 1]!.includes('='))));
  if (format !== undefined) return `git ${subcommand} with a format that shows a signature's check, which verifies, ${why}`;
  return undefined;
}

/** git grep's short options that take a value: the rest of a cluster, else the next argument. */
const GREP_VALUE_LETTERS = 'efABCm';

/**
 * `git grep -O[CMD]`: a command given is handed back as `explicit` reads it;
 * `-O` or `--open-files-in-pager` given none runs the pager of GIT_PAGER,
 * core.pager, PAGER or less, with or without a terminal (grep.c,
 * git_pager), which Corral cannot read: opaque. The value of `-e PATTERN`
 * and the like is not an option.
 */
function grep(rest: readonly string[]): GitReading {
  for (let j = 0; j < rest.length; j += 1) {
    const arg = rest[j]!;
    const option = findOptions([arg], ['open-files-in-pager'], 'O', GREP_VALUE_LETTERS)[0];
    if (option !== undefined && option.inline === undefined) {
      return { opaqueReason: 'git grep -O with no command, which opens the files in the pager its configuration or environment names (core.pager, GIT_PAGER, PAGER)' };
    }
    // A cluster ending in an option that takes a value (`-e`, `-ie`) takes the next argument, even one that starts with -.
    const cluster = /^-([A-Za-z]+)$/.exec(arg);
    if (option === undefined && cluster !== null && [...cluster[1]!].findIndex((c) => GREP_VALUE_LETTERS.includes(c)) === cluster[1]!.length - 1) j += 1;
  }
  return explicit('grep', rest, 'open-files-in-pager', 'O', false, true);
}

/** The folder git is in after `-C to` from `folder` ('' for the run's working directory): an empty one stays, an absolute one replaces (git.c, chdir). */
function chdir(folder: string, to: string): string {
  if (to === '') return folder;
  const trimmed = to.replace(/(?<=.)\/+$/, '');
  return to.startsWith('/') || folder === '' ? trimmed : `${folder.replace(/\/$/, '')}/${trimmed}`;
}

/**
 * The program git runs for a name that is not its own: `git-<name>` from its
 * exec path or the PATH, whatever `-C` says; a name with a slash is a path,
 * taken from the folder `-C` moved to (`git -C dir x/y` runs dir/git-x/y).
 */
function external(folder: string, name: string): string {
  return name.includes('/') && folder !== '' ? `${folder.replace(/\/$/, '')}/git-${name}` : `git-${name}`;
}

/**
 * The commands a subcommand is handed by a long option (`--exec CMD`,
 * `--exec=CMD`, an abbreviation) or its short letter (`-x CMD`, `-xCMD`, in
 * a cluster `-ix CMD`), each a shell payload. `separate` says whether the
 * value may be the next argument (else it is only inline: an optional
 * value); `appends`, whether git runs it with arguments after it (`CMD
 * "$@"`). Every argument is read as a possible option, values of other
 * options included: a command is never missed, at worst one too many is
 * asked about.
 */
function explicit(subcommand: string, rest: readonly string[], long: string, short: string, separate: boolean, appends = false): GitReading {
  const runs: GitRun[] = [];
  for (const value of optionValues(rest, long, short, separate)) {
    const reason = payloadReason(value, appends);
    if (reason !== undefined) return { opaqueReason: `git ${subcommand} --${long} ${reason}` };
    runs.push({ payload: value });
  }
  return { runs };
}

/**
 * The values given to an option as `explicit` reads them: `--LONG VALUE`,
 * `--LONG=VALUE`, an abbreviation, `-S VALUE`, `-SVALUE`, in a cluster
 * (`-aS VALUE`) unless a letter before it is one of `valueLetters`, options
 * whose value the rest of the cluster is. `short` is '' for an option with
 * no short letter. Every argument is read as a possible option.
 */
function optionValues(rest: readonly string[], long: string, short: string, separate: boolean, valueLetters = ''): string[] {
  const values: string[] = [];
  for (let j = 0; j < rest.length; j += 1) {
    const arg = rest[j]!;
    let value: string | undefined;
    const option = longOption(arg, [long]);
    if (option !== undefined) value = option.inline ?? (separate ? rest[j + 1] : undefined);
    else if (short !== '' && /^-[A-Za-z]/.test(arg) && !arg.startsWith('--')) {
      const at = arg.indexOf(short);
      const before = arg.slice(1, at);
      // Letters before it are flags of the cluster; the rest of the cluster is its value, else the next argument.
      if (at > 0 && /^[A-Za-z]*$/.test(before) && ![...before].some((c) => valueLetters.includes(c))) value = at + 1 < arg.length ? arg.slice(at + 1) : separate ? rest[j + 1] : undefined;
    }
    if (value !== undefined) values.push(value);
  }
  return values;
}

/** Merge strategies git has built in; for any other name git runs `git-merge-<name>` from its exec path or PATH (merge.c, sequencer.c). */
const MERGE_STRATEGIES = new Set(['ort', 'recursive', 'resolve', 'octopus', 'ours', 'subtree']);
/** Subcommands that take a merge strategy: its short letter ('' for `--strategy` alone) and the short options whose value is the rest of a cluster. */
const STRATEGY_OPTIONS = new Map<string, { short: string; valueLetters: string }>(Object.entries({
  merge: { short: 's', valueLetters: 'mFXS' },
  pull: { short: 's', valueLetters: 'XS' },
  rebase: { short: 's', valueLetters: 'xXSC' },
  'cherry-pick': { short: '', valueLetters: '' },
  revert: { short: '', valueLetters: '' },
}));

/** Why a subcommand's merge strategy (`-s NAME`, `--strategy=NAME`) is not git's own, or undefined. */
function strategyReason(subcommand: string, rest: readonly string[]): string | undefined {
  const options = STRATEGY_OPTIONS.get(subcommand);
  if (options === undefined) return undefined;
  const name = optionValues(rest, 'strategy', options.short, true, options.valueLetters).find((s) => !MERGE_STRATEGIES.has(s));
  return name === undefined ? undefined : `git ${subcommand} --strategy ${cut(name, 40)}, which runs git-merge-${cut(name, 40)} from the node's PATH`;
}

/**
 * Why a command git hands to `sh -c` as `CMD "$@"` (or evaluates with
 * arguments after it) cannot be read as CMD alone: a newline (a rebase todo
 * line of its own), or a trailing backslash (it would escape what git adds).
 * When git `appends` arguments (the paths of `grep -O`, difftool's `$LOCAL
 * $REMOTE`), a blank command or one ending in `;`, `&` or `|` runs them as a
 * command of their own: the first path, a file of the repository, would run.
 */
function payloadReason(payload: string, appends = false): string | undefined {
  if (payload.includes('\n') || payload.includes('\r')) return 'with a newline in its command';
  if (/(?:^|[^\\])(?:\\\\)*\\$/.test(payload)) return 'with a command ending in a backslash';
  if (appends && payload.trim() === '') return 'with a blank command, so that the first path git appends runs as the command';
  if (appends && /[;&|]\s*$/.test(payload)) return 'with a command ending in ;, & or |, so that the paths git appends run as a command of their own';
  return undefined;
}

/**
 * `git difftool` runs the diff tool its configuration, `--tool` or a guess
 * names, unless `-x`/`--extcmd` names a command: the run is opaque without
 * one. Read as difftool's parser reads (parse-options keeping unknown options
 * for git diff, which turns abbreviations off): only whole spellings before
 * `--` count, in a cluster only after `-g`, `-d` or `-y`, `-t` takes a value,
 * and `--no-extcmd` takes the command back. The commands asked about are all
 * `explicit` finds, which include these.
 */
function difftool(rest: readonly string[]): GitReading {
  let extcmd: string | undefined;
  for (let j = 0; j < rest.length; j += 1) {
    const arg = rest[j]!;
    const cluster = /^-([gdy]*)([tx])(.*)$/s.exec(arg);
    if (arg === '--') break;
    if (arg === '--tool-help') return { runs: [] };
    if (arg === '--extcmd') extcmd = rest[++j];
    else if (arg.startsWith('--extcmd=')) extcmd = arg.slice('--extcmd='.length);
    else if (arg === '--no-extcmd') extcmd = undefined;
    else if (arg === '--tool') j += 1;
    else if (cluster !== null) {
      const value = cluster[3] !== '' ? cluster[3] : rest[++j];
      if (cluster[2] === 'x') extcmd = value;
    }
  }
  if (extcmd === undefined) return { opaqueReason: 'git difftool, which runs the diff tool its configuration or --tool names (only -x names the command it runs)' };
  return explicit('difftool', rest, 'extcmd', 'x', true, true);
}

/** `git maintenance start` schedules git to run later (cron, systemd, launchd), outside any sandbox and outside governance; `register` adds the repository to what it runs in. */
function maintenance(rest: readonly string[]): GitReading {
  const action = rest.find((a) => a === 'start' || a === 'register');
  return action === undefined ? { runs: [] } : { opaqueReason: `git maintenance ${action}, which schedules git to run later, outside governance` };
}

/** Scalar subcommands that start no maintenance and run nothing of the caller's choosing. */
const SCALAR_INERT = new Set(['list', 'unregister', 'delete', 'run', 'diagnose', 'help', 'version']);
/** Scalar subcommands that start git's maintenance (`git maintenance start`) for a repository. */
const SCALAR_MAINTAINED = new Set(['register', 'clone', 'reconfigure']);

/**
 * `scalar [-C DIR] [-c KEY=VALUE] SUBCOMMAND …` (scalar.c): its `-c` is
 * git's and read as such, stuck to its value too (`-cKEY=VALUE`); any other
 * option, a subcommand that starts maintenance, and one Corral does not know
 * make the run opaque.
 */
function scalar(args: readonly string[]): GitReading {
  let i = 0;
  for (; i < args.length && args[i]!.startsWith('-'); i += 1) {
    const arg = args[i]!;
    if (arg.startsWith('-c')) {
      const reason = settingReason('scalar -c', arg === '-c' ? (args[++i] ?? '') : arg.slice(2));
      if (reason !== undefined) return { opaqueReason: reason };
    } else if (arg === '-C') i += 1;
    else if (!arg.startsWith('-C')) return { opaqueReason: `the scalar option ${cut(arg, 40)}, which Corral does not model` };
  }
  const subcommand = args[i];
  if (subcommand === undefined || SCALAR_INERT.has(subcommand)) return { runs: [] };
  if (SCALAR_MAINTAINED.has(subcommand)) return { opaqueReason: `scalar ${subcommand}, which schedules git to run later, outside governance` };
  return { opaqueReason: `scalar ${cut(subcommand, 40)}, which Corral does not model` };
}

/**
 * `git bisect run CMD [ARGS…]` runs CMD with ARGS (each quoted, so one argv);
 * `bisect view|visualize` with a program or git command of the caller's
 * choosing is opaque, and so is one given nothing, which runs gitk when the
 * environment names a display (DISPLAY, which a container policy can grant)
 * and gitk is on the PATH (bisect.c).
 */
function bisect(rest: readonly string[]): GitReading {
  const [action, ...args] = rest;
  if (action === 'run') {
    const command = args[0] === '--' ? args.slice(1) : args;
    if (command.length === 0) return { runs: [] };
    if (command[0]!.startsWith('-')) return { opaqueReason: 'git bisect run with options Corral does not model' };
    return { runs: [{ argv: command }] };
  }
  if ((action === 'view' || action === 'visualize') && args.length === 0) return { opaqueReason: `git bisect ${action}, which runs gitk when its environment names a display` };
  if ((action === 'view' || action === 'visualize') && !args[0]!.startsWith('-')) return { opaqueReason: `git bisect ${action} ${cut(args[0]!, 40)}, which runs that program or git command` };
  return { runs: [] };
}

/** Options of `git config` that take the next argument as their value. */
const CONFIG_WITH_VALUE = new Set(['-f', '--file', '--blob', '-t', '--type', '--default', '--comment', '--value', '--url']);
/** Options and (git 2.46) subcommands of `git config` that read, remove, or take no key. */
const CONFIG_READS = new Set(['--get', '--get-all', '--get-regexp', '--get-urlmatch', '--get-color', '--get-colorbool', '-l', '--list', '--unset', '--unset-all', '--remove-section', 'get', 'list', 'unset', 'remove-section']);
/** Options of `git config` that say where or how, not what. */
const CONFIG_FLAGS = new Set([
  '--global', '--system', '--local', '--worktree', '--replace-all', '--add', '--fixed-value', '--bool', '--int', '--bool-or-int', '--path', '--expiry-date', '--no-type',
  '-z', '--null', '--name-only', '--includes', '--no-includes', '--show-origin', '--show-scope', '--all', '--regexp', '--append',
]);

/**
 * `git config KEY VALUE` (and `--add`, `--replace-all`, `set`) writes a
 * setting a later git reads: one not known to name no command is opaque, as
 * it would be on git's own command line (`git config core.fsmonitor CMD`
 * today, `git status` tomorrow). Reads and removals are git alone; renaming a
 * section (which can turn `user.x.clean` into `filter.x.clean`), the editor,
 * and options Corral does not model are opaque.
 */
function config(rest: readonly string[]): GitReading {
  const positional: string[] = [];
  let reads = false;
  for (let j = 0; j < rest.length; j += 1) {
    const arg = rest[j]!;
    if (CONFIG_WITH_VALUE.has(arg)) j += 1;
    else if ([...CONFIG_WITH_VALUE].some((o) => o.startsWith('--') && arg.startsWith(`${o}=`))) continue;
    else if (CONFIG_READS.has(arg)) reads = true;
    else if (CONFIG_FLAGS.has(arg)) continue;
    else if (arg.startsWith('-') || arg === 'rename-section' || arg === 'edit') return { opaqueReason: `git config ${cut(arg, 40)}, which Corral does not model` };
    else positional.push(arg);
  }
  if (positional[0] === 'set') positional.shift();
  const [key, value] = positional;
  if (reads || key === undefined || value === undefined) return { runs: [] };
  return inertSetting(key, value) ? { runs: [] } : { opaqueReason: `git config sets ${cut(key, 60)}, which Corral does not know to name no command, for a later git to read` };
}

/** `git merge-index [-o] [-q] PROGRAM …` runs PROGRAM for each file; read as a payload, which covers it run as one word too. */
function mergeIndex(rest: readonly string[]): GitReading {
  let j = 0;
  while (rest[j] === '-o' || rest[j] === '-q') j += 1;
  const program = rest[j];
  if (program === undefined) return { runs: [] };
  const reason = payloadReason(program);
  return reason === undefined ? { runs: [{ payload: program }] } : { opaqueReason: `git merge-index ${reason}` };
}

/** `git submodule … foreach [--recursive] [--quiet] [--] CMD…`: one argument is a shell payload; several are an argv whose first word git gives the shell when it has shell characters. */
function submodule(rest: readonly string[]): GitReading {
  const at = rest.indexOf('foreach');
  if (at < 0) return { runs: [] };
  let j = at + 1;
  while (j < rest.length && ['--recursive', '-q', '--quiet'].includes(rest[j]!)) j += 1;
  if (rest[j] === '--') j += 1;
  const command = rest.slice(j);
  if (command.length === 0) return { runs: [] };
  if (command[0]!.startsWith('-')) return { opaqueReason: 'git submodule foreach with options Corral does not model' };
  if (command.length === 1) {
    const reason = payloadReason(command[0]!);
    return reason === undefined ? { runs: [{ payload: command[0]! }] } : { opaqueReason: `git submodule foreach ${reason}` };
  }
  if (SHELL_METACHARACTERS.test(command[0]!)) return { opaqueReason: 'git submodule foreach with a first word git hands to the shell' };
  return { runs: [{ argv: command }] };
}

/** `git clone` and `git init`: a template folder (whose hooks a clone runs) makes the run opaque; clone's `--config`/`-c` settings are read as git's own `-c`. */
function cloneOrInit(subcommand: string, rest: readonly string[]): GitReading {
  for (let j = 0; j < rest.length; j += 1) {
    const arg = rest[j]!;
    if (longOption(arg, ['template']) !== undefined) return { opaqueReason: `git ${subcommand} --template, which takes hooks from a folder of the caller's choosing` };
    if (subcommand !== 'clone') continue;
    if (/^-[A-Za-z]*u/.test(arg) && !arg.startsWith('--')) return { opaqueReason: 'git clone -u, which names a program git runs' };
    let setting: string | undefined;
    const config = longOption(arg, ['config']);
    if (config !== undefined) setting = config.inline ?? rest[j + 1];
    else if (/^-[A-Za-z]*c/.test(arg) && !arg.startsWith('--')) {
      const at = arg.indexOf('c');
      setting = at + 1 < arg.length ? arg.slice(at + 1) : rest[j + 1];
    }
    if (setting === undefined) continue;
    const reason = settingReason('git clone --config', setting);
    if (reason !== undefined) return { opaqueReason: reason };
  }
  return { runs: [] };
}

// Git's ssh transport (connect.c git_connect, fill_ssh_args). An address
// `ssh://[user@]host[:port]/path` (or `git+ssh://`, `ssh+git://`), or one
// in scp's form `[user@]host:path` (a colon before any slash: url.c
// url_is_local_not_ssh), makes git run
// `ssh [-o SendEnv=GIT_PROTOCOL] [-4|-6] [-p PORT] [user@]host "PROGRAM 'PATH'"`,
// PROGRAM being git-upload-pack (fetch, pull, clone, ls-remote, fetch-pack,
// submodule add, remote add -f), git-receive-pack (push, send-pack) or
// git-upload-archive (archive --remote). That ssh is handed back as an argv,
// decided as a command of its own: a permit for git does not cover ssh, and a
// policy can permit or forbid ssh to a host by its argv. `-o
// SendEnv=GIT_PROTOCOL` is there when git speaks protocol version 1 or 2:
// version 2 by default, which git falls back from to 0 for anything but
// git-upload-pack; `-c protocol.version=N` on the command line is read.
//
// The argv is the one git builds with none of core.sshCommand, ssh.variant,
// protocol.version, url.<base>.insteadOf set in a configuration file (and no
// GIT_SSH, GIT_SSH_COMMAND, GIT_SSH_VARIANT: any other GIT_* variable makes
// the run opaque, gitEnvReason). Those files can change the program, its
// options or the address; Corral does not read them, and the node refuses a
// run whose git configuration the sandbox could have written
// (packages/node, git-config.ts), so what they set is the operator's.
//
// A remote named by its name (`git fetch origin`, `git push`, `git pull`,
// `git remote update`, `git remote show origin`, `git submodule update`, a
// relative submodule address `../x.git`, fetches of submodules) reaches the
// address its configuration stores, which the command line does not show:
// nothing is handed back for it, and it is decided as git alone. Its address
// is in the repository's configuration, which the node checks is not
// sandbox-writable; `git remote add` and `set-url` only store an address
// (nothing runs then), and an address they store is read as any other on
// their command line (a remote helper's is opaque), but ssh to it is not
// handed back when a later `git fetch NAME` runs it. A policy that must
// bound where ssh goes therefore has to bound git's remotes as well.
//
// An address form Corral does not read as git does is opaque: one with `%`
// (git decodes it), brackets (`[host:port]`), an empty path, or a host or
// path starting with `-` (git refuses those). A scp-like word that may be
// the repository or may be the value of an option Corral does not know is
// opaque too. `clone host:path` when a local folder `host:path` exists is a
// local clone (clone.c): ssh is handed back all the same, one command more
// for the policy to permit.

/** The program git asks the other side to run, by subcommand (transport.c, builtin/archive.c). */
const SSH_REMOTE_PROGRAMS = new Map<string, string>(Object.entries({
  fetch: 'git-upload-pack', pull: 'git-upload-pack', clone: 'git-upload-pack', 'ls-remote': 'git-upload-pack', 'fetch-pack': 'git-upload-pack',
  push: 'git-receive-pack', 'send-pack': 'git-receive-pack', archive: 'git-upload-archive', submodule: 'git-upload-pack', remote: 'git-upload-pack',
}));

/**
 * How a subcommand's options read (parse-options): long options and short
 * letters that take the next argument as their value; flags; optional
 * letters whose value is only the rest of their cluster (`-rmerges`). A long
 * option or letter in neither list may or may not take the next argument:
 * both readings are followed.
 */
interface OptionSyntax { values: string[]; flags: string[]; valueLetters: string; flagLetters: string; optionalLetters?: string }

const FETCH_VALUES = ['upload-pack', 'jobs', 'depth', 'shallow-since', 'shallow-exclude', 'deepen', 'recurse-submodules-default', 'refmap', 'server-option',
  'negotiation-restrict', 'negotiation-tip', 'negotiation-include', 'filter', 'submodule-prefix'];
const FETCH_FLAGS = ['all', 'set-upstream', 'append', 'atomic', 'multiple', 'tags', 'prefetch', 'prune', 'prune-tags', 'recurse-submodules', 'dry-run', 'porcelain',
  'write-fetch-head', 'keep', 'update-head-ok', 'progress', 'unshallow', 'refetch', 'update-shallow', 'negotiate-only', 'auto-maintenance', 'auto-gc',
  'show-forced-updates', 'write-commit-graph', 'stdin', 'force', 'quiet', 'verbose', 'ipv4', 'ipv6'];
/** The option syntax of each subcommand whose first positional argument is the address it reaches (builtin/*.c, git 2.51). */
const TRANSPORT_SYNTAX = new Map<string, OptionSyntax>(Object.entries({
  fetch: { values: FETCH_VALUES, flags: FETCH_FLAGS, valueLetters: 'jo', flagLetters: 'amtpPkufqvn46' },
  pull: {
    values: [...FETCH_VALUES.filter((v) => v !== 'jobs'), 'strategy', 'strategy-option'],
    flags: [...FETCH_FLAGS, 'jobs', 'rebase', 'stat', 'summary', 'compact-summary', 'log', 'signoff', 'squash', 'commit', 'edit', 'ff', 'ff-only', 'verify',
      'verify-signatures', 'autostash', 'gpg-sign', 'allow-unrelated-histories'],
    valueLetters: 'osX', flagLetters: 'atpkfqvn46', optionalLetters: 'jrS',
  },
  push: {
    values: ['repo', 'receive-pack', 'exec', 'push-option', 'recurse-submodules'],
    flags: ['all', 'branches', 'mirror', 'delete', 'tags', 'dry-run', 'porcelain', 'force', 'force-with-lease', 'force-if-includes', 'set-upstream', 'progress',
      'prune', 'verify', 'follow-tags', 'signed', 'atomic', 'thin', 'quiet', 'verbose', 'ipv4', 'ipv6'],
    valueLetters: 'o', flagLetters: 'dnfuqv46',
  },
  clone: {
    values: ['jobs', 'template', 'reference', 'reference-if-able', 'origin', 'branch', 'revision', 'upload-pack', 'depth', 'shallow-since', 'shallow-exclude',
      'separate-git-dir', 'ref-format', 'config', 'server-option', 'bundle-uri', 'filter'],
    flags: ['progress', 'reject-shallow', 'checkout', 'bare', 'mirror', 'local', 'hardlinks', 'shared', 'recursive', 'recurse-submodules', 'dissociate',
      'single-branch', 'tags', 'shallow-submodules', 'also-filter-submodules', 'remote-submodules', 'sparse', 'quiet', 'verbose', 'ipv4', 'ipv6'],
    valueLetters: 'jobuc', flagLetters: 'nlsqv46',
  },
  'ls-remote': { values: ['upload-pack', 'exec', 'server-option', 'sort'], flags: ['tags', 'branches', 'heads', 'refs', 'get-url', 'exit-code', 'symref', 'quiet'], valueLetters: 'o', flagLetters: 'tbhq' },
  'send-pack': {
    values: ['receive-pack', 'exec', 'remote', 'push-option'],
    flags: ['all', 'mirror', 'dry-run', 'force', 'signed', 'progress', 'thin', 'atomic', 'stateless-rpc', 'stdin', 'helper-status', 'force-with-lease', 'verbose', 'quiet'],
    valueLetters: '', flagLetters: 'fnqv',
  },
  // fetch-pack reads each option as one word (`--depth=N`).
  'fetch-pack': { values: [], flags: [], valueLetters: '', flagLetters: '' },
  // `submodule add` (after `submodule [--quiet]`), which clones the address.
  submodule: { values: ['branch', 'name', 'reference', 'ref-format', 'depth'], flags: ['force', 'quiet', 'progress', 'dissociate', 'single-branch'], valueLetters: 'b', flagLetters: 'fq' },
  // `remote add` (after `remote [-v]`), whose -f fetches from the address at once.
  remote: { values: ['track', 'master'], flags: ['fetch', 'tags', 'mirror', 'verbose'], valueLetters: 'tm', flagLetters: 'fv' },
}));

/** The protocol version `-c KEY=VALUE` sets when KEY is protocol.version (0, 1 or 2), else undefined. */
function protocolSetting(text: string): number | undefined {
  const match = /^protocol\.version=([012])$/i.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/**
 * The words that may be a subcommand's `n`th positional argument (from 0)
 * as git's option parser reads `args` by `syntax`: one word when every
 * option is known, more when an option Corral does not know may or may not
 * take the next word.
 */
function positionalCandidates(args: readonly string[], syntax: OptionSyntax, n: number, singleWords = false): Set<string> {
  const found = new Set<string>();
  const seen = new Set<string>();
  const queue: [number, number, boolean][] = [[0, 0, false]];
  while (queue.length > 0) {
    const [j, count, ended] = queue.pop()!;
    const key = `${j}:${count}:${ended}`;
    const arg = args[j];
    if (seen.has(key) || arg === undefined) continue;
    seen.add(key);
    const next = (skip: number): void => void queue.push([j + skip, count, ended]);
    if (ended || arg === '-' || !arg.startsWith('-')) {
      if (count === n) found.add(arg);
      else queue.push([j + 1, count + 1, ended]);
    } else if (arg === '--') queue.push([j + 1, count, true]);
    else if (singleWords) next(1);
    else if (arg.startsWith('--')) {
      const name = arg.slice(2).split('=')[0]!;
      if (arg.includes('=') || name.startsWith('no-') || syntax.flags.includes(name)) next(1);
      else if (syntax.values.includes(name)) next(2);
      else {
        const value = longOption(arg, syntax.values) !== undefined;
        const flag = longOption(arg, syntax.flags) !== undefined;
        if (value && !flag) next(2);
        else if (flag && !value) next(1);
        else {
          next(1);
          next(2);
        }
      }
    } else {
      let skip = 1;
      for (let at = 1; at < arg.length; at += 1) {
        const letter = arg[at]!;
        if (syntax.valueLetters.includes(letter)) {
          if (at + 1 === arg.length) skip = 2;
          break;
        }
        if (syntax.optionalLetters?.includes(letter) === true) break;
        if (!syntax.flagLetters.includes(letter)) {
          if (at + 1 === arg.length) skip = 3;
          break;
        }
      }
      if (skip === 3) {
        next(1);
        next(2);
      } else next(skip);
    }
  }
  return found;
}

/** An ssh address read as git reads it: user and host, port, path (connect.c parse_connect_url), or why it is not read; undefined for an address that is not ssh's. */
type SshAddress = { host: string; port?: string; path: string } | { opaqueReason: string };

/** Reads `url` as git's ssh transport does, or undefined when git reaches it another way (a local path, another scheme). */
function sshAddress(url: string): SshAddress | undefined {
  const scheme = /^([A-Za-z0-9][A-Za-z0-9+.-]*):\/\//.exec(url);
  let host: string;
  let path: string | undefined;
  if (scheme !== null) {
    if (!['ssh', 'git+ssh', 'ssh+git'].includes(scheme[1]!)) return undefined;
    const rest = url.slice(scheme[0].length);
    const slash = rest.indexOf('/');
    host = slash < 0 ? rest : rest.slice(0, slash);
    path = slash < 0 ? undefined : rest.slice(slash);
  } else {
    const colon = url.indexOf(':');
    const slash = url.indexOf('/');
    if (colon < 0 || (slash >= 0 && slash < colon)) return undefined;
    host = url.slice(0, colon);
    path = url.slice(colon + 1);
  }
  const shown = cut(url, 80);
  if (url.includes('%') || url.includes('[')) return { opaqueReason: `the ssh address ${shown}, in a form Corral does not read as git does (% or [ ])` };
  if (path === undefined || path === '') return { opaqueReason: `the ssh address ${shown}, which names no path` };
  // git turns /~user/x into ~user/x, and so the second character of any path (connect.c).
  if (path[1] === '~') path = path.slice(1);
  // The port follows the first colon of the host, when all that follows is a number below 65536; an empty one is dropped (get_host_and_port).
  let port: string | undefined;
  const colon = host.indexOf(':');
  const after = colon < 0 ? '' : host.slice(colon + 1);
  if (colon >= 0 && /^[\s+-]/.test(after)) return { opaqueReason: `the ssh address ${shown}, whose port Corral does not read as git does` };
  if (colon >= 0 && (after === '' || (/^\d+$/.test(after) && Number(after) < 65536))) {
    if (after !== '') port = after;
    host = host.slice(0, colon);
  }
  if (host === '' || host.startsWith('-') || path.startsWith('-') || port?.startsWith('-') === true) return { opaqueReason: `the ssh address ${shown}, which git refuses` };
  return port === undefined ? { host, path } : { host, port, path };
}

/** `'TEXT'` as git quotes a path for the remote shell (quote.c sq_quote_buf): a `'` or `!` is closed out and escaped. */
function shellQuoted(text: string): string {
  return `'${text.replace(/['!]/g, (c) => `'\\${c}'`)}'`;
}

/**
 * The ssh command a subcommand's address makes git run (see above), as the
 * runs to hand back; nothing when it reaches no ssh address on its command
 * line; opaque when the address is in a form not read, or may be.
 */
function sshTransport(subcommand: string, rest: readonly string[], configured: number): { runs: GitRun[] } | { opaqueReason: string } {
  const program = SSH_REMOTE_PROGRAMS.get(subcommand);
  // archive reaches only the address of its --remote.
  const syntax = TRANSPORT_SYNTAX.get(subcommand) ?? { values: [], flags: [], valueLetters: '', flagLetters: '' };
  if (program === undefined) return { runs: [] };
  let args = rest;
  let candidates: Set<string>;
  if (subcommand === 'archive') {
    candidates = new Set(optionValues(rest, 'remote', '', true));
  } else if (subcommand === 'submodule' || subcommand === 'remote') {
    // `submodule [--quiet] add …`, `remote [-v] add [-f] NAME ADDRESS`: another action stores or reaches a configured remote.
    const at = rest.findIndex((a) => !a.startsWith('-'));
    if (rest[at] !== 'add') return { runs: [] };
    args = rest.slice(at + 1);
    if (subcommand === 'remote' && findOptions(args, ['fetch'], 'f', 'tm').length === 0) return { runs: [] };
    candidates = positionalCandidates(args, syntax, subcommand === 'remote' ? 1 : 0);
  } else {
    candidates = positionalCandidates(args, syntax, 0, subcommand === 'fetch-pack');
    if (subcommand === 'push') for (const repo of optionValues(rest, 'repo', '', true)) candidates.add(repo);
  }
  const addresses = [...candidates].map((word) => ({ word, address: sshAddress(word) })).filter((c) => c.address !== undefined);
  if (addresses.length === 0) return { runs: [] };
  if (candidates.size > 1 && subcommand !== 'archive' && subcommand !== 'push') {
    return { opaqueReason: `git ${subcommand} with an option Corral does not know before ${cut(addresses[0]!.word, 80)}, which may be an ssh address` };
  }
  let version = configured;
  if (subcommand === 'clone') for (const setting of optionValues(rest, 'config', 'c', true, 'jobu')) version = protocolSetting(setting) ?? version;
  // git speaks version 2 only to git-upload-pack (connect.c git_connect).
  if (version === 2 && program !== 'git-upload-pack') version = 0;
  const family = ipFamily(subcommand, args, syntax);
  const runs: GitRun[] = [];
  for (const { address } of addresses) {
    if ('opaqueReason' in address!) return { opaqueReason: `git ${subcommand} with ${address.opaqueReason}` };
    const argv = ['ssh', ...(version > 0 ? ['-o', 'SendEnv=GIT_PROTOCOL'] : []), ...family, ...(address!.port !== undefined ? ['-p', address!.port] : []), address!.host, `${program} ${shellQuoted(address!.path)}`];
    runs.push({ argv, transport: 'ssh' });
  }
  return { runs };
}

/** `-4` or `-6` when the last of `-4`/`--ipv4`/`-6`/`--ipv6` among a subcommand's options asks for one (fetch, pull, push, clone). */
function ipFamily(subcommand: string, args: readonly string[], syntax: OptionSyntax): string[] {
  if (!['fetch', 'pull', 'push', 'clone'].includes(subcommand)) return [];
  let family: string[] = [];
  for (const arg of args) {
    if (arg === '--') break;
    const found = findOptions([arg], ['ipv4', 'ipv6'], '46', syntax.valueLetters + (syntax.optionalLetters ?? ''));
    if (found.length > 0) family = [found.at(-1)!.spelling === '--ipv6' || found.at(-1)!.spelling === '-6' ? '-6' : '-4'];
  }
  return family;
}
