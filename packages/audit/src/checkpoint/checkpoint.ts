// A checkpoint: the log's size and Merkle root at a moment, signed with the
// log's Ed25519 key. The signed bytes are a fixed domain-separation line
// followed by the RFC 8785 canonical JSON of the body.
import { AuditError, shownValue } from '../errors.ts';
import { isHash } from '../merkle/hasher.ts';
import { canonicalize } from '../record/canonical.ts';

export const CHECKPOINT_VERSION = 1;
export const CHECKPOINT_CONTEXT = 'corral-audit-checkpoint/v1\n';

export interface CheckpointBody {
  /** Number of records covered: seq 0 … size-1. */
  size: number;
  /** RFC 9162 Merkle tree hash of those records (hex). */
  root: string;
  /** When it was signed, ISO 8601 UTC. */
  time: string;
  /** Which key signed it (see keyIdOf). */
  keyId: string;
}

export interface SignedCheckpoint extends CheckpointBody {
  /** Ed25519 signature over checkpointSigningInput(body), base64. */
  signature: string;
}

/** The exact bytes a checkpoint signature covers. */
export function checkpointSigningInput(body: CheckpointBody): Buffer {
  return Buffer.from(CHECKPOINT_CONTEXT + canonicalize({ keyId: body.keyId, root: body.root, size: body.size, time: body.time, v: CHECKPOINT_VERSION }));
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const KEY_ID = /^[0-9a-f]{32}$/;
const BASE64 = /^[A-Za-z0-9+/]{86}==$/;

/**
 * Reads a signed checkpoint from untrusted JSON (parsed or text) into a fresh
 * object. Guards: an object; v is 1; size a non-negative safe integer; root a
 * hash; time ISO 8601 UTC; keyId 32 hex; signature base64 of 64 bytes.
 *
 * @throws AuditError AUDIT_CHECKPOINT_MALFORMED naming the broken rule.
 */
export function parseCheckpoint(input: unknown): SignedCheckpoint {
  let raw = input;
  if (typeof input === 'string') {
    try {
      raw = JSON.parse(input);
    } catch (error) {
      throw new AuditError('AUDIT_CHECKPOINT_MALFORMED', 'checkpoint is not valid JSON', { cause: error });
    }
  }
  const bad = (why: string) => new AuditError('AUDIT_CHECKPOINT_MALFORMED', `checkpoint ${why}`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('is not a JSON object');
  const c = raw as Record<string, unknown>;
  if (c.v !== CHECKPOINT_VERSION) throw bad(`version ${shownValue(c.v)} is not supported`);
  if (typeof c.size !== 'number' || !Number.isSafeInteger(c.size) || c.size < 0) throw bad('size is not a non-negative integer');
  if (!isHash(c.root)) throw bad('root is not a 32-byte hex hash');
  if (typeof c.time !== 'string' || !ISO_UTC.test(c.time)) throw bad('time is not ISO 8601 UTC');
  if (typeof c.keyId !== 'string' || !KEY_ID.test(c.keyId)) throw bad('keyId is not 32 hex characters');
  if (typeof c.signature !== 'string' || !BASE64.test(c.signature)) throw bad('signature is not a base64 Ed25519 signature');
  return { size: c.size, root: c.root, time: c.time, keyId: c.keyId, signature: c.signature };
}

/** The checkpoint as one JSON object (what exports and the witness file hold). */
export function checkpointJson(c: SignedCheckpoint): Record<string, unknown> {
  return { keyId: c.keyId, root: c.root, signature: c.signature, size: c.size, time: c.time, v: CHECKPOINT_VERSION };
}
