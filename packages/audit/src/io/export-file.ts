// Verifying an export file offline, given only the public key: two streaming
// passes (checkpoints first, then records) over the lines, so an export of
// any size verifies in bounded memory.
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseCheckpoint, type SignedCheckpoint } from '../checkpoint/checkpoint.ts';
import { AuditError } from '../errors.ts';
import { EXPORT_FORMAT, type ExportHeader } from '../export/jsonl.ts';
import { isHash, sha256Hasher } from '../merkle/hasher.ts';
import { parseRecord } from '../record/envelope.ts';
import type { Damage, VerifyReport } from '../verify/report.ts';
import { LogVerifier } from '../verify/verifier.ts';

async function* lines(path: string): AsyncIterable<[number, string]> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const done = new Promise<void>((_, reject) => input.once('error', reject));
  done.catch(() => {});
  const rl = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of rl) yield [++n, line];
  } catch (error) {
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `cannot read the export ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

function parseHeader(path: string, text: string): ExportHeader {
  const bad = (why: string) => new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:1: ${why}`, { line: 1 });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path}:1: the header line is not JSON`, { cause: error, line: 1 });
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
 * @throws AuditError AUDIT_EXPORT_MALFORMED when the file cannot be read or
 *   its header (line 1) is not a Corral audit export.
 */
export async function verifyExportFile(path: string, publicKey: KeyObject, witness?: SignedCheckpoint | null): Promise<VerifyReport> {
  let header: ExportHeader | undefined;
  const checkpoints: SignedCheckpoint[] = [];
  const lineDamage: Damage[] = [];
  for await (const [n, text] of lines(path)) {
    if (n === 1) {
      header = parseHeader(path, text);
      continue;
    }
    if (!text.startsWith('{"checkpoint"')) continue;
    try {
      const raw = JSON.parse(text) as { checkpoint?: unknown };
      checkpoints.push(parseCheckpoint(raw.checkpoint));
    } catch (error) {
      lineDamage.push({ kind: 'checkpoint-forged', seq: null, line: n, message: `${path}:${n}: checkpoint line cannot be read: ${(error as Error).message}` });
    }
  }
  if (!header) throw new AuditError('AUDIT_EXPORT_MALFORMED', `${path} is empty: no export header`, { line: 1 });

  const verifier = new LogVerifier({ hasher: sha256Hasher, publicKey, checkpoints, start: header.start, ...(witness ? { witness } : {}) });
  for await (const [n, text] of lines(path)) {
    if (n === 1 || text.startsWith('{"checkpoint"')) continue;
    if (text === '') {
      verifier.malformed(`${path}:${n}: empty line`, n);
      continue;
    }
    try {
      const r = parseRecord(text);
      verifier.record({ seq: r.seq, prev: r.prev, body: r.body, line: n });
    } catch (error) {
      verifier.malformed(`${path}:${n}: ${(error as Error).message}`, n);
    }
  }
  const report = verifier.finish();
  if (lineDamage.length > 0) {
    report.damage.push(...lineDamage);
    report.ok = false;
  }
  return report;
}
