// Verifying an export file offline, given only the public key: two streaming
// passes (checkpoints first, then records) over the lines, so an export of
// any size verifies in bounded memory.
import type { KeyObject } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
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
 *   writes one, so the file is not an export as written.
 */
async function* lines(path: string): AsyncIterable<[number, string | Unreadable]> {
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
  let stream: ReturnType<typeof createReadStream> | undefined;
  try {
    stream = createReadStream(path, { highWaterMark: 64 * 1024 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
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
  } catch (error) {
    if (error instanceof AuditError) throw error;
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `cannot read the export ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  } finally {
    stream?.destroy();
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
 * @throws AuditError AUDIT_EXPORT_MALFORMED when the file cannot be read, its
 *   header (line 1) is not a Corral audit export, or a line is longer than
 *   1 MiB (named at once, in the first pass: no more of the file is read); AUDIT_BAD_ARGUMENT when
 *   it is not a regular file (a pipe), or the export starts after the witness
 *   (it cannot show the log extends it).
 */
export async function verifyExportFile(path: string, publicKey: KeyObject, witness?: SignedCheckpoint | null): Promise<VerifyReport> {
  regularFile(path);
  let verifier: LogVerifier | undefined;
  let seal: { line: number; size: number; checkpoint: SignedCheckpoint; consistency: string[] } | undefined;
  // The exporter writes one checkpoint per tree size, after the record that completes it (and an
  // auditor may add the one where a partial export starts): past that, checking each signature
  // of a hostile file would only cost time.
  let records = 0;
  let checkpoints = 0;
  for await (const [n, text] of lines(path)) {
    if (n === 1) {
      if (text instanceof Unreadable) throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:1: ${text.why}`, { line: 1 });
      const header = parseHeader(path, text);
      // Checkpoints go to the verifier as they are read: it keeps the validly signed ones, once each, so memory
      // follows what the key signed, not what the file holds.
      verifier = new LogVerifier({ hasher: sha256Hasher, publicKey, start: header.start, requireSealed: true, ...(witness ? { witness } : {}) });
      continue;
    }
    if (!verifier) break;
    if (text instanceof Unreadable) {
      const what = signedLine(text.head);
      if (what) verifier.checkpointUnreadable(`${path}:${n}: ${what} line cannot be read: ${text.why}`, n);
      else records++;
      continue;
    }
    if (text.startsWith('{"checkpoint"')) {
      if (++checkpoints > records + 1) {
        verifier.checkpointUnreadable(`${path}:${n}: checkpoint line not read: the export holds more checkpoint lines than records before it (${records}), and one is written per tree size`, n);
        continue;
      }
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
    } else if (text !== '') records++;
  }
  if (!verifier) throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path} is empty: no export header`, { line: 1 });
  for await (const [n, text] of lines(path)) {
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
  if (seal) verifier.seal(seal.size, seal.checkpoint, seal.consistency);
  return verifier.finish();
}

/**
 * The file is read twice (checkpoints, then records): a pipe would be empty
 * the second time, and its records reported missing from a sound export.
 */
function regularFile(path: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (error) {
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `cannot read the export ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  if (!isFile) throw new AuditError('AUDIT_BAD_ARGUMENT', `the export ${path} is not a regular file (a pipe, a device or a directory): verification reads it twice, so save it to a file first`);
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
