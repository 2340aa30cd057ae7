// Verifying an export file offline, given only the public key: two streaming
// passes (checkpoints first, then records) over the lines, so an export of
// any size verifies in bounded memory. Both passes read one open file, the
// bytes it held when opened, and must read the same bytes.
import { createHash, type Hash, type KeyObject } from 'node:crypto';
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { checkpointJson, parseCheckpoint, type SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { keyIdOf } from '../checkpoint/key.ts';
import { AuditError, shownValue } from '../errors.ts';
import { EXPORT_FORMAT, type ExportHeader } from '../export/jsonl.ts';
import { isHash, sha256Hasher } from '../merkle/hasher.ts';
import { parseRecord } from '../record/envelope.ts';
import { progressReporter, type VerifyProgressOptions } from '../verify/progress.ts';
import type { VerifyReport } from '../verify/report.ts';
import { LogVerifier } from '../verify/verifier.ts';

/**
 * The longest line read, in bytes: a record holds at most a 64 KiB event in
 * its envelope, a seal line a few dozen hashes. A longer line is not read
 * into memory (an export is hostile input).
 */
const MAX_LINE = 1024 * 1024;

/** A line that is not read: not UTF-8. */
class Unreadable {
  readonly why: string;
  constructor(why: string) {
    this.why = why;
  }
}

/** Bytes read at a time. */
const CHUNK = 1024 * 1024;

const ignoreProgress = (): void => {};


/** The export as first opened: one descriptor both passes read, and what it was then. */
interface ExportFile {
  /** As the caller named it (for messages, and to tell whether it still names this file). */
  readonly path: string;
  readonly handle: FileHandle;
  readonly dev: number;
  readonly ino: number;
  /** Its size when opened: each pass reads this many bytes, no more. */
  readonly size: number;
}

/**
 * Opens the export once, for both passes. Opened without blocking and checked
 * with fstat on the descriptor opened, so no rename between a check and the
 * open can swap a FIFO in (opening one for reading blocks until a writer comes).
 * @throws AuditError AUDIT_EXPORT_MALFORMED when it cannot be opened;
 *   AUDIT_BAD_ARGUMENT when it is not a regular file.
 */
async function openExport(path: string): Promise<ExportFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    // A socket file cannot be opened at all.
    if ((error as NodeJS.ErrnoException).code === 'ENXIO') throw notRegular(path);
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `cannot read the export ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) throw notRegular(path);
    return { path, handle, dev: s.dev, ino: s.ino, size: s.size };
  } catch (error) {
    await handle.close();
    if (error instanceof AuditError) throw error;
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `cannot read the export ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

/**
 * The file is read twice (checkpoints, then records): a pipe would be empty
 * the second time, and its records reported missing from a sound export.
 */
function notRegular(path: string): AuditError {
  return new AuditError('AUDIT_BAD_ARGUMENT', `the export ${path} is not a regular file (a pipe, a device or a directory): verification reads it twice, so save it to a file first`);
}

/** The export changed while it was read: its two passes, or the file and its path, no longer agree. */
function changedError(file: ExportFile, why: string, cause?: unknown): AuditError {
  return new AuditError(
    'AUDIT_EXPORT_MALFORMED',
    `the export ${file.path} changed while it was verified: ${why}. No report is given: what was read is not what the file holds now, so verify a copy that nothing writes to`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Why the export is no longer the file first opened, as it was then, or
 * undefined when it is: it grew or shrank, or its path names another file
 * (one renamed over it) or none.
 */
async function whatChanged(file: ExportFile): Promise<string | undefined> {
  const now = await file.handle.stat();
  if (now.size > file.size) return `it grew from ${file.size} to ${now.size} bytes`;
  if (now.size < file.size) return `it shrank from ${file.size} to ${now.size} bytes`;
  let named: { dev: number; ino: number } | undefined;
  try {
    named = await stat(file.path);
  } catch {
    named = undefined;
  }
  if (named?.dev !== file.dev || named.ino !== file.ino) return `its path names another file now, or none (another file was renamed over it, or it was moved or removed)`;
  return undefined;
}

const CR_ALONE = 'the lines seem to end with CR alone; an export ends them with LF (or CRLF)';

/** A checkpoint or seal line (by its first bytes): damage to it is the checkpoint's, not a record's. */
function signedLine(bytes: Buffer): 'checkpoint' | 'seal' | undefined {
  // Every line but the header starts with {" : look further only then.
  if (bytes[0] !== 0x7b || bytes[1] !== 0x22) return undefined;
  if (bytes[2] === 0x63 && bytes.toString('latin1', 0, CHECKPOINT_HEAD.length) === CHECKPOINT_HEAD) return 'checkpoint';
  if (bytes[2] === 0x73 && bytes.toString('latin1', 0, SEAL_HEAD.length) === SEAL_HEAD) return 'seal';
  return undefined;
}

const CHECKPOINT_HEAD = '{"checkpoint"';
const SEAL_HEAD = '{"seal"';

/**
 * Fatal: a lenient decoder reads a byte that is not UTF-8 as U+FFFD, so a file
 * that is not the bytes the key signed would verify as if it were. A BOM is
 * kept (and then refused as JSON): the exporter writes none.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A line's bytes as text. */
function decode(bytes: Buffer): string | Unreadable {
  try {
    return utf8.decode(bytes);
  } catch {
    return new Unreadable('the line is not UTF-8');
  }
}

/** The lines one chunk of the file ends: line `first`, `first` + 1, …, each its bytes without the LF (or CRLF). */
interface Lines {
  first: number;
  bytes: Buffer[];
}

/**
 * The file's lines, a chunk's worth at a time, each at most MAX_LINE bytes.
 * @throws AuditError AUDIT_EXPORT_MALFORMED naming the line, once MAX_LINE of
 *   a longer line is read: reading on would mean reading it to its end, and a
 *   line (a sparse file) may hold a terabyte of zeros. The exporter never
 *   writes one, so the file is not an export as written. Also when the file
 *   ends before the size it had when opened: it changed (changedError).
 *
 * Reads the `file.size` bytes the file held when opened, from its open
 * descriptor (never the path again), and feeds each to `digest`.
 */
async function* lines(file: ExportFile, digest: Hash): AsyncIterable<Lines> {
  const path = file.path;
  let n = 0;
  let parts: Buffer[] = [];
  let length = 0;
  const tooLong = (): AuditError => {
    const first = Buffer.concat(parts).subarray(0, MAX_LINE);
    // A carriage return within it: the file's lines likely end with CR alone.
    const cr = first.includes(0x0d);
    const why = cr ? ` and holds a carriage return: ${CR_ALONE}` : `: corral audit export writes none so long (a record holds at most a 64 KiB event), so this file is not an export as it was written`;
    return new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:${n + 1}: the line is longer than ${MAX_LINE} bytes${why}`, { line: n + 1 });
  };
  /** The line `parts` hold, a CRLF ending read as LF. */
  const finish = (): Buffer => {
    if (length > MAX_LINE) throw tooLong();
    n++;
    const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    return bytes.at(-1) === 0x0d ? bytes.subarray(0, -1) : bytes;
  };
  try {
    for (let at = 0; at < file.size; ) {
      // A fresh buffer each time: a line's parts may span chunks.
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, file.size - at));
      const { bytesRead } = await file.handle.read(chunk, 0, chunk.length, at);
      if (bytesRead === 0) throw changedError(file, `it shrank below the ${file.size} bytes it held when opened`);
      const bytes = chunk.subarray(0, bytesRead);
      at += bytesRead;
      digest.update(bytes);
      const batch: Lines = { first: n + 1, bytes: [] };
      let from = 0;
      for (let nl = bytes.indexOf(0x0a); nl >= 0; from = nl + 1, nl = bytes.indexOf(0x0a, from)) {
        parts.push(bytes.subarray(from, nl));
        length += nl - from;
        batch.bytes.push(finish());
        parts = [];
        length = 0;
      }
      parts.push(bytes.subarray(from));
      length += bytes.length - from;
      if (length > MAX_LINE) throw tooLong();
      if (batch.bytes.length > 0) yield batch;
    }
  } catch (error) {
    if (error instanceof AuditError) throw error;
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `cannot read the export ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  if (length > 0) yield { first: n + 1, bytes: [finish()] };
}

function parseHeader(path: string, text: string): ExportHeader {
  const bad = (why: string) => new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:1: ${why}`, { line: 1 });
  if (text.startsWith('\ufeff')) throw bad('the file starts with a byte-order mark, which the exporter never writes: an export is UTF-8 without one');
  if (text.includes('\r')) throw bad(`the header line holds a carriage return: ${CR_ALONE}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:1: the header line is not JSON: line 1 of an export is {"export":…}, as corral audit export --format jsonl writes it`, { cause: error, line: 1 });
  }
  const h = (raw as { export?: unknown })?.export as Record<string, unknown> | undefined;
  if (typeof h !== 'object' || h === null) throw bad('the first line is not a Corral audit export header');
  if (h.format !== EXPORT_FORMAT) throw bad(`export format ${shownValue(h.format)} is not ${EXPORT_FORMAT}`);
  const s = h.start as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null) throw bad('the header has no start');
  if (typeof s.size !== 'number' || !Number.isSafeInteger(s.size) || s.size < 0) throw bad('start.size is not a non-negative integer');
  if (!isHash(s.lastHash)) throw bad('start.lastHash is not a hash');
  if (!Array.isArray(s.frontier) || !s.frontier.every(isHash)) throw bad('start.frontier is not a list of hashes');
  let ones = 0;
  for (let x = s.size; x > 0; x = Math.floor(x / 2)) ones += x % 2;
  if (s.frontier.length !== ones) throw bad(`start.frontier has ${s.frontier.length} hashes; a tree of ${s.size} needs ${ones}`);
  if (typeof h.keyId !== 'string' || !KEY_ID.test(h.keyId)) throw bad('keyId is not 32 hex characters');
  const header: ExportHeader = { format: EXPORT_FORMAT, keyId: h.keyId, start: { size: s.size, lastHash: s.lastHash, frontier: [...(s.frontier as string[])] } };
  if (JSON.stringify({ export: header }) !== text) throw bad(notAsWritten('header').message);
  return header;
}

/** A key id as keyIdOf writes it. */
const KEY_ID = /^[0-9a-f]{32}$/;

/**
 * Verifies an export file against `publicKey` (and a checkpoint the auditor
 * kept from before, when given). Damage — including broken record lines — is
 * reported, never thrown.
 *
 * The file is opened once and both passes read that descriptor, up to the
 * size it had when opened; the passes must read the same bytes (their SHA-256
 * digests are compared), and when they are done the file must still be that
 * size and its path must still name it.
 *
 * @throws AuditError AUDIT_EXPORT_MALFORMED when the file cannot be read, its
 *   header (line 1) is not a Corral audit export, a line is longer than
 *   1 MiB (named at once, in the first pass: no more of the file is read), or
 *   the file changed while it was verified (it grew, shrank or was rewritten,
 *   or another file was renamed over it: no report is given); AUDIT_BAD_ARGUMENT when
 *   it is not a regular file (a pipe), or the export starts after the witness
 *   (it cannot show the log extends it).
 */
export async function verifyExportFile(path: string, publicKey: KeyObject, witness?: SignedCheckpoint | null, options: VerifyProgressOptions = {}): Promise<VerifyReport> {
  const file = await openExport(path);
  try {
    return await verifyOpenExport(file, publicKey, witness, options);
  } finally {
    await file.handle.close();
  }
}

/**
 * Reads the checkpoints (first pass), then the records (second pass) by the
 * leaf hash of each record line as it stands, without parsing it, as the live
 * log's records are verified; for a sound export that is the whole report. A
 * line that is not a record's exact shape, or any damage, sends the records
 * to a second pass that parses every line, to name the first bad one and what
 * is wrong with it. Every pass must read the bytes the first read.
 */
async function verifyOpenExport(file: ExportFile, publicKey: KeyObject, witness: SignedCheckpoint | null | undefined, options: VerifyProgressOptions): Promise<VerifyReport> {
  const digests: Buffer[] = [];
  const { verifier, seal, records } = await readCheckpoints(file, publicKey, witness, digests);
  let parsed = verifier;
  if (verifier.clean) {
    parsed = verifier.again();
    if (await readRecords(file, verifier, recordsByHash, digests, progressReporter(options, records) ?? ignoreProgress)) {
      if (seal) verifier.seal(seal.size, seal.checkpoint, seal.consistency);
      const report = verifier.finish();
      if (report.ok) return report;
    }
  }
  await readRecords(file, parsed, parsedRecords, digests, progressReporter(options, records) ?? ignoreProgress);
  if (seal) parsed.seal(seal.size, seal.checkpoint, seal.consistency);
  return parsed.finish();
}

interface Seal {
  line: number;
  size: number;
  checkpoint: SignedCheckpoint;
  consistency: string[];
}

/** The first pass: the header, then each checkpoint to a new verifier, and the seal line, if any; and how many record lines follow the header. */
async function readCheckpoints(file: ExportFile, publicKey: KeyObject, witness: SignedCheckpoint | null | undefined, digests: Buffer[]): Promise<{ verifier: LogVerifier; seal: Seal | undefined; records: number }> {
  const path = file.path;
  let verifier: LogVerifier | undefined;
  let seal: Seal | undefined;
  let records = 0;
  const digest = createHash('sha256');
  for await (const batch of lines(file, digest)) {
    for (let i = 0; i < batch.bytes.length; i++) {
      const n = batch.first + i;
      const bytes = batch.bytes[i] as Buffer;
      if (n === 1) {
        const text = decode(bytes);
        if (text instanceof Unreadable) throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:1: ${text.why}`, { line: 1 });
        const header = parseHeader(path, text);
        // Checkpoints go to the verifier as they are read: it keeps the validly signed ones, once each, so memory
        // follows what the key signed, not what the file holds.
        verifier = new LogVerifier({ hasher: sha256Hasher, publicKey, start: header.start, requireSealed: true, ...(witness ? { witness } : {}) });
        // Unsigned, but what the export says it is: an export of another log (the wrong key given), or a header changed.
        const trusted = keyIdOf(publicKey);
        if (header.keyId !== trusted) verifier.checkpointUnreadable(`${path}:1: the header names signing key ${header.keyId}, not the trusted key ${trusted}: the export is of another log, or its header was changed`, 1);
        continue;
      }
      const what = signedLine(bytes);
      if (!what && bytes.length > 0) records++;
      if (!verifier || !what) continue;
      const text = decode(bytes);
      if (text instanceof Unreadable) {
        verifier.checkpointUnreadable(`${path}:${n}: ${what} line cannot be read: ${text.why}`, n);
      } else if (what === 'checkpoint') {
        // However many a hostile file holds: the verifier checks the signatures of at most MAX_FORGED_CHECKED
        // forged ones, and knows one it found validly signed again without a check.
        try {
          const raw = JSON.parse(text) as { checkpoint?: unknown };
          const c = parseCheckpoint(raw.checkpoint);
          if (checkpointLine(c) !== text) throw notAsWritten('checkpoint');
          verifier.checkpoint(c);
        } catch (error) {
          verifier.checkpointUnreadable(`${path}:${n}: checkpoint line cannot be read: ${(error as Error).message}`, n);
        }
      } else {
        try {
          if (seal) throw new AuditError('AUDIT_EXPORT_MALFORMED', `a second seal line (the first is line ${seal.line})`, { line: n });
          seal = { line: n, ...parseSeal(text) };
        } catch (error) {
          verifier.checkpointUnreadable(`${path}:${n}: seal line cannot be read: ${(error as Error).message}`, n);
        }
      }
    }
  }
  if (!verifier) throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path} is empty: no export header`, { line: 1 });
  sameBytes(file, digests, digest.digest(), 'read its checkpoints');
  return { verifier, seal, records };
}

/**
 * A second pass: the record lines to `verifier` through `feed`. False when
 * `feed` gave up (before the end, so the file is not checked then); true once
 * the pass read the bytes the first did and the file is still what was opened.
 * @throws AuditError AUDIT_EXPORT_MALFORMED when the file changed (changedError).
 */
async function readRecords(
  file: ExportFile,
  verifier: LogVerifier,
  feed: (verifier: LogVerifier, read: AsyncIterable<Lines>, path: string, progress: (verified: number) => void) => Promise<boolean>,
  digests: Buffer[],
  progress: (verified: number) => void,
): Promise<boolean> {
  const digest = createHash('sha256');
  try {
    if (!(await feed(verifier, lines(file, digest), file.path, progress))) return false;
  } catch (error) {
    // A line the first pass read whole, now too long or gone: the file changed under it.
    const why = await whatChanged(file);
    if (why !== undefined) throw changedError(file, why, error);
    throw error;
  }
  sameBytes(file, digests, digest.digest(), 'read its records');
  const why = await whatChanged(file);
  if (why !== undefined) throw changedError(file, why);
  return true;
}

/** Adds a pass's digest to `digests`; throws changedError when it is not the first pass's. */
function sameBytes(file: ExportFile, digests: Buffer[], digest: Buffer, pass: string): void {
  const first = digests[0];
  if (first !== undefined && !first.equals(digest)) throw changedError(file, `its bytes changed between the first pass over it and the one that ${pass}`);
  digests.push(digest);
}

/** A record line's last members, as `corral audit export` writes every record: `,"prev":"<hex>","seq":<n>,"v":1}`. */
const RECORD_TAIL = /,"prev":"([0-9a-f]{64})","seq":(0|[1-9][0-9]{0,15}),"v":1\}$/;
/** Enough of a line's end for the longest tail: 9 + 64 + 8 + 16 + 7 bytes. */
const TAIL_BYTES = 104;
const RECORD_HEAD = '{"event":{';

/**
 * Calls `each` with every record line of `read` (each but the header, blank
 * lines, which hold no record and change none, and signed lines) and its
 * line number, until `each` returns false; `progress` is told the records
 * read after each chunk. False when `each` did, else true.
 */
async function eachRecordLine(read: AsyncIterable<Lines>, progress: (verified: number) => void, each: (n: number, bytes: Buffer) => boolean): Promise<boolean> {
  let records = 0;
  for await (const batch of read) {
    for (let i = 0; i < batch.bytes.length; i++) {
      const n = batch.first + i;
      const bytes = batch.bytes[i] as Buffer;
      if (n === 1 || bytes.length === 0 || signedLine(bytes)) continue;
      records++;
      if (!each(n, bytes)) return false;
    }
    progress(records);
  }
  return true;
}

/**
 * The second pass by leaf hash: each record line's seq and prev read from its
 * tail, its leaf hash taken over its bytes. False at the first line that is
 * not of that shape (or not a safe seq) and at the first damage: the parsed
 * passes then say what is wrong. `progress` is told the records read after each batch of lines.
 */
function recordsByHash(verifier: LogVerifier, read: AsyncIterable<Lines>, _path: string, progress: (verified: number) => void): Promise<boolean> {
  return eachRecordLine(read, progress, (n, bytes) => {
    if (bytes.toString('latin1', 0, RECORD_HEAD.length) !== RECORD_HEAD) return false;
    const tail = RECORD_TAIL.exec(bytes.toString('latin1', Math.max(0, bytes.length - TAIL_BYTES), bytes.length));
    const seq = tail ? Number(tail[2]) : Number.NaN;
    if (!tail || !Number.isSafeInteger(seq)) return false;
    verifier.addLeaf(seq, tail[1] as string, sha256Hasher.leaf(bytes), n);
    return verifier.clean;
  });
}

/** The second pass, parsing each record line: the records, in order, to `verifier`. Always true (damage is reported). */
function parsedRecords(verifier: LogVerifier, read: AsyncIterable<Lines>, path: string, progress: (verified: number) => void): Promise<boolean> {
  return eachRecordLine(read, progress, (n, bytes) => {
    if (verifier.settled) {
      // The first break is found and diagnosed: parsing the rest of a hostile file would only cost time.
      verifier.skip();
      return true;
    }
    const text = decode(bytes);
    if (text instanceof Unreadable) {
      verifier.malformed(`${path}:${n}: ${text.why}`, n);
      return true;
    }
    try {
      const r = parseRecord(text);
      verifier.record({ seq: r.seq, prev: r.prev, body: r.body, line: n });
    } catch (error) {
      verifier.malformed(`${path}:${n}: ${(error as Error).message}`, n);
    }
    return true;
  });
}

/**
 * A checkpoint line as `corral audit export` writes it. A line must be these
 * very bytes: JSON.parse keeps the last of a repeated member, other readers
 * the first, so a line spelled otherwise (`"time"` twice, the first a
 * different time) could show the auditor's other tools another checkpoint
 * than the one whose signature was checked.
 */
function checkpointLine(c: SignedCheckpoint): string {
  return JSON.stringify({ checkpoint: checkpointJson(c) });
}

/** A seal line as `corral audit export` writes it (see checkpointLine). */
function sealLine(seal: { size: number; checkpoint: SignedCheckpoint; consistency: readonly string[] }): string {
  return JSON.stringify({ seal: { size: seal.size, checkpoint: checkpointJson(seal.checkpoint), consistency: seal.consistency } });
}

/** A line that reads, but not as the exporter writes it: a member repeated, one it never writes, another order, spaces. */
function notAsWritten(what: 'checkpoint' | 'seal' | 'header'): AuditError {
  return new AuditError(
    'AUDIT_EXPORT_MALFORMED',
    `the ${what} line is not spelled as corral audit export writes it (a member repeated or added, members in another order, or spaces): readers that take the first of a repeated member would see another ${what} than the one verified`,
  );
}

/** A seal line: the checkpoint of a larger tree, and the consistency proof from the exported tree to it. */
function parseSeal(text: string): { size: number; checkpoint: SignedCheckpoint; consistency: string[] } {
  const bad = (why: string) => new AuditError('AUDIT_EXPORT_MALFORMED', why);
  const raw = (JSON.parse(text) as { seal?: unknown }).seal as Record<string, unknown> | undefined;
  if (typeof raw !== 'object' || raw === null) throw bad('not a seal object');
  if (typeof raw.size !== 'number' || !Number.isSafeInteger(raw.size) || raw.size < 1) throw bad('size is not a positive integer');
  const consistency = raw.consistency;
  if (!Array.isArray(consistency) || consistency.length > 128 || !consistency.every(isHash)) throw bad('consistency is not a list of hashes');
  const seal = { size: raw.size, checkpoint: parseCheckpoint(raw.checkpoint), consistency: [...(consistency as string[])] };
  if (sealLine(seal) !== text) throw notAsWritten('seal');
  return seal;
}
