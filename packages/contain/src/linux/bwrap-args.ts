import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { ContainError } from '../errors.ts';
import { SANDBOX_PROXY_PORT as PROXY_PORT } from '../policy/defaults.ts';
import { within, type Mount, type SandboxPlan } from '../policy/plan.ts';

/** Host files Corral writes itself and binds read-only in place of the host's /etc. */
export interface SyntheticEtc {
  dir: string;
  files: readonly string[];
}

/** Where the run's proxy and ingress sockets sit inside the sandbox. */
export const SANDBOX_RUN_DIR = '/run/corral';
export const SANDBOX_EGRESS_SOCKET = `${SANDBOX_RUN_DIR}/egress.sock`;
/** Where the launcher binds each ingress port's unix socket: a tmpfs of the sandbox's own, which the host reaches through /proc/PID/root. */
export const SANDBOX_INGRESS_DIR = `${SANDBOX_RUN_DIR}/ingress`;
/** Where Corral's forwarder is bound inside the sandbox. */
export const LAUNCHER_FORWARD = '/.corral/forward';
/** Loopback port inside the sandbox where tools find the egress proxy (HTTP_PROXY). */
export const SANDBOX_PROXY_PORT = PROXY_PORT;

/**
 * Files at the top of /proc that tell the sandbox about the host kernel and everything else it runs, which
 * no policy grants: its symbol table (kallsyms), its memory (kcore) and physical pages (kpage*), its memory
 * map (iomem, ioports, mtrr), its allocators (slabinfo, vmallocinfo, pagetypeinfo), its log (kmsg), every
 * pending timer (timer_list, timer_stats, sched_debug, latency_stats), the keyrings the sandbox's user can
 * see and every user's key quota (keys, key-users), the SysRq trigger, which host uid 0 may write
 * without a capability (b reboots the host), the command line and boot configuration the host kernel
 * was started with (cmdline, bootconfig: the root device, the hypervisor's options, at times a secret
 * passed at boot), the configuration it was built with (config.gz), and the count of every interrupt and
 * soft interrupt per CPU with the devices behind them (interrupts, softirqs: the host's hardware, and a
 * clock of what else runs on it). Each is bound over with /dev/null where the kernel has it: bound nodev
 * (bubblewrap's --ro-bind), it fails to open (EACCES), so a reader learns nothing, not even an empty file.
 * The sandbox's processes, its own status, memory and CPU figures (meminfo, stat, cpuinfo, loadavg, uptime)
 * stay: ps, top, Node and Python read them.
 */
export const PROC_MASKED_FILES: readonly string[] = [
  'bootconfig',
  'cmdline',
  'config.gz',
  'interrupts',
  'iomem',
  'ioports',
  'kallsyms',
  'kcore',
  'key-users',
  'keys',
  'kmsg',
  'kpagecgroup',
  'kpagecount',
  'kpageflags',
  'latency_stats',
  'mtrr',
  'pagetypeinfo',
  'sched_debug',
  'slabinfo',
  'softirqs',
  'sysrq-trigger',
  'timer_list',
  'timer_stats',
  'vmallocinfo',
];

/**
 * Folders at the top of /proc about the host's hardware and file systems (ACPI, sound, PCI and input devices,
 * SCSI, drivers, ext4 and NFS state, each interrupt line with its device and CPU affinity): an empty,
 * read-only tmpfs in their place.
 */
export const PROC_MASKED_FOLDERS: readonly string[] = ['acpi', 'asound', 'bus', 'driver', 'fs', 'irq', 'scsi'];

/** What the sandbox's /proc hides: file names bound over with /dev/null, folder names covered by an empty tmpfs. */
export interface ProcMasks {
  files: readonly string[];
  folders: readonly string[];
}

/**
 * The /proc masks for this host: PROC_MASKED_FILES, and every other file at the top of the host's /proc
 * that the kernel keeps from other users (not world-readable, so that what a newer kernel adds there
 * is hidden too: a sandbox of host uid 0 would read it); PROC_MASKED_FOLDERS; each where the kernel
 * has it (bubblewrap cannot make a mount point in /proc, and would fail the sandbox).
 */
export function procMasks(proc = '/proc'): ProcMasks {
  const files = new Set(PROC_MASKED_FILES);
  let names: string[] = [];
  try {
    names = readdirSync(proc);
  } catch {
    // No /proc to read: the fixed list stands alone (each is bound only where the sandbox's /proc has it).
  }
  for (const name of names) {
    if (/^\d+$/.test(name)) continue;
    try {
      const stat = lstatSync(`${proc}/${name}`);
      if (stat.isFile() && (stat.mode & 0o004) === 0) files.add(name);
    } catch {
      // Gone since it was listed.
    }
  }
  // bubblewrap binds over a file only where there is one: it cannot make one in /proc.
  const present = (name: string) => existsSync(`${proc}/${name}`);
  return { files: [...files].filter(present).sort(), folders: PROC_MASKED_FOLDERS.filter(present) };
}

export interface BwrapInputs {
  plan: SandboxPlan;
  etc: SyntheticEtc;
  /** The mounts to make, in order: the plan's, plus any the launcher needs. */
  mounts: readonly Mount[];
  /** Host files bound read-only at other paths inside (the launcher's own binaries). */
  launcherBinds: readonly { source: string; dest: string }[];
  /** Host path of this run's egress socket, bound at SANDBOX_EGRESS_SOCKET. */
  egressSocket?: string;
  /** Whether the sandbox gets SANDBOX_INGRESS_DIR for its ingress sockets. */
  ingress?: boolean;
  /**
   * The size of each writable tmpfs (/tmp, /dev/shm, the ingress folder): set where no memory
   * cgroup counts what is written there (an address-space rlimit does not). Unsized when absent.
   */
  tmpfsBytes?: number;
  /** What to hide of the sandbox's /proc: procMasks() of this host. */
  procMasks: ProcMasks;
  /**
   * Files bubblewrap writes read-only into the sandbox after every mount, each with permissions `mode`,
   * from the content it reads from a descriptor (a pinned file: see pinned-files.ts), one each, numbered
   * from `fds.files` in the order they come.
   */
  files?: readonly { path: string; mode: number }[];
  /**
   * Child fd numbers for bubblewrap's --args (the command's environment: see environmentArgs),
   * --seccomp, --json-status-fd and --block-fd; and the first of the descriptors the ro and rw mounts
   * are bound from, one each, numbered on in the order they come in `mounts` (see mountSources).
   */
  fds: { env?: number; seccomp?: number; status?: number; block?: number; mounts: number; files?: number };
}

/**
 * The bubblewrap argument list for a plan (everything before `--`): every
 * namespace new, only granted paths mounted, a private /tmp and /proc (its sysctls read-only, what it
 * tells of the host kernel hidden: see PROC_MASKED_FILES), a
 * minimal read-only /dev with a private /dev/shm, no new privileges
 * (bubblewrap always sets it), a new session (no terminal injection into the
 * caller's tty) and death with the parent.
 */
export function bwrapArgs(input: BwrapInputs): string[] {
  const { plan, etc, fds } = input;
  // Files in a tmpfs are memory: each writable one is sized when asked, and /dev itself is read-only.
  const size = input.tmpfsBytes === undefined ? [] : ['--size', String(input.tmpfsBytes)];
  const args = [
    ...(fds.env === undefined ? [] : ['--args', String(fds.env)]),
    '--unshare-all',
    // bubblewrap keeps capabilities when started by root; a contained command never has any.
    '--cap-drop',
    'ALL',
    '--die-with-parent',
    '--new-session',
    '--hostname',
    'corral',
    '--proc',
    '/proc',
    // The sysctls are the host kernel's, and the kernel lets any process of host uid 0 write most of them
    // without a capability: started by root, a sandbox could set kernel.core_pattern to a program of its own,
    // which the kernel then runs as root on the host at the next crash. bubblewrap covers /proc/sys only
    // where the folder itself is writable, which it never is. (A kernel without sysctls has none to cover.)
    '--ro-bind-try',
    '/proc/sys',
    '/proc/sys',
    ...input.procMasks.files.flatMap((name) => ['--ro-bind', '/dev/null', `/proc/${name}`]),
    ...input.procMasks.folders.flatMap((name) => ['--perms', '0555', '--tmpfs', `/proc/${name}`, '--remount-ro', `/proc/${name}`]),
    '--dev',
    '/dev',
    '--perms',
    '1777',
    ...size,
    '--tmpfs',
    '/dev/shm',
    '--perms',
    '1777',
    ...size,
    '--tmpfs',
    '/tmp',
    '--dir',
    '/etc',
  ];
  for (const name of etc.files) args.push('--ro-bind', `${etc.dir}/${name}`, `/etc/${name}`);
  for (const { source, dest } of input.launcherBinds) args.push('--ro-bind', source, dest);
  let fd = fds.mounts;
  const standIns: string[] = [];
  for (const m of input.mounts) {
    switch (m.kind) {
      case 'symlink':
        args.push('--symlink', m.target, m.path);
        break;
      // From a descriptor Corral opened and checked: bound by path, a symlink planted since the plan would choose the source.
      case 'ro':
        args.push('--ro-bind-fd', String(fd++), m.path);
        break;
      case 'rw':
        args.push('--bind-fd', String(fd++), m.path);
        break;
      case 'deny':
        if (m.directory) {
          // An empty stand-in nobody inside may read: a mode-000 tmpfs, or execute-only when grants are bound
          // back inside it (the state directory's workspaces), so they can be reached; read-only once they are.
          const crossed = input.mounts.some((o) => (o.kind === 'ro' || o.kind === 'rw') && o.path !== m.path && within(o.path, m.path));
          args.push('--perms', crossed ? '0111' : '0000', '--tmpfs', m.path);
          standIns.push(m.path);
        } else args.push('--ro-bind', '/dev/null', m.path);
        break;
    }
  }
  for (const path of standIns) args.push('--remount-ro', path);
  // Made in bubblewrap's own tmpfs, not bound from the host: no host mount's noexec reaches it, and nothing outside can write it.
  let fileFd = fds.files ?? fd;
  for (const file of input.files ?? []) args.push('--perms', (file.mode & 0o7777).toString(8).padStart(4, '0'), '--ro-bind-data', String(fileFd++), file.path);
  if (input.egressSocket) args.push('--ro-bind', input.egressSocket, SANDBOX_EGRESS_SOCKET);
  if (input.ingress) args.push(...size, '--tmpfs', SANDBOX_INGRESS_DIR);
  // The sandbox's own root (a tmpfs holding the mount points) is read-only too, as is /dev's.
  args.push('--remount-ro', '/dev', '--remount-ro', '/', '--chdir', plan.cwd);
  if (fds.seccomp !== undefined) args.push('--seccomp', String(fds.seccomp));
  if (fds.status !== undefined) args.push('--json-status-fd', String(fds.status));
  if (fds.block !== undefined) args.push('--block-fd', String(fds.block));
  return args;
}

/** The host path each ro and rw mount is bound from, in the order bwrapArgs numbers their descriptors. */
export function mountSources(mounts: readonly Mount[]): string[] {
  return mounts.flatMap((m) => (m.kind === 'ro' || m.kind === 'rw' ? [m.source ?? m.path] : []));
}

/**
 * The command's environment as bubblewrap options (`--setenv NAME VALUE`,
 * NUL-separated), read from the descriptor given to `--args`. bubblewrap
 * itself starts on the host with an empty environment: a variable the
 * policy sets or passes (LD_PRELOAD, LD_DEBUG_OUTPUT, GCONV_PATH…) acts only
 * on what runs inside, never on bubblewrap before it has built the sandbox;
 * and the values stay off its command line, which any process on the host may read.
 *
 * @throws ContainError `CONTAIN_BAD_COMMAND` when a name or value holds a NUL
 *   byte (it would end the word early and start an option of bubblewrap's own)
 *   or a name holds '='.
 */
export function environmentArgs(env: Readonly<Record<string, string>>): Buffer {
  const words: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (name === '' || name.includes('=') || name.includes('\0')) throw new ContainError('CONTAIN_BAD_COMMAND', `the environment holds an unusable variable name ${JSON.stringify(name)}`);
    if (value.includes('\0')) throw new ContainError('CONTAIN_BAD_COMMAND', `the environment variable ${name} holds a NUL byte`);
    words.push('--setenv', name, value);
  }
  return Buffer.from(words.map((word) => `${word}\0`).join(''));
}

/**
 * The command line that starts a run through Corral's launcher
 * (native/corral-forward.c): it opens the proxy port (127.0.0.1:3128) and each
 * ingress port's unix socket when the plan grants network, detaches its relay,
 * then execs the command: `argv`, or, given `commandFd`, the words it reads
 * from that descriptor once Corral hands a warm sandbox its run.
 */
export function launcherArgv(plan: SandboxPlan, argv: readonly string[], commandFd?: number): string[] {
  const out = [LAUNCHER_FORWARD];
  if (plan.egress) out.push('-e', `${SANDBOX_PROXY_PORT}:${SANDBOX_EGRESS_SOCKET}`);
  for (const { port } of plan.ingress) out.push('-i', `${SANDBOX_INGRESS_DIR}/${port}.sock:${port}`);
  if (commandFd !== undefined) out.push('-s', String(commandFd));
  return [...out, '--', ...argv];
}
