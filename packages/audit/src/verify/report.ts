/** The kinds of damage verification tells apart. */
export type DamageKind =
  /** A record's content differs from what was written. */
  | 'edited'
  /** One or more records are missing from the middle of the log. */
  | 'deleted'
  /** A record that was never appended by the log sits among the others. */
  | 'inserted'
  /** Records are present but out of order. */
  | 'reordered'
  /** Records covered by a signed checkpoint are missing at the end. */
  | 'truncated'
  /** A record cannot be read at all. */
  | 'malformed'
  /** A stored record's time index (what reads by time select by) is not its event's time; the record itself verifies. */
  | 'misindexed'
  /**
   * The tree nodes a store keeps beside its records — a record's stored
   * interior nodes, or its head's frontier and last hash — are not the ones
   * its records make: proofs, and a writer's next checkpoint, would be built
   * on a tree the records do not make. The records themselves verify.
   */
  | 'tree-altered'
  /** Records of an export that no signed checkpoint covers (a forged or cut export may end so). */
  | 'unsealed'
  /** A checkpoint's signature is invalid or by another key (forged or re-signed). */
  | 'checkpoint-forged'
  /** A checkpoint the log's head says was signed is gone from the store. */
  | 'checkpoint-deleted'
  /** The log is behind, or forked from, a checkpoint witnessed earlier; or its head was moved back behind records a signed checkpoint covers. */
  | 'rolled-back';

export interface Damage {
  kind: DamageKind;
  /**
   * The first bad sequence number. For a consistent rewrite that only a
   * checkpoint reveals, the first seq not covered by an earlier good
   * checkpoint (the damage lies in [seq, throughSeq]). Null when only a
   * checkpoint is bad.
   */
  seq: number | null;
  /** Last seq the damage may extend to, when only a range is known. */
  throughSeq?: number;
  /** The checkpoint involved (its size), when one is. */
  checkpointSize?: number;
  /** 1-based line of an export file, when verifying one. */
  line?: number;
  message: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Records read. */
  records: number;
  /**
   * Seq of the first record verified: 0 for a whole log or export, the start
   * of a partial export (what its header says came before is not verified).
   */
  from: number;
  /** Leading records whose chain and seq verified (seq 0 … verified-1). */
  verified: number;
  /** Largest checkpoint size whose signature and root verified (records sealed by a signature). */
  sealed: number;
  /** Checkpoints read, and how many verified. */
  checkpoints: { total: number; valid: number };
  /** Root of the verified records. */
  root: string;
  /** Everything found, the earliest first. Empty when ok. */
  damage: Damage[];
  /** The earliest bad seq across all damage, or null. */
  firstBadSeq: number | null;
}
