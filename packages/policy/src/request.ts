import { PolicyError } from './errors.ts';
import { copyJson } from './lib/json.ts';
import { checkValue, isPlainObject, type CorralSchema } from './schema.ts';

export interface EntityUid {
  type: string;
  id: string;
}

/** A decision request after validation: the action is known, the types fit, the context is complete. */
export interface DecisionRequest {
  readonly principal: EntityUid;
  readonly action: string;
  readonly resource: EntityUid;
  readonly context: Readonly<Record<string, unknown>>;
}

/** What a caller hands in: `action` is the action's id (`"payment.create"`); context fields may be left out where Corral has a default. */
export interface DecisionRequestInput {
  principal: EntityUid;
  action: string;
  resource: EntityUid;
  context?: Record<string, unknown>;
}

/**
 * Snapshots and validates an untrusted request against the schema, filling the
 * context defaults (classification "unclassified", time now, approval none).
 * Throws POLICY_REQUEST_INVALID naming the first problem.
 */
export function parseRequest(input: unknown, schema: CorralSchema, now: number = Date.now()): DecisionRequest {
  if (!isPlainObject(input)) throw invalid('the request must be an object');
  return parseRequests(input, [input.resource], schema, now)[0]!;
}

/**
 * One request on each of `resources`, which replace the request's own
 * resource: validated as parseRequest does, the principal, action and context
 * once for all of them (they share one snapshot of the context). For the
 * spellings of one program a policy could name. Throws POLICY_REQUEST_INVALID
 * naming the first problem.
 */
export function parseRequests(input: unknown, resources: readonly unknown[], schema: CorralSchema, now: number = Date.now()): DecisionRequest[] {
  if (!isPlainObject(input)) throw invalid('the request must be an object');
  const principal = uid(input.principal, 'principal');
  const uids = resources.map((r) => uid(r, 'resource'));
  const action = actionId(input.action);
  const info = schema.actions.get(action);
  if (!info) throw invalid(`unknown action "${action}"`);
  if (!info.principalTypes.includes(principal.type)) {
    throw invalid(`action "${action}" does not apply to principals of type ${principal.type} (only ${info.principalTypes.join(', ') || 'none: it is an action group'})`);
  }
  for (const resource of uids) {
    if (!info.resourceTypes.includes(resource.type)) {
      throw invalid(`action "${action}" does not apply to resources of type ${resource.type} (only ${info.resourceTypes.join(', ')})`);
    }
  }
  const given = input.context ?? {};
  if (!isPlainObject(given)) throw invalid('context must be an object');
  const context = copyJson(given, (problem) => invalid(`context ${problem}`)) as Record<string, unknown>;
  const date = new Date(now);
  context.classification ??= 'unclassified';
  context.time ??= { epoch: Math.floor(now / 1000), hour: date.getUTCHours(), weekday: date.getUTCDay() };
  context.approval ??= { state: 'none', approvers: 0 };
  if (info.context) {
    const bad = checkValue(schema, info.context, context, 'context');
    if (bad) throw invalid(bad);
  }
  return uids.map((resource) => ({ principal, action, resource, context }));
}

function uid(raw: unknown, name: string): EntityUid {
  const inner = isPlainObject(raw) && isPlainObject(raw.__entity) ? raw.__entity : raw;
  if (!isPlainObject(inner)) throw invalid(`${name} must be {"type", "id"}`);
  const { type, id } = inner;
  if (typeof type !== 'string' || type === '') throw invalid(`${name}.type must be a non-empty string`);
  if (typeof id !== 'string') throw invalid(`${name}.id must be a string`);
  if (!id.isWellFormed()) throw invalid(`${name}.id must be well-formed Unicode`);
  return { type, id };
}

function actionId(raw: unknown): string {
  if (typeof raw === 'string') return raw.startsWith('Action::') ? stripActionPrefix(raw) : raw;
  const inner = isPlainObject(raw) && isPlainObject(raw.__entity) ? raw.__entity : raw;
  if (isPlainObject(inner) && inner.type === 'Action' && typeof inner.id === 'string') return inner.id;
  throw invalid('action must be an action id such as "payment.create"');
}

function stripActionPrefix(raw: string): string {
  const m = /^Action::"((?:[^"\\]|\\.)*)"$/.exec(raw);
  if (!m) throw invalid('action must be an action id such as "payment.create"');
  return m[1]!.replace(/\\(.)/g, '$1');
}

function invalid(message: string): PolicyError {
  return new PolicyError('POLICY_REQUEST_INVALID', message);
}
