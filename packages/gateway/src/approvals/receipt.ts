// Signed approval receipts. When a command runs because humans approved it,
// the gateway signs what they approved (the action digest, the decision, who,
// when) with its Ed25519 receipt key; the node checks the receipt against the
// key it pinned before it runs anything, and the audit log keeps the receipt.
// The private key lives in gateway.db (mode 0600), created on first use.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { canonicalize, type JsonValue } from '@corral/audit';
import { GatewayError } from '../errors.ts';
import { actionDigest, canonicalRun, type RunRequest } from '../exec/canonical.ts';
import { RUN_COMMANDS } from '../exec/rules.ts';

/** What a receipt says, signed as RFC 8785 canonical JSON. */
export interface ReceiptBody {
  v: 1;
  approvalId: string;
  /** The action digest the approval is bound to (exec/canonical.ts actionDigest). */
  digest: string;
  decision: 'allow-once' | 'allow-always';
  approvers: string[];
  quorum: number;
  resolvedAtMs: number;
  /** When the gateway spent the approval on this run. */
  issuedAtMs: number;
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

  sign(body: ReceiptBody): ApprovalReceipt {
    const signature = sign(null, Buffer.from(canonicalize(body as unknown as JsonValue), 'utf8'), this.#privateKey).toString('base64url');
    return { ...body, keyId: this.keyId, signature };
  }
}

/**
 * Checks a receipt (untrusted) against a pinned public key and the action
 * about to run. Returns the snapshot it checked. Throws
 * GATEWAY_RECEIPT_INVALID (malformed, another key, a signature that does not
 * verify: forged), GATEWAY_APPROVAL_MISMATCH (genuine, but for another
 * action or node: never replayable).
 */
export function verifyReceipt(raw: unknown, publicKeyPem: string, expected: { digest: string; nodeId: string }): ApprovalReceipt {
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
  return receipt;
}

/**
 * What a node checks before it runs a command that arrived with an approval
 * receipt: the receipt verifies under the key the node pinned
 * (`corral.receipt.key`) and its digest is that of exactly the command the
 * node was sent (`params` as received, for this node). Throws as
 * verifyReceipt, and GATEWAY_PARAMS_INVALID for a run that is not an argv.
 */
export function verifyCommandReceipt(raw: unknown, publicKeyPem: string, sent: { nodeId: string; command: string; params: Record<string, unknown> }): ApprovalReceipt {
  const principal = snapshot(raw).principal;
  const { approvalReceipt: _r, approvalDecision: _d, ...params } = sent.params;
  const digest = RUN_COMMANDS.has(sent.command)
    ? actionDigest({ principal, nodeId: sent.nodeId, command: sent.command, run: canonicalRun(params as unknown as RunRequest) })
    : actionDigest({ principal, nodeId: sent.nodeId, command: sent.command, params });
  return verifyReceipt(raw, publicKeyPem, { digest, nodeId: sent.nodeId });
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
  if (r.v !== 1) throw forged('receipt.v must be 1');
  const decision = r.decision;
  if (decision !== 'allow-once' && decision !== 'allow-always') throw forged('receipt.decision must be allow-once or allow-always');
  const approvers = r.approvers;
  if (!Array.isArray(approvers) || approvers.length === 0 || approvers.length > 16 || !approvers.every((a) => typeof a === 'string' && a !== '' && a.length <= 200)) throw forged('receipt.approvers must name the approvers');
  const quorum = count('quorum');
  if (approvers.length < quorum) throw forged('the receipt has fewer approvers than its quorum');
  const digest = text('digest', 64);
  if (!/^[0-9a-f]{64}$/.test(digest)) throw forged('receipt.digest must be 64 hex digits');
  return {
    v: 1,
    approvalId: text('approvalId'),
    digest,
    decision,
    approvers: [...(approvers as string[])],
    quorum,
    resolvedAtMs: count('resolvedAtMs'),
    issuedAtMs: count('issuedAtMs'),
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
