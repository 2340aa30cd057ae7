// The audit event: who did what, to what, under which decision, with what data.
import { createHash } from 'node:crypto';
import { AuditError, type EventIssue } from '../errors.ts';
import { canonicalize, inCanonicalOrder, type JsonValue } from './canonical.ts';
import { isoTime } from './iso-time.ts';

/** Version of the record format this code writes (the envelope's `v`). */
export const RECORD_VERSION = 1;

/** The largest canonical event accepted, in bytes (UTF-8). */
export const MAX_EVENT_BYTES = 64 * 1024;

export type PrincipalKind = 'agent' | 'human' | 'node' | 'service';
export type Effect = 'allow' | 'deny' | 'ask';
export type OutcomeStatus = 'success' | 'failure' | 'unknown';

export interface Principal {
  kind: PrincipalKind;
  /** A stable identifier: agent id, the human's subject or e-mail, a node id. */
  id: string;
}

/** Who acted; `onBehalfOf` when one principal acts for another (an agent for its owner). */
export interface Actor extends Principal {
  onBehalfOf?: Principal;
}

export interface Decision {
  effect: Effect;
  /** The policies (ids, or id@digest) that decided. */
  policies?: string[];
  /** Reference to the approval that allowed the action (its id or receipt digest). */
  approval?: string;
  reason?: string;
}

/**
 * Data the action touched, as digests (`sha256:<64 hex>`), keyed by a name
 * the caller chooses (`stdin`, `policy`, `response`). A payload is stored only
 * when the caller passes one; `redact` lists dotted paths inside the payload
 * that are replaced by their digest before anything is written.
 */
export interface ContextInput {
  inputs?: Record<string, string>;
  outputs?: Record<string, string>;
  payload?: JsonValue;
  redact?: string[];
}

export interface Outcome {
  status: OutcomeStatus;
  exitCode?: number;
  detail?: string;
}

/** What callers give to `append()`. */
export interface AuditEventInput {
  /** When the action happened; default: now. */
  time?: Date | string;
  actor: Actor;
  /** Dotted verb, e.g. `run.exec`, `node.invoke.decide`, `approval.resolve`, `agent.suspend` (`run.*`, a governed `system.run` and `net.*` export to OCSF as process and network activity). */
  action: string;
  resource: { kind: string; id: string };
  decision?: Decision;
  context?: ContextInput;
  outcome?: Outcome;
  /** Action-specific facts (command, exit, refused accesses, connections). */
  details?: { [key: string]: JsonValue };
  /** The node the action ran on. */
  node?: string;
  /** W3C trace id (32 lowercase hex) tying the event to a trace. */
  trace?: string;
}

/** The event as stored: every optional part present only when given, time as ISO 8601 UTC. */
export interface AuditEvent {
  time: string;
  actor: Actor;
  action: string;
  resource: { kind: string; id: string };
  decision?: Decision;
  context?: { inputs?: Record<string, string>; outputs?: Record<string, string>; payload?: JsonValue; redacted?: string[] };
  outcome?: Outcome;
  details?: { [key: string]: JsonValue };
  node?: string;
  trace?: string;
}

const PRINCIPAL_KINDS: readonly string[] = ['agent', 'human', 'node', 'service'];
const EFFECTS: readonly string[] = ['allow', 'deny', 'ask'];
const STATUSES: readonly string[] = ['success', 'failure', 'unknown'];
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const TRACE = /^[0-9a-f]{32}$/;
const ACTION = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MAX_TEXT = 4096;

/**
 * Checks an event and copies it into a fresh plain object (the only thing
 * written afterwards), applying redaction to the payload. `details` is kept
 * as given, not copied (a copy would cost every append more than its check):
 * it is read when checked and again when serialised, so it must be plain
 * data the caller leaves alone until the append returns — as every caller in
 * Corral passes it (its own objects, or JSON it parsed).
 *
 * @throws AuditError AUDIT_EVENT_INVALID listing every problem in `issues`.
 */
export function normalizeEvent(input: AuditEventInput, now: () => Date = () => new Date()): AuditEvent {
  return normalize(input, now).event;
}

/** normalizeEvent, and the event's time in ms since the epoch (what it read its time from). */
function normalize(input: AuditEventInput, now: () => Date): { event: AuditEvent; timeMs: number } {
  const issues: EventIssue[] = [];
  const bad = (field: string, message: string) => void issues.push({ field, message });
  if (typeof input !== 'object' || input === null) {
    throw new AuditError('AUDIT_EVENT_INVALID', 'event must be an object', { issues: [{ field: '', message: 'not an object' }] });
  }

  let time: string;
  let timeMs = Number.NaN;
  const t = input.time ?? now();
  if (t instanceof Date) {
    // Years past 9999 print as +010000-…, which is not the record's time format.
    timeMs = t.getTime();
    const text = isoTime(timeMs);
    if (text === undefined) bad('time', 'is an invalid date, or one outside the years 0000–9999');
    time = text ?? '';
  } else if (typeof t === 'string' && isoUtc(t)) {
    time = t;
    timeMs = Date.parse(t);
  } else {
    bad('time', 'must be a Date or an ISO 8601 UTC string with milliseconds');
    time = '';
  }

  const actorIn = input.actor as unknown;
  const actor = checkPrincipal(issues, 'actor', actorIn) as Actor | undefined;
  if (actor && typeof actorIn === 'object' && actorIn !== null && (actorIn as Actor).onBehalfOf !== undefined) {
    const behalf = checkPrincipal(issues, 'actor.onBehalfOf', (actorIn as Actor).onBehalfOf);
    if (behalf) actor.onBehalfOf = behalf;
  }
  if (typeof input.action !== 'string' || !ACTION.test(input.action) || input.action.length > 128) {
    bad('action', 'must be a dotted lowercase verb such as run.exec');
  }
  const resIn = input.resource as unknown;
  let resource = { kind: '', id: '' };
  if (typeof resIn !== 'object' || resIn === null) bad('resource', 'must be an object with kind and id');
  else {
    const r = resIn as Record<string, unknown>;
    resource = { id: checkText(issues, 'resource.id', r.id, MAX_TEXT) ?? '', kind: checkText(issues, 'resource.kind', r.kind, 128) ?? '' };
  }

  // Members are added in RFC 8785 order (action, actor, context, decision,
  // details, node, outcome, resource, time, trace) so canonicalising is cheap.
  const event = { action: input.action, actor: actor ?? { id: '', kind: 'agent' } } as AuditEvent;

  if (input.context !== undefined) {
    const c = input.context as unknown as Record<string, unknown>;
    if (typeof c !== 'object' || c === null) bad('context', 'must be an object');
    else {
      const context: NonNullable<AuditEvent['context']> = {};
      const inputs = checkDigests(issues, 'context.inputs', c.inputs);
      const outputs = checkDigests(issues, 'context.outputs', c.outputs);
      if (inputs) context.inputs = inputs;
      if (outputs) context.outputs = outputs;
      if (c.payload !== undefined) {
        const redact = c.redact ?? [];
        if (!Array.isArray(redact) || redact.some((p) => typeof p !== 'string' || p.length === 0)) bad('context.redact', 'must be a list of dotted paths');
        else {
          try {
            const { payload, redacted } = redactPayload(c.payload, redact as string[]);
            context.payload = payload;
            if (redacted.length > 0) context.redacted = redacted;
          } catch (error) {
            bad('context.payload', (error as Error).message);
          }
        }
      } else if (c.redact !== undefined) bad('context.redact', 'given without a payload');
      event.context = context;
    }
  }

  if (input.decision !== undefined) {
    const d = input.decision as unknown as Record<string, unknown>;
    if (typeof d !== 'object' || d === null) bad('decision', 'must be an object');
    else {
      const decision = {} as Decision;
      if (d.approval !== undefined) decision.approval = checkText(issues, 'decision.approval', d.approval, 512) ?? '';
      decision.effect = d.effect as Effect;
      if (typeof d.effect !== 'string' || !EFFECTS.includes(d.effect)) bad('decision.effect', `must be one of ${EFFECTS.join(', ')}`);
      if (d.policies !== undefined) {
        if (!Array.isArray(d.policies)) bad('decision.policies', 'must be a list of policy ids');
        else decision.policies = d.policies.map((p, i) => checkText(issues, `decision.policies[${i}]`, p, 512) ?? '');
      }
      if (d.reason !== undefined) decision.reason = checkText(issues, 'decision.reason', d.reason, MAX_TEXT) ?? '';
      event.decision = decision;
    }
  }

  if (input.details !== undefined) {
    if (typeof input.details !== 'object' || input.details === null || Array.isArray(input.details)) bad('details', 'must be an object');
    else event.details = input.details;
  }
  if (input.node !== undefined) event.node = checkText(issues, 'node', input.node, 512) ?? '';
  let checkedOutcome: Outcome | undefined;
  if (input.outcome !== undefined) {
    const o = input.outcome as unknown as Record<string, unknown>;
    if (typeof o !== 'object' || o === null) bad('outcome', 'must be an object');
    else {
      const outcome = {} as Outcome;
      if (o.detail !== undefined) outcome.detail = checkText(issues, 'outcome.detail', o.detail, MAX_TEXT) ?? '';
      if (o.exitCode !== undefined) {
        if (!Number.isSafeInteger(o.exitCode)) bad('outcome.exitCode', 'must be an integer');
        else outcome.exitCode = o.exitCode as number;
      }
      outcome.status = o.status as OutcomeStatus;
      if (typeof o.status !== 'string' || !STATUSES.includes(o.status)) bad('outcome.status', `must be one of ${STATUSES.join(', ')}`);
      checkedOutcome = outcome;
    }
  }
  if (checkedOutcome) event.outcome = checkedOutcome;
  event.resource = resource;
  event.time = time;
  if (input.trace !== undefined) {
    if (typeof input.trace !== 'string' || !TRACE.test(input.trace)) bad('trace', 'must be a W3C trace id (32 lowercase hex)');
    else event.trace = input.trace;
  }
  if (issues.length > 0) {
    throw new AuditError('AUDIT_EVENT_INVALID', `invalid audit event: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
  }
  return { event, timeMs };
}

/**
 * An ISO 8601 UTC time with milliseconds that names a real instant: Date.parse
 * rolls 2026-02-30 over into March, so the text must be what it prints back.
 */
function isoUtc(t: string): boolean {
  return ISO_UTC.test(t) && isoTime(Date.parse(t)) === t;
}

function checkText(issues: EventIssue[], field: string, v: unknown, max: number): string | undefined {
  if (typeof v !== 'string' || v.length === 0) return void issues.push({ field, message: 'must be a non-empty string' });
  if (v.length > max) return void issues.push({ field, message: `must be at most ${max} characters` });
  if (!v.isWellFormed()) return void issues.push({ field, message: 'holds a lone surrogate' });
  return v;
}

function checkPrincipal(issues: EventIssue[], field: string, v: unknown): Principal | undefined {
  if (typeof v !== 'object' || v === null) return void issues.push({ field, message: 'must be an object with kind and id' });
  const p = v as Record<string, unknown>;
  if (typeof p.kind !== 'string' || !PRINCIPAL_KINDS.includes(p.kind)) issues.push({ field: `${field}.kind`, message: `must be one of ${PRINCIPAL_KINDS.join(', ')}` });
  const id = checkText(issues, `${field}.id`, p.id, 512);
  return { id: id as string, kind: p.kind as PrincipalKind };
}

function checkDigests(issues: EventIssue[], field: string, v: unknown): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return void issues.push({ field, message: 'must map names to sha256:<hex> digests' });
  const out: Record<string, string> = {};
  for (const k of Object.keys(v)) {
    const d = (v as Record<string, unknown>)[k];
    if (k === '__proto__') issues.push({ field: `${field}.${k}`, message: 'is not a usable name' });
    else if (typeof d !== 'string' || !DIGEST.test(d)) issues.push({ field: `${field}.${k}`, message: 'must be sha256:<64 lowercase hex>' });
    else out[k] = d;
  }
  return out;
}

/**
 * Canonical JSON of a normalised event (RFC 8785), checked against MAX_EVENT_BYTES.
 *
 * @throws AuditError AUDIT_EVENT_INVALID when details or payload are not canonicalisable or too large.
 */
export function canonicalEvent(event: AuditEvent): string {
  let body: string;
  try {
    body = canonicalize(event);
  } catch (error) {
    throw notCanonical(error);
  }
  return checkSize(body);
}

/**
 * normalizeEvent, then canonicalEvent, in one step (what append() does for
 * each event). Members other than `details` and `context` (a payload, and
 * digest maps keyed by the caller's names) were just built by normalizeEvent,
 * in RFC 8785 order, from checked strings and integers; so when those two are
 * in order too, the event is serialised as it stands, without walking the
 * rest again.
 *
 * Also gives the event's time in ms since the epoch (`timeMs`, what the
 * stores index), read from the Date or text it was given.
 *
 * @throws AuditError AUDIT_EVENT_INVALID.
 */
export function checkedEvent(input: AuditEventInput, now: () => Date = () => new Date()): { event: AuditEvent; body: string; timeMs: number } {
  const { event, timeMs } = normalize(input, now);
  // Both sit one level into the event, as canonicalize() counts depth.
  const ordered = (event.details === undefined || inCanonicalOrder(event.details, 1)) && (event.context === undefined || inCanonicalOrder(event.context, 1));
  if (!ordered) return { event, body: canonicalEvent(event), timeMs };
  return { event, body: checkSize(JSON.stringify(event)), timeMs };
}

function notCanonical(error: unknown): AuditError {
  return new AuditError('AUDIT_EVENT_INVALID', `invalid audit event: ${(error as Error).message}`, { cause: error, issues: [{ field: 'details', message: (error as Error).message }] });
}

function checkSize(body: string): string {
  // A UTF-16 code unit is at most 3 bytes of UTF-8: short bodies need no count.
  if (body.length * 3 > MAX_EVENT_BYTES && Buffer.byteLength(body) > MAX_EVENT_BYTES) {
    throw new AuditError('AUDIT_EVENT_INVALID', `invalid audit event: larger than ${MAX_EVENT_BYTES} bytes`, { issues: [{ field: '', message: 'too large' }] });
  }
  return body;
}

/** `sha256:<hex>` of bytes or a string (UTF-8): the digest format of `context.inputs` and `outputs`. */
export function digestOf(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Replaces each dotted path in `payload` by `{ "redacted": "sha256:…" }` of its canonical value. */
function redactPayload(payload: unknown, paths: string[]): { payload: JsonValue; redacted: string[] } {
  // Round-trip through canonical JSON: a fresh copy that holds only JSON.
  const copy = JSON.parse(canonicalize(payload)) as JsonValue;
  const redacted: string[] = [];
  for (const path of paths) {
    const parts = path.split('.');
    let holder: unknown = copy;
    for (const part of parts.slice(0, -1)) holder = holder !== null && typeof holder === 'object' ? (holder as Record<string, unknown>)[part] : undefined;
    const last = parts.at(-1) as string;
    if (holder === null || typeof holder !== 'object' || !Object.hasOwn(holder, last)) continue;
    const target = holder as Record<string, JsonValue>;
    target[last] = { redacted: digestOf(canonicalize(target[last])) };
    redacted.push(path);
  }
  return { payload: copy, redacted };
}
