import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { forwarderBinary, reaperBinary } from './native.ts';

/** One protection and whether this host can enforce it, in words. */
export interface Capability {
  available: boolean;
  detail: string;
}

export type CgroupController = 'memory' | 'pids' | 'cpu';

/** Where Corral may create per-run cgroups for one controller. */
export interface CgroupPlace {
  version: 1 | 2;
  /** The directory under which per-run groups are made (the runner's own group). */
  parent: string;
}

export interface HostCapabilities {
  bwrap: Capability & { path?: string };
  /** Corral's in-sandbox forwarder (built from native/corral-forward.c): needed for network grants. */
  forwarder: Capability & { path?: string; static?: boolean };
  /** Corral's reaper (built from native/corral-reaper.c): ends a sandbox whole when Corral's process ends, at any point of its start. */
  reaper: Capability & { path?: string };
  userNamespaces: Capability;
  seccomp: Capability;
  landlock: Capability;
  cgroups: Capability & { version?: 1 | 2; controllers: Partial<Record<CgroupController, CgroupPlace>> };
  /**
   * A sandbox joins its cgroups itself as it starts (corral-reaper's --join, cgroup v1): in microseconds,
   * where moving it in once bubblewrap holds it waits out a kernel grace period (about 10 ms).
   */
  cgroupJoin: Capability;
  rlimits: Capability & { prlimit?: string };
  /** bubblewrap sizes a tmpfs (--size, 0.7.0 on): how /tmp and /dev/shm are held to the memory limit where no memory cgroup counts them. */
  tmpfsSize: Capability;
}

let cached: HostCapabilities | undefined;

/**
 * What this host can enforce. Cached for the process: hosts do not change
 * under a runner. The costly probes (a trial sandbox, the kernel's config,
 * building the forwarder) run only when their answer is first read, so a
 * command that needs none of them starts without them.
 */
export function hostCapabilities(refresh = false): HostCapabilities {
  if (cached && !refresh) return cached;
  const bwrapPath = which('bwrap');
  const prlimit = which('prlimit');
  const seccompOn = /^Seccomp:\s*\d/m.test(readText('/proc/self/status') ?? '');
  let userns: Capability | undefined;
  let landlock: Capability | undefined;
  let forwarder: HostCapabilities['forwarder'] | undefined;
  let reaper: HostCapabilities['reaper'] | undefined;
  let tmpfsSize: Capability | undefined;
  let cgroupJoin: Capability | undefined;
  const cgroups = probeCgroups();
  cached = {
    bwrap: bwrapPath
      ? { available: true, path: bwrapPath, detail: `bubblewrap at ${bwrapPath}` }
      : { available: false, detail: 'bubblewrap is not installed (Debian: apt-get install bubblewrap); nothing can be contained' },
    get forwarder() {
      forwarder ??= probeForwarder();
      return forwarder;
    },
    get reaper() {
      reaper ??= probeReaper();
      return reaper;
    },
    get userNamespaces() {
      userns ??= probeNamespaces(bwrapPath);
      return userns;
    },
    seccomp: seccompOn
      ? { available: true, detail: 'seccomp filters can be installed (Corral loads its own BPF filter through bubblewrap)' }
      : { available: false, detail: 'this kernel has no seccomp filter support' },
    get landlock() {
      landlock ??= probeLandlock();
      return landlock;
    },
    cgroups,
    get cgroupJoin() {
      cgroupJoin ??= probeCgroupJoin(cgroups, this.reaper);
      return cgroupJoin;
    },
    rlimits: prlimit
      ? { available: true, prlimit, detail: `rlimits through ${prlimit}: memory (address space) and process count as a fallback where cgroups are missing` }
      : { available: false, detail: 'prlimit (util-linux) is not installed; no rlimit fallback' },
    get tmpfsSize() {
      tmpfsSize ??= probeTmpfsSize(bwrapPath);
      return tmpfsSize;
    },
  };
  return cached;
}

/** Starts a trial sandbox with every namespace new. */
function probeNamespaces(bwrapPath: string | undefined): Capability {
  if (!bwrapPath) return { available: false, detail: 'bubblewrap is not installed' };
  try {
    const version = execFileSync(bwrapPath, ['--version'], { encoding: 'utf8' }).trim();
    execFileSync(bwrapPath, ['--unshare-all', '--ro-bind', '/usr', '/usr', '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64', '/usr/bin/true'], { stdio: 'pipe' });
    return { available: true, detail: `${version} creates user, PID, network, IPC, UTS, mount and cgroup namespaces here` };
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? '').trim();
    return { available: false, detail: `bubblewrap cannot create namespaces here: ${stderr || (error as Error).message}` };
  }
}

function probeTmpfsSize(bwrapPath: string | undefined): Capability {
  if (!bwrapPath) return { available: false, detail: 'bubblewrap is not installed' };
  try {
    if (/^\s*--size\s/m.test(execFileSync(bwrapPath, ['--help'], { encoding: 'utf8' }))) {
      return { available: true, detail: 'bubblewrap sizes a tmpfs: where no memory cgroup counts files in /tmp and /dev/shm, each holds at most the memory limit' };
    }
    return { available: false, detail: 'this bubblewrap cannot size a tmpfs (--size came in 0.7.0): where no memory cgroup counts them, files in /tmp and /dev/shm are not limited' };
  } catch (error) {
    return { available: false, detail: `cannot tell whether bubblewrap sizes a tmpfs: ${(error as Error).message}` };
  }
}

function probeLandlock(): Capability {
  const config = kernelConfig();
  const lsm = readText('/sys/kernel/security/lsm') ?? /^CONFIG_LSM="([^"]*)"/m.exec(config ?? '')?.[1];
  const built = config === undefined ? undefined : /^CONFIG_SECURITY_LANDLOCK=y/m.test(config);
  if (built && lsm?.split(',').includes('landlock')) {
    return { available: true, detail: 'Landlock is built in and active (not needed by the bubblewrap backend: its mount namespace already hides ungranted paths)' };
  }
  return { available: false, detail: built === false ? 'Landlock is not built into this kernel' : built ? 'Landlock is built in but not in the active LSM list' : 'cannot tell (no kernel config readable)' };
}

function probeForwarder(): HostCapabilities['forwarder'] {
  try {
    const built = forwarderBinary();
    return { available: true, path: built.path, static: built.static, detail: `corral-forward at ${built.path} (${built.static ? 'static' : 'dynamically linked'}): carries the sandbox's proxy and ingress ports` };
  } catch (error) {
    return { available: false, detail: `${(error as Error).message}; egress and ingress cannot be granted` };
  }
}

function probeCgroupJoin(cgroups: HostCapabilities['cgroups'], reaper: HostCapabilities['reaper']): Capability {
  const places = Object.values(cgroups.controllers);
  if (places.length === 0) return { available: false, detail: 'no writable cgroup here' };
  if (!places.every((p) => p.version === 1)) return { available: false, detail: 'cgroup v2: each sandbox is moved into its group once bubblewrap holds it (about 10 ms of the kernel\'s)' };
  if (!reaper.available) return { available: false, detail: 'no corral-reaper to start bubblewrap inside its groups: each sandbox is moved in once bubblewrap holds it' };
  return { available: true, detail: 'bubblewrap starts inside its cgroups (corral-reaper joins them first), the sandbox with it' };
}

function probeReaper(): HostCapabilities['reaper'] {
  try {
    const built = reaperBinary();
    return { available: true, path: built.path, detail: `corral-reaper at ${built.path}: a sandbox ends whole with the process that started it, however that process ends` };
  } catch (error) {
    return { available: false, detail: `${(error as Error).message}; a sandbox whose Corral process is killed (SIGKILL) while it starts may be left running` };
  }
}

function probeCgroups(): HostCapabilities['cgroups'] {
  const lines = (readText('/proc/self/cgroup') ?? '').trim().split('\n');
  const controllers: Partial<Record<CgroupController, CgroupPlace>> = {};
  let version: 1 | 2 | undefined;
  // cgroup v1: one hierarchy per controller, `ID:controller[,controller]:/path`.
  for (const line of lines) {
    const [, names = '', path = '/'] = line.split(':');
    for (const name of names.split(',')) {
      if (name !== 'memory' && name !== 'pids' && name !== 'cpu') continue;
      const mount = findMount('cgroup', name);
      if (!mount) continue;
      const parent = join(mount, path);
      if (writable(parent)) {
        controllers[name] = { version: 1, parent };
        version = 1;
      }
    }
  }
  // cgroup v2: `0::/path` in the unified hierarchy, controllers listed in cgroup.controllers.
  const unified = lines.find((l) => l.startsWith('0::'));
  const v2mount = findMount('cgroup2');
  if (unified && v2mount) {
    const parent = join(v2mount, unified.slice(3));
    // Usable only where the service manager delegated the controller to this group's children.
    const available = (readText(join(parent, 'cgroup.subtree_control')) ?? '').split(/\s+/);
    for (const name of ['memory', 'pids', 'cpu'] as const) {
      if (!controllers[name] && available.includes(name) && writable(parent)) {
        controllers[name] = { version: 2, parent };
        version ??= 2;
      }
    }
  }
  const names = Object.keys(controllers);
  return names.length > 0
    ? { available: true, version, controllers, detail: `cgroup v${version}: ${names.map((n) => `${n} (v${controllers[n as CgroupController]!.version})`).join(', ')} writable` }
    : { available: false, controllers, detail: 'no writable cgroup for memory, pids or cpu (run as root, or under a delegated cgroup v2 subtree)' };
}

function findMount(type: 'cgroup' | 'cgroup2', option?: string): string | undefined {
  for (const line of (readText('/proc/self/mounts') ?? '').split('\n')) {
    const [, target, fsType, options = ''] = line.split(' ');
    if (fsType !== type || !target) continue;
    if (option === undefined || options.split(',').includes(option)) return target;
  }
  return undefined;
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function kernelConfig(): string | undefined {
  try {
    return gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
  } catch {
    return undefined;
  }
}

/** The system's own program folders, which only root may write: what Corral runs on the host comes from these first. */
export const SYSTEM_FOLDERS: readonly string[] = Object.freeze(['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']);

/**
 * The full path of `cmd` in the system folders, else on PATH, or undefined. The system's own
 * come first: bubblewrap, prlimit and the compiler run on the host, and a folder early on PATH
 * may be one a sandbox writes (a project's node_modules/.bin, an activated .venv/bin), where a
 * planted `bwrap` would run every later command uncontained.
 */
export function which(cmd: string): string | undefined {
  const dirs = [...SYSTEM_FOLDERS, ...(process.env.PATH ?? '').split(':')];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, cmd);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}
