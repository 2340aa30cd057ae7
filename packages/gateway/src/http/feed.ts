// New audit records as they are appended by this gateway: the hook the live
// activity stream (and the running-command count) listen on. The gateway
// calls `notify` after each append it makes; packages/audit is not involved.
import type { AuditRecord } from '@corral/audit';

export class AuditFeed {
  readonly #listeners = new Set<(record: AuditRecord) => void>();

  /** Calls `listener` with each record appended from now on; returns the unsubscribe function. */
  subscribe(listener: (record: AuditRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  notify(record: AuditRecord): void {
    for (const listener of this.#listeners) {
      try {
        listener(record);
      } catch {
        // One listener (a stream whose socket broke) never stops the others.
      }
    }
  }
}
