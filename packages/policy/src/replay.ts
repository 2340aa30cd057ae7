import type { Decider, DecisionKind, DecisionPoint } from './decision-point.ts';
import { PolicyError } from './errors.ts';
import { isPlainObject } from './schema.ts';

/** A decision Corral made in the past: the request as it was decided, and the outcome. */
export interface RecordedDecision {
  /** Where the record is (an audit sequence number, an event id), echoed in the report. */
  ref?: string | number;
  /** When the decision was made (ISO 8601), echoed in the report; the context's `time` when it has none. */
  at?: string;
  request: { principal: unknown; action: unknown; resource: unknown; context?: unknown };
  decision: DecisionKind;
  /** For `ask`, when the record says: how many distinct approvers it needed. A candidate asking for another number changes it. */
  quorum?: number;
  /**
   * A decision that combined several requests (a run of several commands,
   * each program under each of its spellings) judges itself as it was made,
   * with the candidate; `request` is then what a report shows of it. Without
   * one, `request` alone is decided.
   */
  judge?: (decider: Decider) => ReplayVerdict;
}

/** What the candidate decides for a recorded decision. */
export interface ReplayVerdict {
  readonly decision: DecisionKind;
  readonly reason: string;
  readonly policies: readonly string[];
  /** For `ask`: how many distinct approvers must approve. */
  readonly quorum?: number;
}

export interface ReplayChange {
  ref?: string | number;
  at?: string;
  request: RecordedDecision['request'];
  before: DecisionKind;
  /** For `ask`, the quorum recorded, when the record says. */
  beforeQuorum?: number;
  after: ReplayVerdict;
}

export interface ReplayReport {
  total: number;
  unchanged: number;
  changed: ReplayChange[];
  /** Records the candidate's schema refuses (e.g. an action it no longer knows). */
  refused: { ref?: string | number; code: string; message: string }[];
}

/**
 * Runs `history` through `candidate` (a decision point with the candidate set
 * and the entities to judge with) and lists every past decision it would
 * change. Reads the iterable once, in order; keeps only the changes.
 */
export function replay(candidate: DecisionPoint, history: Iterable<RecordedDecision>): ReplayReport {
  const report: ReplayReport = { total: 0, unchanged: 0, changed: [], refused: [] };
  for (const record of history) replayOne(candidate, record, report);
  return report;
}

/** `replay` over a history read asynchronously (an audit log scanned in batches). */
export async function replayAsync(candidate: DecisionPoint, history: AsyncIterable<RecordedDecision> | Iterable<RecordedDecision>): Promise<ReplayReport> {
  const report: ReplayReport = { total: 0, unchanged: 0, changed: [], refused: [] };
  for await (const record of history) replayOne(candidate, record, report);
  return report;
}

function replayOne(candidate: DecisionPoint, record: RecordedDecision, report: ReplayReport): void {
  {
    report.total++;
    const where = { ...(record.ref !== undefined ? { ref: record.ref } : {}), ...(record.at !== undefined ? { at: record.at } : {}) };
    // A judge may catch what decide throws (a run it cannot decide is denied): the first refusal is kept to report.
    let refusal: PolicyError | undefined;
    const decider: Decider = {
      decideEach(input, resources) {
        try {
          return candidate.decideEach(atItsTime(input as RecordedDecision['request'], record.at), resources);
        } catch (error) {
          if (error instanceof PolicyError) refusal ??= error;
          throw error;
        }
      },
    };
    let after: ReplayVerdict;
    try {
      after = record.judge ? record.judge(decider) : decider.decideEach(record.request, [record.request.resource])[0]!;
    } catch (error) {
      if (!(error instanceof PolicyError)) throw error;
      refusal ??= error;
    }
    if (refusal) {
      report.refused.push({ ...where, code: refusal.code, message: refusal.message });
      return;
    }
    const { decision, reason, policies, quorum } = after!;
    // An ask that needs fewer (or more) distinct approvers than the one recorded changes the decision too.
    const recordedQuorum = record.decision === 'ask' ? record.quorum : undefined;
    if (decision === record.decision && (recordedQuorum === undefined || (quorum ?? 1) === recordedQuorum)) report.unchanged++;
    else report.changed.push({ ...where, request: record.request, before: record.decision, ...(recordedQuorum !== undefined ? { beforeQuorum: recordedQuorum } : {}), after: { decision, reason, policies: [...policies], ...(decision === 'ask' && quorum !== undefined ? { quorum } : {}) } });
  }
}

/**
 * The request as it was decided: a record that says when (`at`) but whose
 * context has no `time` is judged at that time, not at the replay's — else a
 * business-hours policy judges last month's 3 a.m. payment by this morning.
 * Throws POLICY_REQUEST_INVALID for an `at` that is not a time.
 */
function atItsTime(request: RecordedDecision['request'], at: string | undefined): unknown {
  if (at === undefined) return request;
  const ms = typeof at === 'string' ? Date.parse(at) : Number.NaN;
  if (!Number.isFinite(ms)) throw new PolicyError('POLICY_REQUEST_INVALID', 'the record\'s `at` is not an ISO 8601 time');
  const context = request.context ?? {};
  if (!isPlainObject(context) || Object.hasOwn(context, 'time')) return request;
  const date = new Date(ms);
  return { ...request, context: { ...context, time: { epoch: Math.floor(ms / 1000), hour: date.getUTCHours(), weekday: date.getUTCDay() } } };
}
