// What the gateway knows how to govern. A node command reaches a node only
// when one of these rules covers it: a run (`system.run`, decided on the
// canonical argv of everything that would run), a named command whose Cedar
// action is its own name (`payment.create`, decided with its params as the
// Cedar context), or a command in the read-only set. Anything else is denied:
// a command the gateway cannot describe to the policy is one it cannot govern.
import type { EntityUid } from '@corral/policy';
import { GatewayError } from '../errors.ts';
import { cut } from '../well-formed.ts';

/** Commands that only read the node (what is installed): forwarded without a policy decision, still audited. */
export const READ_ONLY_COMMANDS: ReadonlySet<string> = new Set(['system.which']);

/** Commands whose params are an argv: decided per program that would run (exec/canonical.ts, exec/decide.ts). */
export const RUN_COMMANDS: ReadonlySet<string> = new Set(['system.run', 'system.run.prepare']);

/** How a named command becomes one Cedar request. */
export interface NamedRule {
  /** The Cedar action: the command's own name. */
  action: string;
  /** The resource the request is about. */
  resource: EntityUid;
  /**
   * Snapshots the command's params (untrusted) into a fresh object: every
   * field checked, unknown fields refused. Throws GATEWAY_PARAMS_INVALID.
   */
  params: (raw: unknown) => Record<string, unknown>;
  /** The Cedar context from the snapshot. Never the approval state, time or classification: Corral fills those. */
  context: (params: Record<string, unknown>) => Record<string, unknown>;
}

const CURRENCY = /^[A-Z]{3}$/;
/** 10^15 minor units: far above any real payment, far below 2^53, so the amount is exact in JSON and in Cedar's Long. */
const MAX_AMOUNT = 1e15;

/** `payment.create {amount, currency, payee, reference?}`: amount in minor units (cents), as the policy schema's context.amount. */
const paymentCreate: NamedRule = {
  action: 'payment.create',
  resource: { type: 'Collection', id: 'payments' },
  params(raw) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('payment.create params must be an object');
    const p = raw as Record<string, unknown>;
    for (const key of Object.keys(p)) if (!['amount', 'currency', 'payee', 'reference'].includes(key)) throw invalid(`payment.create params: unknown field ${JSON.stringify(cut(key, 40))}`);
    if (!Number.isSafeInteger(p.amount) || (p.amount as number) < 0 || (p.amount as number) > MAX_AMOUNT) throw invalid('payment.create params.amount must be a whole number of minor units (cents), 0 or more');
    if (typeof p.currency !== 'string' || !CURRENCY.test(p.currency)) throw invalid('payment.create params.currency must be an ISO 4217 code such as EUR');
    if (typeof p.payee !== 'string' || p.payee.trim() === '' || p.payee.length > 200 || !p.payee.isWellFormed()) throw invalid('payment.create params.payee must name the payee (at most 200 characters of text)');
    if (p.reference !== undefined && (typeof p.reference !== 'string' || p.reference.length > 200 || !p.reference.isWellFormed())) throw invalid('payment.create params.reference must be text of at most 200 characters');
    return { amount: p.amount, currency: p.currency, payee: p.payee, ...(p.reference !== undefined ? { reference: p.reference } : {}) };
  },
  context: (params) => ({ amount: params.amount, currency: params.currency }),
};

/** Named commands by name. */
export const NAMED_COMMANDS: ReadonlyMap<string, NamedRule> = new Map([[paymentCreate.action, paymentCreate]]);

export type Governance = { kind: 'read-only' } | { kind: 'run' } | { kind: 'named'; rule: NamedRule };

/** The rule that governs `command`, or undefined: then the command is denied. */
export function governanceOf(command: string): Governance | undefined {
  if (RUN_COMMANDS.has(command)) return { kind: 'run' };
  const rule = NAMED_COMMANDS.get(command);
  if (rule) return { kind: 'named', rule };
  if (READ_ONLY_COMMANDS.has(command)) return { kind: 'read-only' };
  return undefined;
}

function invalid(message: string): GatewayError {
  return new GatewayError('GATEWAY_PARAMS_INVALID', message, { wire: { code: 'INVALID_REQUEST', message } });
}
