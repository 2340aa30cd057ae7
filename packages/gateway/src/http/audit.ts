// The audit explorer: search and page through the log, one record with its
// inclusion proof against a signed checkpoint, and whole-log verification —
// the same checks `corral audit show|prove|verify` make, through @corral/audit.
import { basename } from 'node:path';
import { AuditError, proveInclusion, readRecord, readWitness, sha256Hasher, verifyCheckpointSignature, verifyInclusion, verifyStore, witnessPath, checkpointJson, type AuditLog, type SignedCheckpoint } from '@corral/audit';
import { agentNames } from './activity.ts';
import type { ApiContext } from './context.ts';
import { toEvent, type ActivityEvent } from './event.ts';
import { failure, reply } from './respond.ts';
import type { Route } from './router.ts';
import { intParam, pageBackwards } from './scan.ts';
import { TIME_FORMAT, timeParam } from './time-param.ts';

const EFFECTS = new Set(['allow', 'deny', 'ask']);

interface Search {
  q: string | null;
  actor: string | null;
  action: string | null;
  effect: string | null;
  /** Event time bounds, ms, inclusive. */
  sinceMs: number;
  untilMs: number;
}

function matches(event: ActivityEvent, search: Search): boolean {
  // The time index only narrows the seqs to read: a record appended late (another process, a clock set back) may sit among them with a time outside.
  const time = Date.parse(event.time);
  if (time < search.sinceMs || time > search.untilMs) return false;
  if (search.actor && event.actor.id !== search.actor && event.actor.name !== search.actor) return false;
  if (search.action && event.action !== search.action && !event.action.startsWith(`${search.action}.`)) return false;
  if (search.effect && event.effect !== search.effect) return false;
  if (search.q) {
    const text = `${event.actor.id} ${event.actor.name ?? ''} ${event.action} ${event.resource.kind} ${event.resource.id} ${event.summary}`.toLowerCase();
    if (!text.includes(search.q)) return false;
  }
  return true;
}

/** The proof for one record, sealing a checkpoint first when none covers it yet. */
async function proofFor(log: AuditLog, seq: number) {
  try {
    return await proveInclusion(log.store, seq);
  } catch (error) {
    if (!(error instanceof AuditError) || error.code !== 'AUDIT_NOT_FOUND' || (await log.store.record(seq)) === null) throw error;
    await log.checkpoint();
    return proveInclusion(log.store, seq);
  }
}

function verifies(check: () => void): boolean {
  try {
    check();
    return true;
  } catch {
    return false;
  }
}

type Verification = { report: Awaited<ReturnType<typeof verifyStore>>; verifiedAtMs: number; durationMs: number } | WitnessUnusable;

/** Why the witness file could not be used: its name in the state directory (never the directory itself), and the audit package's code. */
interface WitnessUnusable {
  unusable: 'AUDIT_STORE_UNAVAILABLE' | 'AUDIT_CHECKPOINT_MALFORMED';
  file: string;
}

/** The log's witness (null: none kept yet), or why it cannot be used. Any other error is thrown. */
function witnessIn(path: string): { checkpoint: SignedCheckpoint | null } | WitnessUnusable {
  try {
    return { checkpoint: readWitness(path) };
  } catch (error) {
    if (error instanceof AuditError && (error.code === 'AUDIT_STORE_UNAVAILABLE' || error.code === 'AUDIT_CHECKPOINT_MALFORMED')) return { unusable: error.code, file: basename(path) };
    throw error;
  }
}

/**
 * 503 for a witness file that cannot be read (a directory, no read permission)
 * or holds no checkpoint: the log was not verified, and a verification without
 * its witness would miss a log rolled back, so none is made. Says what is
 * wrong, which file of the state directory, and what to do; the error behind
 * it (with the state directory's path) stays in the gateway.
 */
function witnessFailure(witness: WitnessUnusable) {
  const message =
    witness.unusable === 'AUDIT_STORE_UNAVAILABLE'
      ? `the log was not verified: its witness ${witness.file} in the gateway's state directory cannot be read; make it a regular file the gateway's user can read (restore it from a backup if it was replaced), then verify again`
      : `the log was not verified: its witness ${witness.file} in the gateway's state directory is not a signed checkpoint; compare it with a copy kept elsewhere (it may have been tampered with), restore it, then verify again`;
  return failure(503, 'unavailable', { message, code: witness.unusable });
}

export function auditRoutes(api: ApiContext): Route[] {
  const noLog = () => failure(404, 'not_found', { message: 'this gateway keeps no audit log' });
  // Requests made while the log is being verified share that verification: reading the whole log is
  // seconds of CPU on a large one, and a reader asking again and again must not multiply it.
  let verifying: Promise<Verification> | undefined;
  const verification = (log: AuditLog) => {
    verifying ??= (async (): Promise<Verification> => {
      const verifiedAtMs = api.now();
      const started = performance.now();
      // The witness of this log: a PostgreSQL log keeps its own, named for its database (as openAuditLog and `corral audit verify` read it).
      const file = witnessPath(api.stateDir, log.store.kind === 'postgres' ? log.store.where : undefined);
      const witness = witnessIn(file);
      if ('unusable' in witness) return witness;
      const report = await verifyStore(log.store, log.publicKey, witness.checkpoint);
      return { report, verifiedAtMs, durationMs: Math.round(performance.now() - started) };
    })().finally(() => (verifying = undefined));
    return verifying;
  };
  return [
    {
      method: 'GET',
      path: '/api/audit',
      access: 'audit.read',
      handle: async ({ url }) => {
        const limit = intParam(url, 'limit', 50, 1, 500);
        if (Number.isNaN(limit)) return failure(400, 'invalid_request', { message: 'limit must be a whole number from 1 to 500' });
        const since = timeParam(url, 'since', 'since');
        if (Number.isNaN(since)) return failure(400, 'invalid_request', { message: `since must be ${TIME_FORMAT}` });
        const until = timeParam(url, 'until', 'until');
        if (Number.isNaN(until)) return failure(400, 'invalid_request', { message: `until must be ${TIME_FORMAT}` });
        if (since !== undefined && until !== undefined && since > until) return failure(400, 'invalid_request', { message: 'since must not be later than until' });
        const effect = url.searchParams.get('effect') || null;
        if (effect !== null && !EFFECTS.has(effect)) return failure(400, 'invalid_request', { message: 'effect must be allow, deny or ask' });
        if (!api.audit) return noLog();
        const store = api.audit.store;
        const head = await store.head();
        let before = intParam(url, 'before', head.size, 0, head.size);
        if (Number.isNaN(before)) return failure(400, 'invalid_request', { message: 'before must be a sequence number in the log' });
        const search: Search = {
          q: url.searchParams.get('q')?.toLowerCase().slice(0, 200) || null,
          actor: url.searchParams.get('actor') || null,
          action: url.searchParams.get('action') || null,
          effect,
          sinceMs: since ?? -Infinity,
          untilMs: until ?? Infinity,
        };
        let floor = 0;
        if (since !== undefined || until !== undefined) {
          const range = await store.seqRangeForTime(since ?? 0, until ?? Number.MAX_SAFE_INTEGER);
          if (!range) return reply(200, { records: [], nextBefore: null, size: head.size });
          floor = range.from;
          before = Math.min(before, range.to);
        }
        const names = agentNames(api);
        const page = await pageBackwards(store, { before, limit, floor }, (record) => {
          const event = toEvent(record, names);
          return matches(event, search) ? event : undefined;
        });
        return reply(200, { records: page.items, nextBefore: page.nextBefore, size: head.size });
      },
    },
    {
      method: 'GET',
      path: '/api/audit/verify',
      access: 'audit.read',
      handle: async () => {
        if (!api.audit) return noLog();
        const verified = await verification(api.audit);
        if ('unusable' in verified) return witnessFailure(verified);
        const { report, verifiedAtMs, durationMs } = verified;
        const first = report.damage[0];
        return reply(200, {
          ok: report.ok,
          records: report.records,
          checkpoints: report.checkpoints.total,
          firstBad: report.firstBadSeq,
          damage: first?.kind ?? null,
          message: first?.message ?? `${report.records} records and ${report.checkpoints.valid} signed checkpoints verify`,
          verifiedAtMs,
          durationMs,
        });
      },
    },
    {
      method: 'GET',
      path: '/api/audit/:seq',
      access: 'audit.read',
      handle: async ({ params }) => {
        if (!/^\d{1,15}$/.test(params.seq!)) return failure(400, 'invalid_request', { message: 'seq must be a non-negative integer' });
        if (!api.audit) return noLog();
        const log = api.audit;
        const seq = Number(params.seq);
        const record = await readRecord(log.store, seq);
        const p = await proofFor(log, seq);
        const verified = verifies(() => verifyCheckpointSignature(log.publicKey, p.checkpoint)) && verifies(() => verifyInclusion(sha256Hasher, p.seq, p.treeSize, p.leafHash, p.proof, p.root));
        return reply(200, {
          record: { seq: record.seq, hash: record.hash, prev: record.prev, event: record.event, canonical: record.canonical },
          proof: { leafIndex: p.seq, leafHash: p.leafHash, treeSize: p.treeSize, rootHash: p.root, path: p.proof, checkpoint: checkpointJson(p.checkpoint), verified },
        });
      },
    },
  ];
}
