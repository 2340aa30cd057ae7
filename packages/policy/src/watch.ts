import { realpathSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import type { PolicySet } from './load.ts';

export interface PolicyWatcher {
  close(): void;
}

/**
 * Hot reload: reloads `dir` into `pdp` whenever a file in it changes (after
 * `debounceMs` of quiet), or `dir` — a link Corral's activation swaps to a
 * new version — comes to point elsewhere. A set that fails to load, or a
 * directory that cannot be watched, is reported to `onError` and the previous
 * set stays active; a load that fails with an error other than a PolicyError
 * is reported as POLICY_ENGINE_FAILED, its cause that error. Throws
 * POLICY_UNREADABLE when `dir` cannot be watched at all.
 */
export function watchPolicyDir(
  pdp: DecisionPoint,
  dir: string,
  handlers: { onLoad?: (set: PolicySet) => void; onError?: (error: PolicyError) => void; debounceMs?: number } = {},
): PolicyWatcher {
  const unwatchable = (error: unknown) => (error instanceof PolicyError ? error : new PolicyError('POLICY_UNREADABLE', `cannot watch the policy directory ${dir}`, { cause: error }));
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  /** The directory `dir` resolved to when its watch was set, and that watch. */
  let target: string | undefined;
  let inside: FSWatcher | undefined;

  const schedule = () => {
    if (closed) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(reload, handlers.debounceMs ?? 50);
  };
  // A watch on a link watches the directory it pointed to then: after a swap it would see nothing again.
  const follow = () => {
    const now = realpathSync(dir);
    if (now === target) return;
    inside?.close();
    target = undefined;
    inside = watch(now, { recursive: true }, schedule);
    inside.on('error', (error) => handlers.onError?.(unwatchable(error)));
    target = now;
  };
  const reload = () => {
    timer = undefined;
    try {
      follow();
    } catch (error) {
      // Absent for a moment (a first activation moves it): the swap that ends that wakes the parent's watch.
      handlers.onError?.(unwatchable(error));
      return;
    }
    try {
      const set = pdp.reload(dir);
      handlers.onLoad?.(set);
    } catch (error) {
      // Thrown from this timer, any other error would end the process: it is reported, coded, as a load that failed.
      handlers.onError?.(error instanceof PolicyError ? error : new PolicyError('POLICY_ENGINE_FAILED', `loading the policy directory ${dir} failed`, { cause: error }));
    }
  };

  let outside: FSWatcher | undefined;
  try {
    follow();
    outside = watch(dirname(dir), (_event, name) => {
      if (name === null || name === basename(dir)) schedule();
    });
    outside.on('error', (error) => handlers.onError?.(unwatchable(error)));
  } catch (error) {
    inside?.close();
    throw unwatchable(error);
  }
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      inside?.close();
      outside?.close();
    },
  };
}
