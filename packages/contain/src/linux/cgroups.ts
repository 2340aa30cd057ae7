import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import type { CgroupController, CgroupPlace } from './host.ts';
import { processAlive } from './process-alive.ts';

/** The limits one run asks of its cgroups (only those with a controller here are set). */
export interface CgroupLimits {
  memoryBytes?: number;
  maxProcesses?: number;
  cpus?: number;
}

export interface CgroupReport {
  peakMemoryBytes: number | null;
  memoryLimitHit: boolean;
  processLimitHit: boolean;
}

type Groups = Partial<Record<CgroupController, { dir: string; version: 1 | 2 }>>;

const CPU_PERIOD_US = 100_000;
const POOL_LIMIT = 8;

/**
 * The cgroups of one contained run: one group per controller (v1) or one
 * group holding all (v2), made under the runner's own group.
 */
export class RunCgroups {
  readonly groups: Groups;
  // Event counters only grow: a reused group reports what happened since it was handed out.
  #baseline = { oomKills: 0, pidsMax: 0 };

  constructor(groups: Groups) {
    this.groups = groups;
  }

  get #dirs(): string[] {
    return [...new Set(Object.values(this.groups).map((g) => g.dir))];
  }

  /** Writes the limits (a reused group gets its new run's limits). */
  configure(limits: CgroupLimits): void {
    const { memory, pids, cpu } = this.groups;
    if (memory && limits.memoryBytes !== undefined) {
      if (memory.version === 1) {
        // memsw must stay ≥ the memory limit: order the writes so each one is valid.
        const memsw = join(memory.dir, 'memory.memsw.limit_in_bytes');
        const current = Number(readText(join(memory.dir, 'memory.limit_in_bytes')));
        if (limits.memoryBytes > current) writeOptional(memsw, String(limits.memoryBytes));
        writeFileSync(join(memory.dir, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        // Swap counts too where the kernel accounts it: no escaping the limit by swapping.
        writeOptional(memsw, String(limits.memoryBytes));
        writeFileSync(join(memory.dir, 'memory.max_usage_in_bytes'), '0');
      } else {
        writeFileSync(join(memory.dir, 'memory.max'), String(limits.memoryBytes));
        writeOptional(join(memory.dir, 'memory.swap.max'), '0');
      }
    }
    if (pids && limits.maxProcesses !== undefined) writeFileSync(join(pids.dir, 'pids.max'), String(limits.maxProcesses));
    if (cpu && limits.cpus !== undefined) {
      const quota = Math.max(1000, Math.round(limits.cpus * CPU_PERIOD_US));
      if (cpu.version === 1) {
        writeFileSync(join(cpu.dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
        writeFileSync(join(cpu.dir, 'cpu.cfs_quota_us'), String(quota));
      } else {
        writeFileSync(join(cpu.dir, 'cpu.max'), `${quota} ${CPU_PERIOD_US}`);
      }
    }
    this.#baseline = { oomKills: this.#oomKills(), pidsMax: this.#pidsMax() };
  }

  /** The v1 `tasks` file of each group: a process that writes 0 to them joins the groups itself (corral-reaper's --join). */
  tasksFiles(): string[] {
    return this.#dirs.map((dir) => join(dir, 'tasks'));
  }

  /**
   * Moves a process (and so everything it later forks) into every group. Off
   * the thread: the kernel may take a grace period over the first move (about
   * 10 ms into a v1 memory group here), which held the event loop.
   */
  async adopt(pid: number): Promise<void> {
    for (const dir of this.#dirs) await writeFile(join(dir, 'cgroup.procs'), String(pid));
  }

  /**
   * Kills every process in the groups. Killing bubblewrap alone can leave a
   * sandbox that was still being set up (its parent-death signal not yet in
   * place) running on; its cgroup still holds it.
   */
  kill(): void {
    for (const dir of this.#dirs) killProcesses(dir);
  }

  /** What the groups saw since configure(): peak memory and whether a limit was reached. */
  report(): CgroupReport {
    const out: CgroupReport = { peakMemoryBytes: null, memoryLimitHit: false, processLimitHit: false };
    const mem = this.groups.memory;
    if (mem) {
      const peakFile = mem.version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak';
      out.peakMemoryBytes = Number(readText(join(mem.dir, peakFile))) || null;
      out.memoryLimitHit = (this.#oomKills()) > this.#baseline.oomKills;
    }
    if (this.groups.pids) out.processLimitHit = (this.#pidsMax()) > this.#baseline.pidsMax;
    return out;
  }

  /** True once no process is left in any group. */
  empty(): boolean {
    for (const dir of this.#dirs) if ((readText(join(dir, 'cgroup.procs'))).trim() !== '') return false;
    return true;
  }

  /** Removes the groups, retrying briefly while the kernel reaps the last processes. */
  async dispose(): Promise<void> {
    for (const dir of this.#dirs) {
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(dir);
          break;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || attempt >= 100) break;
          await sleep(10);
        }
      }
    }
  }

  #oomKills(): number {
    const mem = this.groups.memory;
    if (!mem) return 0;
    const text = readText(join(mem.dir, mem.version === 1 ? 'memory.oom_control' : 'memory.events'));
    const kills = /oom_kill (\d+)/.exec(text);
    if (kills) return Number(kills[1]);
    return mem.version === 1 ? Number(readText(join(mem.dir, 'memory.failcnt'))) || 0 : 0;
  }

  #pidsMax(): number {
    const pids = this.groups.pids;
    return pids ? Number(/max (\d+)/.exec(readText(join(pids.dir, 'pids.events')))?.[1] ?? 0) : 0;
  }
}

/**
 * Keeps emptied v1 groups for the next run: making and removing cgroups costs
 * more than the sandbox itself, and a run's groups are reset before reuse.
 */
export class CgroupPool {
  readonly #places: Partial<Record<CgroupController, CgroupPlace>>;
  readonly #prefix: string;
  readonly #idle: RunCgroups[] = [];
  readonly #pending = new Set<Promise<void>>();
  #made = 0;

  constructor(places: Partial<Record<CgroupController, CgroupPlace>>, prefix: string) {
    this.#places = places;
    this.#prefix = prefix;
    sweepAbandoned(places);
  }

  /** A group set configured with `limits`, reused when one is idle. */
  async acquire(limits: CgroupLimits): Promise<RunCgroups> {
    const groups = this.#idle.pop() ?? this.#make();
    try {
      groups.configure(limits);
    } catch (error) {
      await groups.dispose();
      throw error;
    }
    return groups;
  }

  /**
   * Takes back a run's groups once they are empty; in the background, so the
   * run's result is not held up: nothing happens before the next turn of the
   * event loop, and the slow kernel work is done off it.
   */
  release(groups: RunCgroups): void {
    const work = (async () => {
      await nextTurn();
      for (let i = 0; i < 200 && !groups.empty(); i++) await sleep(5);
      const reusable = Object.values(groups.groups).every((g) => g.version === 1) && groups.empty() && this.#idle.length < POOL_LIMIT;
      if (reusable) {
        const mem = groups.groups.memory;
        // Drop the last run's page cache so the next run starts from nothing. The kernel
        // reclaims it within the write (milliseconds): on the thread pool, not the event loop.
        if (mem) await writeFile(join(mem.dir, 'memory.force_empty'), '0').catch(() => undefined);
        this.#idle.push(groups);
      } else {
        await groups.dispose();
      }
    })();
    this.#pending.add(work);
    void work.finally(() => this.#pending.delete(work));
  }

  /** Waits for releases in flight and removes every group the pool made. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    await Promise.allSettled(this.#idle.splice(0).map((g) => g.dispose()));
    for (const place of new Set(Object.values(this.#places).map((p) => join(p.parent, 'corral', this.#prefix)))) {
      try {
        rmdirSync(place);
      } catch {
        // Never made (no run needed a cgroup), or another runner's group still lives there.
      }
    }
  }

  #make(): RunCgroups {
    const name = String(++this.#made);
    const groups: Groups = {};
    for (const controller of ['memory', 'pids', 'cpu'] as const) {
      const place = this.#places[controller];
      if (!place) continue;
      const dir = join(place.parent, 'corral', this.#prefix, name);
      mkdirSync(dir, { recursive: true });
      if (place.version === 2) {
        // cgroup v2 hands a controller down one level at a time.
        for (const level of [join(place.parent, 'corral'), join(place.parent, 'corral', this.#prefix)]) {
          writeFileSync(join(level, 'cgroup.subtree_control'), `+${controller}`);
        }
      }
      groups[controller] = { dir, version: place.version };
    }
    return new RunCgroups(groups);
  }
}

/**
 * Removes the pools of runners that died without closing (named
 * `runner-PID-N`, PID no longer alive), killing first what still runs in
 * them: a sandbox released just before its runner died takes no
 * parent-death signal until bubblewrap has set it up, and runs its command
 * on its own, with no timeout and nobody reading its output. A group still
 * busy while the kernel reaps them is left for a later sweep.
 */
function sweepAbandoned(places: Partial<Record<CgroupController, CgroupPlace>>): void {
  for (const root of new Set(Object.values(places).map((p) => join(p.parent, 'corral')))) {
    let pools: string[];
    try {
      pools = readdirSync(root).filter((name) => /^runner-\d+-\d+$/.test(name));
    } catch {
      continue;
    }
    for (const pool of pools) {
      const pid = Number(pool.split('-')[1]);
      if (processAlive(pid)) continue;
      const dir = join(root, pool);
      try {
        const groups = readdirSync(dir, { withFileTypes: true }).filter((entry) => entry.isDirectory());
        for (const entry of groups) killProcesses(join(dir, entry.name));
        for (const entry of groups) rmdirSync(join(dir, entry.name));
        rmdirSync(dir);
      } catch {
        // Still busy or not ours to remove: left for a later sweep.
      }
    }
  }
}

/** Sends SIGKILL to every process in the cgroup at `dir`. */
function killProcesses(dir: string): void {
  for (const pid of readText(join(dir, 'cgroup.procs')).split('\n')) {
    if (pid.trim() === '') continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
}

/** Writes a control file the kernel may not have (swap accounting off, an older kernel). */
function writeOptional(file: string, value: string): void {
  try {
    writeFileSync(file, value);
  } catch {
    // Absent here: the protection it adds is not available on this host.
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
