// OCSF 1.8.0 events for SIEMs, shaped the way NVIDIA OpenShell exports them
// (one JSON object per line; class, activity, type, severity, status and
// action/disposition each as id + caption; metadata.version "1.8.0"). Process
// runs map to Process Activity [1007] — a `corral run` (`run.*`), and a
// governed `system.run` through the gateway: its decision (`node.invoke.decide`
// with the argv, or a node's own refusal `node.invoke.refuse`) as Launch, its result (`node.invoke` of `system.run`) as
// Terminate with the exit code, as OpenShell's supervisor records a process it
// starts and one that exits. Network connections map to Network Activity
// [4001] Open, allowed or denied, the deciding policy in `firewall_rule` as
// OpenShell's proxy records a CONNECT; everything else (named node commands,
// tool calls, approvals) to API Activity [6003]. The whole Corral record rides
// in `unmapped.corral`.
//
// `toOcsfEvents` gives every event a record stands for: a `corral run` record
// becomes its Launch, an Open for each connection it lists, and its Terminate
// (after a blocked Terminate when a limit of its policy stopped it), as OpenShell would have
// written them while the run went on. `toOcsf` gives one event a record.
import type { JsonValue } from '../record/canonical.ts';
import type { AuditEvent, Principal } from '../record/event.ts';

export const OCSF_VERSION = '1.8.0';
export const PRODUCT = { name: 'Corral', vendor_name: 'Corral', version: '0.1.0' } as const;

type OcsfEvent = Record<string, JsonValue>;
type Pair = readonly [number, string];

interface ClassInfo {
  class_uid: number;
  class_name: string;
  category_uid: number;
  category_name: string;
  activity_id: number;
  activity_name: string;
}

/** Severity, status, action and disposition of one event, each as id + caption. */
interface Verdict {
  severity: Pair;
  status: Pair;
  action: Pair;
  disposition: Pair;
}

/** A record as the OCSF mapper needs it. */
export interface OcsfInput {
  seq: number;
  hash: string;
  prev: string;
  event: AuditEvent;
}

/**
 * Which end of a governed run through the gateway a record is: `launch` for
 * the decision of a `system.run` (its details hold the argv it decided),
 * `terminate` for its result (or the record that the gateway stopped waiting
 * for one). A `system.run.prepare` runs nothing, and named commands are no
 * process: both stay API Activity.
 */
function governedRun(e: AuditEvent): 'launch' | 'terminate' | undefined {
  if (e.action === 'node.invoke.decide' && e.details?.command === 'system.run' && Array.isArray(e.details.argv)) return 'launch';
  // A run a governed node refused on its own before asking its control plane (`details.by: 'node'`): a Launch it blocked.
  if (e.action === 'node.invoke.refuse' && e.details?.command === 'system.run' && Array.isArray(e.details.argv)) return 'launch';
  if (e.action === 'node.invoke' && e.resource.kind === 'command' && e.resource.id === 'system.run') return 'terminate';
  return undefined;
}

const PROCESS = { class_uid: 1007, class_name: 'Process Activity', category_uid: 1, category_name: 'System Activity' } as const;
const LAUNCH: ClassInfo = { ...PROCESS, activity_id: 1, activity_name: 'Launch' };
const TERMINATE: ClassInfo = { ...PROCESS, activity_id: 2, activity_name: 'Terminate' };
// OpenShell records a connection its policy denied as an Open that was blocked, not as a Refuse (which it keeps for DNS answers it withholds).
const OPEN: ClassInfo = { class_uid: 4001, class_name: 'Network Activity', category_uid: 4, category_name: 'Network Activity', activity_id: 1, activity_name: 'Open' };

function classify(e: AuditEvent): ClassInfo {
  const [noun, verb = ''] = e.action.split('.');
  if (noun === 'run' || noun === 'process') return verb === 'exit' || verb === 'end' || verb === 'terminate' ? TERMINATE : LAUNCH;
  const governed = governedRun(e);
  if (governed) return governed === 'launch' ? LAUNCH : TERMINATE;
  if (noun === 'net' || noun === 'network') return OPEN;
  const crud: Record<string, [number, string]> = { create: [1, 'Create'], read: [2, 'Read'], update: [3, 'Update'], delete: [4, 'Delete'] };
  const [id, name] = crud[e.action.split('.').at(-1) ?? ''] ?? [99, 'Other'];
  return { class_uid: 6003, class_name: 'API Activity', category_uid: 6, category_name: 'Application Activity', activity_id: id, activity_name: name };
}

const INFORMATIONAL: Pair = [1, 'Informational'];
const SUCCESS: Pair = [1, 'Success'];
const FAILURE: Pair = [2, 'Failure'];
const ALLOWED: Pair = [1, 'Allowed'];
const DENIED: Pair = [2, 'Denied'];
const BLOCKED: Pair = [2, 'Blocked'];
const APPROVED: Pair = [8, 'Approved'];
/** What OpenShell writes for a process it started, one that exited (whatever its code), and a connection it let through. */
const ALLOWED_AND_DONE: Verdict = { severity: INFORMATIONAL, status: SUCCESS, action: ALLOWED, disposition: ALLOWED };
/** What OpenShell writes for a process it killed at its timeout. */
const KILLED: Verdict = { severity: [5, 'Critical'], status: FAILURE, action: DENIED, disposition: BLOCKED };
/** What OpenShell writes for a connection its policy denied. */
const REFUSED: Verdict = { severity: [3, 'Medium'], status: FAILURE, action: DENIED, disposition: BLOCKED };

/** An allowed verdict, Approved when a human's approval allowed it. */
function allowedBy(e: AuditEvent): Verdict {
  return e.decision?.approval ? { ...ALLOWED_AND_DONE, disposition: APPROVED } : ALLOWED_AND_DONE;
}

/** The verdict of a record mapped to the one event `cls`. */
function verdictOf(e: AuditEvent, cls: ClassInfo): Verdict {
  const governed = governedRun(e);
  const denied = e.decision?.effect === 'deny' || (!e.decision && cls === OPEN && /^(net|network)\.(refuse|deny)$/.test(e.action));
  // A run the node stopped at its timeout: OpenShell records the kill as a blocked, failed Terminate of Critical severity.
  if (governed === 'terminate' && e.details?.timedOut === true) return KILLED;
  // A process that exited: OpenShell's exit event is an allowed success whatever the code, which `exit_code` carries.
  if (cls === TERMINATE && e.outcome?.exitCode !== undefined) return allowedBy(e);
  if (denied) return REFUSED;
  const effect = e.decision?.effect;
  // The gateway sends a node only a run it allowed (that decision recorded first): its result is an allowed run's end.
  const ended = governed === 'terminate' ? (effect ?? 'allow') : effect;
  const status: Pair = e.outcome?.status === 'success' ? SUCCESS : e.outcome?.status === 'failure' ? FAILURE : effect === 'allow' && !e.outcome ? SUCCESS : [0, 'Unknown'];
  if (ended === 'ask') return { severity: [2, 'Low'], status, action: [99, 'Other'], disposition: [14, 'Delayed'] };
  if (ended === 'allow') return { ...allowedBy(e), status };
  return { severity: INFORMATIONAL, status, action: [0, 'Unknown'], disposition: [0, 'Unknown'] };
}

const USER_TYPE: Record<Principal['kind'], [number, string]> = { human: [1, 'User'], agent: [99, 'Other'], node: [3, 'System'], service: [3, 'System'] };

function user(p: Principal): Record<string, JsonValue> {
  const [type_id, type] = USER_TYPE[p.kind];
  return { uid: p.id, name: p.id, type_id, type };
}

/**
 * The OCSF actor of a record. The deciding policies are its `authorizations`,
 * except in Network Activity, where OpenShell names the rule in `firewall_rule`.
 */
function actorOf(e: AuditEvent, authorizations: boolean): Record<string, JsonValue> {
  const actor: Record<string, JsonValue> = {};
  if (e.actor.kind === 'human') actor.user = user(e.actor);
  else {
    actor.app_name = e.actor.id;
    actor.app_uid = `${e.actor.kind}:${e.actor.id}`;
    if (e.actor.onBehalfOf) actor.user = user(e.actor.onBehalfOf);
  }
  if (authorizations && e.decision?.policies) actor.authorizations = e.decision.policies.map((p) => ({ decision: e.decision?.effect ?? 'unknown', policy: { name: p } }));
  return actor;
}

/**
 * OpenShell's `firewall_rule` for a connection: the first policy that decided
 * it (`-` when none did) and the engine: `container` for a `corral run`'s
 * policy file (`container:sha256:…`), `cedar` for a gateway decision.
 */
function firewallRule(e: AuditEvent): Record<string, JsonValue> {
  const name = e.decision?.policies?.[0] ?? '-';
  return { name, type: name.startsWith('container:') ? 'container' : 'cedar' };
}

/** Where one event sits among the events of its record: its index, of how many. */
interface Place {
  index: number;
  of: number;
}

/** The members every event has: class, activity, type, time, verdict, message, metadata, actor, device. */
function envelope(r: OcsfInput, cls: ClassInfo, v: Verdict, message: string, place: Place, time = Date.parse(r.event.time)): OcsfEvent {
  const e = r.event;
  // One record's events share a correlation_uid (its trace, else its hash), each its own uid.
  const correlation = e.trace ?? (place.of > 1 ? r.hash : undefined);
  const out: OcsfEvent = {
    ...cls,
    type_uid: cls.class_uid * 100 + cls.activity_id,
    type_name: `${cls.class_name}: ${cls.activity_name}`,
    time,
    severity_id: v.severity[0],
    severity: v.severity[1],
    status_id: v.status[0],
    status: v.status[1],
    message,
    metadata: {
      version: OCSF_VERSION,
      product: { ...PRODUCT },
      uid: place.of > 1 ? `${r.hash}.${place.index}` : r.hash,
      sequence: r.seq,
      log_name: 'corral-audit',
      ...(correlation ? { correlation_uid: correlation } : {}),
    },
    action_id: v.action[0],
    action: v.action[1],
    disposition_id: v.disposition[0],
    disposition: v.disposition[1],
    actor: actorOf(e, cls.class_uid !== 4001),
  };
  if (e.node) out.device = { hostname: e.node, type_id: 0, type: 'Unknown' };
  if (cls.class_uid === 1007) out.device ??= { hostname: 'unknown', type_id: 0, type: 'Unknown' };
  return out;
}

/** `unmapped.corral`: the whole record on the event that carries its outcome, its seq and hash on the others. */
function unmapped(r: OcsfInput, whole: boolean): Record<string, JsonValue> {
  return { corral: whole ? { seq: r.seq, hash: r.hash, prev: r.prev, event: r.event as unknown as JsonValue } : { seq: r.seq, hash: r.hash } };
}

/**
 * Maps one Corral record to one OCSF 1.8.0 event. A `corral run` record
 * (`run.exec`) becomes its Launch with the exit code: `toOcsfEvents` gives
 * the Launch, connections and Terminate OpenShell would have written.
 */
export function toOcsf(r: OcsfInput): OcsfEvent {
  return single(r, true, { index: 0, of: 1 });
}

/**
 * Maps one Corral record to every OCSF 1.8.0 event it stands for, in the
 * order they happened (see the file's comment). Connections and limits are
 * read from the record's details as `corral run` writes them; an entry shaped
 * otherwise is skipped. Each event has its own `metadata.uid` (the record hash,
 * `.N` when there are several) and they share a `correlation_uid`.
 */
export function toOcsfEvents(r: OcsfInput): OcsfEvent[] {
  const e = r.event;
  if (e.action === 'run.exec' && startedRun(e)) return containedRun(r);
  if (governedRun(e) === 'terminate' && e.details?.timedOut === true && e.outcome?.exitCode !== undefined) {
    const kill = single(r, false, { index: 0, of: 2 });
    delete kill.exit_code;
    kill.unmapped = unmapped(r, false);
    const exit = single(r, false, { index: 1, of: 2 });
    Object.assign(exit, verdictFields(allowedBy(e)), { message: `${processName(e)} exited with code ${e.outcome.exitCode}` });
    return [kill, exit];
  }
  return [single(r, false, { index: 0, of: 1 })];
}

function verdictFields(v: Verdict): OcsfEvent {
  return { severity_id: v.severity[0], severity: v.severity[1], status_id: v.status[0], status: v.status[1], action_id: v.action[0], action: v.action[1], disposition_id: v.disposition[0], disposition: v.disposition[1] };
}

/**
 * The record's argv as words of text. A word that is not a string (no writer
 * in Corral records one) is written as JSON: String() of an object runs its
 * own `toString`, which a record can name as no function (`{"toString":1}`), and throws.
 */
function argvOf(e: AuditEvent): string[] | null {
  return Array.isArray(e.details?.argv) ? (e.details.argv as JsonValue[]).map((w) => (typeof w === 'string' ? w : JSON.stringify(w))) : null;
}

function processName(e: AuditEvent): string {
  return argvOf(e)?.[0] ?? (governedRun(e) ? 'unknown' : e.resource.id);
}

/** One record as one event; `launchExit`: a Launch keeps the record's exit code (toOcsf's one event for a `corral run`). */
function single(r: OcsfInput, launchExit: boolean, place: Place): OcsfEvent {
  const e = r.event;
  const cls = classify(e);
  const governed = governedRun(e);
  const details = e.details ?? {};
  const v = verdictOf(e, cls);
  const out = envelope(r, cls, v, `${e.action} ${e.decision?.effect ?? 'recorded'} ${e.resource.kind} ${e.resource.id}`, place);
  if (e.outcome?.detail ?? e.decision?.reason) out.status_detail = (e.outcome?.detail ?? e.decision?.reason) as string;

  if (cls.class_uid === 1007) {
    const argv = argvOf(e);
    // A governed run's result names the command (`system.run`), not the program: OpenShell's name for a process it cannot name is `unknown`.
    const proc: Record<string, JsonValue> = argv || !governed ? { name: argv?.[0] ?? e.resource.id, cmd_line: argv ? argv.join(' ') : e.resource.id } : { name: 'unknown' };
    if (governed && typeof details.cwd === 'string') proc.working_directory = details.cwd;
    out.process = proc;
    // OpenShell's start event says how the process came to be: spawned. A run denied or waiting for a human was not.
    if (governed === 'launch' && e.decision?.effect === 'allow') {
      out.launch_type_id = 1;
      out.launch_type = 'Spawn';
    }
    if (e.outcome?.exitCode !== undefined && (cls === TERMINATE || launchExit)) out.exit_code = e.outcome.exitCode;
    if (governed === 'terminate' && finiteMs(details.durationMs) !== undefined) out.duration = finiteMs(details.durationMs) as number;
  } else if (cls.class_uid === 4001) {
    out.dst_endpoint = endpoint(e.resource.id);
    out.firewall_rule = firewallRule(e);
  } else {
    out.api = { operation: e.action };
    out.src_endpoint = e.node ? { hostname: e.node } : { hostname: 'unknown' };
    out.resources = [{ type: e.resource.kind, uid: e.resource.id }];
  }
  out.unmapped = unmapped(r, true);
  return out;
}

function finiteMs(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
}

/** A `corral run` record of a command that ran (it has an exit code or a duration) under an allow: one that never started is one Launch. */
function startedRun(e: AuditEvent): boolean {
  return e.decision?.effect === 'allow' && (e.outcome?.exitCode !== undefined || finiteMs(e.details?.durationMs) !== undefined);
}

/** A connection as `corral run` lists it. */
interface Connection {
  host: string;
  port: number;
  address: string | null;
  allowed: boolean;
  reason: string | null;
  bytesSent: number | null;
  bytesReceived: number | null;
}

/** A listed connection snapshot, or null when the entry is not shaped as `corral run` writes one. */
function connectionOf(value: JsonValue): Connection | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const { host, port, address, allowed, reason, bytesSent, bytesReceived } = value;
  if (typeof host !== 'string' || host === '' || typeof allowed !== 'boolean') return null;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) return null;
  const count = (n: JsonValue | undefined) => (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : null);
  return { host, port, address: typeof address === 'string' && address !== '' ? address : null, allowed, reason: typeof reason === 'string' ? reason : null, bytesSent: count(bytesSent), bytesReceived: count(bytesReceived) };
}

/**
 * A `corral run` record as OpenShell's events of a run: the Launch (when the
 * run began: its duration before the record), an Open for each connection
 * listed (at the record's time: the record keeps none of theirs), a blocked
 * Terminate of Critical severity when a limit of its policy stopped the
 * command, and the Terminate with its exit code, which keeps the whole record.
 */
function containedRun(r: OcsfInput): OcsfEvent[] {
  const e = r.event;
  const details = e.details ?? {};
  const argv = argvOf(e) ?? [e.resource.id];
  const proc = { name: argv[0] ?? e.resource.id, cmd_line: argv.join(' ') };
  const end = Date.parse(e.time);
  const duration = finiteMs(details.durationMs);
  const listed = Array.isArray(details.connections) ? details.connections : [];
  const connections = listed.map(connectionOf).filter((c) => c !== null);
  const limits = Array.isArray(details.limitsHit) ? details.limitsHit.filter((l) => typeof l === 'string') : [];
  // Only a limit of the policy is a control stopping the command (OpenShell's timeout kill); the user's interrupt is not.
  const stopped = limits.length === 0 ? undefined : e.outcome?.detail?.startsWith('stopped: ') ? e.outcome.detail : `stopped: ${limits.join(', ')}`;
  const of = 2 + connections.length + (stopped ? 1 : 0);
  let index = 0;
  const place = () => ({ index: index++, of });

  const launch = envelope(r, LAUNCH, allowedBy(e), `${proc.name} started`, place(), duration === undefined ? end : end - duration);
  Object.assign(launch, { process: { ...proc }, launch_type_id: 1, launch_type: 'Spawn', unmapped: unmapped(r, false) });

  const opens = connections.map((c) => {
    const open = envelope(r, OPEN, c.allowed ? ALLOWED_AND_DONE : REFUSED, `${c.allowed ? 'allowed' : 'refused'} ${c.host}:${c.port}`, place());
    const to = endpoint(`${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}`);
    if (c.address && to.ip === undefined) to.ip = c.address;
    open.dst_endpoint = to;
    (open.actor as Record<string, JsonValue>).process = { ...proc };
    open.firewall_rule = firewallRule(e);
    if (!c.allowed && c.reason) open.status_detail = c.reason;
    if (c.bytesSent !== null && c.bytesReceived !== null) open.traffic = { bytes_out: c.bytesSent, bytes_in: c.bytesReceived };
    open.unmapped = unmapped(r, false);
    return open;
  });

  const kill = stopped ? [Object.assign(envelope(r, TERMINATE, KILLED, `${proc.name} ${stopped}`, place()), { process: { ...proc }, status_detail: stopped, unmapped: unmapped(r, false) })] : [];

  const code = e.outcome?.exitCode;
  const signal = typeof details.signal === 'string' ? details.signal : undefined;
  const exit = envelope(r, TERMINATE, allowedBy(e), code !== undefined ? `${proc.name} exited with code ${code}` : `${proc.name} ended${signal ? ` by ${signal}` : ''}`, place());
  exit.process = { ...proc };
  if (code !== undefined) exit.exit_code = code;
  if (!stopped && e.outcome?.detail) exit.status_detail = e.outcome.detail;
  else if (code === undefined && signal) exit.status_detail = `ended by ${signal}`;
  if (duration !== undefined) exit.duration = duration;
  const notListed = typeof details.connectionCount === 'number' && Number.isSafeInteger(details.connectionCount) ? details.connectionCount - listed.length : 0;
  exit.unmapped = { ...unmapped(r, true), ...(notListed > 0 ? { connections_not_listed: notListed } : {}) };
  return [launch, ...opens, ...kill, exit];
}

/**
 * A connection's destination, `HOST:PORT` (`[v6]:PORT`) as the log names it,
 * as an OCSF Network Endpoint: an address as `ip`, a name as `hostname` (the
 * endpoint's own name; `domain` is the domain it belongs to).
 */
function endpoint(target: string): { ip?: string; hostname?: string; port?: number } {
  const m = /^(.*):(\d{1,5})$/.exec(target);
  const host = (m ? (m[1] as string) : target).replace(/^\[(.*)\]$/, '$1');
  // An address is dotted-decimal IPv4 or holds a colon (IPv6); a host name has neither. No node:net here: exports stay pure.
  const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
  return { ...(ip ? { ip: host } : { hostname: host }), ...(m ? { port: Number(m[2]) } : {}) };
}
