// Approvals for governed actions, kept in gateway.db so pending requests
// survive a restart. Each approval is bound to the digest of one exact action
// (exec/canonical.ts actionDigest), has an expiry, may need a quorum of
// distinct approvers, and resolves allow-once or allow-always (either is spent
// on the one run that asked, for that digest only; allow-always also becomes a
// Cedar grant in the policy set, approvals/grants.ts) or deny.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { DatabaseSync } from 'node:sqlite';
import { GatewayError } from '../errors.ts';
import { writeWhenFree, WRITE_LOCK_WAIT_MS } from '../store/write-lock.ts';

export type ApprovalStatus = 'pending' | 'allowed' | 'denied' | 'expired' | 'used';
export type ApprovalDecision = 'allow-once' | 'allow-always' | 'deny';

export interface Approval {
  id: string;
  digest: string;
  /** What the approver is shown: principal, node, argv, cwd, env, every command, the policy reason. */
  action: Record<string, unknown>;
  status: ApprovalStatus;
  /** Null until someone decides; while pending, the weakest allow so far (allow-always only when every approver chose it). */
  decision: ApprovalDecision | null;
  quorum: number;
  approvers: string[];
  createdAtMs: number;
  expiresAtMs: number;
  resolvedAtMs: number | null;
}

interface Row {
  id: string;
  digest: string;
  action: string;
  status: ApprovalStatus;
  decision: ApprovalDecision | null;
  quorum: number;
  approvers: string;
  created_at: number;
  expires_at: number;
  resolved_at: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS approvals (
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  decision TEXT,
  quorum INTEGER NOT NULL,
  approvers TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  resolved_at INTEGER,
  granted_at INTEGER,
  grant_withdrawn_at INTEGER
);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, created_at);
CREATE TABLE IF NOT EXISTS approvals_migrations (
  name TEXT PRIMARY KEY,
  at INTEGER NOT NULL
);
`;

/**
 * The migration that gives the approvals stored before granted_at existed a
 * grant already made. Those gateways made an allow-always grant when its
 * approval was resolved and never said so in the row, so a grant revoked
 * since cannot be told from one never made: an approval still waiting to be
 * spent would make it again on its run. Counting each as made, none comes
 * back (one resolved by the CLI and not yet used at the upgrade then allows
 * its run once, without a grant).
 */
const GRANTS_MADE_BEFORE_GRANTED_AT = 'grants-made-before-granted-at';

export const DEFAULT_APPROVAL_TTL_MS = 15 * 60_000;

export class ApprovalStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
    db.exec(SCHEMA);
    this.#migrate();
  }

  /**
   * Adds grant_withdrawn_at (after the releases of the table without it),
   * granted_at (after the first release) and, once per
   * database, counts the allow-always approvals allowed or used before it as
   * granted (GRANTS_MADE_BEFORE_GRANTED_AT): a database a gateway already gave
   * the column without that is migrated too. Under the write lock, so two
   * processes opening the store at once migrate it once.
   */
  #migrate(): void {
    const done = () => this.#db.prepare('SELECT 1 FROM approvals_migrations WHERE name = ?').get(GRANTS_MADE_BEFORE_GRANTED_AT) !== undefined;
    const columns = () => (this.#db.prepare('PRAGMA table_info(approvals)').all() as Array<{ name: string }>).map((c) => c.name);
    if (done() && columns().includes('grant_withdrawn_at')) return;
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const has = columns();
      if (!has.includes('granted_at')) this.#db.exec('ALTER TABLE approvals ADD COLUMN granted_at INTEGER');
      if (!has.includes('grant_withdrawn_at')) this.#db.exec('ALTER TABLE approvals ADD COLUMN grant_withdrawn_at INTEGER');
      if (!done()) {
        this.#db.prepare("UPDATE approvals SET granted_at = COALESCE(resolved_at, created_at) WHERE granted_at IS NULL AND decision = 'allow-always' AND status IN ('allowed', 'used')").run();
        this.#db.prepare('INSERT INTO approvals_migrations (name, at) VALUES (?, ?)').run(GRANTS_MADE_BEFORE_GRANTED_AT, this.#now());
      }
      this.#db.exec('COMMIT');
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** A new pending approval for one action. */
  create(input: { digest: string; action: Record<string, unknown>; quorum: number; ttlMs?: number }): Approval {
    if (!/^[0-9a-f]{64}$/.test(input.digest)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the digest must be 64 hex digits');
    const quorum = Math.min(Math.max(1, Math.floor(input.quorum)), 16);
    const now = this.#now();
    const id = randomUUID();
    this.#db
      .prepare("INSERT INTO approvals (id, digest, action, status, decision, quorum, approvers, created_at, expires_at) VALUES (?, ?, ?, 'pending', NULL, ?, '[]', ?, ?)")
      .run(id, input.digest, JSON.stringify(input.action), quorum, now, now + (input.ttlMs ?? DEFAULT_APPROVAL_TTL_MS));
    return this.get(id);
  }

  /** Throws GATEWAY_APPROVAL_NOT_FOUND. A pending approval past its expiry is reported (and stored) as expired. */
  get(id: string): Approval {
    const row = typeof id === 'string' ? (this.#db.prepare('SELECT * FROM approvals WHERE id = ?').get(id) as Row | undefined) : undefined;
    if (!row) throw new GatewayError('GATEWAY_APPROVAL_NOT_FOUND', `no approval ${JSON.stringify(String(id).slice(0, 100))}`, { wire: { code: 'APPROVAL_NOT_FOUND', message: 'unknown approval id' } });
    return this.#expireIfDue(fromRow(row));
  }

  /**
   * One page of every approval, the newest `limit` made before the cursor
   * `before` (the `nextBefore` of the page after it; none: from the newest),
   * oldest first; `nextBefore` names the page before it, null at the first.
   */
  page(options: { limit: number; before?: number }): { approvals: Approval[]; nextBefore: number | null } {
    const rows = this.#db.prepare('SELECT rowid AS n, * FROM approvals WHERE rowid < ? ORDER BY rowid DESC LIMIT ?').all(options.before ?? Number.MAX_SAFE_INTEGER, options.limit + 1) as unknown as Array<Row & { n: number }>;
    const more = rows.length > options.limit;
    const taken = rows.slice(0, options.limit).reverse();
    return { approvals: taken.map((r) => this.#expireIfDue(fromRow(r))), nextBefore: more && taken.length > 0 ? taken[0]!.n : null };
  }

  list(filter: { status?: ApprovalStatus } = {}): Approval[] {
    const rows = (filter.status ? this.#db.prepare('SELECT * FROM approvals WHERE status = ? ORDER BY created_at').all(filter.status) : this.#db.prepare('SELECT * FROM approvals ORDER BY created_at').all()) as unknown as Row[];
    const out = rows.map((r) => this.#expireIfDue(fromRow(r)));
    return filter.status ? out.filter((a) => a.status === filter.status) : out;
  }

  /**
   * One approver's decision. A deny from anyone denies. Allows count distinct
   * approvers (those named under the shared gateway token count as one, and
   * only the first name given under it is kept: `approvers` are those who
   * counted, at most the quorum); at
   * the quorum the approval is allowed, always only when every approver chose
   * allow-always, else once. Throws GATEWAY_APPROVAL_NOT_FOUND,
   * GATEWAY_APPROVAL_EXPIRED, GATEWAY_APPROVAL_RESOLVED, GATEWAY_PARAMS_INVALID.
   */
  resolve(id: string, decision: ApprovalDecision, approver: string): Approval {
    this.#begin(decision, approver);
    try {
      const resolved = this.#apply(id, decision, approver);
      this.#db.exec('COMMIT');
      return resolved;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * resolve(), waiting for the write lock with timers (store/write-lock.ts)
   * while another process holds it (the CLI keeps it while it appends its
   * decision's record), so the gateway goes on serving everyone else
   * meanwhile. For the gateway; throws what resolve() throws, and
   * GATEWAY_BUSY when the lock is still held after `waitMs`.
   */
  async resolveWhenFree(id: string, decision: ApprovalDecision, approver: string, waitMs: number = WRITE_LOCK_WAIT_MS): Promise<Approval> {
    checkDecision(decision, approver);
    return writeWhenFree(this.#db, () => this.#apply(id, decision, approver), waitMs);
  }

  /**
   * resolve(), committed only once `record` (the decision's audit record,
   * made durable by the caller) has settled: whoever reads this store from
   * another connection (a gateway waiting for the approval) sees the
   * decision only after its record is durable. A record that fails rolls
   * the decision back and is thrown. For a process with a connection of its
   * own (the CLI): the write lock is held while `record` runs.
   */
  async resolveRecorded(id: string, decision: ApprovalDecision, approver: string, record: (resolved: Approval) => Promise<void>): Promise<Approval> {
    this.#begin(decision, approver);
    try {
      const resolved = this.#apply(id, decision, approver);
      await record(resolved);
      this.#db.exec('COMMIT');
      return resolved;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** Checks the arguments and takes the write lock. */
  #begin(decision: ApprovalDecision, approver: string): void {
    checkDecision(decision, approver);
    this.#db.exec('BEGIN IMMEDIATE');
  }

  /** The decision's writes, inside the transaction #begin opened; the approval as it then stands. */
  #apply(id: string, decision: ApprovalDecision, approver: string): Approval {
    const approval = this.get(id);
    if (approval.status === 'expired') throw new GatewayError('GATEWAY_APPROVAL_EXPIRED', 'the approval expired', { wire: { code: 'INVALID_REQUEST', message: 'approval expired' } });
    if (approval.status !== 'pending') throw new GatewayError('GATEWAY_APPROVAL_RESOLVED', 'the approval was already resolved', { wire: { code: 'INVALID_REQUEST', message: 'approval already resolved' } });
    const now = this.#now();
    if (decision === 'deny') {
      this.#db.prepare("UPDATE approvals SET status = 'denied', decision = 'deny', approvers = ?, resolved_at = ? WHERE id = ?").run(JSON.stringify([...approval.approvers, approver]), now, id);
    } else {
      // One name per authority: another name given under a token or account that already counted
      // would only look like another approver (to people, and on the receipt, which a node refuses past 16).
      const counted = approval.approvers.some((a) => authority(a) === authority(approver));
      const approvers = counted ? approval.approvers : [...approval.approvers, approver];
      // Allow-always only when every approver chose it: the weakest allow so far stands.
      const allow = approval.decision === 'allow-once' ? 'allow-once' : decision;
      if (new Set(approvers.map(authority)).size >= approval.quorum) {
        this.#db.prepare("UPDATE approvals SET status = 'allowed', decision = ?, approvers = ?, resolved_at = ? WHERE id = ?").run(allow, JSON.stringify(approvers), now, id);
      } else {
        this.#db.prepare('UPDATE approvals SET decision = ?, approvers = ? WHERE id = ?').run(allow, JSON.stringify(approvers), id);
      }
    }
    return this.get(id);
  }

  /**
   * Withdraws every approval of `principal` (as approvals name it:
   * `Agent::invoice-bot`) that could still let a command run — pending, or
   * allowed and not yet spent — denying it in `by`'s name, in one
   * transaction. An agent's suspension withdraws them: none outlives it, even
   * once the agent is resumed. Returns them as they now stand.
   */
  withdrawAll(principal: string, by: string): Approval[] {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const now = this.#now();
      const rows = this.#db.prepare("SELECT * FROM approvals WHERE status IN ('pending', 'allowed') AND expires_at >= ? AND json_extract(action, '$.principal') = ?").all(now, principal) as unknown as Row[];
      const deny = this.#db.prepare("UPDATE approvals SET status = 'denied', decision = 'deny', approvers = ?, resolved_at = ? WHERE id = ?");
      for (const row of rows) deny.run(JSON.stringify([...(JSON.parse(row.approvers) as string[]), by]), now, row.id);
      this.#db.exec('COMMIT');
      return rows.map((row) => this.get(row.id));
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * Spends an allowed approval on the action it was granted for, once; the
   * digest presented must equal the one approved. (What allow-always allows
   * afterwards is its Cedar grant, so removing the grant withdraws it.)
   * Throws GATEWAY_APPROVAL_MISMATCH (another action: never
   * replayable), GATEWAY_APPROVAL_RESOLVED (denied or already used),
   * GATEWAY_APPROVAL_EXPIRED, GATEWAY_APPROVAL_NOT_FOUND.
   */
  consume(id: string, digest: string): Approval {
    const approval = this.get(id);
    if (!sameHex(approval.digest, digest)) throw new GatewayError('GATEWAY_APPROVAL_MISMATCH', 'the approval is for another action', { wire: { code: 'INVALID_REQUEST', message: 'approval does not match this command' } });
    if (approval.status === 'expired') throw new GatewayError('GATEWAY_APPROVAL_EXPIRED', 'the approval expired');
    if (approval.status !== 'allowed') throw new GatewayError('GATEWAY_APPROVAL_RESOLVED', `the approval is ${approval.status}`);
    const changed = this.#db.prepare("UPDATE approvals SET status = 'used' WHERE id = ? AND status = 'allowed'").run(id).changes;
    if (Number(changed) !== 1) throw new GatewayError('GATEWAY_APPROVAL_RESOLVED', 'the approval was already used');
    return this.get(id);
  }

  /**
   * Whether this call is the first to make the allow-always grant of approval
   * `id`, and so may make it: a grant is made once, so that one withdrawn
   * stays withdrawn whoever asks for it again (the approval's own run, a
   * restart). releaseGrant gives the claim back when the grant was not made.
   */
  claimGrant(id: string): boolean {
    return Number(this.#db.prepare('UPDATE approvals SET granted_at = ? WHERE id = ? AND granted_at IS NULL AND grant_withdrawn_at IS NULL').run(this.#now(), id).changes) === 1;
  }

  /**
   * Withdraws the grant of approval `id`, for good, whether it is made, being
   * made (claimed by a gateway, maybe in another process, and not yet in the
   * policy set) or still to be made (an allow-always approval allowed or
   * used whose run is still to come: then it is withheld, never made). From
   * now on grantWithdrawn(id) is true: a gateway making the grant takes it
   * back, and no decision counts it. What this call did: `withheld` (it was
   * not claimed yet), `withdrawn` (the first withdrawal of a grant claimed),
   * or `none` (withdrawn before, or an approval that makes no grant).
   */
  withdrawGrant(id: string): 'withheld' | 'withdrawn' | 'none' {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const first = Number(this.#db.prepare('UPDATE approvals SET grant_withdrawn_at = ? WHERE id = ? AND grant_withdrawn_at IS NULL').run(this.#now(), id).changes) === 1;
      const withheld = Number(this.#db.prepare("UPDATE approvals SET granted_at = ? WHERE id = ? AND granted_at IS NULL AND decision = 'allow-always' AND status IN ('allowed', 'used')").run(this.#now(), id).changes) === 1;
      const claimed = first && !withheld && (this.#db.prepare('SELECT granted_at FROM approvals WHERE id = ?').get(id) as { granted_at: number | null }).granted_at !== null;
      this.#db.exec('COMMIT');
      return withheld ? 'withheld' : claimed ? 'withdrawn' : 'none';
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** Whether the grant of approval `id` was withdrawn (withdrawGrant). */
  grantWithdrawn(id: string): boolean {
    const row = this.#db.prepare('SELECT grant_withdrawn_at FROM approvals WHERE id = ?').get(id) as { grant_withdrawn_at: number | null } | undefined;
    return row?.grant_withdrawn_at !== undefined && row.grant_withdrawn_at !== null;
  }

  releaseGrant(id: string): void {
    this.#db.prepare('UPDATE approvals SET granted_at = NULL WHERE id = ?').run(id);
  }

  /** How many approvals for `principal` (as approvals name it: `Agent::invoice-bot`) on node `nodeId` are pending and unexpired. */
  pendingCount(principal: string, nodeId: string): number {
    const row = this.#db
      .prepare("SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND expires_at >= ? AND json_extract(action, '$.principal') = ? AND json_extract(action, '$.nodeId') = ?")
      .get(this.#now(), principal, nodeId) as { n: number };
    return row.n;
  }

  /** The newest approval for exactly this digest that is still pending or allowed and unused (a retry after a restart finds it). */
  open(digest: string): Approval | undefined {
    const rows = this.#db.prepare("SELECT * FROM approvals WHERE digest = ? AND status IN ('pending', 'allowed') ORDER BY created_at DESC LIMIT 8").all(digest) as unknown as Row[];
    return rows.map((r) => this.#expireIfDue(fromRow(r))).find((a) => a.status === 'pending' || a.status === 'allowed');
  }

  #expireIfDue(approval: Approval): Approval {
    if (approval.status !== 'pending' && approval.status !== 'allowed') return approval;
    if (this.#now() <= approval.expiresAtMs) return approval;
    this.#db.prepare("UPDATE approvals SET status = 'expired', resolved_at = COALESCE(resolved_at, ?) WHERE id = ? AND status = ?").run(this.#now(), approval.id, approval.status);
    return { ...approval, status: 'expired' };
  }
}

/** A decision and its approver as resolve() takes them. Throws GATEWAY_PARAMS_INVALID. */
function checkDecision(decision: ApprovalDecision, approver: string): void {
  if (decision !== 'allow-once' && decision !== 'allow-always' && decision !== 'deny') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'decision must be allow-once, allow-always or deny');
  if (typeof approver !== 'string' || approver === '' || approver.length > 200) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the approver must be named, in at most 200 characters');
}

function fromRow(r: Row): Approval {
  return {
    id: r.id,
    digest: r.digest,
    action: JSON.parse(r.action) as Record<string, unknown>,
    status: r.status,
    decision: r.decision,
    quorum: r.quorum,
    approvers: JSON.parse(r.approvers) as string[],
    createdAtMs: r.created_at,
    expiresAtMs: r.expires_at,
    resolvedAtMs: r.resolved_at,
  };
}

function sameHex(a: string, b: string): boolean {
  if (typeof b !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/**
 * An approver named by whoever holds the shared gateway token (over the
 * protocol or the HTTP API): recorded under the name given, but the token
 * cannot tell its holders apart, so all of them are one approver toward a
 * quorum (the approval keeps the first name; each decision's audit record
 * keeps the name it was given). Distinct approvers are signed-in humans (the console), or system
 * accounts on the gateway's machine (the CLI). Throws GATEWAY_PARAMS_INVALID
 * for a name approverName refuses.
 */
export function tokenApprover(name: string): string {
  return `${TOKEN_APPROVER}${approverName(name)}`;
}

/**
 * An approver named by a system account on the gateway's machine (`corral
 * approvals approve --by NAME`): recorded under the name given, but only the
 * account vouches for it, so every name one account gives is one approver
 * toward a quorum (kept as tokenApprover's names are). Throws GATEWAY_PARAMS_INVALID for a name approverName
 * refuses, or an account name that is empty or has a `:` (no system account has one).
 */
export function accountApprover(account: string, name: string): string {
  if (account === '' || account.includes(':')) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the system account must be named, without a colon');
  return `${ACCOUNT_APPROVER}${account}:${approverName(name)}`;
}

/**
 * A name a person gives for themself (an approver, an operator pairing a
 * node), as it goes into the record: not blank, at most 150 characters, text
 * without control or format characters (a line feed would forge a line in
 * every plain-text view of the log; a bidirectional override would show
 * another name). Throws GATEWAY_PARAMS_INVALID.
 */
export function approverName(name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '' || name.length > 150 || !name.isWellFormed() || /[\p{Cc}\p{Cf}]/u.test(name)) {
    throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the approver must be named, in at most 150 characters of text without control or format characters');
  }
  return name;
}

const TOKEN_APPROVER = 'token:';
const ACCOUNT_APPROVER = 'account:';

/** Who an approval counts as toward a quorum: the token, the system account (accountApprover), or the approver. */
function authority(approver: string): string {
  if (approver.startsWith(TOKEN_APPROVER)) return TOKEN_APPROVER;
  if (approver.startsWith(ACCOUNT_APPROVER)) return approver.slice(0, approver.indexOf(':', ACCOUNT_APPROVER.length) + 1);
  return approver;
}
