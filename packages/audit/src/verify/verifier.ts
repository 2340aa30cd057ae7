// Verifies a log from its records and checkpoints, streaming: recompute every
// leaf hash and the hash chain, recompute the Merkle root at every checkpoint
// and compare it with the signed one. On the first broken link it looks at
// the records around it to name the first bad seq and the kind of damage.
// No I/O here: stores and export readers feed it.
import type { KeyObject } from 'node:crypto';
import type { SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { keyIdOf } from '../checkpoint/key.ts';
import { verifyCheckpointSignature } from '../checkpoint/verify.ts';
import { AuditError } from '../errors.ts';
import { CompactRange } from '../merkle/compact-range.ts';
import { verifyConsistency } from '../merkle/consistency.ts';
import { hashesEqual, type MerkleHasher } from '../merkle/hasher.ts';
import { GENESIS_PREV, recordBytes } from '../record/envelope.ts';
import { bodyHasTime, eventTimeMs } from '../record/event-time.ts';
import { isoTime } from '../record/iso-time.ts';
import type { Damage, VerifyReport } from './report.ts';

/** One record as the verifier sees it. */
export interface VerifiableRecord {
  seq: number;
  prev: string;
  /** Canonical JSON of the event. */
  body: string;
  /** The leaf hash the store recorded at append time, when it has one. */
  storedHash?: string;
  /** 1-based line in an export file. */
  line?: number;
}

/** Forged or unreadable checkpoints listed one by one in a report; the rest are counted (a hostile export may hold millions). */
export const MAX_LISTED_CHECKPOINTS = 100;

/**
 * Forged checkpoints found before the signatures of further ones go unchecked
 * (reported as not checked, and counted): past the first, the report already
 * fails, and each more costs an Ed25519 verification, ~0.1–0.4 ms, whatever
 * lies between them in the file. A checkpoint already found validly signed is
 * known again without a check, so a hostile file's signature checks number at
 * most this many plus the distinct checkpoints the key signed.
 */
export const MAX_FORGED_CHECKED = MAX_LISTED_CHECKPOINTS;

/** Records whose time index disagrees with their event time listed one by one in a report; the rest are counted, with their range. */
export const MAX_LISTED_MISINDEXED = 100;

/** Records whose stored tree nodes are not the ones the records make listed one by one in a report; the rest are counted, with their range. */
export const MAX_LISTED_TREE_ALTERED = 100;

/** Where verification starts: the empty log, or (for a partial export) a known tip. */

export interface VerifyStart {
  size: number;
  lastHash: string;
  frontier: string[];
}

export interface VerifierOptions {
  hasher: MerkleHasher;
  /** The trusted checkpoint-signing public key. */
  publicKey: KeyObject;
  /** Every checkpoint the log or export holds (any order); more may follow through checkpoint(). */
  checkpoints?: readonly SignedCheckpoint[];
  /**
   * Checkpoints seen earlier (by an auditor, and by the writer: the state
   * directory's witness): the log must be neither behind nor forked from any
   * of them. Each one's size must be at least start's: the tree before start
   * is taken on trust, so it could not be compared.
   */
  witness?: SignedCheckpoint | readonly SignedCheckpoint[];
  start?: VerifyStart;
  /** Records kept after the first broken link to diagnose it. */
  lookahead?: number;
  /** This is a leading slice of the log: do not judge how the log ends (truncation, rollback). */
  partial?: boolean;
  /**
   * Every record must be sealed by a signed checkpoint (or by seal()): an
   * export handed to an auditor, where nothing else vouches for records the
   * key never signed. A live log's newest records wait for the next
   * checkpoint, so there they are only noted.
   */
  requireSealed?: boolean;
}

/** A record read after the first broken link: what diagnosis compares (its body only for the first, #brokenBody). */
interface Seen {
  seq: number;
  prev: string;
  hash: string;
  storedHash?: string;
  line?: number;
}

export class LogVerifier {
  readonly #h: MerkleHasher;
  readonly #publicKey: KeyObject;
  readonly #range: CompactRange;
  readonly #checks: SignedCheckpoint[] = [];
  /** The checkpoints kept (size and root): one repeated is kept once, so memory grows only with distinct signed ones. */
  readonly #kept = new Set<string>();
  /** Every checkpoint found validly signed, as all it is signed with: known again without a signature check. */
  readonly #signed = new Set<string>();
  /** Checkpoints whose signature check failed: past MAX_FORGED_CHECKED, no more are checked. */
  #forged = 0;
  readonly #keyId: string;
  readonly #damage: Damage[] = [];
  /** Forged or unreadable checkpoints past the first MAX_LISTED_CHECKPOINTS, counted, not listed (an export is hostile input). */
  #unlistedCheckpoints = 0;
  #listedCheckpoints = 0;
  /** Records whose time index disagrees with their event time: the first MAX_LISTED_MISINDEXED, then the rest counted. */
  readonly #misindexed: Damage[] = [];
  #unlistedMisindexed: { first: number; last: number; count: number } | undefined;
  /** Records whose stored tree nodes are not the ones the records make: the first MAX_LISTED_TREE_ALTERED, then the rest counted. */
  readonly #treeAltered: Damage[] = [];
  #unlistedTreeAltered: { first: number; last: number; count: number } | undefined;
  /** The interior nodes the last record that extended the chain completed, level 1 upward. */
  #completed: string[] = [];
  /** Set once the checkpoints are in order and the start's are checked: at the first record, seal or finish. */
  #prepared = false;
  /** The witnessed checkpoints validly signed, once each, largest first. */
  readonly #witnesses: SignedCheckpoint[] = [];
  /** What it was made with (for again()). */
  readonly #options: VerifierOptions;
  readonly #lookahead: number;
  readonly #start: number;
  readonly #partial: boolean;
  readonly #requireSealed: boolean;
  #checkIndex = 0;
  #records = 0;
  #last: string;
  /** The last good record's own prev, and its export line. */
  #previousPrev: string | undefined;
  #lastLine: number | undefined;
  #sealed = 0;
  #valid = 0;
  #total = 0;
  /** Set at the first broken link: the records from there on, for diagnosis. */
  #broken: Seen[] | undefined;
  /** The first broken record's body, which diagnosis hashes again at other seqs; the rest need none (memory stays bounded). Undefined when it came through addLeaf(). */
  #brokenBody: string | undefined;
  /** The first broken link was an unreadable record, already reported as such. */
  #unreadable = false;
  /** Records (readable or not) fed after the first broken link: past lookahead, none changes the report. */
  #afterBreak = 0;
  #rootMismatch: SignedCheckpoint | undefined;
  /** The checkpoint of a seal whose consistency proof verified: the records are a prefix of the tree it signs. */
  #sealedBy: SignedCheckpoint | undefined;
  /** A validly signed seal given once the chain had broken: not applied, but a diagnosis may test itself against it (#confirmed). */
  #brokenSeal: { size: number; checkpoint: SignedCheckpoint; consistency: readonly string[] } | undefined;
  /** The tree at the last checkpoint whose root matched (where a rewrite can start). */
  #sealedState: VerifyStart;
  /** With requireSealed: the leaf hashes appended since #sealedState (at most lookahead), to test a diagnosis against a later checkpoint. */
  #sinceSealed: string[] | undefined;

  /** @throws AuditError AUDIT_BAD_ARGUMENT when a witness lies before start. */
  constructor(options: VerifierOptions) {
    this.#options = options;
    this.#h = options.hasher;
    this.#publicKey = options.publicKey;
    const start = options.start ?? { size: 0, lastHash: GENESIS_PREV, frontier: [] };
    const witnesses = ([] as SignedCheckpoint[]).concat(options.witness ?? []);
    for (const w of witnesses) {
      if (w.size >= start.size) continue;
      // Skipping it would pass a fork: a partial export of another history signed by the same key.
      throw new AuditError(
        'AUDIT_BAD_ARGUMENT',
        `the checkpoint kept at size ${w.size} lies before the first record verified (seq ${start.size}): nothing here shows the log extends it; verify from seq ${w.size} or earlier`,
      );
    }
    this.#start = start.size;
    this.#sealed = start.size;
    this.#range = new CompactRange(options.hasher, start.size, start.frontier);
    this.#last = start.lastHash;
    this.#sealedState = { size: start.size, lastHash: start.lastHash, frontier: [...start.frontier] };
    this.#lookahead = options.lookahead ?? 100_000;
    this.#partial = options.partial === true;
    this.#requireSealed = options.requireSealed === true;
    this.#sinceSealed = this.#requireSealed ? [] : undefined;
    this.#keyId = keyIdOf(options.publicKey);
    for (const c of options.checkpoints ?? []) this.checkpoint(c);
    for (const w of witnesses) {
      // The same checkpoint kept twice (by the auditor and by the state directory) is checked once.
      if (this.#witnesses.some((k) => k.size === w.size && k.root === w.root)) continue;
      try {
        verifyCheckpointSignature(options.publicKey, w);
        this.#witnesses.push(w);
      } catch {
        this.#damage.push({ kind: 'checkpoint-forged', seq: null, checkpointSize: w.size, message: `the witnessed checkpoint at size ${w.size} is not validly signed by the trusted key` });
      }
    }
    this.#witnesses.sort((a, b) => b.size - a.size);
  }

  /**
   * Takes one more checkpoint the log or export holds (any order), before the
   * first record: kept when validly signed by the trusted key (once, however
   * often it is repeated), else reported as forged. Once MAX_FORGED_CHECKED
   * are forged, one not seen validly signed before is reported as not checked.
   */
  checkpoint(c: SignedCheckpoint): void {
    if (this.#prepared) throw new AuditError('AUDIT_BAD_ARGUMENT', 'checkpoints are taken before the first record');
    const signed = `${c.size} ${c.root} ${c.time} ${c.keyId} ${c.signature}`;
    if (this.#signed.has(signed)) {
      this.#total++;
      this.#valid++;
      return;
    }
    if (this.#forged >= MAX_FORGED_CHECKED) {
      this.#checkpointDamage({ kind: 'checkpoint-forged', seq: null, checkpointSize: c.size, message: `checkpoint at size ${c.size} not checked: ${MAX_FORGED_CHECKED} forged checkpoints were found before it` });
      return;
    }
    this.#total++;
    try {
      verifyCheckpointSignature(this.#publicKey, c);
    } catch {
      this.#forged++;
      const other = c.keyId !== this.#keyId ? ` (signed by key ${c.keyId}, not the trusted ${this.#keyId})` : '';
      this.#checkpointDamage({ kind: 'checkpoint-forged', seq: null, checkpointSize: c.size, message: `checkpoint at size ${c.size} is not validly signed by the trusted key${other}` });
      return;
    }
    this.#signed.add(signed);
    this.#valid++;
    const key = `${c.size} ${c.root}`;
    if (this.#kept.has(key)) return;
    this.#kept.add(key);
    this.#checks.push(c);
  }

  /**
   * A new verifier in this one's state before its first record: the
   * checkpoints it took, those found forged or unreadable, its witnesses, with
   * no signature checked again. For feeding the same records a second time,
   * another way (addLeaf(), then add() to diagnose damage).
   * @throws AuditError AUDIT_BAD_ARGUMENT once a record was fed.
   */
  again(): LogVerifier {
    if (this.#prepared) throw new AuditError('AUDIT_BAD_ARGUMENT', 'a verifier is copied only before its first record');
    const options = { ...this.#options };
    delete options.checkpoints;
    delete options.witness;
    const v = new LogVerifier(options);
    v.#checks.push(...this.#checks);
    for (const k of this.#kept) v.#kept.add(k);
    for (const k of this.#signed) v.#signed.add(k);
    v.#forged = this.#forged;
    v.#damage.push(...this.#damage.map((d) => ({ ...d })));
    v.#unlistedCheckpoints = this.#unlistedCheckpoints;
    v.#listedCheckpoints = this.#listedCheckpoints;
    v.#total = this.#total;
    v.#valid = this.#valid;
    v.#witnesses.push(...this.#witnesses);
    return v;
  }

  /**
   * A checkpoint (or seal) line of an export that cannot be read, or a header
   * naming another signing key than the trusted one, at its `line`: reported as forged.
   */
  checkpointUnreadable(message: string, line: number): void {
    this.#checkpointDamage({ kind: 'checkpoint-forged', seq: null, line, message });
  }

  #checkpointDamage(damage: Damage): void {
    if (this.#listedCheckpoints < MAX_LISTED_CHECKPOINTS) {
      this.#listedCheckpoints++;
      this.#damage.push(damage);
    } else this.#unlistedCheckpoints++;
  }

  /** Puts the checkpoints in order and checks those at the start, once, before anything else is verified. */
  #prepare(): void {
    if (this.#prepared) return;
    this.#prepared = true;
    this.#checks.sort((a, b) => a.size - b.size);
    while (this.#checks[this.#checkIndex] && (this.#checks[this.#checkIndex] as SignedCheckpoint).size < this.#start) this.#checkIndex++;
    this.#checkpointsAt(this.#start);
  }

  /** Feeds the next record in log order. */
  record(r: VerifiableRecord): void {
    this.add(r.seq, r.prev, r.body, r.storedHash, r.line);
  }

  /** Feeds the next record in log order, as separate parts (no object per record on the hot path). */
  add(seq: number, prev: string, body: string, storedHash?: string, line?: number): void {
    this.#feed(seq, prev, this.#h.leaf(recordBytes(seq, prev, body)), storedHash, line, body);
  }

  /**
   * Feeds the next record in log order by its leaf hash, which the caller
   * computed over the record's bytes as they stand (an export line): for a
   * pass that only asks whether everything verifies. Without the body, a
   * broken link cannot be diagnosed: once `clean` is false, verify again,
   * feeding the records through add().
   */
  addLeaf(seq: number, prev: string, leafHash: string, line?: number): void {
    this.#feed(seq, prev, leafHash, undefined, line, undefined);
  }

  /**
   * True while nothing taken so far is wrong: no broken link, no root that
   * does not match, no forged or unreadable checkpoint. finish() may still
   * find damage (unsealed records, a truncation).
   */
  get clean(): boolean {
    return this.#broken === undefined && this.#rootMismatch === undefined && this.#damage.length === 0 && this.#unlistedCheckpoints === 0 && this.#misindexed.length === 0 && this.#treeAltered.length === 0;
  }

  /**
   * Checks the time a store keeps beside the record just fed through add()
   * (`timeMs`: the index reads by time select records by, export
   * --since/--until among them) against the event time in its `body`. One
   * that disagrees is `misindexed` damage at its seq: a read by time would
   * leave the record out, or take it in, wrongly, though the record itself
   * verifies. Only a record that extended the verified chain is checked
   * (past a broken link the report fails already); the first
   * MAX_LISTED_MISINDEXED are listed, the rest counted.
   */
  timeIndex(seq: number, body: string, timeMs: number): void {
    if (this.#broken || seq !== this.#range.size - 1 || bodyHasTime(body, timeMs)) return;
    if (this.#misindexed.length < MAX_LISTED_MISINDEXED) {
      const event = eventTimeMs(body);
      const indexed = isoTime(timeMs) ?? `${timeMs} ms`;
      const held = Number.isNaN(event) ? 'no event time' : `the event time ${isoTime(event) ?? `${event} ms`}`;
      this.#misindexed.push({
        kind: 'misindexed',
        seq,
        message: `seq ${seq} is indexed at ${indexed} (its stored time_ms) but holds ${held}: a read by time (export --since/--until) would leave it out or take it in wrongly`,
      });
      return;
    }
    const u = (this.#unlistedMisindexed ??= { first: seq, last: seq, count: 0 });
    u.last = seq;
    u.count++;
  }

  /**
   * Checks the interior nodes a store kept beside the record just fed through
   * add() (`nodes`: the hex of StoredRecord.nodes, concatenated) against the
   * ones that record completes in the tree the records make. Proofs are built
   * from them, and a writer opening the log builds its next checkpoint's root
   * on those at the head's frontier: one that differs is `tree-altered` damage
   * at the record's seq, naming the first level that differs, the subtree it
   * covers, and both hashes, though the record itself verifies. Checked as
   * timeIndex() is: only a record that extended the verified chain; the first
   * MAX_LISTED_TREE_ALTERED are listed, the rest counted.
   */
  treeNodes(seq: number, nodes: string): void {
    if (this.#broken || seq !== this.#range.size - 1) return;
    const c = this.#completed;
    if (c.length === 0 ? nodes === '' : c.length === 1 ? nodes === c[0] : nodes === c.join('')) return;
    if (this.#treeAltered.length < MAX_LISTED_TREE_ALTERED) {
      this.#treeAltered.push({ kind: 'tree-altered', seq, message: treeNodesMessage(seq, nodes, c) });
      return;
    }
    const u = (this.#unlistedTreeAltered ??= { first: seq, last: seq, count: 0 });
    u.last = seq;
    u.count++;
  }

  #feed(seq: number, prev: string, hash: string, storedHash: string | undefined, line: number | undefined, body: string | undefined): void {
    if (!this.#prepared) this.#prepare();
    this.#records++;
    if (this.#broken) {
      this.#afterBreak++;
      if (this.#broken.length < this.#lookahead) this.#broken.push(seen(seq, prev, hash, storedHash, line));
      return;
    }
    const expected = this.#range.size;
    if (seq === expected && prev === this.#last && (storedHash === undefined || storedHash === hash)) {
      this.#completed = this.#range.append(hash);
      const kept = this.#sinceSealed;
      if (kept) {
        if (kept.length < this.#lookahead) kept.push(hash);
        else this.#sinceSealed = undefined;
      }
      this.#previousPrev = prev;
      this.#last = hash;
      this.#lastLine = line;
      if (this.#checkIndex < this.#checks.length || this.#witnesses.length > 0) this.#checkpointsAt(expected + 1);
      return;
    }
    this.#broken = [seen(seq, prev, hash, storedHash, line)];
    this.#brokenBody = body;
  }

  /**
   * True when nothing fed from now on can change the report but the count of
   * records read: the first broken link is found and `lookahead` records have
   * followed it. A reader of hostile input then need not read the rest (see skip()).
   */
  get settled(): boolean {
    return this.#broken !== undefined && this.#afterBreak >= this.#lookahead;
  }

  /**
   * Counts one more record without reading it, once settled.
   * @throws AuditError AUDIT_BAD_ARGUMENT when not settled: the record could change the report.
   */
  skip(): void {
    if (!this.settled) throw new AuditError('AUDIT_BAD_ARGUMENT', 'a record is skipped only once the verifier is settled');
    this.#records++;
  }

  /**
   * Seals the records fed so far — `size` of them, says the seal — with a
   * signed checkpoint of a larger tree and the proof that their tree is its
   * prefix (an export that ends between two checkpoints carries both).
   */
  seal(size: number, checkpoint: SignedCheckpoint, consistency: readonly string[]): void {
    this.#prepare();
    if (this.#broken) {
      // Past a broken link the seal seals nothing, but it may still confirm what the diagnosis names (an edit to the last record but one).
      try {
        verifyCheckpointSignature(this.#publicKey, checkpoint);
        this.#brokenSeal = { size, checkpoint, consistency: [...consistency] };
      } catch {
        // A forged seal confirms nothing.
      }
      return;
    }
    if (size !== this.#range.size) {
      const at = Math.min(size, this.#range.size);
      const message =
        size > this.#range.size
          ? `the export ends at ${this.#range.size} records but its seal is for ${size}: seq ${this.#range.size}–${size - 1} are missing`
          : `the export holds ${this.#range.size} records but its seal is for ${size}: seq ${size}–${this.#range.size - 1} were added`;
      this.#damage.push({ kind: size > this.#range.size ? 'truncated' : 'inserted', seq: at, checkpointSize: checkpoint.size, message });
      return;
    }
    try {
      verifyCheckpointSignature(this.#publicKey, checkpoint);
    } catch {
      this.#damage.push({ kind: 'checkpoint-forged', seq: null, checkpointSize: checkpoint.size, message: `the sealing checkpoint at size ${checkpoint.size} is not validly signed by the trusted key` });
      return;
    }
    this.#total++;
    this.#valid++;
    if (size <= this.#sealed) return;
    try {
      // A seal smaller than the records it seals proves nothing about them: verifyConsistency refuses size1 > size2.
      verifyConsistency(this.#h, size, checkpoint.size, consistency, this.#range.root(), checkpoint.root);
      this.#sealed = size;
      this.#sealedBy = checkpoint;
    } catch {
      const from = this.#sealedBefore(size + 1);
      this.#damage.push({
        kind: 'edited',
        seq: from,
        throughSeq: size - 1,
        checkpointSize: checkpoint.size,
        message: `records ${from}–${size - 1} are not a prefix of the tree signed at size ${checkpoint.size}: they were rewritten`,
      });
    }
  }

  /**
   * Records a record that could not be read at all (bad JSON, wrong shape):
   * at its export `line`, or at its `seq` when the store named it (else at
   * the seq expected next).
   */
  malformed(message: string, line?: number, seq?: number): void {
    this.#prepare();
    this.#records++;
    if (this.#broken) {
      this.#afterBreak++;
      return;
    }
    this.#broken = [];
    this.#unreadable = true;
    const at = seq ?? this.#range.size;
    const what = seq === undefined ? `record expected at seq ${at}` : `record at seq ${at}`;
    this.#damage.push({ kind: 'malformed', seq: at, ...(line === undefined ? {} : { line }), message: `${what} cannot be read: ${message}` });
  }

  finish(): VerifyReport {
    this.#prepare();
    if (this.#unlistedCheckpoints > 0) {
      this.#damage.push({ kind: 'checkpoint-forged', seq: null, message: `${this.#unlistedCheckpoints} more checkpoints are forged or cannot be read, or were not checked (the first ${MAX_LISTED_CHECKPOINTS} are listed)` });
    }
    let precise: Damage | undefined;
    if (this.#broken && this.#broken.length > 0 && !this.#unreadable) {
      if (this.#brokenBody === undefined) throw new AuditError('AUDIT_BAD_ARGUMENT', 'a record fed by its leaf hash broke the chain, which cannot be diagnosed without its body: verify again through add()');
      this.#damage.push((precise = this.#diagnose(this.#broken, this.#brokenBody)));
    }
    const verified = this.#range.size;
    const intact = !this.#broken;
    const explained = precise !== undefined && this.#rootMismatch !== undefined && (precise.seq as number) < this.#rootMismatch.size;
    if (this.#rootMismatch && !explained && this.#rootMismatch.size <= this.#start) {
      // Signed for the tree verification starts from (no record of it here): the export's header, or a size-0 root, is wrong.
      const c = this.#rootMismatch;
      const what = c.size === 0 ? 'the empty tree' : `the tree of the ${c.size} records before this export, as its header gives it (start.frontier),`;
      this.#damage.push({ kind: 'edited', seq: this.#start, checkpointSize: c.size, message: `${what} does not hash to the root signed at size ${c.size}` });
    } else if (this.#rootMismatch && !explained) {
      const c = this.#rootMismatch;
      this.#damage.push({
        kind: 'edited',
        seq: this.#sealedBefore(c.size),
        throughSeq: c.size - 1,
        checkpointSize: c.size,
        message: `records ${this.#sealedBefore(c.size)}–${c.size - 1} do not hash to the root signed at size ${c.size}: they were rewritten`,
      });
    }
    if (intact && !this.#partial) {
      const beyond = this.#checks.slice(this.#checkIndex).filter((c) => c.size > verified);
      const largest = beyond.at(-1);
      if (largest) {
        this.#damage.push({ kind: 'truncated', seq: verified, checkpointSize: largest.size, message: `the log ends at ${verified} records but a signed checkpoint covers ${largest.size}: seq ${verified}–${largest.size - 1} are missing` });
      }
      const s = this.#sealedBy;
      // Largest first: the first witness beyond the records that nothing shows the log reached is the one reported.
      for (const w of largest ? [] : this.#witnesses) {
        if (w.size <= verified) break;
        if (s && s.size === w.size && !hashesEqual(s.root, w.root)) {
          this.#damage.push({
            kind: 'rolled-back',
            seq: this.#sealedBefore(verified + 1),
            checkpointSize: w.size,
            message: `the key signed two different trees of ${w.size} records, the one witnessed earlier and the one these records are sealed by: the log was rolled back and rewritten (forked)`,
          });
          break;
        }
        if (!(s && s.size === w.size)) {
          // A seal of the very checkpoint witnessed shows the log reached it: these records are a prefix of that tree.
          const message = this.#requireSealed
            ? `the export ends at ${verified} records, before the checkpoint for ${w.size} witnessed earlier, and nothing in it shows the log reached that checkpoint: the log was rolled back, or the export was cut before it (export through seq ${w.size - 1} or later to check)`
            : `the log has ${verified} records but a checkpoint for ${w.size} was witnessed earlier: it was rolled back`;
          this.#damage.push({ kind: 'rolled-back', seq: verified, checkpointSize: w.size, message });
          break;
        }
      }
    }
    // Whatever else is wrong: records past the last matching checkpoint are vouched for by
    // nothing but the chain, which whoever cut the tail, broke a link or added a forged
    // checkpoint could have rewritten too. Naming only the later damage (or a checkpoint,
    // with no seq) would pass them as verified.
    if (this.#requireSealed) {
      // A diagnosis a later checkpoint confirms vouches for the records before it.
      const named = this.#unreadable ? this.#damage.find((d) => d.kind === 'malformed') : precise;
      const vouched = named !== undefined && this.#confirmed(named, this.#broken as Seen[]) ? Math.max(this.#sealed, named.seq as number) : this.#sealed;
      let end = verified;
      for (const d of this.#damage) if (d.seq !== null && d.seq < end) end = d.seq;
      if (vouched < end) {
        const from = vouched;
        const later = this.#damage.some((d) => d.seq !== null && d.seq >= end);
        const one = end - 1 === from;
        const which = one ? `seq ${from} is` : `seq ${from}–${end - 1} are`;
        const why = later
          ? `the damage after ${one ? 'it keeps a later checkpoint from vouching for it, so it' : 'them keeps a later checkpoint from vouching for them, so they'} may have been rewritten too`
          : `nothing vouches that ${one ? 'it was' : 'they were'} written by the log`;
        this.#damage.push({ kind: 'unsealed', seq: from, throughSeq: end - 1, message: `${which} not sealed by any checkpoint signed by the trusted key: ${why}` });
      }
    }
    // After the unsealed records are judged: a record's time index is no part of what the key signs.
    this.#damage.push(...this.#misindexed);
    const u = this.#unlistedMisindexed;
    if (u) {
      this.#damage.push({
        kind: 'misindexed',
        seq: u.first,
        throughSeq: u.last,
        message: `${u.count} more records in seq ${u.first}–${u.last} are indexed at a time (their stored time_ms) other than their event time (the first ${MAX_LISTED_MISINDEXED} are listed)`,
      });
    }
    this.#damage.push(...this.#treeAltered);
    const t = this.#unlistedTreeAltered;
    if (t) {
      this.#damage.push({
        kind: 'tree-altered',
        seq: t.first,
        throughSeq: t.last,
        message: `${t.count} more records in seq ${t.first}–${t.last} hold stored tree nodes other than the ones the records make (the first ${MAX_LISTED_TREE_ALTERED} are listed); restore audit_records from a backup`,
      });
    }
    this.#damage.sort((a, b) => (a.seq ?? Number.MAX_SAFE_INTEGER) - (b.seq ?? Number.MAX_SAFE_INTEGER));
    const first = this.#damage.find((d) => d.seq !== null);
    return {
      ok: this.#damage.length === 0,
      records: this.#records,
      from: this.#start,
      verified: verified - this.#start,
      sealed: this.#sealed,
      checkpoints: { total: this.#total, valid: this.#valid },
      root: this.#range.root(),
      damage: this.#damage,
      firstBadSeq: first ? (first.seq as number) : null,
    };
  }

  /** The tree at the last checkpoint whose root matched before any mismatch. */
  sealedState(): VerifyStart {
    return { ...this.#sealedState, frontier: [...this.#sealedState.frontier] };
  }

  /** Where verification stands: the tree and chain tip of the records verified so far. */
  state(): VerifyStart {
    return { size: this.#range.size, lastHash: this.#last, frontier: this.#range.hashes };
  }

  #checkpointsAt(size: number): void {
    let root: string | undefined;
    let end = this.#checkIndex;
    while (end < this.#checks.length && (this.#checks[end] as SignedCheckpoint).size === size) end++;
    if (end > this.#checkIndex) {
      const r = (root = this.#range.root());
      // Two trees of one size, both signed: the records match one, so they are not what was rewritten: the log forked.
      const matched = this.#checks.slice(this.#checkIndex, end).some((c) => hashesEqual(r, c.root));
      for (; this.#checkIndex < end; this.#checkIndex++) {
        const c = this.#checks[this.#checkIndex] as SignedCheckpoint;
        if (hashesEqual(r, c.root)) {
          this.#sealed = Math.max(this.#sealed, size);
          if (!this.#rootMismatch) {
            this.#sealedState = this.state();
            if (this.#requireSealed) this.#sinceSealed = [];
          }
        } else if (matched) {
          const from = this.#sealedBefore(size);
          this.#damage.push({
            kind: 'rolled-back',
            seq: from,
            throughSeq: size - 1,
            checkpointSize: size,
            message: `the key signed two different trees of ${size} records, and these records match the other one: the log was rolled back and rewritten (forked) somewhere in seq ${from}–${size - 1} after one of them was signed`,
          });
        } else this.#rootMismatch ??= c;
      }
    }
    for (const w of this.#witnesses) {
      if (w.size !== size) continue;
      root ??= this.#range.root();
      if (!hashesEqual(root, w.root)) {
        this.#damage.push({
          kind: 'rolled-back',
          seq: this.#sealedBefore(size),
          checkpointSize: w.size,
          message: `the log's first ${size} records do not match the checkpoint witnessed earlier for that size: it was rolled back and rewritten (forked)`,
        });
      }
    }
  }

  /** The largest size sealed by a good checkpoint below `size` (damage starts at or after it). */
  #sealedBefore(size: number): number {
    let best = this.#start;
    for (const c of this.#checks) if (c.size < size && c.size <= this.#sealed && c.size > best) best = c.size;
    return best;
  }

  /**
   * True when a later signed root confirms the diagnosis `d`, so the records
   * before it are the ones the key signed: the tree at the last matching
   * checkpoint, grown by the records since, with the damaged record replaced
   * by the leaf hash its successor names (edited in place, deleted, made
   * unreadable), left out (inserted, or an unreadable line where the next
   * record is the one expected), or the records after it put back in
   * order (reordered), reaches the root of the next checkpoint. When more was
   * rewritten than the diagnosis says (a record edited and the next one
   * deleted to hide it), nothing left names the original hashes: the roots differ.
   */
  #confirmed(d: Damage, rest: readonly Seen[]): boolean {
    const kept = this.#sinceSealed;
    const r = rest[0];
    const e = this.#range.size;
    const at = d.seq;
    if (!kept || !r || at === null) return false;
    let leaves: string[];
    let after: readonly Seen[];
    if (d.kind === 'edited' && at === e - 1 && kept.length > 0) [leaves, after] = [[...kept.slice(0, -1), r.prev], rest];
    else if (d.kind === 'edited' && at === e && rest[1]) [leaves, after] = [[...kept, rest[1].prev], rest.slice(1)];
    else if ((d.kind === 'deleted' || d.kind === 'malformed') && at === e && r.seq === e + 1) [leaves, after] = [[...kept, r.prev], rest];
    else if (d.kind === 'malformed' && at === e && r.seq === e) [leaves, after] = [kept, rest];
    else if (d.kind === 'inserted' && at === e - 1 && r.seq === e - 1 && kept.length > 0) [leaves, after] = [kept.slice(0, -1), rest];
    else if (d.kind === 'inserted' && at === e) [leaves, after] = [kept, rest.slice(1)];
    else if (d.kind === 'reordered' && at === e) [leaves, after] = [kept, [...rest].sort((a, b) => a.seq - b.seq)];
    else return false;
    // A checkpoint that failed before the damaged record means more than it is wrong.
    if (this.#rootMismatch && this.#rootMismatch.size <= at) return false;
    const range = new CompactRange(this.#h, this.#sealedState.size, this.#sealedState.frontier);
    for (const leaf of leaves) range.append(leaf);
    let last = leaves.at(-1) ?? this.#sealedState.lastHash;
    // The next checkpoint, or a seal (an export that ends between two checkpoints): whichever the records reach first.
    const next = this.#checks.find((c) => c.size > at);
    const seal = this.#brokenSeal !== undefined && this.#brokenSeal.size > at && (!next || next.size > this.#brokenSeal.size) ? this.#brokenSeal : undefined;
    if (!next && !seal) return false;
    for (const x of [undefined, ...after]) {
      if (x) {
        if (x.seq !== range.size || x.prev !== last) return false;
        range.append(x.hash);
        last = x.hash;
      }
      if (seal?.size === range.size) return this.#sealProves(seal, range.root());
      if (next?.size === range.size) return hashesEqual(range.root(), next.root);
    }
    return false;
  }

  /** True when `seal`'s consistency proof leads from `root` (of its size) to its checkpoint's signed root. */
  #sealProves(seal: { size: number; checkpoint: SignedCheckpoint; consistency: readonly string[] }, root: string): boolean {
    try {
      verifyConsistency(this.#h, seal.size, seal.checkpoint.size, seal.consistency, root, seal.checkpoint.root);
      return true;
    } catch {
      return false;
    }
  }

  #diagnose(rest: Seen[], brokenBody: string): Damage {
    const e = this.#range.size;
    const r = rest[0] as Seen;
    const next = rest[1];
    const last = this.#previousPrev === undefined ? undefined : { seq: e - 1, prev: this.#previousPrev, line: this.#lastLine };
    const P = this.#last;
    const at = (kind: Damage['kind'], seq: number, message: string, line = r.line): Damage => ({ kind, seq, ...(line === undefined ? {} : { line }), message });
    const laterFollowsP = rest.slice(1).some((x) => x.prev === P);
    const laterHasSeq = (s: number) => rest.slice(1).some((x) => x.seq === s);
    const originalAt = (seq: number) => {
      const h = this.#h.leaf(recordBytes(seq, r.prev, brokenBody));
      return h === r.storedHash || (next !== undefined && next.prev === h);
    };

    // Another record in the place of seq e: the next one is e + 1, and names e's original hash.
    if (r.seq !== e && r.seq !== e + 1 && next && next.seq === e + 1 && next.prev !== r.hash && !laterHasSeq(e)) {
      return at('edited', e, `seq ${e} was replaced: a record claiming seq ${r.seq} sits in its place`);
    }
    if (r.seq > e) {
      // The next record is the one expected and the seq this one claims comes later too: it is one too many.
      if (next && next.seq === e && next.prev === P && r.prev !== next.hash && laterHasSeq(r.seq)) {
        return at('inserted', e, `a record claiming seq ${r.seq} sits where seq ${e} should be: it was inserted`);
      }
      if (laterHasSeq(e) || laterFollowsP) return at('reordered', e, `seq ${e} is out of place: seq ${r.seq} comes where ${e} should`);
      return at('deleted', e, r.seq - 1 === e ? `seq ${e} is missing` : `seq ${e}–${r.seq - 1} are missing`);
    }
    if (r.seq < e) {
      if (last && r.prev === last.prev) return at('inserted', r.seq, `two records claim seq ${r.seq}: one was inserted`);
      return at('inserted', e, `a record claiming seq ${r.seq} sits where seq ${e} should be: it was inserted`);
    }
    // r.seq === e
    if (r.prev === P) return at('edited', e, `seq ${e} was edited: its content no longer hashes to the hash recorded when it was appended`);
    if (next && next.seq === e && next.prev === P) return at('inserted', e, `two records claim seq ${e}: the first, which does not follow seq ${e - 1}, was inserted`);
    if (laterFollowsP) return at('reordered', e, `seq ${e} is out of place: the record that follows seq ${e - 1} comes later`);
    if (last && r.prev === last.prev) return at('inserted', last.seq, `seq ${last.seq} was inserted: it and the next record claim the same predecessor`, last.line);
    if (originalAt(r.seq + 1)) return at('deleted', e, `seq ${e} is missing: the records after it were renumbered`);
    if (originalAt(r.seq - 1) && last) return at('inserted', last.seq, `seq ${last.seq} was inserted: the records after it were renumbered`, last.line);
    if (last) {
      const editedLast = at('edited', last.seq, `seq ${last.seq} was edited: seq ${e} records a different hash for it`, last.line);
      // Nothing after r to say whether r or the record before it changed: the next checkpoint may.
      const rConsistent = next !== undefined ? next.prev === r.hash : (this.#rootMismatch !== undefined && this.#rootMismatch.size <= e) || this.#confirmed(editedLast, rest);
      if (rConsistent) return editedLast;
    }
    return at('edited', e, `seq ${e} was edited: its predecessor hash does not match seq ${e - 1}`);
  }
}

/** Hex a store gave for a hash, for a message: a hash in full, anything else by its length. */
function shownHash(hex: string | undefined): string {
  if (hex === undefined || hex === '') return 'none';
  return /^[0-9a-f]{64}$/.test(hex) ? hex : `${hex.length / 2} bytes`;
}

/** What differs between the nodes stored with record `seq` and the `completed` ones its leaf makes (level 1 upward). */
function treeNodesMessage(seq: number, stored: string, completed: readonly string[]): string {
  const what = 'a proof built on it, or a checkpoint a writer signs, would not be of the records; the records themselves verify: restore audit_records from a backup';
  const held = stored.length / 64;
  if (stored.length % 64 !== 0 || held !== completed.length) {
    return `record ${seq} holds ${Number.isInteger(held) ? `${held} stored tree node${held === 1 ? '' : 's'}` : `a nodes column of ${stored.length / 2} bytes`}, but it completes ${completed.length} in the tree its records make: ${what}`;
  }
  const i = completed.findIndex((h, k) => stored.slice(k * 64, k * 64 + 64) !== h);
  const level = i + 1;
  const first = seq - 2 ** level + 1;
  return `record ${seq}'s stored tree node at level ${level} (the subtree of seq ${first}–${seq}) is ${shownHash(stored.slice(i * 64, i * 64 + 64))}, but the records make ${completed[i]}: ${what}`;
}

function seen(seq: number, prev: string, hash: string, storedHash: string | undefined, line: number | undefined): Seen {
  return { seq, prev, hash, ...(storedHash === undefined ? {} : { storedHash }), ...(line === undefined ? {} : { line }) };
}
