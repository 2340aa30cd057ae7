import { spawn, type ChildProcess, type IOType } from 'node:child_process';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex, Readable, Writable } from 'node:stream';
import { ContainError } from './errors.ts';
import { bwrapArgs, environmentArgs, LAUNCHER_FORWARD, launcherArgv, mountSources, procMasks, SANDBOX_INGRESS_DIR, SANDBOX_PROXY_PORT, type ProcMasks, type SyntheticEtc } from './linux/bwrap-args.ts';
import { CgroupPool, type CgroupLimits, type RunCgroups } from './linux/cgroups.ts';
import { hostCapabilities, type HostCapabilities } from './linux/host.ts';
import { seccompProgram } from './linux/seccomp.ts';
import type { ConnectionRecord, EgressChannel, EgressProxy, EgressProxyOptions } from './net/proxy.ts';
import { within, type Mount, type SandboxPlan } from './policy/plan.ts';
import { libraryGrant } from './policy/presets.ts';
import { copyCallerInput, copyInput } from './standard-input.ts';
import { WarmPool } from './warm-pool.ts';
import { writePinnedCopies, type PinnedCopies, type PinnedFile } from './pinned-files.ts';

/** A limit Corral stopped the command for. */
export type LimitHit = 'timeout' | 'memory' | 'processes' | 'output';

/** Something the sandbox refused that Corral saw happen. */
export type RefusedAccess =
  | { kind: 'network'; host: string; port: number; reason: string; at: string }
  | { kind: 'limit'; limit: LimitHit; detail: string };

/** What happened to one contained command. */
export interface RunResult {
  /**
   * The command's exit code as a shell reports it: 128 + N for a command that
   * signal N ended inside the sandbox (bubblewrap passes its end on so, and
   * so cannot tell it from `exit 128+N`); null when Corral killed it, or when
   * bubblewrap itself was ended by a signal from outside.
   */
  exitCode: number | null;
  /** SIGKILL when Corral killed the command (a limit, the timeout, an abort); the signal that ended bubblewrap itself from outside; else null. */
  signal: NodeJS.Signals | null;
  /** The command could not be started inside the sandbox (not found, not executable). */
  notFound: boolean;
  durationMs: number;
  /** The run was served by a sandbox started ahead for its plan (Runner.keepWarm). */
  warm: boolean;
  /** Peak memory of the whole sandbox, from its cgroup; null where no memory cgroup is available. */
  peakMemoryBytes: number | null;
  limitsHit: LimitHit[];
  refused: RefusedAccess[];
  connections: ConnectionRecord[];
  /**
   * Connection attempts left out of `connections` (the egress channel's droppedRecords): records
   * past the proxy's bound (allowed ones first, then the oldest refused), and attempts the proxy
   * never decided: their client left while they waited their turn or behind pipelined answers, or
   * their connection was past the channel's connection cap.
   */
  connectionsDropped: number;
  /** Host loopback ports the policy's ingress entries were published on. */
  ingress: { port: number; hostPort: number }[];
  warnings: string[];
  policyDigest: string;
  stdoutBytes: number;
  stderrBytes: number;
}

export interface RunOptions {
  /**
   * Standard input: nothing (default), what this process's own standard input gives ('inherit'),
   * or a stream. The command always reads a pipe, which the runner feeds from the input given (see
   * standard-input.ts): never this process's descriptor 0, which may be open for writing (a
   * terminal, a socket) and so a way past the output limit. A program that asks isatty(0) is told no.
   * One run at a time is given this process's input: another given 'inherit' meanwhile reads its end at once.
   */
  stdin?: 'ignore' | 'inherit' | Readable;
  /** Where output goes as it comes; when absent it is collected into `ContainedProcess.output`. */
  stdout?: Writable;
  stderr?: Writable;
  /** Aborting kills the whole sandbox. */
  signal?: AbortSignal;
  /** Told of each network connection as the proxy decides it. */
  onConnection?: (record: ConnectionRecord) => void;
  /**
   * When the run takes a warm sandbox, its replacement is started only once
   * this has settled too (or after a grace period): a caller with more to do
   * once the command is over — pass its result on, record it — gives a
   * promise of that, so starting bubblewrap again does not compete with it
   * for the cores and the event loop.
   */
  refillAfter?: PromiseLike<unknown>;
  /**
   * Files the command must see exactly as given, such as a script whose
   * content an approval was bound to: each is bound read-only, from a copy
   * the runner keeps until the run is over, over every path at which the
   * sandbox shows it, so a change made to the file after it was checked is
   * not what runs (see pinned-files.ts). A run given any never takes a warm
   * sandbox, whose mounts were made before.
   */
  pinned?: readonly PinnedFile[];
}

export interface RunnerOptions {
  /** Options for the runner's egress proxy (a test may inject a DNS lookup). */
  proxy?: EgressProxyOptions;
  /** Capabilities to assume instead of probing the host (tests use it to simulate a poorer host). */
  capabilities?: HostCapabilities;
}

/** A running contained command. */
export interface ContainedProcess {
  /** Resolves when the sandbox is gone, with everything observed. Never rejects for the command's own failure. */
  readonly result: Promise<RunResult>;
  /** Published ingress ports, once the sandbox started. */
  readonly ready: Promise<{ port: number; hostPort: number }[]>;
  /** Collected output when no stdout/stderr stream was given. */
  readonly output: { stdout: Buffer[]; stderr: Buffer[] };
  /** Kills the whole sandbox now. */
  kill(): void;
}

let runnerCounter = 0;

// bubblewrap's own refusals before the command runs (no namespaces, a mount it could not make), and corral-reaper's.
const SETUP_FAILURE = /^(bwrap|corral-reaper): (?!execvp )/;
/** How long a sandbox that failed before it ran anything may take to end by itself before it is killed. */
const SETUP_FAILURE_GRACE_MS = 2_000;
// Where bubblewrap reports the sandbox's pid, and the command's exit once it has exec'd it (--json-status-fd).
const STATUS_FD = 4;
// Where a warm sandbox's launcher reads the command it is to become (corral-forward -s).
const COMMAND_FD = 6;
// Where bubblewrap reads the command's environment (--args): see environmentArgs.
const ENV_FD = 7;
// Where the descriptors the grants are bound from start (--bind-fd, --ro-bind-fd): one per ro or rw mount.
const FIRST_MOUNT_FD = 8;
// open(2)'s O_PATH (Linux's generic value), which node:fs does not name: a descriptor that names a
// file or folder without reading it (no read permission needed, a FIFO does not block), for binding.
const O_PATH = 0o10000000;
// O_CLOEXEC as /proc/PID/fdinfo shows it, in the octal `flags:` line.
const O_CLOEXEC = 0o2000000;
// bubblewrap reads at most this many words: its options, those of its --args descriptor, and the command line after `--`.
const BWRAP_MAX_ARGS = 9000;
// What any command line may hold, however it reaches the sandbox: Corral's launcher reads at most 65,536 words and less
// than 2 MiB, NULs included (native/corral-forward.c), and Linux hands a program no word of 128 KiB or more (MAX_ARG_STRLEN).
const MAX_COMMAND_WORDS = 65_536;
const MAX_COMMAND_BYTES = 2 * 1024 * 1024 - 1;
const MAX_WORD_BYTES = 128 * 1024 - 1;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/**
 * One sandbox, started: bubblewrap running, inside its cgroups, and either
 * already running its command (cold) or waiting for it (warm).
 */
interface Sandbox {
  child: ChildProcess;
  exited: Promise<Exit>;
  /** What bubblewrap reports: the sandbox's pid, and whether it exec'd the command (or the launcher). */
  status: BubblewrapStatus;
  /** False when the cgroup handshake failed (bubblewrap died, or the run was stopped first). */
  adopted: boolean;
  /** Corral's end of corral-reaper's lifeline, where bubblewrap runs under it: closed, the sandbox ends whole. */
  lifeline: Writable | undefined;
  channel: EgressChannel | undefined;
  cgroups: RunCgroups | undefined;
  /** Where the run's onConnection goes: the channel of a warm sandbox is opened before its run is known. */
  connections: { notify?: (record: ConnectionRecord) => void };
  /** A warm sandbox's launcher reads its command from here. */
  command: Duplex | undefined;
  /**
   * Output, read from the start: Node drops what nobody reads once the child
   * exits, and bubblewrap may fail (and say why) before the run is attached.
   */
  output: { early: [Buffer, 'stdout' | 'stderr'][]; sink?: (chunk: Buffer, which: 'stdout' | 'stderr') => void };
}

/** A sandbox's standard input: /dev/null, or a pipe the runner feeds (never a descriptor of the caller's: see standard-input.ts). */
type StdinMode = 'ignore' | 'pipe';

/**
 * Runs commands contained by container policies. Long-lived: one egress proxy,
 * one seccomp program and one set of synthetic /etc files serve every run, and
 * sandboxes for the plans asked to be kept warm are started ahead (keepWarm).
 */
export class Runner {
  readonly #caps: HostCapabilities;
  readonly #dir: string;
  readonly #seccompFile: string;
  readonly #etc: SyntheticEtc;
  readonly #procMasks: ProcMasks;
  readonly #proxyOptions: EgressProxyOptions | undefined;
  readonly #cgroups: CgroupPool;
  readonly #warm: WarmPool<Sandbox>;
  #proxy: EgressProxy | undefined;
  #closed = false;
  /** Aborted by close(): stops the warm sandboxes being started. */
  readonly #closing = new AbortController();
  readonly #live = new Set<ContainedProcess>();
  readonly #cleanups = new Set<Promise<void>>();
  /** Sandboxes still in the part of their start that needs this thread (see started()). */
  readonly #starting = new Set<Promise<void>>();
  /** Descriptors this process inherited that every child would too (see inheritedDescriptors), and /dev/null to put over them. */
  readonly #inherited: readonly number[];
  readonly #devNull: number | undefined;

  constructor(options: RunnerOptions = {}) {
    this.#caps = options.capabilities ?? hostCapabilities();
    this.#proxyOptions = options.proxy;
    // Resolved: the pinned copies in it are bound from descriptors checked to name exactly their path.
    this.#dir = realpathSync(mkdtempSync(join(tmpdir(), 'corral-')));
    this.#seccompFile = join(this.#dir, 'seccomp.bpf');
    writeFileSync(this.#seccompFile, seccompProgram(), { mode: 0o600 });
    this.#etc = writeSyntheticEtc(join(this.#dir, 'etc'));
    this.#procMasks = procMasks();
    this.#inherited = inheritedDescriptors();
    this.#devNull = this.#inherited.length > 0 ? openSync('/dev/null', 'r') : undefined;
    this.#cgroups = new CgroupPool(this.#caps.cgroups.controllers, `runner-${process.pid}-${++runnerCounter}`);
    this.#warm = new WarmPool<Sandbox>({
      boot: (plan) => this.#bootWarm(plan),
      alive: (s) => s.adopted && s.child.exitCode === null && s.child.signalCode === null,
      over: (s) => s.exited,
      discard: async (s) => {
        killSandbox(s);
        await s.exited;
        this.#dispose(s);
      },
    });
  }

  /**
   * Starts `argv` in a sandbox built from `plan`: a warm one made for exactly
   * this plan when keepWarm keeps some and one is ready, else a new one.
   *
   * @throws ContainError `CONTAIN_UNENFORCEABLE` (the plan asks for what this
   *   host cannot enforce), `CONTAIN_BACKEND_UNAVAILABLE`, `CONTAIN_BAD_COMMAND`, `CONTAIN_CLOSED`.
   */
  spawn(plan: SandboxPlan, argv: readonly string[], options: RunOptions = {}): ContainedProcess {
    if (this.#closed) throw new ContainError('CONTAIN_CLOSED', 'this runner was closed');
    if (argv.length === 0 || argv[0] === '') throw new ContainError('CONTAIN_BAD_COMMAND', 'no command given to run');
    // The kernel ends each word at a NUL: a word holding one would reach the command cut short.
    if (argv.some((word) => word.includes('\0'))) throw new ContainError('CONTAIN_BAD_COMMAND', 'a word of the command holds a NUL byte');
    checkCommandSize(argv);
    const enforcement = this.#enforceable(plan);
    const warm = options.pinned?.length ? undefined : this.#warm.take(plan, options.refillAfter);
    const proc = this.#start(plan, [...argv], options, enforcement, warm);
    this.#live.add(proc);
    const forget = () => void this.#live.delete(proc);
    proc.result.then(forget, forget);
    return proc;
  }

  /** Runs `argv` to the end; output is collected unless streams are given. */
  async run(plan: SandboxPlan, argv: readonly string[], options: RunOptions = {}): Promise<RunResult & { stdout: string; stderr: string }> {
    const proc = this.spawn(plan, argv, options);
    const result = await proc.result;
    return { ...result, stdout: Buffer.concat(proc.output.stdout).toString(), stderr: Buffer.concat(proc.output.stderr).toString() };
  }

  /**
   * Keeps `size` sandboxes for exactly `plan` started ahead and waiting, so a
   * run of that plan skips the sandbox's start-up; each serves one run and
   * the runner starts its replacement in the background. A run whose plan
   * differs in anything never gets one. `size` 0 stops keeping the plan warm
   * (right after a spawn, before the refill starts: one run ahead, no more).
   * A warm sandbox's standard input is a pipe, which its run feeds (from a
   * stream, or this process's own input) or ends. Resolves once `size` are
   * ready (await it again after a run to wait for the refill).
   *
   * @throws ContainError `CONTAIN_WARM_LIMIT` (more than 8 per plan or 8 plans),
   *   `CONTAIN_UNENFORCEABLE`, `CONTAIN_BACKEND_UNAVAILABLE` (a warm sandbox
   *   waits in Corral's launcher, which needs a C compiler), `CONTAIN_SPAWN_FAILED`, `CONTAIN_CLOSED`.
   */
  keepWarm(plan: SandboxPlan, size = 1): Promise<void> {
    return this.#warm.keep(plan, size);
  }

  /**
   * Resolves once every sandbox being started (by keepWarm or a run) is past
   * the part of its start that needs this thread: spawning bubblewrap and,
   * where it does not join them itself, moving it into its cgroups. The rest
   * of its set-up happens in bubblewrap.
   * A caller about to keep this thread busy for a while (a large synchronous
   * module load) awaits this first, so that the sandboxes set themselves up
   * meanwhile instead of waiting for the thread. Never rejects.
   */
  async started(): Promise<void> {
    await Promise.all([...this.#starting]);
  }

  /** Kills what still runs and what waits warm, stops the proxy and removes the runner's files. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    for (const proc of this.#live) proc.kill();
    await this.#warm.close();
    await Promise.allSettled([...this.#live].map((p) => p.result));
    await Promise.allSettled([...this.#cleanups]);
    await this.#proxy?.close();
    await this.#cgroups.close();
    if (this.#devNull !== undefined) closeSync(this.#devNull);
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #egressProxy(): Promise<EgressProxy> {
    // Loaded on first use: runs without network never pay for the HTTP stack.
    if (!this.#proxy) {
      const { EgressProxy } = await import('./net/proxy.ts');
      this.#proxy ??= new EgressProxy(this.#proxyOptions);
    }
    return this.#proxy;
  }

  /** Cleans up after a run without holding up its result; close() waits for it. */
  #afterwards(work: Promise<unknown>): void {
    const tracked = work.then(
      () => undefined,
      () => undefined,
    );
    this.#cleanups.add(tracked);
    void tracked.then(() => this.#cleanups.delete(tracked));
  }

  /**
   * checkEnforceable, and a plan that binds no folder holding the runner's
   * own (TMPDIR inside a grant): there a sandbox would reach the seccomp
   * program the next sandbox starts with, the synthetic /etc, and the copies
   * pinned for other runs. Throws CONTAIN_UNENFORCEABLE.
   */
  #enforceable(plan: SandboxPlan): Enforcement {
    const reaching = plan.mounts.find((m) => (m.kind === 'ro' || m.kind === 'rw') && within(this.#dir, m.source ?? m.path));
    if (reaching !== undefined) throw new ContainError('CONTAIN_UNENFORCEABLE', `not run: the policy grants ${reaching.path}, which holds the runner's own folder ${this.#dir} (the node's TMPDIR), where it keeps what no sandbox may touch; set TMPDIR to a folder outside what any policy grants`);
    return checkEnforceable(plan, this.#caps);
  }

  async #bootWarm(plan: SandboxPlan): Promise<Sandbox> {
    const enforcement = this.#enforceable(plan);
    if (!this.#caps.forwarder.available) throw new ContainError('CONTAIN_BACKEND_UNAVAILABLE', `a warm sandbox waits in Corral's launcher: ${this.#caps.forwarder.detail}`);
    const sandbox = await this.#boot(plan, enforcement, undefined, 'pipe', this.#closing.signal);
    if (!sandbox) throw new ContainError('CONTAIN_CLOSED', 'this runner was closed');
    return sandbox;
  }

  /**
   * Starts bubblewrap for `plan` and moves it into the run's cgroups before it
   * runs anything. With `argv` the sandbox runs it at once; without, it waits
   * in the launcher for its command (a warm sandbox), as it does for an `argv`
   * too long for bubblewrap's own command line (the run hands it over once ready). A run stopped (`stop`)
   * before bubblewrap is spawned never spawns it (undefined); one stopped after is killed (see killSandbox)
   * and never released: the handshake, and a launcher's ready, are waited for only until the stop (a
   * bubblewrap that hangs before either would hold the start open for good).
   */
  async #boot(plan: SandboxPlan, enforcement: Enforcement, argv: string[] | undefined, stdinMode: StdinMode, stop: AbortSignal, pinned?: PinnedCopies): Promise<Sandbox | undefined> {
    const network = plan.egress !== null && enforcement.network;
    const ingress = plan.ingress.length > 0 && enforcement.network;
    const connections: Sandbox['connections'] = {};
    let channel: EgressChannel | undefined;
    let cgroups: RunCgroups | undefined;
    let seccompFd: number | undefined;
    let mountFds: number[] = [];
    let child: ChildProcess | undefined;
    let lifeline: Writable | undefined;
    let status: BubblewrapStatus | undefined;
    let handedOver = () => {};
    const starting = new Promise<void>((resolve) => (handedOver = resolve));
    this.#starting.add(starting);
    void starting.then(() => this.#starting.delete(starting));
    try {
      if (network) channel = await (await this.#egressProxy()).openChannel(plan.egress!, { onConnection: (record) => connections.notify?.(record) });
      // Under corral-reaper on cgroup v1, bubblewrap joins the run's groups itself before it starts (see
      // native/corral-reaper.c), in microseconds; elsewhere it is moved in once it holds, which takes the kernel ~10 ms.
      const reaper = this.#caps.reaper;
      const joins = this.#caps.cgroupJoin.available && reaper.available;
      // Joining itself, bubblewrap's own process is in the pids group beside the sandbox's: counted apart from the policy's limit.
      const limits = enforcement.cgroupLimits && joins && enforcement.cgroupLimits.maxProcesses !== undefined ? { ...enforcement.cgroupLimits, maxProcesses: enforcement.cgroupLimits.maxProcesses + 1 } : enforcement.cgroupLimits;
      if (limits) cgroups = await this.#cgroups.acquire(limits);
      if (stop.aborted) {
        this.#dispose({ channel, cgroups });
        return undefined;
      }

      const forwarder = this.#caps.forwarder;
      const env: Record<string, string> = { ...plan.env };
      if (network) Object.assign(env, proxyEnvironment());
      const envArgs = environmentArgs(env);
      // Held at --block-fd until moved into its groups, unless it joins them itself.
      const held = cgroups !== undefined && !joins;
      const fds = { env: ENV_FD, seccomp: enforcement.seccomp ? 3 : undefined, status: STATUS_FD, block: held ? 5 : undefined, mounts: FIRST_MOUNT_FD };
      // The command on bubblewrap's command line, or (`viaFd`) written to the launcher once the sandbox is ready.
      const build = (viaFd: boolean) => {
        const launcher = network || ingress || viaFd;
        // A statically linked forwarder needs nothing else mounted; a dynamic one needs the system libraries.
        const mounts: readonly Mount[] = launcher && !forwarder.static ? mergeMounts(libraryMounts(), plan.mounts) : plan.mounts;
        const files = pinned?.placements(mounts) ?? [];
        const args = bwrapArgs({
          plan,
          etc: this.#etc,
          mounts,
          launcherBinds: launcher ? [{ source: forwarder.path!, dest: LAUNCHER_FORWARD }] : [],
          egressSocket: channel?.socketPath,
          ingress,
          tmpfsBytes: enforcement.tmpfsBytes,
          procMasks: this.#procMasks,
          files,
          fds: { ...fds, files: FIRST_MOUNT_FD + mountSources(mounts).length },
        });
        const commandLine = viaFd ? launcherArgv(plan, [], COMMAND_FD) : launcher ? launcherArgv(plan, argv!) : argv!;
        // Every word bubblewrap reads: its options, those of its --args (the environment: three words a variable), `--` and the command line.
        const words = args.length + 3 * Object.keys(env).length + 1 + commandLine.length;
        return { viaFd, mounts, files, args, commandLine, words, own: words - (viaFd ? 0 : argv!.length) };
      };
      let built = build(argv === undefined);
      // A command too long for bubblewrap to read along with the sandbox is handed over as a warm sandbox's is.
      if (built.words > BWRAP_MAX_ARGS && !built.viaFd && forwarder.available) built = build(true);
      if (built.own > BWRAP_MAX_ARGS) {
        throw new ContainError(
          'CONTAIN_UNENFORCEABLE',
          `the sandbox the policy describes takes ${built.own} arguments of bubblewrap's, more than the ${BWRAP_MAX_ARGS} it reads, so the command was not started: the policy grants, denies or pins too many paths (${built.mounts.length} mounts) or sets too many variables (${Object.keys(env).length}); grant the folders that hold the paths instead`,
        );
      }
      if (built.words > BWRAP_MAX_ARGS) {
        throw new ContainError('CONTAIN_BAD_COMMAND', `the command has ${argv!.length} words, and bubblewrap reads at most ${BWRAP_MAX_ARGS - built.own} more with this policy; Corral's launcher, which would take it, is not available here (${forwarder.detail})`);
      }
      const { viaFd, mounts, files, args, commandLine } = built;
      if (fds.seccomp !== undefined) seccompFd = openSync(this.#seccompFile, 'r');
      mountFds = openMountSources(mountSources(mounts));
      placeStandIns(mounts, mountFds);
      // One descriptor a place, after the mounts' (fds.files): bubblewrap reads each to its end. The copies are then needed no more.
      for (const file of files) mountFds.push(openSync(file.source, 'r'));
      pinned?.remove();
      const bwrapCommand = [this.#caps.bwrap.path!, ...args, '--', ...commandLine];
      const program = enforcement.rlimits.length > 0 ? [this.#caps.rlimits.prlimit!, ...enforcement.rlimits, '--', ...bwrapCommand] : bwrapCommand;
      const stdio: (IOType | number)[] = [stdinMode, 'pipe', 'pipe', seccompFd ?? 'ignore', 'pipe', held ? 'pipe' : 'ignore', viaFd ? 'pipe' : 'ignore', 'pipe', ...mountFds];
      // Under corral-reaper where it is built: bubblewrap's --die-with-parent alone leaves a sandbox killed with Corral early in its start (see native/corral-reaper.c).
      const lifelineFd = reaper.available ? stdio.push('pipe') - 1 : undefined;
      const joining = cgroups !== undefined && joins ? cgroups.tasksFiles().flatMap((file) => ['--join', file]) : [];
      const [executable, ...rest] = lifelineFd === undefined ? program : [reaper.path!, String(lifelineFd), ...joining, '--', ...program];
      const started = spawn(executable!, rest, {
        // Nothing on the host side: bubblewrap (and prlimit) run with no variables; the command's come through ENV_FD.
        env: {},
        stdio: this.#overInherited(stdio),
      });
      child = started;
      // bubblewrap holds its copies until it has bound them; ours are done with.
      for (const fd of [seccompFd, ...mountFds.splice(0)]) if (fd !== undefined) closeSync(fd);
      seccompFd = undefined;
      // A sandbox that dies early resets its pipes; that is told by its exit, never by a crash here.
      for (const stream of started.stdio as unknown as (NodeJS.EventEmitter | null)[]) stream?.on('error', () => undefined);
      const output: Sandbox['output'] = { early: [] };
      for (const which of ['stdout', 'stderr'] as const) {
        started[which]!.on('data', (chunk: Buffer) => (output.sink ? output.sink(chunk, which) : output.early.push([chunk, which])));
      }
      const exited = new Promise<Exit>((resolve) => {
        started.once('error', (error) => resolve({ code: null, signal: null, error }));
        started.once('close', (code, signal) => resolve({ code, signal }));
      });
      const extra = started.stdio as unknown as (Readable | Writable | null)[];
      if (lifelineFd !== undefined) lifeline = extra[lifelineFd] as Writable;
      (extra[ENV_FD] as Writable).end(envArgs);
      status = bubblewrapStatus(extra[STATUS_FD] as Readable);
      let adopted = true;
      if (held) {
        // bubblewrap holds the sandbox before it runs anything until we write to --block-fd,
        // so the whole tree starts inside its cgroups: no fork can slip out.
        const childPid = await unlessStopped(status.childPid, stop, Number.NaN);
        adopted = !stop.aborted && childPid > 0;
        try {
          if (adopted) await cgroups!.adopt(childPid);
        } catch (error) {
          // Gone already: bubblewrap failed before it ran anything, and its exit says why.
          if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
          adopted = false;
        }
        // Stopped while it moved: never let go (the stop kills it below).
        if (adopted && !stop.aborted) (extra[5] as Writable).end('x');
      }
      handedOver();
      const command = viaFd ? (extra[COMMAND_FD] as Duplex) : undefined;
      // A warm sandbox counts as ready once its launcher says so: bubblewrap has then finished setting it up.
      if (command && adopted) adopted = await unlessStopped(launcherReady(command), stop, false);
      if (stop.aborted) {
        killSandbox({ child: started, cgroups, lifeline });
        adopted = false;
      }
      return { child: started, exited, status, adopted, lifeline, channel, cgroups, connections, command, output };
    } catch (error) {
      if (child) killSandbox({ child, cgroups, lifeline });
      for (const fd of [seccompFd, ...mountFds]) if (fd !== undefined) closeSync(fd);
      this.#dispose({ channel, cgroups });
      throw error;
    } finally {
      handedOver();
    }
  }

  /**
   * `stdio` with /dev/null on every inherited descriptor it does not set: a child gets those
   * whatever its `stdio` says, and bubblewrap hands the sandbox every descriptor it was given.
   */
  #overInherited(stdio: (IOType | number)[]): (IOType | number)[] {
    for (const fd of this.#inherited) {
      while (stdio.length <= fd) stdio.push('ignore');
      if (stdio[fd] === 'ignore') stdio[fd] = this.#devNull!;
    }
    return stdio;
  }

  /** Gives back what a sandbox held, in the background. */
  #dispose(s: Pick<Sandbox, 'channel' | 'cgroups'>): void {
    if (s.channel) this.#afterwards(s.channel.close());
    if (s.cgroups) this.#cgroups.release(s.cgroups);
  }

  #start(plan: SandboxPlan, argv: string[], options: RunOptions, enforcement: Enforcement, warm: Sandbox | undefined): ContainedProcess {
    const output = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    /** The run's sandbox once it has one, until the run is over. */
    let live: Sandbox | undefined = warm;
    let killedBy: LimitHit | 'abort' | undefined;
    const stop = new AbortController();
    const limitsHit = new Set<LimitHit>();
    const kill = (why: LimitHit | 'abort') => {
      killedBy ??= why;
      if (why !== 'abort') limitsHit.add(why);
      stop.abort();
      if (live) killSandbox(live);
    };
    let markReady: (ports: { port: number; hostPort: number }[]) => void = () => undefined;
    const ready = new Promise<{ port: number; hostPort: number }[]>((resolve) => (markReady = resolve));

    const result = (async (): Promise<RunResult> => {
      const started = performance.now();
      /** What a run killed by Corral before anything of it was seen reports; a run that started fills in what it saw. */
      const stoppedResult = (): RunResult => ({
        exitCode: null,
        signal: 'SIGKILL',
        notFound: false,
        durationMs: performance.now() - started,
        warm: warm !== undefined,
        peakMemoryBytes: null,
        limitsHit: [...limitsHit],
        refused: [...limitsHit].map((limit): RefusedAccess => ({ kind: 'limit', limit, detail: limitDetail(limit, plan) })),
        connections: [],
        connectionsDropped: 0,
        ingress: [],
        warnings: [...plan.warnings, ...enforcement.warnings],
        policyDigest: plan.policyDigest,
        stdoutBytes: 0,
        stderrBytes: 0,
      });
      const stdinMode: StdinMode = options.stdin === undefined || options.stdin === 'ignore' ? 'ignore' : 'pipe';
      /** Stops copying the run's input into its sandbox: once the sandbox is gone, or the run failed. */
      let stopInput: (() => void) | undefined;
      const timer = setTimeout(() => kill('timeout'), plan.limits.timeoutMs.value);
      const onAbort = () => kill('abort');
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) onAbort();
      let sandbox: Sandbox | undefined = warm;
      let pinned: PinnedCopies | undefined;
      const servers: Server[] = [];
      /** The output streams not read while the stream they go to is full, each with what reads it again. */
      const held = new Map<Readable, () => void>();
      try {
        if (options.pinned?.length) pinned = writePinnedCopies(this.#dir, options.pinned);
        sandbox ??= await this.#boot(plan, enforcement, argv, stdinMode, stop.signal, pinned);
        if (!sandbox) {
          // Stopped before bubblewrap was spawned: nothing ran, and nothing was started.
          if (killedBy === 'timeout') throw notStartedInTime(plan);
          markReady([]);
          return stoppedResult();
        }
        const { child: proc, channel } = sandbox;
        live = sandbox;
        if (killedBy !== undefined) killSandbox(sandbox);
        sandbox.connections.notify = options.onConnection;
        // Never released, so nothing ran: bubblewrap is ending by itself (its child is gone, or it never made
        // one) and says why on stderr; killed at once, it might not get to say it. Killed only if it lingers.
        const lingering = sandbox.adopted ? undefined : setTimeout(() => killSandbox(sandbox!), SETUP_FAILURE_GRACE_MS);
        // The sandbox's stdin is a pipe (or, cold with no input, /dev/null): fed from the input given, or ended at once (a warm one's, for 'ignore').
        if (proc.stdin && stdinMode === 'pipe') {
          stopInput = options.stdin === 'inherit' ? copyCallerInput(proc.stdin) : copyInput(options.stdin as Readable, proc.stdin);
          void sandbox.exited.then(stopInput);
        } else proc.stdin?.end();

        // Output held back stops being read until its stream drains; once bubblewrap is gone, what is left in
        // the pipes (a pipe's worth) is read to the end whatever the stream says, or the run would never end.
        const holdBack = (from: Readable, sink: Writable) => {
          if (proc.exitCode !== null || proc.signalCode !== null || held.has(from)) return;
          from.pause();
          const resume = () => {
            sink.off('drain', resume).off('close', resume).off('error', resume);
            held.delete(from);
            from.resume();
          };
          held.set(from, resume);
          sink.on('drain', resume).on('close', resume).on('error', resume);
        };
        proc.once('exit', () => {
          for (const resume of [...held.values()]) resume();
        });
        let outBytes = 0;
        let errBytes = 0;
        let errHead = Buffer.alloc(0);
        const max = plan.limits.maxOutputBytes.value;
        const forward = (chunk: Buffer, which: 'stdout' | 'stderr') => {
          const total = outBytes + errBytes;
          if (total >= max) {
            if (chunk.length > 0) kill('output');
            return;
          }
          const room = max - total;
          const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
          if (which === 'stdout') outBytes += part.length;
          else {
            errBytes += part.length;
            // bubblewrap writes its own messages in pieces: keep the head whole, wherever stderr goes.
            if (errHead.length < 200) errHead = Buffer.concat([errHead, part]).subarray(0, 200);
          }
          const sink = which === 'stdout' ? options.stdout : options.stderr;
          if (sink) {
            // A stream that is full (a reader that stopped reading) holds the command back, as a pipe would: what it
            // writes meanwhile would pile up here, outside the sandbox's memory limit, up to maxOutputBytes (1 TiB at most).
            if (!sink.write(part) && !sink.destroyed && !sink.writableEnded) holdBack(proc[which]!, sink);
          } else output[which].push(part);
          if (chunk.length > room) kill('output');
        };
        sandbox.output.sink = forward;
        for (const [chunk, which] of sandbox.output.early.splice(0)) forward(chunk, which);
        // The launcher of a warm sandbox reads the command's words, each ended by a NUL, then execs it.
        sandbox.command?.end(Buffer.from(argv.map((word) => `${word}\0`).join('')));

        for (const { port, hostPort } of enforcement.network ? plan.ingress : []) {
          // Through the sandbox's root: its ingress folder is a tmpfs of its own, nothing of it on the host.
          const root = `/proc/${await sandbox.status.childPid}/root`;
          servers.push(await publish(hostPort, join(root, SANDBOX_INGRESS_DIR, `${port}.sock`)));
        }
        const published = plan.ingress.map((entry, i) => ({ port: entry.port, hostPort: (servers[i]?.address() as { port: number } | null)?.port ?? 0 }));
        markReady(published);

        const exit = await sandbox.exited;
        clearTimeout(lingering);
        if (exit.error) throw new ContainError('CONTAIN_SPAWN_FAILED', `could not start bubblewrap: ${exit.error.message}`, { cause: exit.error });
        // Not the command's timeout: it never ran. bubblewrap hung in its own start (see 'corral doctor').
        if (killedBy === 'timeout' && !((await sandbox.status.childPid) > 0)) throw notStartedInTime(plan);

        const report = sandbox.cgroups?.report();
        if (report?.memoryLimitHit) limitsHit.add('memory');
        if (report?.processLimitHit) limitsHit.add('processes');
        const connections = channel?.connections() ?? [];
        const stderrHead = errHead.toString();
        // Once bubblewrap has exec'd the command, what its stderr says is the command's: only the launcher's own words count.
        const ran = await sandbox.status.ran;
        const notFound = (exit.code === 1 || exit.code === 127) && killedBy === undefined && (ran ? /^corral-forward: execvp / : /^bwrap: execvp /).test(stderrHead);
        // A sandbox never released ran nothing, however bubblewrap ended: never reported as a command's exit.
        const setupFailed = !sandbox.adopted || (!ran && !notFound && exit.code === 1 && outBytes === 0 && SETUP_FAILURE.test(stderrHead));
        if (setupFailed && killedBy === undefined) {
          throw new ContainError('CONTAIN_SPAWN_FAILED', `the sandbox could not be set up on this host (see 'corral doctor'): ${stderrHead.split('\n')[0] || 'bubblewrap ended before it ran anything'}`);
        }
        const seen = stoppedResult();
        const byCorral = killedBy !== undefined;
        return {
          ...seen,
          exitCode: byCorral ? null : exit.code,
          signal: byCorral ? 'SIGKILL' : exit.signal,
          notFound,
          peakMemoryBytes: report?.peakMemoryBytes ?? null,
          refused: [...connections.filter((c) => !c.allowed).map((c): RefusedAccess => ({ kind: 'network', host: c.host, port: c.port, reason: c.reason ?? 'refused', at: c.startedAt })), ...seen.refused],
          connections,
          connectionsDropped: channel?.droppedRecords ?? 0,
          ingress: published,
          stdoutBytes: outBytes,
          stderrBytes: errBytes,
        };
      } catch (error) {
        if (live) killSandbox(live);
        markReady([]);
        if (error instanceof ContainError) throw error;
        throw new ContainError('CONTAIN_SPAWN_FAILED', `could not start the sandbox: ${(error as Error).message}`, { cause: error });
      } finally {
        clearTimeout(timer);
        stopInput?.();
        options.signal?.removeEventListener('abort', onAbort);
        for (const s of servers) s.close();
        for (const resume of [...held.values()]) resume();
        // The cgroups go back to the pool for a later run: a kill() from here on must not reach them.
        live = undefined;
        if (sandbox) this.#dispose(sandbox);
        pinned?.remove();
      }
    })();
    return { result, ready, output, kill: () => kill('abort') };
  }
}

interface Enforcement {
  seccomp: boolean;
  network: boolean;
  cgroupLimits: CgroupLimits | undefined;
  /** prlimit(1) options for the limits no cgroup can hold here. */
  rlimits: string[];
  /** The size of each writable tmpfs, where no memory cgroup counts the files in them. */
  tmpfsBytes: number | undefined;
  warnings: string[];
}

/**
 * Decides how each protection of the plan is enforced on this host. A
 * protection the policy asks for that the host cannot enforce refuses the run,
 * unless the policy says `onUnenforceable: warn`; defaults the host cannot
 * apply only warn.
 */
function checkEnforceable(plan: SandboxPlan, caps: HostCapabilities): Enforcement {
  // Whether namespaces can be made is learnt from the first sandbox itself (see SETUP_FAILURE): no trial run per process.
  if (!caps.bwrap.available) throw new ContainError('CONTAIN_BACKEND_UNAVAILABLE', `cannot contain anything on this host: ${caps.bwrap.detail}`);
  const refuse: string[] = [];
  const warnings: string[] = [];
  const lenient = plan.policy.onUnenforceable === 'warn';
  const requested = (what: string, explicit: boolean) => (explicit && !lenient ? refuse : warnings).push(what);

  const seccomp = caps.seccomp.available;
  if (!seccomp) requested(`the seccomp system-call filter (${caps.seccomp.detail})`, true);

  const needsNetwork = plan.egress !== null || plan.ingress.length > 0;
  const network = needsNetwork && caps.forwarder.available;
  if (needsNetwork && !network) requested(`network grants: ${caps.forwarder.detail}; the command would run with no network`, true);

  // A display socket carries its clipboard with it, and X11 its input injection (XTEST): a policy that
  // grants the display but refuses those asks for what this backend cannot separate.
  const ui = plan.policy.ui;
  if (plan.display && ui.clipboard !== 'all') requested(`ui.clipboard '${ui.clipboard}': a granted display gives its clipboard to every client; grant clipboard: all or no display`, true);
  if (plan.display?.x11 && !ui.inputInjection) requested('ui.inputInjection false: an X11 display lets every client inject input; grant inputInjection: true or no display', true);

  // cgroups first; where a controller is missing, an rlimit set by prlimit(1) before bubblewrap starts.
  // RLIMIT_NPROC counts every process of the user, and root is exempt from it: no fallback for root.
  const controllers = caps.cgroups.controllers;
  const cgroupLimits: CgroupLimits = {};
  const rlimits: string[] = [];
  const rlimitsUsable = caps.rlimits.available;
  const memoryBytes = plan.limits.memoryMB.value * 1024 * 1024;
  if (controllers.memory) cgroupLimits.memoryBytes = memoryBytes;
  else if (rlimitsUsable) {
    rlimits.push(`--as=${memoryBytes}`);
    // RLIMIT_AS holds each process on its own: forked N times, the sandbox holds N times the limit.
    warnings.push(`process.memoryMB for the sandbox as a whole: with no writable memory cgroup (${caps.cgroups.detail}), each process is held to it alone (an address-space rlimit)`);
  } else requested(`process.memoryMB: no writable memory cgroup and no prlimit on this host (${caps.cgroups.detail})`, plan.limits.memoryMB.explicit);
  // Files in a tmpfs are memory that only a memory cgroup counts: without one, each tmpfs is sized to the limit.
  const tmpfsBytes = controllers.memory || !caps.tmpfsSize.available ? undefined : memoryBytes;
  if (!controllers.memory && tmpfsBytes === undefined) requested(`process.memoryMB for files in /tmp and /dev/shm (${caps.tmpfsSize.detail})`, false);
  if (controllers.pids) cgroupLimits.maxProcesses = plan.limits.maxProcesses.value;
  else if (rlimitsUsable && process.getuid?.() !== 0) rlimits.push(`--nproc=${plan.limits.maxProcesses.value}`);
  else requested(`process.maxProcesses: no writable pids cgroup on this host (${caps.cgroups.detail}), and RLIMIT_NPROC does not bind root`, plan.limits.maxProcesses.explicit);
  if (controllers.cpu) cgroupLimits.cpus = plan.limits.cpus.value;
  else requested(`process.cpus: no writable cpu cgroup on this host (${caps.cgroups.detail}); no rlimit limits a CPU share`, plan.limits.cpus.explicit);
  if (refuse.length > 0) {
    throw new ContainError(
      'CONTAIN_UNENFORCEABLE',
      `this host cannot enforce what the policy asks, so the command was not started:\n${refuse.map((r) => `  - ${r}`).join('\n')}\nFix the host (see 'corral doctor'), or set 'onUnenforceable: warn' in the policy to run without them.`,
    );
  }
  return {
    seccomp,
    network,
    cgroupLimits: Object.keys(cgroupLimits).length > 0 ? cgroupLimits : undefined,
    rlimits,
    tmpfsBytes,
    warnings: warnings.map((w) => `not enforced: ${w}`),
  };
}

/** A run whose sandbox was not started by its timeout (bubblewrap hung in its own start, or was never spawned): it never ran. */
function notStartedInTime(plan: SandboxPlan): ContainError {
  return new ContainError('CONTAIN_SPAWN_FAILED', `the sandbox was not started within timeoutMs ${plan.limits.timeoutMs.value}: bubblewrap never named the sandbox's first process, so it was killed and the command never ran (see 'corral doctor')`);
}

/**
 * Refuses a command line no sandbox can be handed, before anything starts: one the launcher would refuse after the
 * sandbox was up (its exit taken for the command's), or Linux (taken for a command not found, or a sandbox that could not start).
 *
 * @throws ContainError `CONTAIN_BAD_COMMAND` naming the bound.
 */
function checkCommandSize(argv: readonly string[]): void {
  if (argv.length > MAX_COMMAND_WORDS) throw new ContainError('CONTAIN_BAD_COMMAND', `the command has ${argv.length} words, more than the ${MAX_COMMAND_WORDS} a contained command is handed; pass long lists through a file or standard input`);
  let bytes = 0;
  for (const [i, word] of argv.entries()) {
    const length = Buffer.byteLength(word);
    if (length > MAX_WORD_BYTES) throw new ContainError('CONTAIN_BAD_COMMAND', `word ${i} of the command holds ${length} bytes, more than the ${MAX_WORD_BYTES} Linux hands a program in one word; pass long data through a file or standard input`);
    bytes += length + 1;
  }
  if (bytes > MAX_COMMAND_BYTES) throw new ContainError('CONTAIN_BAD_COMMAND', `the command line holds ${bytes} bytes, more than the ${MAX_COMMAND_BYTES} a contained command is handed; pass long data through a file or standard input`);
}

function limitDetail(limit: LimitHit, plan: SandboxPlan): string {
  switch (limit) {
    case 'timeout':
      return `ran past timeoutMs ${plan.limits.timeoutMs.value}; the whole process tree was killed`;
    case 'memory':
      return `reached memoryMB ${plan.limits.memoryMB.value}; the kernel killed a process`;
    case 'processes':
      return `reached maxProcesses ${plan.limits.maxProcesses.value}; further forks failed`;
    case 'output':
      return `wrote more than maxOutputBytes ${plan.limits.maxOutputBytes.value}; the whole process tree was killed`;
  }
}

function proxyEnvironment(): Record<string, string> {
  const url = `http://127.0.0.1:${SANDBOX_PROXY_PORT}`;
  return {
    HTTP_PROXY: url,
    HTTPS_PROXY: url,
    http_proxy: url,
    https_proxy: url,
    ALL_PROXY: url,
    NO_PROXY: 'localhost,127.0.0.1,::1',
    no_proxy: 'localhost,127.0.0.1,::1',
    // Node's own fetch and http honour the variables only when asked to.
    NODE_USE_ENV_PROXY: '1',
  };
}

/**
 * Opens each host path a sandbox's grants are bound from (O_PATH) and checks
 * that what opened is that path: the plan resolved it with no symlink left
 * in it, so a descriptor that names another path went through one planted
 * since (by a sandbox that may write a folder on the way), or the path is gone.
 * The caller closes the descriptors.
 *
 * @throws ContainError `CONTAIN_PATH_CHANGED`, with none left open.
 */
function openMountSources(sources: readonly string[]): number[] {
  const fds: number[] = [];
  try {
    for (const source of sources) {
      let opened: string;
      try {
        fds.push(openSync(source, O_PATH));
        opened = readlinkSync(`/proc/self/fd/${fds.at(-1)}`);
      } catch (error) {
        throw new ContainError('CONTAIN_PATH_CHANGED', `${source} is gone since the sandbox was planned; the command was not started`, { cause: error });
      }
      if (opened !== source) throw new ContainError('CONTAIN_PATH_CHANGED', `${source} now leads to ${opened}, through a symlink made since the sandbox was planned; the command was not started`);
    }
    return fds;
  } catch (error) {
    for (const fd of fds) closeSync(fd);
    throw error;
  }
}

/**
 * Makes the folder each `missing` deny masks (a denied path that did not exist when planned, inside a
 * read-write grant), so that the sandbox cannot create the denied path, link a file there or rename one
 * onto it: its mask needs a mount point, and without one the path would be the sandbox's to make, and
 * would be there on the host after the run. The folder is made through the descriptor its parent is
 * bound from (the parent is always a read-write grant or a folder pinned below one), never by path,
 * where a symlink planted since the plan would choose where it lands.
 *
 * It is left in place after the run, empty, for good. Removing it once no run uses it is not safe:
 * - rmdir of a folder that is a mount point only in other mount namespaces succeeds (since Linux 3.18 the
 *   kernel detaches those mounts instead of answering EBUSY), and a sandbox whose mask sat there can then
 *   create the denied path on the host through its read-write grant (seen here: a run masking .env wrote it
 *   once the folder was removed beneath it).
 * - A count of the runs that use it, kept by a Runner, sees only that Runner's sandboxes (warm ones hold the
 *   mask from their start). Another Runner, or another Corral process (corral run, a node, corral up) with
 *   a sandbox over the same folder, is invisible to it. Counting across processes needs a lock all of them
 *   take on the path (flock on the folder), which node:fs does not offer; reading every process's mountinfo
 *   first leaves a window between that read and the rmdir in which another process's bubblewrap mounts a
 *   mask there.
 * - "Still empty and the same inode" cannot be checked and acted on at once: node:fs has no unlinkat or
 *   fstatat, and between the check and the rmdir a sandbox that may write the parent can swap in another
 *   empty folder (rename), which may be what another run is about to mask.
 * - A plan made once the folder exists masks it as an existing folder, not `missing`: nothing makes it again
 *   for that plan's later runs, which would find whatever has been put there since.
 * What stays is an empty folder, which the next plan of the policy masks as an existing denied folder.
 * The same hazard remains from outside Corral: whoever may write the parent folder (the host's user, a
 * `git clean -fd` that removes empty untracked folders, a concurrent sandbox whose policy grants that folder
 * read-write without the deny) can remove the folder during a run and open the denied path to it.
 *
 * @param fds the descriptors openMountSources opened for `mounts`, in the same order.
 * @throws ContainError `CONTAIN_PATH_CHANGED` (something other than a folder is at the path now),
 *   `CONTAIN_UNENFORCEABLE` (the folder could not be made: the denied path would not stay denied).
 */
function placeStandIns(mounts: readonly Mount[], fds: readonly number[]): void {
  const bound = mounts.filter((m) => m.kind === 'ro' || m.kind === 'rw');
  for (const m of mounts) {
    if (m.kind !== 'deny' || !m.missing) continue;
    const parent = bound.findIndex((b) => b.kind === 'rw' && b.path === dirname(m.path));
    if (parent < 0) throw new ContainError('CONTAIN_UNENFORCEABLE', `the denied path ${m.path} cannot be masked: its folder is not bound read-write; the command was not started`);
    const at = `/proc/self/fd/${fds[parent]}/${basename(m.path)}`;
    try {
      mkdirSync(at, { mode: 0o755 });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && lstatSync(at).isDirectory()) continue;
      if (code === 'EEXIST') throw new ContainError('CONTAIN_PATH_CHANGED', `${m.path}, denied and missing when the sandbox was planned, is there now and is not a folder; the command was not started (plan again)`);
      throw new ContainError('CONTAIN_UNENFORCEABLE', `the denied path ${m.path} does not exist, and the folder its mask needs could not be made (${code}): the sandbox could create it; the command was not started`, { cause: error });
    }
  }
}

function libraryMounts(): Mount[] {
  const g = libraryGrant();
  const ro = (path: string): Mount => {
    const source = realpathSync(path);
    return source === path ? { kind: 'ro', path } : { kind: 'ro', path, source };
  };
  return [...g.symlinks.map((s): Mount => ({ kind: 'symlink', path: s.path, target: s.target })), ...g.readonly.map(ro)];
}

/**
 * The launcher's library mounts plus the plan's, each path once (the plan's
 * own kind wins): symlinks first, then the library folders (system paths,
 * shallowest first), then the plan's mounts in the plan's own order, which
 * puts each mask after the grants it cuts into and before those bound back inside it.
 */
function mergeMounts(extra: Mount[], planned: readonly Mount[]): Mount[] {
  const taken = new Set(planned.map((m) => m.path));
  const kept = extra.filter((m) => !taken.has(m.path));
  const depth = (p: string) => p.split('/').length;
  const symlink = (m: Mount) => m.kind === 'symlink';
  return [...kept.filter(symlink), ...planned.filter(symlink), ...kept.filter((m) => !symlink(m)).sort((a, b) => depth(a.path) - depth(b.path)), ...planned.filter((m) => !symlink(m))];
}

/** Listens on host loopback and pipes each connection to the sandbox's ingress socket. */
function publish(hostPort: number, socketPath: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((client) => {
      const upstream = connectSocketFile(socketPath);
      if (!upstream) return void client.destroy();
      client.pipe(upstream).pipe(client);
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    server.once('error', (error) => reject(new ContainError('CONTAIN_SPAWN_FAILED', `cannot publish ingress on 127.0.0.1:${hostPort}: ${error.message}`, { cause: error })));
    server.listen(hostPort, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Connects to the unix socket at `path`, in a folder the sandbox writes: through a descriptor of
 * that entry itself (O_PATH | O_NOFOLLOW), so a symlink the sandbox put there in the socket's
 * place is never followed to a host socket of its choosing. Undefined when the entry is not a socket.
 */
function connectSocketFile(path: string): Socket | undefined {
  let fd: number;
  try {
    fd = openSync(path, O_PATH | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    // The path is resolved by connect(2), which net.connect makes before it returns.
    return fstatSync(fd).isSocket() ? connect(`/proc/self/fd/${fd}`) : undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The descriptors from 3 up this process holds without close-on-exec: ones it inherited (Node
 * opens its own close-on-exec), from a shell's redirection, socket activation or a parent's IPC
 * channel. Every child inherits them too; in a sandbox, a folder's would open the host around the grants.
 */
function inheritedDescriptors(): number[] {
  const fds: number[] = [];
  for (const name of readdirSync('/proc/self/fdinfo')) {
    const fd = Number(name);
    if (fd < 3) continue;
    let flags: string | undefined;
    try {
      flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${name}`, 'utf8'))?.[1];
    } catch {
      continue; // The listing's own descriptor, closed since.
    }
    if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) fds.push(fd);
  }
  return fds;
}

/** What `promise` resolves to, or `stopped` once `stop` is aborted, whichever comes first; its listener goes with it (a runner's stop outlives many). */
function unlessStopped<T>(promise: Promise<T>, stop: AbortSignal, stopped: T): Promise<T> {
  if (stop.aborted) return Promise.resolve(stopped);
  return new Promise((resolve) => {
    const onStop = () => resolve(stopped);
    stop.addEventListener('abort', onStop, { once: true });
    void promise.then((value) => {
      stop.removeEventListener('abort', onStop);
      resolve(value);
    });
  });
}

/** Waits for the launcher's one "ready" byte; false when the sandbox died first. */
function launcherReady(socket: Duplex): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      socket.off('data', onData).off('end', onEnd).off('close', onEnd);
      // Keep reading (nothing more comes), so the end of the socket is seen and the child's close follows.
      socket.resume();
      resolve(ready);
    };
    const onData = () => done(true);
    const onEnd = () => done(false);
    socket.on('data', onData).once('end', onEnd).once('close', onEnd);
  });
}

/**
 * Follows bubblewrap's --json-status-fd. Its first document names the sandbox's pid (`childPid`,
 * NaN when bubblewrap ended first); an `exit-code` document follows at the end only when it
 * exec'd the command, as a close-on-exec pipe tells it (`ran`, once the descriptor closes).
 */
interface BubblewrapStatus {
  childPid: Promise<number>;
  ran: Promise<boolean>;
}

function bubblewrapStatus(stream: Readable): BubblewrapStatus {
  let text = '';
  let found: (pid: number) => void = () => undefined;
  const childPid = new Promise<number>((resolve) => (found = resolve));
  const ran = new Promise<boolean>((resolve) => {
    const end = () => {
      found(Number.NaN);
      resolve(/"exit-code":/.test(text));
    };
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      text += chunk;
      const pid = /"child-pid":\s*(\d+)\D/.exec(text)?.[1];
      if (pid !== undefined) found(Number(pid));
    });
    stream.once('end', end).once('error', end).once('close', end);
  });
  return { childPid, ran };
}

/**
 * Kills a sandbox whole, at any point of its start: every process in its cgroups, then, under corral-reaper,
 * everything below the reaper (it ends it all once its lifeline closes). Elsewhere, bubblewrap's
 * children (the sandbox's first process, the init of its PID namespace: every process inside ends with
 * it), then bubblewrap. bubblewrap is stopped first, so that it makes no child while they are looked
 * for and reaps none (its pid then free for another process) before it is killed. Its children are found
 * from /proc, not from what it reports: killed alone before it released its child, bubblewrap left it
 * waiting, or running the command, for good, outside any cgroup, holding the run's output open so that
 * the run never ended; and waiting for its report waited for good on a bubblewrap that hung before it.
 */
function killSandbox(s: Pick<Sandbox, 'child' | 'cgroups' | 'lifeline'>): void {
  s.cgroups?.kill();
  // Under corral-reaper, which kills everything below it once its lifeline closes (bubblewrap, its children, and any it left).
  if (s.lifeline) return void s.lifeline.destroy();
  const bwrap = s.child.pid;
  // Never spawned, or ended and reaped already (Node then sends nothing, where its pid may be another process's).
  if (bwrap === undefined || !s.child.kill('SIGSTOP')) return;
  void halted(bwrap).then(() => {
    // Killed by another stop meanwhile and reaped: its pid, and so its children, may be another process's now.
    if (s.child.exitCode !== null || s.child.signalCode !== null) return;
    for (const pid of childrenOf(bwrap)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    s.child.kill('SIGKILL');
  });
}

/** Resolves once process `pid`, sent SIGSTOP, is stopped (a clone it was making is done) or has ended. */
async function halted(pid: number): Promise<void> {
  for (;;) {
    let state: string | undefined;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      state = stat[stat.lastIndexOf(')') + 2];
    } catch {
      return;
    }
    if (state === undefined || 'TtZX'.includes(state)) return;
    await sleep(1);
  }
}

/** The processes whose parent is `pid`, from each one's /proc/PID/stat (the command name before it may hold anything but its closing parenthesis). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (Number(stat.slice(stat.lastIndexOf(')') + 4).split(' ', 1)[0]) === pid) children.push(Number(name));
    } catch {
      // Gone since it was listed.
    }
  }
  return children;
}

/** The home directory the sandbox's /etc/passwd gives every user it names (what a program that asks passwd, such as ssh, takes for home, whatever HOME says). */
export const SANDBOX_PASSWD_HOME = '/tmp';

/** /etc files the sandbox sees instead of the host's: no host users, no resolver. */
function writeSyntheticEtc(dir: string): SyntheticEtc {
  // By number: a user id with no passwd entry (a container under an arbitrary uid) has no userInfo().
  const uid = process.getuid!();
  const gid = process.getgid!();
  const files: Record<string, string> = {
    passwd: `root:x:0:0:root:${SANDBOX_PASSWD_HOME}:/bin/sh\n${uid === 0 ? '' : `corral:x:${uid}:${gid}:contained command:${SANDBOX_PASSWD_HOME}:/bin/sh\n`}nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\n${gid === 0 ? '' : `corral:x:${gid}:\n`}nogroup:x:65534:\n`,
    hosts: '127.0.0.1\tlocalhost corral\n::1\tlocalhost ip6-localhost ip6-loopback\n',
    hostname: 'corral\n',
    'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
  };
  mkdirSync(dir, { mode: 0o755 });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o644 });
  return { dir, files: Object.keys(files) };
}
