// Sandboxes started ahead of their runs. A warm sandbox is built from one
// exact plan (its key is a digest of the whole plan), set up to the last step
// and left waiting for the command it is to become; a run of that same plan
// takes one, so it pays only for handing over the command, the exec and the
// wait. Each sandbox serves one run and is never handed back: the pool
// refills in the background, one sandbox at a time, up to the size asked.
// The refill waits until the run that took the sandbox is over and its
// caller is done with the result (or a short grace period has passed, for a
// run that lasts): started at once, it would spawn bubblewrap and make
// cgroups while that run starts, or while its result is passed on, on the
// same cores and the same event loop, and a short run would pay for its own
// replacement.
import { ContainError } from './errors.ts';
import { planKey, type SandboxPlan } from './policy/plan.ts';

/** At most this many warm sandboxes for one plan, and this many plans kept warm. */
export const MAX_WARM_PER_PLAN = 8;
export const MAX_WARM_PLANS = 8;

/** Milliseconds a taken sandbox's run may last before its replacement starts anyway. */
export const REFILL_GRACE_MS = 250;

/** What the pool needs from the runner: make one sandbox, tell a live one, tell when one's run is over, throw one away. */
export interface WarmHooks<S> {
  boot(plan: SandboxPlan): Promise<S>;
  alive(sandbox: S): boolean;
  /** Settles when the run the sandbox was taken for has ended (fulfilled or rejected alike). */
  over(sandbox: S): Promise<unknown>;
  discard(sandbox: S): Promise<void>;
}

interface PlanPool<S> {
  plan: SandboxPlan;
  size: number;
  ready: S[];
  filling: Promise<void> | undefined;
}

export class WarmPool<S> {
  readonly #hooks: WarmHooks<S>;
  readonly #pools = new Map<string, PlanPool<S>>();
  readonly #discarding = new Set<Promise<void>>();
  #closed = false;

  constructor(hooks: WarmHooks<S>) {
    this.#hooks = hooks;
  }

  /**
   * Keeps `size` sandboxes for `plan` ready from now on (0 stops and discards
   * them). Resolves once that many are ready; rejects with the reason when
   * one cannot be made (the plan then stays cold until asked again).
   *
   * @throws ContainError `CONTAIN_WARM_LIMIT` (size outside 0..MAX_WARM_PER_PLAN,
   *   or a new plan past MAX_WARM_PLANS), `CONTAIN_CLOSED`.
   */
  keep(plan: SandboxPlan, size: number): Promise<void> {
    if (this.#closed) return Promise.reject(new ContainError('CONTAIN_CLOSED', 'this runner was closed'));
    if (!Number.isInteger(size) || size < 0 || size > MAX_WARM_PER_PLAN) {
      return Promise.reject(new ContainError('CONTAIN_WARM_LIMIT', `keepWarm size must be a whole number from 0 to ${MAX_WARM_PER_PLAN}, not ${String(size)}`));
    }
    const key = planKey(plan);
    let pool = this.#pools.get(key);
    if (size === 0) {
      if (pool) {
        this.#pools.delete(key);
        pool.size = 0;
        this.#discard(pool.ready.splice(0));
      }
      return Promise.resolve();
    }
    if (!pool) {
      if (this.#pools.size >= MAX_WARM_PLANS) {
        return Promise.reject(new ContainError('CONTAIN_WARM_LIMIT', `a runner keeps at most ${MAX_WARM_PLANS} plans warm; stop one with keepWarm(plan, 0) first`));
      }
      pool = { plan, size, ready: [], filling: undefined };
      this.#pools.set(key, pool);
    }
    pool.size = size;
    this.#discard(pool.ready.splice(size));
    return this.#fill(pool);
  }

  /**
   * A ready sandbox made for exactly this plan, or
   * undefined (then the run starts cold). The refill starts once the taken
   * sandbox's run is over and `after` (the caller's own work on its result)
   * has settled, or REFILL_GRACE_MS have passed, whichever comes first (with
   * no sandbox to give, on the next turn of the event loop), so a caller that
   * wanted one run only can stop it first with keep(plan, 0).
   */
  take(plan: SandboxPlan, after?: PromiseLike<unknown>): S | undefined {
    if (this.#pools.size === 0) return undefined;
    const pool = this.#pools.get(planKey(plan));
    if (!pool) return undefined;
    let sandbox: S | undefined;
    while ((sandbox = pool.ready.shift()) !== undefined && !this.#hooks.alive(sandbox)) this.#discard([sandbox]);
    // A failed refill is the next cold run's to report: nobody waits on this one.
    const refill = () => void this.#fill(pool).catch(() => undefined);
    if (sandbox === undefined) {
      setImmediate(refill);
      return undefined;
    }
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, REFILL_GRACE_MS);
      timer.unref();
    });
    const settled = (p: PromiseLike<unknown> | undefined) => Promise.resolve(p).catch(() => undefined);
    const over = Promise.all([settled(this.#hooks.over(sandbox)), settled(after)]);
    void Promise.race([over, graceOver]).then(() => {
      clearTimeout(timer);
      // On a later turn: the run's result reaches its caller before bubblewrap is spawned again.
      setImmediate(refill);
    });
    return sandbox;
  }

  /** Stops refilling and discards every waiting sandbox. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.allSettled(pools.map((p) => p.filling));
    for (const pool of pools) this.#discard(pool.ready.splice(0));
    await Promise.allSettled([...this.#discarding]);
  }

  /** Boots sandboxes one after another until the pool holds its size; one fill at a time per plan. */
  #fill(pool: PlanPool<S>): Promise<void> {
    if (pool.filling) return pool.filling;
    const boot = async () => {
      while (!this.#closed && pool.size > 0 && pool.ready.length < pool.size) {
        const sandbox = await this.#hooks.boot(pool.plan);
        if (this.#closed || pool.size === 0) this.#discard([sandbox]);
        else pool.ready.push(sandbox);
      }
    };
    // Cleared in a later tick: a fill with nothing to do must not stay behind as "filling".
    const filling = boot().finally(() => {
      pool.filling = undefined;
    });
    pool.filling = filling;
    return filling;
  }

  #discard(sandboxes: S[]): void {
    for (const sandbox of sandboxes) {
      const work = this.#hooks.discard(sandbox).catch(() => undefined);
      this.#discarding.add(work);
      void work.then(() => this.#discarding.delete(work));
    }
  }
}
