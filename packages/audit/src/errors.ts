/** The closed set of reasons the audit package refuses or fails. */
export type AuditErrorCode =
  /** An event given to append() broke the record schema; `issues` says where. */
  | 'AUDIT_EVENT_INVALID'
  /** A value cannot be canonicalised per RFC 8785 (non-finite number, lone surrogate, cycle, not plain JSON). */
  | 'AUDIT_NOT_CANONICALIZABLE'
  /** A stored or exported record could not be read (bad JSON, missing field, wrong type); `seq` names a stored one. */
  | 'AUDIT_RECORD_MALFORMED'
  /** A Merkle proof was refused before hashing: bad sizes, wrong length, malformed hash. */
  | 'AUDIT_PROOF_MALFORMED'
  /** A Merkle proof was well-formed but the computed root differs from the expected root. */
  | 'AUDIT_PROOF_MISMATCH'
  /** A checkpoint's signature does not verify under the trusted public key. */
  | 'AUDIT_CHECKPOINT_FORGED'
  /** A checkpoint (file, export line or stored row) could not be read (bad JSON, missing field, wrong type); `checkpointSize` names a stored one. */
  | 'AUDIT_CHECKPOINT_MALFORMED'
  /** The hash chain or tree does not match what was signed: the log was altered. */
  | 'AUDIT_CHAIN_BROKEN'
  /** The log is behind or forked from a checkpoint seen earlier. */
  | 'AUDIT_ROLLED_BACK'
  /** A signing or public key is missing, unreadable or not Ed25519. */
  | 'AUDIT_KEY_UNAVAILABLE'
  /** The database is not a Corral audit log, is of an unknown version, or is corrupt. */
  | 'AUDIT_STORE_FOREIGN'
  /** The store could not be opened or written (I/O, connection, permissions); nothing of the failed append was written, so it may be retried. */
  | 'AUDIT_STORE_UNAVAILABLE'
  /**
   * Whether a commit happened cannot be known now: the connection to the
   * store was lost after the commit was sent and the store could not be
   * reached again to ask, or (SQLite) the disk failed while making the commit
   * durable, leaving its records written where a crash would bring them into
   * the log. The records may or may not be in the log (the log is whole either
   * way; the next append builds on whatever the head is). Retrying may record
   * them twice.
   */
  | 'AUDIT_COMMIT_UNKNOWN'
  /** An export file could not be read or has a broken line; `line` says which. */
  | 'AUDIT_EXPORT_MALFORMED'
  /** A sequence number or range asked for is not in the log. */
  | 'AUDIT_NOT_FOUND'
  /** Bad arguments to an audit operation (sizes, options). */
  | 'AUDIT_BAD_ARGUMENT'
  /** The log was used after close(). */
  | 'AUDIT_CLOSED';

/** One problem in an event, located by field path. */
export interface EventIssue {
  /** Dotted field path, e.g. `actor.onBehalfOf.kind`. */
  field: string;
  message: string;
}

export class AuditError extends Error {
  override readonly name = 'AuditError';
  readonly code: AuditErrorCode;
  readonly issues: readonly EventIssue[];
  /** 1-based line of an export file, when the error is about one. */
  readonly line: number | undefined;
  /** Seq of the stored record (row of audit_records) the error is about, when it is about one. */
  readonly seq: number | undefined;
  /** Size of the stored checkpoint (row of audit_checkpoints) the error is about, when it is about one. */
  readonly checkpointSize: number | undefined;

  constructor(code: AuditErrorCode, message: string, options: { cause?: unknown; issues?: EventIssue[]; line?: number; seq?: number; checkpointSize?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
    this.line = options.line;
    this.seq = options.seq;
    this.checkpointSize = options.checkpointSize;
  }
}

/**
 * A value read from hostile input, for an error message: never String() of
 * it, which runs an object's own `toString` — JSON can name one that is no
 * function (`{"toString":1}`), and String() then throws a TypeError instead
 * of the coded error. A string is quoted, and named by its length when long.
 */
export function shownValue(value: unknown): string {
  if (typeof value === 'string') return value.length <= 64 ? JSON.stringify(value) : `a string of ${value.length} characters`;
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'function' || typeof value === 'symbol') return `a ${typeof value}`;
  return String(value);
}
