// Signed approval receipts. When a command runs because humans approved it,
// the gateway signs what they approved (the action digest, the decision, who,
// when) with its Ed25519 receipt key, for the one run it spends the approval
// on and for a minute; the node checks the receipt against the key it pinned
// before it runs anything, and runs on each receipt once. The audit log keeps
// every receipt, so a receipt is no secret: a copy of one is worth nothing
// once its run has had it or its minute has passed. The private key lives in
// gateway.db (mode 0600), created on first use.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { canonicalize, type JsonValue } from '@corral/audit';
import { GatewayError } from '../errors.ts';
import { actionDigest, canonicalRun, type FileOperand, type RunRequest } from '../exec/canonical.ts';
import { RUN_COMMANDS } from '../exec/rules.ts';

/**
 * How long a node accepts a receipt after the gateway issued it. The gateway
 * issues a receipt as it sends the run (the approval already spent), so the
 * node sees it within moments; a copy taken later (from the audit log, from
 * a run seen earlier) has lapsed.
 */
export const RECEIPT_VALIDITY_MS = 60_000;

/** How far a node's clock may be from its gateway's: a receipt is taken from issuedAtMs minus this until expiresAtMs plus this. */
export const RECEIPT_CLOCK_SKEW_MS = 30_000;

/**
 * What a receipt says, signed as RFC 8785 canonical JSON. Version 2 binds the
 * run and a validity; a version 1 receipt (neither) verifies no more.
 */
export interface ReceiptBody {
  v: 2;
  approvalId: string;
  /** The action digest the approval is bound to (exec/canonical.ts actionDigest). */
  digest: string;
  decision: 'allow-once' | 'allow-always';
  approvers: string[];
  quorum: number;
  resolvedAtMs: number;
  /** When the gateway spent the approval on this run. */
  issuedAtMs: number;
  /** The last moment a node accepts it (its clock skew allowed for): after issuedAtMs, at most RECEIPT_VALIDITY_MS after. */
  expiresAtMs: number;
  /**
   * The one run it was issued for: the id of the `node.invoke.request` that
   * carries it, or the `runId` of the `corral.run.authorize` answer.
   */
  runId: string;
  principal: string;
  nodeId: string;
  command: string;
}

export interface ApprovalReceipt extends ReceiptBody {
  /** First 16 hex digits of SHA-256 of the raw public key. */
  keyId: string;
  /** Ed25519 signature over the canonical body, base64url. */
  signature: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS receipt_key (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  private_key TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
`;

/** The gateway's receipt key. */
export class ReceiptSigner {
  readonly keyId: string;
  /** SPKI PEM, what a node pins. */
  readonly publicKeyPem: string;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    const publicKey = createPublicKey(privateKey);
    this.publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    this.keyId = keyIdOf(publicKey);
  }

  /** Loads the key from gateway.db, creating it the first time. */
  static open(db: DatabaseSync): ReceiptSigner {
    db.exec(SCHEMA);
    const row = db.prepare('SELECT private_key FROM receipt_key WHERE id = 1').get() as { private_key: string } | undefined;
    if (row) return new ReceiptSigner(createPrivateKey(row.private_key));
    const { privateKey } = generateKeyPairSync('ed25519');
    db.prepare('INSERT OR IGNORE INTO receipt_key (id, private_key, created_at) VALUES (1, ?, ?)').run(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), Date.now());
    // Another process may have created it first: use whichever is stored.
    const stored = db.prepare('SELECT private_key FROM receipt_key WHERE id = 1').get() as { private_key: string };
    return new ReceiptSigner(createPrivateKey(stored.private_key));
  }

  /** Signs `body` as it is: the caller gives it the run and a validity of at most RECEIPT_VALIDITY_MS. */
  sign(body: ReceiptBody): ApprovalReceipt {
    const signature = sign(null, Buffer.from(canonicalize(body as unknown as JsonValue), 'utf8'), this.#privateKey).toString('base64url');
    return { ...body, keyId: this.keyId, signature };
  }
}

/** What a receipt must be for: the action, the node, the run it arrived with. */
export interface ReceiptExpectation {
  digest: string;
  nodeId: string;
  /** The `node.invoke.request` id, or the `corral.run.authorize` answer's `runId`. */
  runId: string;
}

/**
 * Checks a receipt (untrusted) against a pinned public key, the action about
 * to run and the run it arrived with, at `nowMs` (the checker's clock,
 * RECEIPT_CLOCK_SKEW_MS allowed either way). Returns the snapshot it checked.
 * Whether it was presented before is the caller's to remember (approvalId,
 * until expiresAtMs plus the skew). Throws GATEWAY_RECEIPT_INVALID
 * (malformed, a version 1 receipt, another key, a signature that does not
 * verify: forged), GATEWAY_APPROVAL_MISMATCH (genuine, but for another
 * action, node or run: never replayable), GATEWAY_APPROVAL_EXPIRED (genuine,
 * but lapsed, or issued later than the skew allows).
 */
export function verifyReceipt(raw: unknown, publicKeyPem: string, expected: ReceiptExpectation, nowMs: number = Date.now()): ApprovalReceipt {
  const receipt = snapshot(raw);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(publicKeyPem);
  } catch (error) {
    throw new GatewayError('GATEWAY_RECEIPT_INVALID', 'the pinned receipt key is not a public key', { cause: error });
  }
  if (receipt.keyId !== keyIdOf(publicKey)) throw forged('the receipt is signed with another key');
  const signature = Buffer.from(receipt.signature, 'base64url');
  if (signature.length !== 64 || signature.toString('base64url') !== receipt.signature) throw forged('the receipt signature is not 64 bytes of base64url');
  const { keyId: _k, signature: _s, ...body } = receipt;
  if (!verify(null, Buffer.from(canonicalize(body as unknown as JsonValue), 'utf8'), publicKey, signature)) throw forged('the receipt signature does not verify');
  if (!sameText(receipt.digest, expected.digest) || receipt.nodeId !== expected.nodeId) throw new GatewayError('GATEWAY_APPROVAL_MISMATCH', 'the receipt is for another action');
  if (receipt.runId !== expected.runId) throw new GatewayError('GATEWAY_APPROVAL_MISMATCH', 'the receipt is for another run');
  if (nowMs > receipt.expiresAtMs + RECEIPT_CLOCK_SKEW_MS) throw new GatewayError('GATEWAY_APPROVAL_EXPIRED', 'the receipt has lapsed (or this clock is ahead of the gateway\'s by more than the allowance)');
  if (receipt.issuedAtMs > nowMs + RECEIPT_CLOCK_SKEW_MS) throw new GatewayError('GATEWAY_APPROVAL_EXPIRED', 'the receipt is not valid yet (this clock is behind the gateway\'s by more than the allowance)');
  return receipt;
}

/**
 * What a node checks before it runs a command that arrived with an approval
 * receipt: the receipt verifies under the key the node pinned
 * (`corral.receipt.key`), its digest is that of exactly the command the
 * node was sent (`params` as received, for this node: for a run of one
 * script, the file its systemRunPlan binds by content, its
 * mutableFileOperand, included), it is for the run it arrived with (`runId`,
 * see ReceiptExpectation) and has not lapsed. Throws as verifyReceipt, and
 * GATEWAY_PARAMS_INVALID for a run that is not an argv.
 */
export function verifyCommandReceipt(raw: unknown, publicKeyPem: string, sent: { nodeId: string; command: string; params: Record<string, unknown>; runId: string }, nowMs: number = Date.now()): ApprovalReceipt {
  const principal = snapshot(raw).principal;
  const { approvalReceipt: _r, approvalDecision: _d, ...params } = sent.params;
  const digest = RUN_COMMANDS.has(sent.command)
    ? actionDigest({ principal, nodeId: sent.nodeId, command: sent.command, run: canonicalRun(params as unknown as RunRequest), ...planOperand(params.systemRunPlan) })
    : actionDigest({ principal, nodeId: sent.nodeId, command: sent.command, params });
  return verifyReceipt(raw, publicKeyPem, { digest, nodeId: sent.nodeId, runId: sent.runId }, nowMs);
}

/**
 * The mutableFileOperand a sent systemRunPlan binds, as actionDigest takes
 * it, when it has one (null or absent: none). One of another shape digests as
 * no gateway ever binds a file (argvIndex -1), so no receipt covers it; the
 * node refuses it besides.
 */
function planOperand(plan: unknown): { operand?: FileOperand } {
  const given = plan !== null && typeof plan === 'object' ? (plan as { mutableFileOperand?: unknown }).mutableFileOperand : undefined;
  if (given === undefined || given === null) return {};
  const { argvIndex, path, sha256 } = (typeof given === 'object' ? given : {}) as Record<string, unknown>;
  if (typeof argvIndex !== 'number' || typeof path !== 'string' || typeof sha256 !== 'string') return { operand: { argvIndex: -1, path: '', sha256: '' } };
  return { operand: { argvIndex, path, sha256 } };
}

/**
 * The receipts one node has run on, each remembered until it could verify no
 * more (expiresAtMs plus the clock skew), so that none is taken twice: the
 * gateway spends an approval on one run and issues one receipt for it,
 * allow-once or allow-always (whose later runs its grant allows, without a
 * receipt). At most `max` are remembered: past that, a receipt is refused
 * until one lapses, rather than one forgotten that could then be taken again.
 * A node keeps them across its restarts (`taken`, from what `taken()` gave
 * the one before); a receipt issued before this one started, less the skew
 * allowed for, is refused too, for a node that could not keep them.
 */
export class SpentReceipts {
  readonly #until = new Map<string, number>();
  readonly #startedAtMs: number;
  readonly #max: number;

  /** `taken`: receipts taken before this node started, by approval id, each with the time it lapses (ms). */
  constructor(options: { startedAtMs: number; max?: number; taken?: Iterable<readonly [string, number]> }) {
    this.#startedAtMs = options.startedAtMs;
    this.#max = options.max ?? 4096;
    for (const [approvalId, until] of options.taken ?? []) this.#until.set(approvalId, until);
  }

  /**
   * Takes a receipt verifyReceipt returned, once, at `nowMs`. Throws
   * GATEWAY_APPROVAL_RESOLVED (taken before, or issued before this node
   * started), GATEWAY_APPROVAL_EXPIRED (lapsed by `nowMs`: verified with an
   * earlier clock, it could otherwise be one already forgotten), GATEWAY_BUSY
   * (`max` remembered and none lapsed yet).
   */
  spend(receipt: ApprovalReceipt, nowMs: number = Date.now()): void {
    if (receipt.issuedAtMs + RECEIPT_CLOCK_SKEW_MS < this.#startedAtMs) throw new GatewayError('GATEWAY_APPROVAL_RESOLVED', 'the receipt was issued before this node started: it may have been taken already');
    const lapsesAt = receipt.expiresAtMs + RECEIPT_CLOCK_SKEW_MS;
    if (nowMs > lapsesAt) throw new GatewayError('GATEWAY_APPROVAL_EXPIRED', 'the receipt has lapsed');
    for (const [approvalId, until] of this.#until) if (until < nowMs) this.#until.delete(approvalId);
    if (this.#until.has(receipt.approvalId)) throw new GatewayError('GATEWAY_APPROVAL_RESOLVED', 'the receipt was taken already');
    if (this.#until.size >= this.#max) throw new GatewayError('GATEWAY_BUSY', `${this.#max} receipts were taken within their validity`);
    this.#until.set(receipt.approvalId, lapsesAt);
  }

  /** The receipts taken that have not lapsed by `nowMs`, by approval id, with when each lapses: what a node keeps for its next start. */
  taken(nowMs: number = Date.now()): Array<[string, number]> {
    return [...this.#until].filter(([, until]) => until >= nowMs);
  }
}

function snapshot(raw: unknown): ApprovalReceipt {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw forged('the receipt is not an object');
  const r = raw as Record<string, unknown>;
  const text = (key: string, max = 200): string => {
    const v = r[key];
    if (typeof v !== 'string' || v === '' || v.length > max) throw forged(`receipt.${key} must be text`);
    return v;
  };
  const count = (key: string): number => {
    const v = r[key];
    if (!Number.isSafeInteger(v) || (v as number) < 0) throw forged(`receipt.${key} must be a whole number`);
    return v as number;
  };
  if (r.v === 1) throw forged('a version 1 receipt binds no run and no expiry: it is no longer taken');
  if (r.v !== 2) throw forged('receipt.v must be 2');
  const decision = r.decision;
  if (decision !== 'allow-once' && decision !== 'allow-always') throw forged('receipt.decision must be allow-once or allow-always');
  const approvers = r.approvers;
  if (!Array.isArray(approvers) || approvers.length === 0 || approvers.length > 16 || !approvers.every((a) => typeof a === 'string' && a !== '' && a.length <= 200)) throw forged('receipt.approvers must name the approvers');
  const quorum = count('quorum');
  if (approvers.length < quorum) throw forged('the receipt has fewer approvers than its quorum');
  const digest = text('digest', 64);
  if (!/^[0-9a-f]{64}$/.test(digest)) throw forged('receipt.digest must be 64 hex digits');
  const issuedAtMs = count('issuedAtMs');
  const expiresAtMs = count('expiresAtMs');
  if (expiresAtMs <= issuedAtMs || expiresAtMs - issuedAtMs > RECEIPT_VALIDITY_MS) throw forged(`receipt.expiresAtMs must fall after issuedAtMs, within ${RECEIPT_VALIDITY_MS} ms`);
  return {
    v: 2,
    approvalId: text('approvalId'),
    digest,
    decision,
    approvers: [...(approvers as string[])],
    quorum,
    resolvedAtMs: count('resolvedAtMs'),
    issuedAtMs,
    expiresAtMs,
    runId: text('runId', 100),
    principal: text('principal'),
    nodeId: text('nodeId', 64),
    command: text('command'),
    keyId: text('keyId', 16),
    signature: text('signature', 100),
  };
}

function keyIdOf(publicKey: KeyObject): string {
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

function sameText(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

function forged(message: string): GatewayError {
  return new GatewayError('GATEWAY_RECEIPT_INVALID', message);
}
