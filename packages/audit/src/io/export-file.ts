// Verifying an export file offline, given only the public key: two streaming
// passes (checkpoints first, then records) over the lines, so an export of
// any size verifies in bounded memory. Both passes read one open file, the
// bytes it held when opened, and must read the same bytes.
import { createHash, type Hash, type KeyObject } from 'node:crypto';
import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { parseCheckpoint, type SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { EXPORT_FORMAT, type ExportHeader } from '../export/jsonl.ts';
import { isHash, sha256Hasher } from '../merkle/hasher.ts';
import { parseRecord } from '../record/envelope.ts';
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
  /** Its first bytes (as Latin-1): enough to tell a checkpoint or seal line from a record. */
  readonly head: string;
  constructor(why: string, head: Buffer) {
    this.why = why;
    this.head = head.toString('latin1');
  }
}

const HEAD = 16;

/** Bytes read at a time. */
const CHUNK = 64 * 1024;

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
function signedLine(head: string): 'checkpoint' | 'seal' | undefined {
  if (head.startsWith('{"checkpoint"')) return 'checkpoint';
  if (head.startsWith('{"seal"')) return 'seal';
  return undefined;
}

/**
 * Fatal: a lenient decoder reads a byte that is not UTF-8 as U+FFFD, so a file
 * that is not the bytes the key signed would verify as if it were. A BOM is
 * kept (and then refused as JSON): the exporter writes none.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A line's bytes as text (a CRLF ending read as LF). */
function decode(parts: Buffer[]): string | Unreadable {
  let bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  if (bytes.at(-1) === 0x0d) bytes = bytes.subarray(0, -1);
  try {
    return utf8.decode(bytes);
  } catch {
    return new Unreadable('the line is not UTF-8', bytes.subarray(0, HEAD));
  }
}

/**
 * The file's lines with their 1-based numbers, each at most MAX_LINE bytes.
 * @throws AuditError AUDIT_EXPORT_MALFORMED naming the line, once MAX_LINE of
 *   a longer line is read: reading on would mean reading it to its end, and a
 *   line (a sparse file) may hold a terabyte of zeros. The exporter never
 *   writes one, so the file is not an export as written. Also when the file
 *   ends before the size it had when opened: it changed (changedError).
 *
 * Reads the `file.size` bytes the file held when opened, from its open
 * descriptor (never the path again), and feeds each to `digest`.
 */
async function* lines(file: ExportFile, digest: Hash): AsyncIterable<[number, string | Unreadable]> {
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
  const finish = (): [number, string | Unreadable] => {
    if (length > MAX_LINE) throw tooLong();
    return [++n, decode(parts)];
  };
  /** The lines `chunk` ends; the rest of it is kept for the next. */
  function* split(chunk: Buffer): Iterable<[number, string | Unreadable]> {
    let at = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; at = nl + 1, nl = chunk.indexOf(0x0a, at)) {
      parts.push(chunk.subarray(at, nl));
      length += nl - at;
      yield finish();
      parts = [];
      length = 0;
    }
    parts.push(chunk.subarray(at));
    length += chunk.length - at;
    if (length > MAX_LINE) throw tooLong();
  }
  try {
    for (let at = 0; at < file.size; ) {
      // A fresh buffer each time: a line's parts may span chunks.
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, file.size - at));
      const { bytesRead } = await file.handle.read(chunk, 0, chunk.length, at);
      if (bytesRead === 0) throw changedError(file, `it shrank below the ${file.size} bytes it held when opened`);
      const bytes = chunk.subarray(0, bytesRead);
      at += bytesRead;
      digest.update(bytes);
      yield* split(bytes);
    }
  } catch (error) {
    if (error instanceof AuditError) throw error;
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `cannot read the export ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  if (length > 0) yield finish();
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
  if (h.format !== EXPORT_FORMAT) throw bad(`export format ${String(h.format)} is not ${EXPORT_FORMAT}`);
  const s = h.start as Record<string, unknown> | undefined;
  if (typeof s !== 'object' || s === null) throw bad('the header has no start');
  if (typeof s.size !== 'number' || !Number.isSafeInteger(s.size) || s.size < 0) throw bad('start.size is not a non-negative integer');
  if (!isHash(s.lastHash)) throw bad('start.lastHash is not a hash');
  if (!Array.isArray(s.frontier) || !s.frontier.every(isHash)) throw bad('start.frontier is not a list of hashes');
  let ones = 0;
  for (let x = s.size; x > 0; x = Math.floor(x / 2)) ones += x % 2;
  if (s.frontier.length !== ones) throw bad(`start.frontier has ${s.frontier.length} hashes; a tree of ${s.size} needs ${ones}`);
  return { format: EXPORT_FORMAT, keyId: String(h.keyId), start: { size: s.size, lastHash: s.lastHash, frontier: [...(s.frontier as string[])] } };
}

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
export async function verifyExportFile(path: string, publicKey: KeyObject, witness?: SignedCheckpoint | null): Promise<VerifyReport> {
  const file = await openExport(path);
  try {
    return await verifyOpenExport(file, publicKey, witness);
  } finally {
    await file.handle.close();
  }
}

async function verifyOpenExport(file: ExportFile, publicKey: KeyObject, witness?: SignedCheckpoint | null): Promise<VerifyReport> {
  const path = file.path;
  let verifier: LogVerifier | undefined;
  let seal: { line: number; size: number; checkpoint: SignedCheckpoint; consistency: string[] } | undefined;
  const first = createHash('sha256');
  for await (const [n, text] of lines(file, first)) {
    if (n === 1) {
      if (text instanceof Unreadable) throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:1: ${text.why}`, { line: 1 });
      const header = parseHeader(path, text);
      // Checkpoints go to the verifier as they are read: it keeps the validly signed ones, once each, so memory
      // follows what the key signed, not what the file holds.
      verifier = new LogVerifier({ hasher: sha256Hasher, publicKey, start: header.start, requireSealed: true, ...(witness ? { witness } : {}) });
      continue;
    }
    if (!verifier) continue;
    if (text instanceof Unreadable) {
      const what = signedLine(text.head);
      if (what) verifier.checkpointUnreadable(`${path}:${n}: ${what} line cannot be read: ${text.why}`, n);
      continue;
    }
    if (text.startsWith('{"checkpoint"')) {
      // However many a hostile file holds: the verifier checks the signatures of at most MAX_FORGED_CHECKED
      // forged ones, and knows one it found validly signed again without a check.
      try {
        const raw = JSON.parse(text) as { checkpoint?: unknown };
        verifier.checkpoint(parseCheckpoint(raw.checkpoint));
      } catch (error) {
        verifier.checkpointUnreadable(`${path}:${n}: checkpoint line cannot be read: ${(error as Error).message}`, n);
      }
    } else if (text.startsWith('{"seal"')) {
      try {
        if (seal) throw new AuditError('AUDIT_EXPORT_MALFORMED', `a second seal line (the first is line ${seal.line})`, { line: n });
        seal = { line: n, ...parseSeal(text) };
      } catch (error) {
        verifier.checkpointUnreadable(`${path}:${n}: seal line cannot be read: ${(error as Error).message}`, n);
      }
    }
  }
  if (!verifier) throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path} is empty: no export header`, { line: 1 });
  const second = createHash('sha256');
  try {
    await readRecords(verifier, lines(file, second), path);
  } catch (error) {
    // A line the first pass read whole, now too long or gone: the file changed under it.
    const why = await whatChanged(file);
    if (why !== undefined) throw changedError(file, why, error);
    throw error;
  }
  if (!first.digest().equals(second.digest())) throw changedError(file, 'its bytes changed between the pass that read its checkpoints and the one that read its records');
  const why = await whatChanged(file);
  if (why !== undefined) throw changedError(file, why);
  if (seal) verifier.seal(seal.size, seal.checkpoint, seal.consistency);
  return verifier.finish();
}

/** The second pass: the records, in order, to `verifier`. */
async function readRecords(verifier: LogVerifier, read: AsyncIterable<[number, string | Unreadable]>, path: string): Promise<void> {
  for await (const [n, text] of read) {
    if (n === 1 || text === '') continue; // a blank line holds no record and changes none
    if (text instanceof Unreadable) {
      if (!signedLine(text.head)) verifier.malformed(`${path}:${n}: ${text.why}`, n);
      continue;
    }
    if (text.startsWith('{"checkpoint"') || text.startsWith('{"seal"')) continue;
    if (verifier.settled) {
      // The first break is found and diagnosed: parsing the rest of a hostile file would only cost time.
      verifier.skip();
      continue;
    }
    try {
      const r = parseRecord(text);
      verifier.record({ seq: r.seq, prev: r.prev, body: r.body, line: n });
    } catch (error) {
      verifier.malformed(`${path}:${n}: ${(error as Error).message}`, n);
    }
  }
}

/** A seal line: the checkpoint of a larger tree, and the consistency proof from the exported tree to it. */
function parseSeal(text: string): { size: number; checkpoint: SignedCheckpoint; consistency: string[] } {
  const bad = (why: string) => new AuditError('AUDIT_EXPORT_MALFORMED', why);
  const raw = (JSON.parse(text) as { seal?: unknown }).seal as Record<string, unknown> | undefined;
  if (typeof raw !== 'object' || raw === null) throw bad('not a seal object');
  if (typeof raw.size !== 'number' || !Number.isSafeInteger(raw.size) || raw.size < 1) throw bad('size is not a positive integer');
  const consistency = raw.consistency;
  if (!Array.isArray(consistency) || consistency.length > 128 || !consistency.every(isHash)) throw bad('consistency is not a list of hashes');
  return { size: raw.size, checkpoint: parseCheckpoint(raw.checkpoint), consistency: consistency as string[] };
}
