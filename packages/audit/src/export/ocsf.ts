// OCSF 1.8.0 events for SIEMs, shaped the way NVIDIA OpenShell exports them
// (one JSON object per line; class, activity, type, severity, status and
// action/disposition each as id + caption; metadata.version "1.8.0"). Process
// runs map to Process Activity [1007] — a `corral run` (`run.*`), and a
// governed `system.run` through the gateway: its decision (`node.invoke.decide`
// with the argv) as Launch, its result (`node.invoke` of `system.run`) as
// Terminate with the exit code, as OpenShell's supervisor records a process it
// starts and one that exits. Network connections map to Network Activity
// [4001], everything else (named node commands, tool calls, approvals) to API
// Activity [6003]. The whole Corral record rides in `unmapped.corral`.
import type { JsonValue } from '../record/canonical.ts';
import type { AuditEvent, Principal } from '../record/event.ts';

export const OCSF_VERSION = '1.8.0';
export const PRODUCT = { name: 'Corral', vendor_name: 'Corral', version: '0.1.0' } as const;

interface ClassInfo {
  class_uid: number;
  class_name: string;
  category_uid: number;
  category_name: string;
  activity_id: number;
  activity_name: string;
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
  if (e.action === 'node.invoke' && e.resource.kind === 'command' && e.resource.id === 'system.run') return 'terminate';
  return undefined;
}

const PROCESS = { class_uid: 1007, class_name: 'Process Activity', category_uid: 1, category_name: 'System Activity' } as const;

function classify(e: AuditEvent): ClassInfo {
  const [noun, verb = ''] = e.action.split('.');
  if (noun === 'run' || noun === 'process') {
    const terminate = verb === 'exit' || verb === 'end' || verb === 'terminate';
    return { ...PROCESS, activity_id: terminate ? 2 : 1, activity_name: terminate ? 'Terminate' : 'Launch' };
  }
  const governed = governedRun(e);
  if (governed) return { ...PROCESS, activity_id: governed === 'launch' ? 1 : 2, activity_name: governed === 'launch' ? 'Launch' : 'Terminate' };
  if (noun === 'net' || noun === 'network') {
    const refused = verb === 'refuse' || verb === 'deny';
    return { class_uid: 4001, class_name: 'Network Activity', category_uid: 4, category_name: 'Network Activity', activity_id: refused ? 5 : 1, activity_name: refused ? 'Refuse' : 'Open' };
  }
  const crud: Record<string, [number, string]> = { create: [1, 'Create'], read: [2, 'Read'], update: [3, 'Update'], delete: [4, 'Delete'] };
  const [id, name] = crud[e.action.split('.').at(-1) ?? ''] ?? [99, 'Other'];
  return { class_uid: 6003, class_name: 'API Activity', category_uid: 6, category_name: 'Application Activity', activity_id: id, activity_name: name };
}

const USER_TYPE: Record<Principal['kind'], [number, string]> = { human: [1, 'User'], agent: [99, 'Other'], node: [3, 'System'], service: [3, 'System'] };

function user(p: Principal): Record<string, JsonValue> {
  const [type_id, type] = USER_TYPE[p.kind];
  return { uid: p.id, name: p.id, type_id, type };
}

/** Maps one Corral record to an OCSF 1.8.0 event object. */
export function toOcsf(r: OcsfInput): Record<string, JsonValue> {
  const e = r.event;
  const cls = classify(e);
  const governed = governedRun(e);
  const details = e.details ?? {};
  const effect = e.decision?.effect;
  // The gateway sends a node only a run it allowed (that decision recorded first): its result is an allowed run's end, as OpenShell's exit events say.
  const ended = governed === 'terminate' ? (effect ?? 'allow') : effect;
  // A run the node stopped at its timeout: OpenShell records the kill as a blocked, failed Terminate of Critical severity.
  const timedOut = governed === 'terminate' && details.timedOut === true;
  const severity: [number, string] = timedOut ? [5, 'Critical'] : effect === 'deny' ? [3, 'Medium'] : effect === 'ask' ? [2, 'Low'] : [1, 'Informational'];
  const status: [number, string] =
    timedOut ? [2, 'Failure'] : e.outcome?.status === 'success' ? [1, 'Success'] : e.outcome?.status === 'failure' || effect === 'deny' ? [2, 'Failure'] : effect === 'allow' && !e.outcome ? [1, 'Success'] : [0, 'Unknown'];
  const action: [number, string] = timedOut ? [2, 'Denied'] : ended === 'allow' ? [1, 'Allowed'] : ended === 'deny' ? [2, 'Denied'] : ended === 'ask' ? [99, 'Other'] : [0, 'Unknown'];
  const disposition: [number, string] =
    timedOut ? [2, 'Blocked'] : ended === 'allow' ? (e.decision?.approval ? [8, 'Approved'] : [1, 'Allowed']) : ended === 'deny' ? [2, 'Blocked'] : ended === 'ask' ? [14, 'Delayed'] : [0, 'Unknown'];

  const actor: Record<string, JsonValue> = {};
  if (e.actor.kind === 'human') actor.user = user(e.actor);
  else {
    actor.app_name = e.actor.id;
    actor.app_uid = `${e.actor.kind}:${e.actor.id}`;
    if (e.actor.onBehalfOf) actor.user = user(e.actor.onBehalfOf);
  }
  if (e.decision?.policies) actor.authorizations = e.decision.policies.map((p) => ({ decision: effect ?? 'unknown', policy: { name: p } }));

  const out: Record<string, JsonValue> = {
    ...cls,
    type_uid: cls.class_uid * 100 + cls.activity_id,
    type_name: `${cls.class_name}: ${cls.activity_name}`,
    time: Date.parse(e.time),
    severity_id: severity[0],
    severity: severity[1],
    status_id: status[0],
    status: status[1],
    message: `${e.action} ${effect ?? 'recorded'} ${e.resource.kind} ${e.resource.id}`,
    metadata: {
      version: OCSF_VERSION,
      product: { ...PRODUCT },
      uid: r.hash,
      sequence: r.seq,
      log_name: 'corral-audit',
      ...(e.trace ? { correlation_uid: e.trace } : {}),
    },
    action_id: action[0],
    action: action[1],
    disposition_id: disposition[0],
    disposition: disposition[1],
    actor,
  };
  if (e.outcome?.detail ?? e.decision?.reason) out.status_detail = (e.outcome?.detail ?? e.decision?.reason) as string;
  if (e.node) out.device = { hostname: e.node, type_id: 0, type: 'Unknown' };

  if (cls.class_uid === 1007) {
    const argv = Array.isArray(details.argv) ? (details.argv as JsonValue[]).map(String) : null;
    // A governed run's result names the command (`system.run`), not the program: OpenShell's name for a process it cannot name is `unknown`.
    const proc: Record<string, JsonValue> = argv || !governed ? { name: argv?.[0] ?? e.resource.id, cmd_line: argv ? argv.join(' ') : e.resource.id } : { name: 'unknown' };
    if (governed && typeof details.cwd === 'string') proc.working_directory = details.cwd;
    out.process = proc;
    // OpenShell's start event says how the process came to be: spawned. A run denied or waiting for a human was not.
    if (governed === 'launch' && effect === 'allow') {
      out.launch_type_id = 1;
      out.launch_type = 'Spawn';
    }
    if (e.outcome?.exitCode !== undefined) out.exit_code = e.outcome.exitCode;
    if (governed === 'terminate' && typeof details.durationMs === 'number' && Number.isFinite(details.durationMs)) out.duration = Math.round(details.durationMs);
    out.device ??= { hostname: 'unknown', type_id: 0, type: 'Unknown' };
  } else if (cls.class_uid === 4001) {
    out.dst_endpoint = endpoint(e.resource.id);
  } else {
    out.api = { operation: e.action };
    out.src_endpoint = e.node ? { hostname: e.node } : { hostname: 'unknown' };
    out.resources = [{ type: e.resource.kind, uid: e.resource.id }];
  }
  out.unmapped = { corral: { seq: r.seq, hash: r.hash, prev: r.prev, event: e as unknown as JsonValue } };
  return out;
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
