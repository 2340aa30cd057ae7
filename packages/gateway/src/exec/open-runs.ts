// Runs this gateway authorized for a Corral node serving another gateway
// (`corral.run.authorize`) and not yet reported (`corral.run.report`), kept in
// gateway.db: a node that reports after the gateway restarted has its run
// recorded as run, not refused as unknown. A row is written before the node is
// told it may run and taken out before its report is recorded, so a report
// is recorded at most once.
import type { DatabaseSync } from 'node:sqlite';
import type { ApprovalReceipt } from '../approvals/receipt.ts';
import { preparedOnce } from '../store/statements.ts';
import { writeNowOrWhenFree } from '../store/write-lock.ts';
import type { PrincipalRef } from './decide.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS open_runs (
  run_id TEXT PRIMARY KEY,
  node_id TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS open_runs_by_node ON open_runs (node_id, opened_at);
`;

export interface OpenRun {
  digest: string;
  principal: PrincipalRef;
  /** The approval that allowed it, and the receipt this gateway signed for it. */
  approvalId?: string;
  receipt?: ApprovalReceipt;
  /** When it was authorized, ms since the epoch: the oldest of a node's runs goes first. */
  at: number;
}

export class OpenRuns {
  readonly #db: DatabaseSync;
  readonly #sql: ReturnType<typeof preparedOnce>;

  constructor(db: DatabaseSync) {
    db.exec(SCHEMA);
    this.#db = db;
    this.#sql = preparedOnce(db);
  }

  /** How many runs of `nodeId` wait for their report. */
  count(nodeId: string): number {
    return (this.#sql('SELECT count(*) AS n FROM open_runs WHERE node_id = ?').get(nodeId) as { n: number }).n;
  }

  /** The runs of `nodeId` waiting for their report, oldest first. */
  ofNode(nodeId: string, limit = Number.MAX_SAFE_INTEGER): Array<[runId: string, run: OpenRun]> {
    const rows = this.#sql('SELECT run_id, run FROM open_runs WHERE node_id = ? ORDER BY opened_at, rowid LIMIT ?').all(nodeId, limit) as Array<{ run_id: string; run: string }>;
    return rows.map((r) => [r.run_id, JSON.parse(r.run) as OpenRun]);
  }

  /** Every node with a run waiting for its report. */
  nodes(): string[] {
    return (this.#sql('SELECT DISTINCT node_id FROM open_runs').all() as Array<{ node_id: string }>).map((r) => r.node_id);
  }

  /**
   * Keeps `run` of `nodeId` until it is taken (again, after a record of it
   * failed: its `at` keeps its place in line). At once while gateway.db's
   * write lock is free (no promise); while another process (a corral
   * command) holds it, a promise that waits with timers (store/write-lock.ts),
   * rejected with GATEWAY_BUSY (retryable, nothing kept) past the wait.
   */
  put(nodeId: string, runId: string, run: OpenRun): void | Promise<void> {
    return writeNowOrWhenFree(this.#db, () => void this.#sql('INSERT OR REPLACE INTO open_runs (run_id, node_id, opened_at, run) VALUES (?, ?, ?, ?)').run(runId, nodeId, run.at, JSON.stringify(run)));
  }

  /**
   * Takes out the run `runId` of `nodeId`: undefined when no such run of that
   * node waits (another node's, unknown, or reported). At once or waiting for
   * the lock, as put() does; GATEWAY_BUSY (nothing taken) past the wait.
   */
  take(nodeId: string, runId: string): OpenRun | undefined | Promise<OpenRun | undefined> {
    return writeNowOrWhenFree(this.#db, () => {
      const row = this.#sql('DELETE FROM open_runs WHERE run_id = ? AND node_id = ? RETURNING run').get(runId, nodeId) as { run: string } | undefined;
      return row ? (JSON.parse(row.run) as OpenRun) : undefined;
    });
  }
}
