// The approval receipts this node has taken, kept in its state directory
// until each lapses, so that a node started again does not take a second time
// one it ran on just before (a receipt verifies for up to 90 s after it was
// issued; a node's memory alone lasted only until it stopped).
import { join } from 'node:path';
import { SpentReceipts, type ApprovalReceipt } from '@corral/gateway';
import { NodeError } from './errors.ts';
import { readStateFile, replaceFile } from './whole-files.ts';

export const TAKEN_RECEIPTS_FILE = 'taken-receipts.json';

/** Receipts remembered at most (SpentReceipts refuses more until one lapses); the file stays far below MAX_STATE_FILE_BYTES. */
const MAX_TAKEN = 4096;
/** An approval id is the gateway's UUID; more than this is not one of this node's records. */
const MAX_ID_LENGTH = 200;

export class TakenReceipts {
  readonly #path: string;
  readonly #spent: SpentReceipts;

  /**
   * Reads what the node took before it started (none when there is no file).
   * @throws NodeError NODE_CONFIG_INVALID for a file that is not this record:
   *   the node starts only once it is mended or removed, since without it a
   *   receipt taken just before could be taken again.
   */
  constructor(stateDir: string, startedAtMs: number = Date.now()) {
    this.#path = join(stateDir, TAKEN_RECEIPTS_FILE);
    this.#spent = new SpentReceipts({ startedAtMs, max: MAX_TAKEN, taken: this.#read() });
  }

  /**
   * Takes a receipt verifyReceipt returned at `nowMs` (as SpentReceipts.spend),
   * and keeps the record on disk before returning, so the run it allows starts
   * only once a restart would refuse the receipt too.
   * @throws GatewayError as SpentReceipts.spend; the file system's error when
   *   the record cannot be written (the receipt stays taken in this process).
   */
  take(receipt: ApprovalReceipt, nowMs: number): void {
    this.#spent.spend(receipt, nowMs);
    replaceFile(this.#path, `${JSON.stringify({ v: 1, taken: Object.fromEntries(this.#spent.taken(nowMs)) })}\n`);
  }

  #read(): Array<[string, number]> {
    let text: string;
    try {
      text = readStateFile(this.#path, 'NODE_CONFIG_INVALID');
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ENOENT') return [];
      // Another user's, or one others may change (readStateFile): whoever wrote it could have left out a receipt taken.
      if (error instanceof NodeError) throw new NodeError('NODE_CONFIG_INVALID', `${error.message}: the node's record of the approval receipts it took must be its user's alone (chown it, chmod go-w), or removed once the node has been stopped for 90 seconds`, { cause: error });
      throw this.#unusable((error as Error).message, error);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw this.#unusable('it is not JSON', error);
    }
    const record = parsed as { v?: unknown; taken?: unknown } | null;
    if (typeof record !== 'object' || record === null || record.v !== 1 || typeof record.taken !== 'object' || record.taken === null || Array.isArray(record.taken)) {
      throw this.#unusable('it is not {"v": 1, "taken": {…}}');
    }
    const entries = Object.entries(record.taken);
    if (entries.length > MAX_TAKEN) throw this.#unusable(`it holds more than ${MAX_TAKEN} receipts`);
    for (const [id, until] of entries) {
      if (id === '' || id.length > MAX_ID_LENGTH || !Number.isSafeInteger(until)) throw this.#unusable(`its entry for "${id.slice(0, 40)}" is not an approval id with the time it lapses`);
    }
    return entries as Array<[string, number]>;
  }

  #unusable(why: string, cause?: unknown): NodeError {
    return new NodeError(
      'NODE_CONFIG_INVALID',
      `${this.#path} is not the node's record of the approval receipts it took (${why}): remove it once the node has been stopped for 90 seconds (every receipt it took has lapsed by then), and start the node again`,
      cause === undefined ? {} : { cause },
    );
  }
}
