// prom-client's default metrics of the process (CPU, memory, event loop lag,
// garbage collection), prefixed `corral_`. They describe the process, not a
// gateway, and what gathers them (an event-loop delay monitor, a GC
// observer) runs until the process ends: one registry for them per process,
// made at the first scrape, shared by every gateway the process runs.
import { collectDefaultMetrics, Registry } from 'prom-client';

let shared: Registry | undefined;

/** The process's registry of default metrics (never prom-client's global one). */
export function processRegistry(): Registry {
  if (shared === undefined) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared, prefix: 'corral_' });
  }
  return shared;
}
