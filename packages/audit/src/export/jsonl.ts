// The verifiable JSON-lines export: a header line, then each record's
// canonical bytes on its own line (hash a line with a 0x00 prefix to get its
// leaf hash), and each signed checkpoint on a line of its own right after the
// record that completes it. A partial export (--since/--until) starts from the
// tree state before its first record, so its checkpoints still verify. Every
// record is sealed: an export that ends between two checkpoints closes with a
// seal line (the next checkpoint and the proof that the exported tree is its
// prefix), and records no checkpoint covers yet are left out — unsigned, they
// would prove nothing to the auditor.
import { checkpointJson, type SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { frontierNodes } from '../merkle/compact-range.ts';
import { sha256Hasher } from '../merkle/hasher.ts';
import { consistencyProof, nodeKey } from '../merkle/prover.ts';
import { GENESIS_PREV, recordBytes } from '../record/envelope.ts';
import type { AuditStore } from '../store/store.ts';

export const EXPORT_FORMAT = 'corral-audit-export/v1';

export interface ExportHeader {
  format: string;
  keyId: string;
  /** The tree before the first exported record. */
  start: { size: number; lastHash: string; frontier: string[] };
}

export interface ExportRange {
  /** First seq (default 0). */
  from?: number;
  /** One past the last seq (default: the log's size). */
  to?: number;
}

/**
 * Yields the export's lines (without newlines) for records from ≤ seq < to,
 * but for the newest records, which no checkpoint covers yet: those are left
 * out, and `onUnsealed` is told which.
 */
export async function* exportJsonl(store: AuditStore, keyId: string, range: ExportRange = {}, onUnsealed?: (from: number, to: number) => void): AsyncIterable<string> {
  const head = await store.head();
  const from = range.from ?? 0;
  let to = Math.min(range.to ?? head.size, head.size);
  if (!Number.isSafeInteger(from) || from < 0 || from > to) throw new AuditError('AUDIT_BAD_ARGUMENT', `export range ${from}–${to} is not within the log`);
  const all = await store.checkpoints();
  const cover = to > from ? await store.checkpointFor(to, false) : null;
  if (to > from && !cover) {
    // A loop, not Math.max(...sizes): a log signs a checkpoint each time a one-shot writer closes,
    // and past about 120,000 of them spreading the sizes overflows the stack.
    let sealedTo = from;
    for (const c of all) if (c.size <= to && c.size > sealedTo) sealedTo = c.size;
    onUnsealed?.(sealedTo, to);
    to = sealedTo;
  }
  let lastHash = GENESIS_PREV;
  let frontier: string[] = [];
  if (from > 0) {
    const ids = frontierNodes(from);
    const nodes = await store.nodes(ids);
    frontier = ids.map((id) => nodes.get(nodeKey(id)) as string);
    const before = await store.record(from - 1);
    if (!before) throw new AuditError('AUDIT_NOT_FOUND', `record ${from - 1} is missing`);
    lastHash = before.hash;
  }
  const header: ExportHeader = { format: EXPORT_FORMAT, keyId, start: { size: from, lastHash, frontier } };
  yield JSON.stringify({ export: header });
  const checkpoints = all.filter((c) => c.size > from && c.size <= to);
  let k = 0;
  for await (const rows of store.scanChain(from, to)) {
    for (const [seq, prev, , body] of rows) {
      yield recordBytes(seq, prev, body);
      while (k < checkpoints.length && (checkpoints[k] as SignedCheckpoint).size <= seq + 1) yield JSON.stringify({ checkpoint: checkpointJson(checkpoints[k++] as SignedCheckpoint) });
    }
  }
  if (cover && cover.size > to) {
    const consistency = await consistencyProof(sha256Hasher, (ids) => store.nodes(ids), to, cover.size);
    yield JSON.stringify({ seal: { size: to, checkpoint: checkpointJson(cover), consistency } });
  }
}
