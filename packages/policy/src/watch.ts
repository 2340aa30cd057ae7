import { watch, type FSWatcher } from 'node:fs';
import type { DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import type { PolicySet } from './load.ts';

export interface PolicyWatcher {
  close(): void;
}

/**
 * Hot reload: reloads `dir` into `pdp` whenever a file in it changes (after
 * `debounceMs` of quiet). A set that fails to load is reported to `onError`
 * and the previous set stays active.
 */
export function watchPolicyDir(
  pdp: DecisionPoint,
  dir: string,
  handlers: { onLoad?: (set: PolicySet) => void; onError?: (error: PolicyError) => void; debounceMs?: number } = {},
): PolicyWatcher {
  let timer: NodeJS.Timeout | undefined;
  const reload = () => {
    timer = undefined;
    try {
      const set = pdp.reload(dir);
      handlers.onLoad?.(set);
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      handlers.onError?.(error);
    }
  };
  const watcher: FSWatcher = watch(dir, { recursive: true }, () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(reload, handlers.debounceMs ?? 50);
  });
  return {
    close() {
      if (timer) clearTimeout(timer);
      watcher.close();
    },
  };
}
