// Approvals for governed actions, kept in gateway.db so pending requests
// survive a restart. Each approval is bound to the digest of one exact action
// (exec/canonical.ts actionDigest), has an expiry, may need a quorum of
// distinct approvers, and resolves allow-once or allow-always (either is spent
// on the one run that asked, for that digest only; allow-always also becomes a
// Cedar grant in the policy set, approvals/grants.ts) or deny.
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { GatewayError } from '../errors.ts';
import { runsCodeOfAction } from './runs-code.ts';
import { scriptBoundByContent } from './bound-script.ts';
import { preparedOnce } from '../store/statements.ts';
import { writeIfFree, writeNowOrWhenFree, writeWhenFree, WRITE_LOCK_WAIT_MS } from '../store/write-lock.ts';

export type ApprovalStatus = 'pending' | 'allowed' | 'denied' | 'expired' | 'used';
export type ApprovalDecision = 'allow-once' | 'allow-always' | 'deny';

export interface Approval {
  id: string;
  digest: string;
  /**
   * What the approver is shown: principal, node, argv, cwd, env, every
   * command, the policy reason. For a run, also `runsCode`: a RunsCode
   * (runs-code.ts) when a command of it runs code its argv does not show
   * (`python3 -c …`, `xargs`, `ssh host CMD`), else null; computed by the
   * store from the argv on every read, never taken from whoever made the
   * approval, so approvals made before it existed carry it too. And
   * `allowAlways`, worked out the same way: whether an approver may allow it
   * always — false for a run that runs code Corral cannot see, unless that
   * code is one script file its node bound by content (mutableFileOperand,
   * bound-script.ts), whose grant then allows it only while the file holds
   * that content.
   */
  action: Record<string, unknown>;
  status: ApprovalStatus;
  /** Null until someone decides; while pending, the weakest allow so far (allow-always only when every approver chose it). */
  decision: ApprovalDecision | null;
  quorum: number;
  approvers: string[];
  createdAtMs: number;
  expiresAtMs: number;
  resolvedAtMs: number | null;
  /**
   * Why, in the words of whoever settled it: the reason given with the
   * decision that settled the approval (the deny, or the allow that reached
   * the quorum; an agent's suspension, for the approvals it withdrew). Null
   * while pending, when that decision came without one, or when it expired.
   * Text from a person, at most MAX_REASON characters: show it as untrusted.
   * The reasons of allows before the quorum are in their own approval.resolve
   * records (details.reason).
   */
  reason: string | null;
  /**
   * The standing grant of an approval allowed always: `made` (its file is in
   * the policy set, or being put there: revoking it takes it out), `withdrawn`
   * (revoked, withdrawn with the approval, withheld before it was made, or
   * refused by the audit log: no decision counts it), null (none: allowed
   * once, not allowed, or its run has not made it yet).
   */
  standingGrant: 'made' | 'withdrawn' | null;
}

/** The longest reason a decision may carry (as the HTTP API takes it). */
export const MAX_REASON = 500;

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
  reason: string | null;
  granted_at: number | null;
  grant_withdrawn_at: number | null;
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
  grant_withdrawn_at INTEGER,
  reason TEXT,
  authorities TEXT
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

/** The stored actions a page of approvals holds at most by default (a page holds one at least, whatever its size). */
const DEFAULT_PAGE_BYTES = 2 * 1024 * 1024;

/**
 * How far the clock may be set back (a correction) with the approvals made
 * before still counting their time from their making. Set back further, how
 * long they have waited cannot be told: they count as expired, so that none
 * outlives its time to live by more than this.
 */
const CLOCK_STEP_BACK_MS = 1000;

/** Whether an approval's time is up at `now`: past its expiry, or the clock set back more than CLOCK_STEP_BACK_MS before its making. */
function lapsed(createdAtMs: number, expiresAtMs: number, now: number): boolean {
  return now > expiresAtMs || now < createdAtMs - CLOCK_STEP_BACK_MS;
}

/** lapsed() in SQL, negated: the rows whose time is not up, given unlapsedAt(now) as its two parameters. */
const UNLAPSED = 'expires_at >= ? AND created_at <= ?';

function unlapsedAt(now: number): [number, number] {
  return [now, now + CLOCK_STEP_BACK_MS];
}

export class ApprovalStore {
  readonly #db: DatabaseSync;
  readonly #now: () => number;
  /** The statements of a governed run's path (make, read, spend), prepared once. */
  readonly #sql: (sql: string) => StatementSync;

  /** An approval as people outside the gateway see it: its action as shownAction() gives it (no environment value). */
  static shown(approval: Approval): Approval {
    return { ...approval, action: shownAction(approval.action) };
  }

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
    this.#sql = preparedOnce(db);
    db.exec(SCHEMA);
    this.#migrate();
  }

  /**
   * Adds reason and grant_withdrawn_at (after the releases of the table without them),
   * granted_at (after the first release) and, once per
   * database, counts the allow-always approvals allowed or used before it as
   * granted (GRANTS_MADE_BEFORE_GRANTED_AT): a database a gateway already gave
   * the column without that is migrated too. Under the write lock, so two
   * processes opening the store at once migrate it once.
   */
  #migrate(): void {
    const done = () => this.#db.prepare('SELECT 1 FROM approvals_migrations WHERE name = ?').get(GRANTS_MADE_BEFORE_GRANTED_AT) !== undefined;
    const columns = () => (this.#db.prepare('PRAGMA table_info(approvals)').all() as Array<{ name: string }>).map((c) => c.name);
    if (done() && columns().includes('grant_withdrawn_at') && columns().includes('reason') && columns().includes('authorities')) return;
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const has = columns();
      if (!has.includes('granted_at')) this.#db.exec('ALTER TABLE approvals ADD COLUMN granted_at INTEGER');
      if (!has.includes('grant_withdrawn_at')) this.#db.exec('ALTER TABLE approvals ADD COLUMN grant_withdrawn_at INTEGER');
      if (!has.includes('reason')) this.#db.exec('ALTER TABLE approvals ADD COLUMN reason TEXT');
      if (!has.includes('authorities')) this.#db.exec('ALTER TABLE approvals ADD COLUMN authorities TEXT');
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

  /** A new pending approval for one action. Throws GATEWAY_PARAMS_INVALID (a digest that is not 64 hex digits). */
  create(input: NewApproval): Approval {
    checkDigest(input.digest);
    return this.#insert(input);
  }

  /**
   * create() for the gateway: made at once while gateway.db's write lock is
   * free (the approval itself, no promise), else waited for with timers
   * (store/write-lock.ts) so every other connection is served meanwhile.
   * Throws what create() throws, and GATEWAY_BUSY (retryable) when the lock
   * is still held after `waitMs`.
   */
  createNowOrWhenFree(input: NewApproval, waitMs: number = WRITE_LOCK_WAIT_MS): Approval | Promise<Approval> {
    checkDigest(input.digest);
    return writeNowOrWhenFree(this.#db, () => this.#insert(input), waitMs);
  }

  #insert(input: NewApproval): Approval {
    const quorum = Math.min(Math.max(1, Math.floor(input.quorum)), 16);
    const now = this.#now();
    const id = randomUUID();
    this.#sql("INSERT INTO approvals (id, digest, action, status, decision, quorum, approvers, created_at, expires_at) VALUES (?, ?, ?, 'pending', NULL, ?, '[]', ?, ?)")
      .run(id, input.digest, JSON.stringify(input.action), quorum, now, now + (input.ttlMs ?? DEFAULT_APPROVAL_TTL_MS));
    return this.get(id);
  }

  /** Throws GATEWAY_APPROVAL_NOT_FOUND. A pending approval whose time is up (past its expiry, or the clock set back before its making) is reported as expired (and stored so, when the write lock is free: #expireIfDue). */
  get(id: string): Approval {
    const row = typeof id === 'string' ? (this.#sql('SELECT * FROM approvals WHERE id = ?').get(id) as Row | undefined) : undefined;
    if (!row) throw new GatewayError('GATEWAY_APPROVAL_NOT_FOUND', `no approval ${JSON.stringify(String(id).slice(0, 100))}`, { wire: { code: 'APPROVAL_NOT_FOUND', message: 'unknown approval id' } });
    return this.#expireIfDue(fromRow(row));
  }

  /**
   * One page of every approval, the newest made before the cursor `before`
   * (the `nextBefore` of the page after it; none: from the newest), oldest
   * first: at most `limit` of them, and no more than `maxBytes` of stored
   * actions (pagedRows); `nextBefore` names the page before it, null at the
   * first.
   */
  page(options: { limit: number; before?: number; maxBytes?: number }): { approvals: Approval[]; nextBefore: number | null } {
    const { rows, more } = this.#pagedRows('rowid < ?', [options.before ?? Number.MAX_SAFE_INTEGER], 'DESC', options.limit, options.maxBytes);
    const taken = rows.reverse();
    return { approvals: taken.map((r) => this.#expireIfDue(fromRow(r))), nextBefore: more ? taken[0]!.n : null };
  }

  /**
   * One page of the approvals made after the cursor `after` (the `nextAfter`
   * of the page before it; none: from the oldest), oldest first: every
   * approval, or with `status: 'pending'` those pending whose time is not up;
   * at most `limit` of them and no more than `maxBytes` of stored actions
   * (pagedRows). `nextAfter` names the next page, null at the last.
   */
  listPage(options: { status?: 'pending'; limit: number; after?: number; maxBytes?: number }): { approvals: Approval[]; nextAfter: number | null } {
    const pending = options.status === 'pending';
    const where = pending ? `rowid > ? AND status = 'pending' AND ${UNLAPSED}` : 'rowid > ?';
    const params = pending ? [options.after ?? 0, ...unlapsedAt(this.#now())] : [options.after ?? 0];
    const { rows, more } = this.#pagedRows(where, params, 'ASC', options.limit, options.maxBytes);
    return { approvals: rows.map((r) => this.#expireIfDue(fromRow(r))), nextAfter: more ? rows.at(-1)!.n : null };
  }

  /**
   * The rows of one page, in rowid order `order`: at most `limit`, and while
   * their stored actions (up to 256 KiB each: argv, cwd, env) add up to no
   * more than `maxBytes` (default DEFAULT_PAGE_BYTES) — always one at least,
   * so a page always moves on. Sizes are summed inside SQLite first, so the
   * rows past the bound are never read into JavaScript or parsed: a page
   * costs the event loop what it holds, however many wait. `more`: whether
   * rows remain past this page.
   */
  #pagedRows(where: string, params: number[], order: 'ASC' | 'DESC', limit: number, maxBytes: number = DEFAULT_PAGE_BYTES): { rows: Array<Row & { n: number }>; more: boolean } {
    const sizes = this.#db.prepare(`SELECT rowid AS n, length(CAST(action AS BLOB)) AS bytes FROM approvals WHERE ${where} ORDER BY rowid ${order} LIMIT ?`).all(...params, limit + 1) as Array<{ n: number; bytes: number }>;
    let fit = 0;
    for (let total = 0; fit < Math.min(sizes.length, limit); fit++) {
      total += sizes[fit]!.bytes;
      if (fit > 0 && total > maxBytes) break;
    }
    const ids = sizes.slice(0, fit).map((s) => s.n);
    const rows = this.#db.prepare(`SELECT rowid AS n, * FROM approvals WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY rowid ${order}`).all(JSON.stringify(ids)) as unknown as Array<Row & { n: number }>;
    return { rows, more: rows.length > 0 && sizes.length > fit };
  }

  list(filter: { status?: ApprovalStatus } = {}): Approval[] {
    const rows = (filter.status ? this.#db.prepare('SELECT * FROM approvals WHERE status = ? ORDER BY created_at').all(filter.status) : this.#db.prepare('SELECT * FROM approvals ORDER BY created_at').all()) as unknown as Row[];
    const out = rows.map((r) => this.#expireIfDue(fromRow(r)));
    return filter.status ? out.filter((a) => a.status === filter.status) : out;
  }

  /**
   * One approver's decision. A deny from anyone denies. With `withdraw`, a
   * deny takes back an approval already allowed and not yet spent instead
   * (the run it waits for is refused), with the grant it made or would make;
   * it is refused for one still pending (GATEWAY_APPROVAL_PENDING: deny it)
   * or already spent. Allows count distinct
   * approvers (those named under the shared gateway token count as one, and
   * only the first name given under it is kept: `approvers` are those who
   * counted, at most the quorum); at
   * the quorum the approval is allowed, always only when every approver chose
   * allow-always, else once. A `reason` (text of at most MAX_REASON
   * characters) is kept as the approval's reason when this decision settles
   * it. Allow-always is refused for a run that runs code its argv does not
   * show (action.runsCode): a standing grant would let it run again, with
   * whatever it then reads, with no one looking; unless that code is one
   * script file its node bound by content (scriptBoundByContent), whose
   * sha256 is in the digest the grant permits. `authority` is who a
   * signed-in approver is, whatever name they are shown by (see authority()).
   * Throws GATEWAY_APPROVAL_NOT_FOUND, GATEWAY_APPROVAL_EXPIRED,
   * GATEWAY_APPROVAL_RESOLVED, GATEWAY_PARAMS_INVALID (and that allow-always),
   * GATEWAY_APPROVAL_OWN_REQUEST (an allow by the human who asked, or by
   * the owner of the agent that asked as `ownerOf` names them: they may deny it;
   * see refuseOwnRequest, and resolveWhenFree for the address an approver claims).
   */
  resolve(id: string, decision: ApprovalDecision, approver: string, reason?: string, authority?: string, ownerOf?: OwnerOf): Approval {
    this.#begin(decision, approver, reason, authority);
    try {
      const resolved = this.#apply(id, decision, approver, reason, authority, ownerOf);
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
   * meanwhile. `claimed` is an address a signed-in approver claims, verified
   * or not: it only refuses (refuseOwnRequest). For the gateway; throws what
   * resolve() throws, and GATEWAY_BUSY when the lock is still held after `waitMs`.
   */
  async resolveWhenFree(id: string, decision: ApprovalDecision, approver: string, options: ResolveOptions = {}): Promise<Approval> {
    checkDecision(decision, approver, options.reason, options.authority);
    return writeWhenFree(
      this.#db,
      () => {
        // The wait for the lock may have outlasted the approver's right to decide (a session ended meanwhile): asked again inside it.
        options.stillAllowed?.();
        return this.#apply(id, decision, approver, options.reason, options.authority, options.ownerOf, options.withdraw, options.claimed);
      },
      options.waitMs ?? WRITE_LOCK_WAIT_MS,
    );
  }

  /**
   * resolve(), committed only once `record` (the decision's audit record,
   * made durable by the caller) has settled: whoever reads this store from
   * another connection (a gateway waiting for the approval) sees the
   * decision only after its record is durable. A record that fails rolls
   * the decision back and is thrown. For a process with a connection of its
   * own (the CLI): the write lock is held while `record` runs. `options` as
   * resolve() takes them.
   */
  async resolveRecorded(id: string, decision: ApprovalDecision, approver: string, record: (resolved: Approval) => Promise<void>, options: { reason?: string; ownerOf?: OwnerOf; withdraw?: boolean } = {}): Promise<Approval> {
    const { reason, ownerOf } = options;
    this.#begin(decision, approver, reason);
    try {
      const resolved = this.#apply(id, decision, approver, reason, undefined, ownerOf, options.withdraw);
      await record(resolved);
      this.#db.exec('COMMIT');
      return resolved;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** Checks the arguments and takes the write lock. */
  #begin(decision: ApprovalDecision, approver: string, reason: string | undefined, authority?: string): void {
    checkDecision(decision, approver, reason, authority);
    this.#db.exec('BEGIN IMMEDIATE');
  }

  /** The decision's writes, inside the transaction #begin opened; the approval as it then stands. */
  #apply(id: string, decision: ApprovalDecision, approver: string, reason: string | undefined, given?: string, ownerOf?: OwnerOf, withdraw = false, claimed?: string): Approval {
    const approval = this.get(id);
    if (approval.status === 'expired') throw new GatewayError('GATEWAY_APPROVAL_EXPIRED', 'the approval expired', { wire: { code: 'INVALID_REQUEST', message: 'approval expired' } });
    if (withdraw && decision !== 'deny') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'only a deny withdraws an approval');
    if (withdraw && approval.status === 'pending') {
      throw new GatewayError('GATEWAY_APPROVAL_PENDING', `approval ${id} is not allowed yet: there is nothing to withdraw; to stop it, deny it instead`, { wire: { code: 'INVALID_REQUEST', message: 'approval still pending: deny it instead' } });
    }
    // Withdrawing takes back an allow not yet spent; a decision otherwise settles only what is pending.
    if (approval.status !== (withdraw ? 'allowed' : 'pending')) {
      // Whoever lost a race (or decided late) learns which way it went: "resolved" alone reads as their own allow having counted.
      const settled = approval.status === 'used' ? 'allowed and used' : approval.status;
      throw new GatewayError('GATEWAY_APPROVAL_RESOLVED', `the approval was already ${settled}`, { wire: { code: 'INVALID_REQUEST', message: `approval already ${settled}` } });
    }
    if (decision !== 'deny') refuseOwnRequest(approval, approver, given, ownerOf, claimed);
    if (decision === 'allow-always') refuseStandingGrant(approval);
    const now = this.#now();
    // Who each approver so far is, beside the names they are shown by; an approval stored before authorities were kept counts its names.
    const kept = this.#authorities(id);
    const authorities = approval.approvers.map((a, i) => kept[i] ?? authority(a));
    const mine = authority(approver, given);
    if (decision === 'deny') {
      // A withdrawal withdraws the approval's grant with it (made or still to be made): from this commit on, no decision in any process counts it.
      this.#db
        .prepare("UPDATE approvals SET status = 'denied', decision = 'deny', approvers = ?, authorities = ?, resolved_at = ?, reason = ?, grant_withdrawn_at = COALESCE(grant_withdrawn_at, ?) WHERE id = ?")
        .run(JSON.stringify([...approval.approvers, approver]), JSON.stringify([...authorities, mine]), now, reason ?? null, withdraw ? now : null, id);
    } else {
      // One name per authority: another name given under a token or account that already counted, or another name of a
      // signed-in human who did, would only look like another approver (to people, and on the receipt, which a node refuses past 16).
      const counted = authorities.includes(mine);
      const approvers = counted ? approval.approvers : [...approval.approvers, approver];
      const who = counted ? authorities : [...authorities, mine];
      // Allow-always only when every approver chose it: the weakest allow so far stands.
      const allow = approval.decision === 'allow-once' ? 'allow-once' : decision;
      if (new Set(who).size >= approval.quorum) {
        this.#db.prepare("UPDATE approvals SET status = 'allowed', decision = ?, approvers = ?, authorities = ?, resolved_at = ?, reason = ? WHERE id = ?").run(allow, JSON.stringify(approvers), JSON.stringify(who), now, reason ?? null, id);
      } else {
        this.#db.prepare('UPDATE approvals SET decision = ?, approvers = ?, authorities = ? WHERE id = ?').run(allow, JSON.stringify(approvers), JSON.stringify(who), id);
      }
    }
    return this.get(id);
  }

  /** The authorities kept for approval `id`'s approvers, in their order (none for one stored before they were kept). */
  #authorities(id: string): Array<string | undefined> {
    const row = this.#sql('SELECT authorities FROM approvals WHERE id = ?').get(id) as { authorities: string | null } | undefined;
    if (typeof row?.authorities !== 'string') return [];
    try {
      const list: unknown = JSON.parse(row.authorities);
      return Array.isArray(list) ? list.map((a) => (typeof a === 'string' ? a : undefined)) : [];
    } catch {
      return [];
    }
  }

  /**
   * Withdraws every approval of `principal` (as approvals name it:
   * `Agent::invoice-bot`) that could still let a command run — pending, or
   * allowed and not yet spent — denying it in `by`'s name, in one
   * transaction. An agent's suspension withdraws them: none outlives it, even
   * once the agent is resumed. Returns them as they now stand.
   */
  withdrawAll(principal: string, by: string, reason?: string): Approval[] {
    checkReason(reason);
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const withdrawn = this.#withdraw(principal, by, reason);
      this.#db.exec('COMMIT');
      return withdrawn;
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /**
   * withdrawAll() for the gateway: while another process holds gateway.db's
   * write lock it waits with timers (store/write-lock.ts), so every other
   * connection is served meanwhile. `first` (synchronous: an agent's
   * suspension) runs once the lock is held, in the same tick as the
   * withdrawal, so no approval can be made between the two; when it throws,
   * nothing is withdrawn and that is thrown. Throws GATEWAY_PARAMS_INVALID (a
   * reason checkReason refuses), and GATEWAY_BUSY (retryable, nothing
   * withdrawn, `first` not run) when the lock is still held after `waitMs`.
   */
  async withdrawAllWhenFree(principal: string, by: string, options: { reason?: string; waitMs?: number; first?: () => void } = {}): Promise<Approval[]> {
    checkReason(options.reason);
    const work = () => {
      options.first?.();
      return this.#withdraw(principal, by, options.reason);
    };
    return writeWhenFree(this.#db, work, options.waitMs ?? WRITE_LOCK_WAIT_MS);
  }

  /** withdrawAll's writes, inside its transaction; the approvals as they then stand. */
  #withdraw(principal: string, by: string, reason: string | undefined): Approval[] {
    const now = this.#now();
    const rows = this.#db.prepare(`SELECT * FROM approvals WHERE status IN ('pending', 'allowed') AND ${UNLAPSED} AND json_extract(action, '$.principal') = ?`).all(...unlapsedAt(now), principal) as unknown as Row[];
    // The grant of an allow-always approval withdrawn goes with it, as withdrawing it alone does: none counts from now on, not even once the agent is resumed.
    const deny = this.#db.prepare("UPDATE approvals SET status = 'denied', decision = 'deny', approvers = ?, resolved_at = ?, reason = ?, grant_withdrawn_at = COALESCE(grant_withdrawn_at, ?) WHERE id = ?");
    for (const row of rows) deny.run(JSON.stringify([...(JSON.parse(row.approvers) as string[]), by]), now, reason ?? null, now, row.id);
    return rows.map((row) => this.get(row.id));
  }

  /**
   * Spends an allowed approval on the action it was granted for, once (a
   * governed run spending its approval); the digest presented must equal the
   * one approved. (What allow-always allows afterwards is its Cedar grant, so
   * removing the grant withdraws it.) At once while gateway.db's write lock
   * is free (no promise, and an error is thrown, not rejected), else waited
   * for with timers so every other connection is served meanwhile. Throws
   * GATEWAY_APPROVAL_MISMATCH (another action: never replayable),
   * GATEWAY_APPROVAL_RESOLVED (denied or already used),
   * GATEWAY_APPROVAL_EXPIRED, GATEWAY_APPROVAL_NOT_FOUND, and GATEWAY_BUSY
   * (retryable, nothing spent) when the lock is still held after `waitMs`.
   */
  consumeNowOrWhenFree(id: string, digest: string, waitMs: number = WRITE_LOCK_WAIT_MS): Approval | Promise<Approval> {
    return writeNowOrWhenFree(this.#db, () => this.#spend(id, digest), waitMs);
  }

  #spend(id: string, digest: string): Approval {
    const approval = this.get(id);
    if (!sameHex(approval.digest, digest)) throw new GatewayError('GATEWAY_APPROVAL_MISMATCH', 'the approval is for another action', { wire: { code: 'INVALID_REQUEST', message: 'approval does not match this command' } });
    if (approval.status === 'expired') throw new GatewayError('GATEWAY_APPROVAL_EXPIRED', 'the approval expired');
    if (approval.status !== 'allowed') throw new GatewayError('GATEWAY_APPROVAL_RESOLVED', `the approval is ${approval.status}`);
    const changed = this.#sql("UPDATE approvals SET status = 'used' WHERE id = ? AND status = 'allowed'").run(id).changes;
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

  /** claimGrant() for the gateway, waiting for gateway.db's write lock with timers (store/write-lock.ts). Throws GATEWAY_BUSY (retryable, nothing claimed) past `waitMs`. */
  claimGrantWhenFree(id: string, waitMs: number = WRITE_LOCK_WAIT_MS): Promise<boolean> {
    return writeWhenFree(this.#db, () => this.claimGrant(id), waitMs);
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
   * An approval still pending (and unexpired) has no grant to withdraw: it is
   * refused, nothing written, so the allow-always it may be given later still
   * makes its grant; who wants it stopped denies it. Waits for gateway.db's
   * write lock with timers (store/write-lock.ts), so a gateway revoking a
   * grant goes on serving everyone else meanwhile. Throws GATEWAY_APPROVAL_PENDING
   * (the approval is still pending: nothing withdrawn), GATEWAY_BUSY
   * (retryable, nothing withdrawn) past `waitMs`.
   */
  async withdrawGrantWhenFree(id: string, waitMs: number = WRITE_LOCK_WAIT_MS): Promise<'withheld' | 'withdrawn' | 'none'> {
    return (await this.withdrawGrantsWhenFree([id], waitMs))[0]!;
  }

  /**
   * withdrawGrantWhenFree for several approvals in one transaction (an
   * agent's suspension taking out every grant its approvals made): what it
   * did for each, in order. Throws as withdrawGrantWhenFree — then nothing
   * is withdrawn, when only one of them is still pending.
   */
  withdrawGrantsWhenFree(ids: readonly string[], waitMs: number = WRITE_LOCK_WAIT_MS): Promise<Array<'withheld' | 'withdrawn' | 'none'>> {
    return writeWhenFree(this.#db, () => ids.map((id) => this.#withdrawGrant(id)), waitMs);
  }

  /** withdrawGrantWhenFree's writes, inside its transaction. */
  #withdrawGrant(id: string): 'withheld' | 'withdrawn' | 'none' {
    // Read in the same transaction as the writes: pending now, it cannot be resolved before they commit.
    const row = this.#db.prepare('SELECT status, created_at, expires_at FROM approvals WHERE id = ?').get(id) as { status: ApprovalStatus; created_at: number; expires_at: number } | undefined;
    if (row?.status === 'pending' && !lapsed(row.created_at, row.expires_at, this.#now())) {
      const message = `approval ${id} is still pending: there is no grant to revoke; to stop it, deny it instead`;
      throw new GatewayError('GATEWAY_APPROVAL_PENDING', message, { wire: { code: 'INVALID_REQUEST', message: 'approval still pending: deny it instead' } });
    }
    const first = Number(this.#db.prepare('UPDATE approvals SET grant_withdrawn_at = ? WHERE id = ? AND grant_withdrawn_at IS NULL').run(this.#now(), id).changes) === 1;
    const withheld = Number(this.#db.prepare("UPDATE approvals SET granted_at = ? WHERE id = ? AND granted_at IS NULL AND decision = 'allow-always' AND status IN ('allowed', 'used')").run(this.#now(), id).changes) === 1;
    const claimed = first && !withheld && (this.#db.prepare('SELECT granted_at FROM approvals WHERE id = ?').get(id) as { granted_at: number | null }).granted_at !== null;
    return withheld ? 'withheld' : claimed ? 'withdrawn' : 'none';
  }

  /** Whether the grant of approval `id` was withdrawn (withdrawGrantWhenFree). */
  grantWithdrawn(id: string): boolean {
    const row = this.#db.prepare('SELECT grant_withdrawn_at FROM approvals WHERE id = ?').get(id) as { grant_withdrawn_at: number | null } | undefined;
    return row?.grant_withdrawn_at !== undefined && row.grant_withdrawn_at !== null;
  }

  releaseGrant(id: string): void {
    this.#db.prepare('UPDATE approvals SET granted_at = NULL WHERE id = ?').run(id);
  }

  /** releaseGrant() waiting for gateway.db's write lock with timers. Throws GATEWAY_BUSY (retryable, the claim kept: the grant is then not made) past `waitMs`. */
  releaseGrantWhenFree(id: string, waitMs: number = WRITE_LOCK_WAIT_MS): Promise<void> {
    return writeWhenFree(this.#db, () => this.releaseGrant(id), waitMs);
  }

  /** How many approvals are pending and unexpired, counted inside SQLite: none is read (each can carry 256 KiB). */
  pendingTotal(): number {
    return (this.#db.prepare(`SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND ${UNLAPSED}`).get(...unlapsedAt(this.#now())) as { n: number }).n;
  }

  /** How many approvals for `principal` (as approvals name it: `Agent::invoice-bot`) on node `nodeId` are pending and unexpired. */
  pendingCount(principal: string, nodeId: string): number {
    const row = this.#db
      .prepare(`SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND ${UNLAPSED} AND json_extract(action, '$.principal') = ? AND json_extract(action, '$.nodeId') = ?`)
      .get(...unlapsedAt(this.#now()), principal, nodeId) as { n: number };
    return row.n;
  }

  /** The newest approval for exactly this digest that is still pending or allowed and unused (a retry after a restart finds it). */
  open(digest: string): Approval | undefined {
    const rows = this.#db.prepare("SELECT * FROM approvals WHERE digest = ? AND status IN ('pending', 'allowed') ORDER BY created_at DESC LIMIT 8").all(digest) as unknown as Row[];
    return rows.map((r) => this.#expireIfDue(fromRow(r))).find((a) => a.status === 'pending' || a.status === 'allowed');
  }

  /**
   * An approval whose time is up (lapsed()), reported as expired and stored so when the
   * write lock is free now. The stored status only saves the next read the
   * sum (every decision and spend checks the expiry itself), so while
   * another process holds the lock the store is left for a later read: a
   * listing never waits for the lock.
   */
  #expireIfDue(approval: Approval): Approval {
    if (approval.status !== 'pending' && approval.status !== 'allowed') return approval;
    if (!lapsed(approval.createdAtMs, approval.expiresAtMs, this.#now())) return approval;
    writeIfFree(this.#db, () => void this.#db.prepare("UPDATE approvals SET status = 'expired', resolved_at = COALESCE(resolved_at, ?) WHERE id = ? AND status = ?").run(this.#now(), approval.id, approval.status));
    return { ...approval, status: 'expired' };
  }
}

/** What create() takes: the action's digest (64 hex digits), what the approver is shown, the quorum (1–16), the time to live (default DEFAULT_APPROVAL_TTL_MS). */
export interface NewApproval {
  digest: string;
  action: Record<string, unknown>;
  quorum: number;
  ttlMs?: number;
}

/** Throws GATEWAY_PARAMS_INVALID unless `digest` is 64 lowercase hex digits. */
function checkDigest(digest: string): void {
  if (!/^[0-9a-f]{64}$/.test(digest)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the digest must be 64 hex digits');
}

/** A decision and its approver as resolve() takes them. Throws GATEWAY_PARAMS_INVALID. */
function checkDecision(decision: ApprovalDecision, approver: string, reason: string | undefined, authority?: string): void {
  if (decision !== 'allow-once' && decision !== 'allow-always' && decision !== 'deny') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'decision must be allow-once, allow-always or deny');
  if (typeof approver !== 'string' || approver === '' || approver.length > 200) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the approver must be named, in at most 200 characters');
  if (authority !== undefined && (typeof authority !== 'string' || authority === '' || authority.length > 400)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the approver’s authority must be text of at most 400 characters');
  checkReason(reason);
}

/** A reason as a decision takes it: absent, or text of at most MAX_REASON characters. Throws GATEWAY_PARAMS_INVALID. */
export function checkReason(reason: unknown): asserts reason is string | undefined {
  if (reason === undefined) return;
  if (typeof reason !== 'string' || reason.length > MAX_REASON || !reason.isWellFormed()) throw new GatewayError('GATEWAY_PARAMS_INVALID', `reason must be text of at most ${MAX_REASON} characters`);
}

/** How ApprovalStore.resolveWhenFree decides: see there and resolve(). */
export interface ResolveOptions {
  reason?: string;
  /** How long to wait for another process's write lock (default WRITE_LOCK_WAIT_MS). */
  waitMs?: number;
  authority?: string;
  claimed?: string;
  ownerOf?: OwnerOf;
  withdraw?: boolean;
  /** Throws when the approver may no longer decide (their session ended); asked once the lock is held, right before the decision is written. */
  stillAllowed?: () => void;
}

/**
 * The human accountable for an agent (the owner given when it was made, an
 * address), by the agent's name; undefined for an agent not known.
 */
export type OwnerOf = (agent: string) => string | undefined;

/**
 * Throws GATEWAY_APPROVAL_OWN_REQUEST when the request an approval is for
 * is the approver's own (four eyes: someone else always looks at it), for
 * an allow by:
 * - the human it is for (`Human::NAME`, as approvals name principals), by
 *   `approver`, the authority they count as or the address they claim. The
 *   gateway token's and system accounts' approvers (`token:…`, `account:…`)
 *   are never a human principal's name: the token acts as Human::operator,
 *   and the reviewer it names relays their own decision on it.
 * - the owner of the agent it is for (`Agent::NAME`, `ownerOf`), by any name
 *   the approver goes by (a signed-in human's name, authority or `claimed`
 *   address, the name given under the token or a system account, the sender
 *   a chat channel names under the token: senderOf), addresses
 *   compared without case. The owner is an address: a local console user,
 *   whose name has no `@`, is matched by the address an admin gave them
 *   (`claimed`), and by none when they were given none.
 *
 * `claimed` is the address a signed-in approver goes by besides their name:
 * the one a single sign-on approver's provider sent, verified or not, or
 * the one an admin gave a local console user (`corral users email`).
 * Trusted in this direction only: anyone may claim someone else's address,
 * and all it can do is refuse them. Entra ID sends no `email_verified`, so
 * its people are named by issuer and subject, and without it an owner
 * allowed their own agent's requests alone; so did an owner signed in with
 * a local login.
 */
export function refuseOwnRequest(approval: Approval, approver: string, authority: string | undefined, ownerOf?: OwnerOf, claimed?: string): void {
  const principal = approval.action.principal;
  if (typeof principal !== 'string') return;
  if (principal.startsWith('Human::')) {
    const requester = principal.slice('Human::'.length);
    if (requester === approver || requester === authority || requester === claimed) throw ownRequest('an approver may not allow a request of their own; someone else must approve it');
  }
  if (principal.startsWith('Agent::') && ownerOf) {
    const owner = ownerOf(principal.slice('Agent::'.length))?.toLowerCase();
    const names = [givenName(approver), senderOf(approver), authority, claimed].filter((n) => n !== undefined).map((n) => n.toLowerCase());
    if (owner !== undefined && names.includes(owner)) throw ownRequest(`the owner of ${principal} may not allow its requests; someone else must approve it`);
  }
}

function ownRequest(message: string): GatewayError {
  return new GatewayError('GATEWAY_APPROVAL_OWN_REQUEST', message, { wire: { code: 'FORBIDDEN', message: 'an approver may not allow a request of their own' } });
}

/**
 * Throws GATEWAY_PARAMS_INVALID when the approval is for a run that runs code
 * its argv does not show: allow-always would make a standing grant for what
 * no approver could see. Its message names why (runs-code.ts: plain ASCII,
 * no text of the agent's). A run of one script file its node bound by
 * content is not refused: its digest covers the file's sha256, so its grant
 * allows it only while the file holds what the approver was shown.
 */
function refuseStandingGrant(approval: Approval): void {
  const runs = runsCodeOfAction(approval.action);
  if (runs === null || scriptBoundByContent(approval.action) !== undefined) return;
  const message = `allow-always is refused for a command that runs code Corral cannot see (${runs.reason}): approve it once, or deny it`;
  throw new GatewayError('GATEWAY_PARAMS_INVALID', message, { wire: { code: 'INVALID_REQUEST', message } });
}

/**
 * An approval's action as it is shown to anyone outside the gateway (an
 * approver over HTTP or the protocol, corral approvals): its environment by
 * names (`env`), since the values may hold secrets (a token the agent passes
 * to its command), as the audit log keeps them (`envKeys`), and each value by
 * a fingerprint (`envValues`, in the same order: the first ENV_FINGERPRINT_HEX
 * hex digits of its SHA-256 and its length in bytes). The digest the approver
 * binds to covers the values: the fingerprints tell two requests whose
 * values differ apart and let an approver check a value they know, while a
 * secret of any strength stays unknown (one short enough to guess, a PIN,
 * could be confirmed by a guess, as with any fingerprint).
 */
export function shownAction(action: Record<string, unknown>): Record<string, unknown> {
  const env = action.env;
  if (env === null || typeof env !== 'object' || Array.isArray(env)) return action;
  const values = Object.entries(env as Record<string, unknown>).map(([name, value]) => {
    const bytes = Buffer.from(String(value));
    return { name, sha256: createHash('sha256').update(bytes).digest('hex').slice(0, ENV_FINGERPRINT_HEX), bytes: bytes.length };
  });
  return { ...action, env: Object.keys(env), envValues: values };
}

/** How much of an environment value's SHA-256 an approver is shown: 48 bits, so that two values an agent passes are told apart. */
const ENV_FINGERPRINT_HEX = 12;

/** The action as stored, with `runsCode` and `allowAlways` worked out afresh for a run (one with an argv or commands); a named command's is left as it is. */
function actionOf(text: string): Record<string, unknown> {
  const action = JSON.parse(text) as Record<string, unknown>;
  if (!Array.isArray(action.argv) && !Array.isArray(action.commands)) return action;
  const runsCode = runsCodeOfAction(action);
  return { ...action, runsCode, allowAlways: runsCode === null || scriptBoundByContent(action) !== undefined };
}

function fromRow(r: Row): Approval {
  return {
    id: r.id,
    digest: r.digest,
    action: actionOf(r.action),
    status: r.status,
    decision: r.decision,
    quorum: r.quorum,
    approvers: JSON.parse(r.approvers) as string[],
    createdAtMs: r.created_at,
    expiresAtMs: r.expires_at,
    resolvedAtMs: r.resolved_at,
    reason: r.reason ?? null,
    standingGrant: r.granted_at === null ? null : r.grant_withdrawn_at === null ? 'made' : 'withdrawn',
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

/** The name an approver gave, without the token or system account it came under. */
function givenName(approver: string): string {
  if (approver.startsWith(TOKEN_APPROVER)) return approver.slice(TOKEN_APPROVER.length);
  if (approver.startsWith(ACCOUNT_APPROVER)) return approver.slice(approver.indexOf(':', ACCOUNT_APPROVER.length) + 1);
  return approver;
}

/**
 * The sender a chat channel's approval names (the gateway token's
 * `CHANNEL:SENDER`, exec.approval.resolve's reviewer): the owner's address
 * relayed from a channel is still theirs. Undefined for any other approver.
 */
function senderOf(approver: string): string | undefined {
  const given = givenName(approver);
  return approver.startsWith(TOKEN_APPROVER) && given.includes(':') ? given.slice(given.indexOf(':') + 1) : undefined;
}

/**
 * Who an approval counts as toward a quorum: the token, the system account
 * (accountApprover), or the approver — a signed-in human as `given`, when the
 * gateway knows them by more than the name they are shown by. Single sign-on
 * names a person by the e-mail their provider verified, else by issuer and
 * subject (`oidc:ISSUER#SUBJECT`): one person's name changes with their
 * address, its case or its verification, while the subject stays, so the
 * gateway gives that subject as their authority and they count once,
 * whichever name they approve under. A token's or account's names are never
 * counted apart, whatever authority comes with them.
 */
function authority(approver: string, given?: string): string {
  if (approver.startsWith(TOKEN_APPROVER)) return TOKEN_APPROVER;
  if (approver.startsWith(ACCOUNT_APPROVER)) return approver.slice(0, approver.indexOf(':', ACCOUNT_APPROVER.length) + 1);
  return given ?? approver;
}
