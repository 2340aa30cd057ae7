// Counting the worker threads code starts: proof that work meant for one
// worker thread is not spread over several.
import { syncBuiltinESMExports } from 'node:module';
import workerThreads from 'node:worker_threads';

/**
 * Runs `work`, counting the Worker threads started meanwhile, and the most
 * alive at once (one counts until it has exited), by any module:
 * worker_threads' export is swapped and synced into every importer's binding.
 */
export async function countingWorkers(work: () => Promise<unknown>): Promise<{ started: number; mostAtOnce: number }> {
  const Original = workerThreads.Worker;
  let started = 0;
  let live = 0;
  let mostAtOnce = 0;
  workerThreads.Worker = class extends Original {
    constructor(...args: ConstructorParameters<typeof Original>) {
      super(...args);
      started++;
      mostAtOnce = Math.max(mostAtOnce, ++live);
      this.once('exit', () => live--);
    }
  };
  syncBuiltinESMExports();
  try {
    await work();
  } finally {
    workerThreads.Worker = Original;
    syncBuiltinESMExports();
  }
  return { started, mostAtOnce };
}
