// `corral audit …`: read, prove, verify and export the tamper-evident audit log.
import type { AuditReader, AuditRecord, SignedCheckpoint, VerifyReport } from '@corral/audit';
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import { CountProgress } from '../count-progress.ts';
import { EXIT } from '../exit-codes.ts';
import { fileProblem } from '../file-problem.ts';
import { CliFailure, printable, printJson, watchOutput } from '../output.ts';
import { stateDir } from '../state-dir.ts';

interface Globals {
  stateDir?: string;
  postgres?: string;
}

function where(command: Command): { stateDir: string; postgresUrl?: string } {
  const g = command.optsWithGlobals<Globals>();
  const postgresUrl = g.postgres ?? process.env.CORRAL_AUDIT_POSTGRES_URL;
  return { stateDir: stateDir(g.stateDir), ...(postgresUrl ? { postgresUrl } : {}) };
}

async function withReader<T>(command: Command, work: (reader: AuditReader) => Promise<T>, publicKeyFile?: string): Promise<T> {
  const reader = await lib.openAuditReader({ ...where(command), ...(publicKeyFile ? { publicKeyFile } : {}) });
  try {
    return await work(reader);
  } finally {
    await reader.close();
  }
}

function seqArg(text: string, name: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new CliFailure(`${name} must be a non-negative integer, got '${text}'`, EXIT.usage);
  return Number(text);
}

/** `--since`/`--until` (see @corral/audit's parseTimeBound): a mistake is a usage error naming the option. */
function timeArg(text: string | undefined, name: string, end: 'since' | 'until'): number | undefined {
  if (text === undefined) return undefined;
  const at = lib.parseTimeBound(text, end);
  if (Number.isNaN(at)) throw new CliFailure(`${name} must be ${lib.TIME_BOUND_FORMAT}, got '${text}'`, EXIT.usage);
  return at;
}

/** The checkpoint an auditor kept (`--checkpoint FILE`): a file that cannot be used is a usage error naming it. */
function checkpointArg(file: string): SignedCheckpoint {
  try {
    return lib.readCheckpointFile(file);
  } catch (thrown) {
    const error = inWords(thrown, 'the checkpoint', file);
    if (error instanceof lib.AuditError && (error.code === 'AUDIT_CHECKPOINT_MALFORMED' || error.code === 'AUDIT_BAD_ARGUMENT')) {
      throw new CliFailure(`--checkpoint: ${error.message} [${error.code}]`, EXIT.usage);
    }
    throw error;
  }
}

/** As inWords, for the --export or --public-key file that `read` reads. */
async function namedFile<T>(what: string, file: string, read: () => T | Promise<T>, code?: 'AUDIT_BAD_ARGUMENT'): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw inWords(error, what, file, code);
  }
}

/**
 * The error of reading a FILE an auditor named (--export, --public-key,
 * --checkpoint): one that is not there or may not be read is said so in
 * words, not by Node's errno name (ENOENT). Its code stays the library's (a
 * missing key is still the host's AUDIT_KEY_UNAVAILABLE, exit 3) unless
 * `code` names a truer one: a missing export is a bad argument, not a
 * malformed export. Any other error is returned as it is.
 */
function inWords(error: unknown, what: string, file: string, code?: 'AUDIT_BAD_ARGUMENT'): unknown {
  const cause = error instanceof lib.AuditError ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  if (!(error instanceof lib.AuditError) || !['ENOENT', 'EACCES', 'EPERM'].includes(cause?.code ?? '')) return error;
  return new lib.AuditError(code ?? error.code, `cannot read ${what} ${file}: ${fileProblem(cause)}`, { cause });
}

function line(r: AuditRecord): string {
  const e = r.event;
  const who = e.actor.onBehalfOf ? `${e.actor.kind}:${e.actor.id} (for ${e.actor.onBehalfOf.kind}:${e.actor.onBehalfOf.id})` : `${e.actor.kind}:${e.actor.id}`;
  const effect = e.decision ? ` ${e.decision.effect}` : '';
  const outcome = e.outcome ? ` → ${e.outcome.status}${e.outcome.exitCode === undefined ? '' : ` (exit ${e.outcome.exitCode})`}` : '';
  return printable(`#${r.seq}  ${e.time}  ${who}  ${e.action}${effect}  ${e.resource.kind}:${e.resource.id}${outcome}`);
}

function recordJson(r: AuditRecord): Record<string, unknown> {
  return { seq: r.seq, hash: r.hash, prev: r.prev, event: r.event };
}

function printReport(report: VerifyReport, json: boolean, subject: string): void {
  if (json) printJson({ subject, ...report });
  else if (report.ok) {
    const end = report.from + report.verified;
    const range = report.verified === 0 ? 'no records' : `seq ${report.from}–${end - 1} (${report.verified} record${report.verified === 1 ? '' : 's'})`;
    process.stdout.write(`ok: ${printable(subject)}: ${range} verified, sealed by ${report.checkpoints.valid} signed checkpoint(s)\n  root ${report.root}\n`);
    // A partial export (--since) is indistinguishable from one whose first records were cut: say where it starts.
    if (report.from > 0) process.stdout.write(`  note: this export starts at seq ${report.from}: seq 0–${report.from - 1} are not in it, and nothing here verifies them\n`);
    if (end > report.sealed) process.stdout.write(`  note: the last ${end - Math.max(report.sealed, report.from)} record(s) are not yet covered by a checkpoint\n`);
  } else {
    process.stdout.write(`DAMAGED: ${printable(subject)}: first bad seq ${report.firstBadSeq ?? '(none: a checkpoint is bad)'}\n`);
    for (const d of report.damage) process.stdout.write(`  ${d.kind}${d.seq === null ? '' : ` at seq ${d.seq}`}${d.line === undefined ? '' : ` (line ${d.line})`}: ${printable(d.message)}\n`);
  }
  if (!report.ok) process.exitCode = EXIT.failed;
}

/** The file a SQLite log is read from, as it was when opened; undefined for a PostgreSQL log. */
function fileOf(reader: AuditReader): { path: string; dev: number; ino: number } | undefined {
  if (reader.store.kind !== 'sqlite') return undefined;
  const { dev, ino } = statSync(reader.store.where);
  return { path: reader.store.where, dev, ino };
}

/**
 * Fails when the log's path no longer names the file being read: a reader
 * holding a removed or replaced file would wait on it for ever, printing
 * nothing of what the new log records. (The file read is kept open, so its
 * inode number cannot be reused meanwhile.)
 */
function stillFollowed(file: { path: string; dev: number; ino: number }, next: number): void {
  const now = statSync(file.path, { throwIfNoEntry: false });
  if (now?.dev === file.dev && now.ino === file.ino) return;
  const what = now ? 'was replaced by another file' : 'was removed';
  throw new CliFailure(`the audit log ${file.path} ${what} while it was followed; stopped after ${next} record(s): run 'corral audit tail -f' again to follow the log there now`, EXIT.environment);
}

/**
 * Keeps `checkpoint` as the witness a later verify checks the log still
 * extends. A witness that cannot be written (a read-only copy of the state
 * directory, none on this machine for a PostgreSQL log) leaves the verdict
 * as it was, intact: a warning on stderr says so, and that the next verify
 * checks for a rollback only against what was kept before.
 */
async function keepWitness(file: string, checkpoint: SignedCheckpoint): Promise<void> {
  try {
    await lib.advanceWitness(file, checkpoint);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw error;
    process.stderr.write(`corral: warning: the log is intact, but the checkpoint it was verified to extend could not be kept in ${file} (${code}): the next verify checks for a rollback only against the checkpoint kept before, if any\n`);
  }
}

/** How long a verify stays quiet before it shows its progress, as export and replay (count-progress.ts). */
const PROGRESS_AFTER_MS = 2000;

/**
 * `corral audit verify`'s progress on stderr, as `corral audit export` and
 * `corral policy replay` show theirs: nothing for a verify that ends within
 * 2 s, then `corral: verify: 120000 of 10000000 records verified`. Standard
 * output stays the report alone, --json or not. CORRAL_VERIFY_PROGRESS_MS
 * (milliseconds) shows it that soon and that often instead: tests need no log
 * of millions of records to see it.
 */
function verifyProgress(): { options: { onProgress: (verified: number, total: number | null) => void; progressEveryMs?: number }; done: () => void } {
  const text = process.env.CORRAL_VERIFY_PROGRESS_MS;
  const ms = text !== undefined && /^\d{1,9}$/.test(text) ? Number(text) : undefined;
  const started = performance.now();
  let progress: CountProgress | undefined;
  let shown = 0;
  const onProgress = (verified: number, total: number | null) => {
    // Made once the total is known; the quiet time still counts from the start of the verify.
    progress ??= new CountProgress(process.stderr, total === null ? 'verify: %d records verified' : `verify: %d of ${total} records verified`, {
      afterMs: Math.max(0, (ms ?? PROGRESS_AFTER_MS) - (performance.now() - started)),
      ...(ms === undefined ? {} : { everyMs: ms }),
    });
    progress.add(verified - shown);
    shown = verified;
  };
  return { options: { onProgress, ...(ms === undefined ? {} : { progressEveryMs: ms }) }, done: () => progress?.done() };
}

// Loaded when an audit command runs (see the preAction hook): the rest of the CLI starts without it.
let lib: typeof import('@corral/audit');

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('read, prove, verify and export the tamper-evident audit log')
    .hook('preAction', async () => {
      // export and tail -f would go on writing, or wait for a drain that never comes: they stop at once.
      watchOutput({ stop: true });
      lib ??= await import('@corral/audit');
    })
    .option('--postgres <url>', 'use the audit log in this PostgreSQL database (default: $CORRAL_AUDIT_POSTGRES_URL, else audit.db in the state directory)');

  audit
    .command('tail')
    .description('Show the latest records; -f keeps printing new ones.')
    .option('-n, --lines <n>', 'how many records', '10')
    .option('-f, --follow', 'keep printing records as they are appended')
    .option('--json', 'one JSON object per record')
    .action(async (opts: { lines: string; follow?: boolean; json?: boolean }, command: Command) => {
      const n = seqArg(opts.lines, '-n (--lines)');
      await withReader(command, async (reader) => {
        /** The hash of the last record printed (seq next - 1), once one is. */
        let printed: string | undefined;
        const print = (r: AuditRecord) => {
          process.stdout.write(`${opts.json ? JSON.stringify(recordJson(r)) : line(r)}\n`);
          printed = r.hash;
        };
        const followed = opts.follow ? fileOf(reader) : undefined;
        let next = Math.max(0, (await reader.store.head()).size - n);
        const rolledBack = (how: string) =>
          new CliFailure(`the audit log at ${reader.store.where} ${how} while it was followed: it was rolled back or replaced (see 'corral audit verify')`, EXIT.failed, 'AUDIT_ROLLED_BACK');
        const broken = (how: string) => new CliFailure(`the audit log at ${reader.store.where} ${how}, below its head: it was altered (see 'corral audit verify')`, EXIT.failed, 'AUDIT_CHAIN_BROKEN');
        const drain = async () => {
          if (followed) stillFollowed(followed, next);
          const size = (await reader.store.head()).size;
          if (size < next) throw rolledBack(`went back from ${next} to ${size} records`);
          // Gone back and grown again between two looks: the record printed last is no longer the log's.
          if (printed !== undefined && (await reader.store.record(next - 1))?.hash !== printed) throw rolledBack(`no longer holds record ${next - 1} as it was printed`);
          // Each record must be the next one and chain onto the one printed before it: tail never prints past a gap or a break.
          for await (const rows of reader.store.scan(next, size)) {
            for (const r of rows) {
              if (r.seq !== next) throw broken(`holds no record ${next}`);
              if (printed !== undefined && r.prev !== printed) throw broken(`holds a record ${next} that does not chain onto record ${next - 1}`);
              print(lib.toAuditRecord(r));
              next++;
            }
          }
          if (next < size) throw broken(`holds no record ${next}`);
        };
        await drain();
        if (!opts.follow) return;
        let stop = false;
        const onSignal = () => (stop = true);
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        /** Since when a PostgreSQL log could not be read (its server restarting, the network down), while it cannot. */
        let lostAt: number | undefined;
        while (!stop) {
          await new Promise((r) => setTimeout(r, 250));
          const from = next;
          try {
            await drain();
          } catch (error) {
            // Followed as `tail -F` follows a file: a server that is away is waited for, however long, and followed again from
            // the record after the last one printed (drain checks that one is still the log's). The store spaces its attempts
            // (RECONNECT_BACKOFF: from 250 ms up to 5 s) and fails the others at once without connecting.
            if (reader.store.kind !== 'postgres' || !(error instanceof lib.AuditError) || error.code !== 'AUDIT_STORE_UNAVAILABLE') throw error;
            if (lostAt === undefined) process.stderr.write(`corral: lost the audit log at ${printable(reader.store.where)} (${printable(error.message)}); retrying until it is back, to go on from seq ${next}\n`);
            lostAt ??= Date.now();
            continue;
          }
          if (lostAt !== undefined) process.stderr.write(`corral: the audit log at ${printable(reader.store.where)} is back after ${Math.round((Date.now() - lostAt) / 1000)} s; following from seq ${from}\n`);
          lostAt = undefined;
        }
      });
    });

  audit
    .command('show')
    .description('Show one record, its hash and its predecessor hash.')
    .argument('<seq>', 'sequence number')
    .option('--json', 'print JSON')
    .action(async (seqText: string, opts: { json?: boolean }, command: Command) => {
      const seq = seqArg(seqText, 'SEQ');
      await withReader(command, async (reader) => {
        const r = await lib.readRecord(reader.store, seq);
        if (opts.json) printJson({ ...recordJson(r), canonical: r.canonical });
        else process.stdout.write(`${line(r)}\n  hash ${r.hash}\n  prev ${r.prev}\n${JSON.stringify(r.event, null, 2).split('\n').map((l) => `  ${printable(l)}`).join('\n')}\n`);
      });
    });

  audit
    .command('verify')
    .description('Recompute every hash, the chain and every signed checkpoint; name the first bad record.')
    .option('--export <file>', 'verify an export file offline instead of the live log')
    .option('--public-key <file>', 'trust this public key (required with --export)')
    .option('--checkpoint <file>', 'a checkpoint kept from earlier: the log must extend it (detects a rollback); a live log must extend the one its state directory kept too')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { export?: string; publicKey?: string; checkpoint?: string; json?: boolean }, command: Command) => {
      const witness = opts.checkpoint === undefined ? null : checkpointArg(opts.checkpoint);
      if (opts.export) {
        if (!opts.publicKey) throw new CliFailure('--export needs --public-key FILE: the key you trust (from `corral audit public-key`)', EXIT.usage);
        const { export: exported, publicKey: keyFile } = opts;
        const publicKey = await namedFile('the public key', keyFile, () => lib.loadPublicKeyFile(keyFile));
        const progress = verifyProgress();
        let report: VerifyReport;
        try {
          report = await namedFile('the export', exported, () => lib.verifyExportFile(exported, publicKey, witness, progress.options), 'AUDIT_BAD_ARGUMENT');
        } finally {
          progress.done();
        }
        printReport(report, opts.json === true, opts.export);
        return;
      }
      const { stateDir: dir } = where(command);
      await withReader(
        command,
        async (reader) => {
          const file = lib.witnessPath(dir, reader.store.kind === 'postgres' ? reader.store.where : undefined);
          // A log of ten million records takes some 30 s: how many were verified so far goes to stderr.
          const progress = verifyProgress();
          let report: VerifyReport;
          try {
            // The checkpoint an auditor kept adds to the one this state directory kept, never replaces it: the log must extend both.
            const kept = lib.readWitness(file);
            report = await lib.verifyStore(reader.store, reader.publicKey(), [...(witness ? [witness] : []), ...(kept ? [kept] : [])], progress.options);
          } finally {
            progress.done();
          }
          printReport(report, opts.json === true, reader.store.where);
          // The checkpoint verified last, not the newest one: writers may have signed others since.
          const verified = report.ok && report.sealed > 0 ? await reader.store.checkpointFor(report.sealed, true) : null;
          if (verified) await keepWitness(file, verified);
        },
        opts.publicKey,
      );
    });

  const proof = audit.command('proof').description('Merkle proofs against signed checkpoints.');
  proof
    .command('inclusion')
    .description('Prove record SEQ is in the log, against the first checkpoint covering it.')
    .argument('<seq>', 'sequence number')
    .option('--size <n>', 'prove against the checkpoint of this tree size')
    .option('--json', 'print JSON')
    .action(async (seqText: string, opts: { size?: string; json?: boolean }, command: Command) => {
      const seq = seqArg(seqText, 'SEQ');
      const size = opts.size === undefined ? undefined : seqArg(opts.size, '--size');
      await withReader(command, async (reader) => {
        const p = await lib.proveInclusion(reader.store, seq, size);
        lib.verifyCheckpointSignature(reader.publicKey(), p.checkpoint);
        lib.verifyInclusion(lib.sha256Hasher, p.seq, p.treeSize, p.leafHash, p.proof, p.root);
        if (opts.json) printJson(p);
        else process.stdout.write(`record ${p.seq} (leaf ${p.leafHash}) is in the tree of ${p.treeSize} records with root ${p.root}, signed ${p.checkpoint.time}\n${p.proof.map((h, i) => `  ${i}: ${h}`).join('\n')}\n`);
      });
    });
  proof
    .command('consistency')
    .description('Prove the checkpoint at NEW extends the one at OLD (the log only grew).')
    .argument('<old>', 'earlier checkpoint size')
    .argument('<new>', 'later checkpoint size')
    .option('--json', 'print JSON')
    .action(async (oldText: string, newText: string, opts: { json?: boolean }, command: Command) => {
      const size1 = seqArg(oldText, 'OLD');
      const size2 = seqArg(newText, 'NEW');
      await withReader(command, async (reader) => {
        const p = await lib.proveConsistency(reader.store, size1, size2);
        lib.verifyCheckpointSignature(reader.publicKey(), p.checkpoint1);
        lib.verifyCheckpointSignature(reader.publicKey(), p.checkpoint2);
        lib.verifyConsistency(lib.sha256Hasher, p.size1, p.size2, p.proof, p.root1, p.root2);
        if (opts.json) printJson(p);
        else process.stdout.write(`the tree of ${p.size2} records (root ${p.root2}) extends the tree of ${p.size1} (root ${p.root1})\n${p.proof.map((h, i) => `  ${i}: ${h}`).join('\n')}\n`);
      });
    });

  audit
    .command('export')
    .description('Write the log to stdout: jsonl (verifiable with `audit verify --export`) or ocsf (OCSF 1.8.0 for SIEMs).')
    .requiredOption('--format <format>', 'jsonl or ocsf')
    .option('--since <time>', 'only records at or after this time (a date: from the start of that day, UTC)')
    .option('--until <time>', 'only records at or before this time (a date: through the end of that day, UTC)')
    .option('--json', 'accepted for symmetry: both formats are JSON lines')
    .action(async (opts: { format: string; since?: string; until?: string }, command: Command) => {
      if (opts.format !== 'jsonl' && opts.format !== 'ocsf') throw new CliFailure(`--format must be jsonl or ocsf, got '${opts.format}'`, EXIT.usage);
      const since = timeArg(opts.since, '--since', 'since');
      const until = timeArg(opts.until, '--until', 'until');
      if (since !== undefined && until !== undefined && since > until) throw new CliFailure(`--since (${opts.since}) is later than --until (${opts.until})`, EXIT.usage);
      await withReader(command, async (reader) => {
        const size = (await reader.store.head()).size;
        let range: { from: number; to: number } | null = { from: 0, to: size };
        if (since !== undefined || until !== undefined) {
          // Unbounded ends are the first and last instants a Date holds: events carry times from the year 0000 on.
          const found = await reader.store.seqRangeForTime(since ?? -8.64e15, until ?? 8.64e15);
          // Within the head: a row below seq 0 or beyond it is none the log appended (and one appended since is for the next export).
          range = found && found.to > 0 && found.from < size ? { from: Math.max(found.from, 0), to: Math.min(found.to, size) } : null;
        }
        // A long log takes a while, or a slow reader does: how many lines were written so far goes to stderr.
        const progress = new CountProgress(process.stderr, 'export: %d lines written');
        const write = async (text: string) => {
          progress.add();
          if (!process.stdout.write(`${text}\n`)) await new Promise((r) => process.stdout.once('drain', r));
        };
        try {
          if (opts.format === 'jsonl') {
            if (!range) range = { from: 0, to: 0 };
            const unsealed = (from: number, to: number) =>
              progress.note(
                `corral: seq ${from}–${to - 1} are not sealed by a signed checkpoint yet, so they were left out (an auditor could not tell them from forged ones); the log signs one every ${lib.CHECKPOINT_DEFAULTS.every} records or ${lib.CHECKPOINT_DEFAULTS.intervalMs / 1000} s while it is open and when it closes: export again after that\n`,
              );
            for await (const l of lib.exportJsonl(reader.store, reader.meta.keyId, range, unsealed)) await write(l);
            return;
          }
          if (!range) return;
          for await (const rows of reader.store.scan(range.from, range.to)) {
            for (const r of rows) {
              const rec = lib.toAuditRecord(r);
              const t = Date.parse(rec.event.time);
              if ((since !== undefined && t < since) || (until !== undefined && t > until)) continue;
              for (const event of lib.toOcsfEvents(rec)) await write(JSON.stringify(event));
            }
          }
        } finally {
          progress.done();
        }
      });
    });

  audit
    .command('public-key')
    .description('Print the checkpoint-signing public key (PEM) an auditor takes away.')
    .option('--json', 'print JSON with the key id')
    .action(async (opts: { json?: boolean }, command: Command) => {
      await withReader(command, async (reader) => {
        const key = reader.publicKey();
        const pem = lib.publicKeyPem(key);
        if (opts.json) printJson({ keyId: reader.meta.keyId, publicKey: pem });
        else process.stdout.write(pem);
      });
    });

  acceptPostgresAfterCommand(audit);
}

/** `--postgres` after the command words (`corral audit verify --postgres URL`) as well as before them, as `--state-dir`. */
function acceptPostgresAfterCommand(command: Command): void {
  for (const sub of command.commands) {
    if (sub.commands.length > 0) acceptPostgresAfterCommand(sub);
    else sub.option('--postgres <url>', 'use the audit log in this PostgreSQL database (as before the command word)');
  }
}

