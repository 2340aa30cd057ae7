// A cage for a peer sandbox that sets no limits of its own: a pids cgroup and a
// memory cgroup the benchmark makes itself, so an attack that the peer lets run
// (a fork bomb, a memory bomb) cannot exhaust this shared machine. The benchmark
// moves its worker process into the cage before the worker starts anything; all
// it forks stays inside. Not part of Corral: Corral sets its own cgroups.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CageLimits {
  maxProcesses: number;
  memoryBytes: number;
}

/** What the cage saw since `admit()`. */
export interface CageEvents {
  /** Forks the pids limit refused. */
  pidsLimitHits: number;
  /** Times the memory limit was reached (v1 failcnt / v2 `max` events). */
  memoryLimitHits: number;
  /** OOM kills inside the cage. */
  oomKills: number;
}

/**
 * One pids and one memory cgroup under this process's own groups (cgroup v1,
 * one hierarchy per controller; or one v2 group holding both).
 */
export class HarnessCage {
  readonly dirs: { pids: string; memory: string; version: 1 | 2 };
  #baseline: CageEvents = { pidsLimitHits: 0, memoryLimitHits: 0, oomKills: 0 };

  private constructor(dirs: { pids: string; memory: string; version: 1 | 2 }) {
    this.dirs = dirs;
  }

  /** Makes the cage; undefined when this host gives no writable pids and memory cgroups. */
  static create(name: string, limits: CageLimits): HarnessCage | undefined {
    const lines = readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n');
    const v1 = (controller: string) => {
      const line = lines.find((l) => l.split(':')[1]?.split(',').includes(controller));
      const root = `/sys/fs/cgroup/${controller}`;
      return line && existsSync(join(root, 'cgroup.procs')) ? join(root, line.split(':')[2] ?? '/', name) : undefined;
    };
    let cage: HarnessCage | undefined;
    const pids = v1('pids');
    const memory = v1('memory');
    try {
      if (pids && memory) {
        mkdirSync(pids, { recursive: true });
        mkdirSync(memory, { recursive: true });
        cage = new HarnessCage({ pids, memory, version: 1 });
        writeFileSync(join(pids, 'pids.max'), String(limits.maxProcesses));
        writeFileSync(join(memory, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        try {
          writeFileSync(join(memory, 'memory.memsw.limit_in_bytes'), String(limits.memoryBytes));
        } catch {
          // No swap accounting on this kernel: the memory limit alone holds.
        }
        return cage;
      }
      const unified = lines.find((l) => l.startsWith('0::'));
      if (!unified || !existsSync('/sys/fs/cgroup/cgroup.controllers')) return undefined;
      const dir = join('/sys/fs/cgroup', unified.slice(3), name);
      mkdirSync(dir, { recursive: true });
      cage = new HarnessCage({ pids: dir, memory: dir, version: 2 });
      writeFileSync(join(dir, 'pids.max'), String(limits.maxProcesses));
      writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes));
      writeFileSync(join(dir, 'memory.swap.max'), '0');
      return cage;
    } catch {
      cage?.remove();
      return undefined;
    }
  }

  /** Moves `pid` (every thread of it) into both groups and starts counting events from now. */
  admit(pid: number): void {
    this.#baseline = this.#read();
    writeFileSync(join(this.dirs.pids, 'cgroup.procs'), String(pid));
    if (this.dirs.memory !== this.dirs.pids) writeFileSync(join(this.dirs.memory, 'cgroup.procs'), String(pid));
  }

  /** Events since the last `admit()`. */
  events(): CageEvents {
    const now = this.#read();
    return {
      pidsLimitHits: now.pidsLimitHits - this.#baseline.pidsLimitHits,
      memoryLimitHits: now.memoryLimitHits - this.#baseline.memoryLimitHits,
      oomKills: now.oomKills - this.#baseline.oomKills,
    };
  }

  /** PIDs still in the cage. */
  members(): number[] {
    return read(join(this.dirs.pids, 'cgroup.procs'))
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number);
  }

  /**
   * Kills whatever is left in the cage (all of it was started by the
   * benchmark's worker) and waits until it is empty. Returns how many were left.
   */
  async empty(timeoutMs = 10_000): Promise<number> {
    const left = this.members().length;
    const deadline = Date.now() + timeoutMs;
    while (this.members().length > 0 && Date.now() < deadline) {
      if (this.dirs.version === 2 && existsSync(join(this.dirs.pids, 'cgroup.kill'))) writeFileSync(join(this.dirs.pids, 'cgroup.kill'), '1');
      else {
        for (const pid of this.members()) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Already gone.
          }
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return left;
  }

  /** Removes the groups (they must be empty). */
  remove(): void {
    for (const dir of new Set([this.dirs.pids, this.dirs.memory])) {
      try {
        rmdirSync(dir);
      } catch {
        // Busy or gone: the next run's create() reuses it.
      }
    }
  }

  #read(): CageEvents {
    const pidsEvents = Number(/max (\d+)/.exec(read(join(this.dirs.pids, 'pids.events')))?.[1] ?? 0);
    if (this.dirs.version === 1) {
      return {
        pidsLimitHits: pidsEvents,
        memoryLimitHits: Number(read(join(this.dirs.memory, 'memory.failcnt'))) || 0,
        oomKills: Number(/oom_kill (\d+)/.exec(read(join(this.dirs.memory, 'memory.oom_control')))?.[1] ?? 0),
      };
    }
    const events = read(join(this.dirs.memory, 'memory.events'));
    return {
      pidsLimitHits: pidsEvents,
      memoryLimitHits: Number(/^max (\d+)/m.exec(events)?.[1] ?? 0),
      oomKills: Number(/^oom_kill (\d+)/m.exec(events)?.[1] ?? 0),
    };
  }
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
