// Roles and operator scopes of the OpenClaw gateway protocol
// (docs/gateway/protocol/handshake.md upstream).

export type Role = 'operator' | 'node';

/** The closed set of operator scopes. */
export const OPERATOR_SCOPES = [
  'operator.read',
  'operator.write',
  'operator.admin',
  'operator.approvals',
  'operator.questions',
  'operator.pairing',
  'operator.talk',
  'operator.talk.secrets',
] as const;
export type OperatorScope = (typeof OPERATOR_SCOPES)[number];

const KNOWN = new Set<string>(OPERATOR_SCOPES);

/** All an operator connection acting as a Corral agent keeps of what it asked for: reading, and invoking its nodes. */
export const AGENT_SCOPES: readonly OperatorScope[] = ['operator.read', 'operator.write'];

/**
 * The scopes an operator connection receives: the requested ones that are in
 * the closed set; anything else is dropped, never granted. Nodes get none.
 */
export function grantScopes(role: Role, requested: readonly string[] | undefined): OperatorScope[] {
  if (role !== 'operator') return [];
  const out: OperatorScope[] = [];
  for (const scope of requested ?? []) if (KNOWN.has(scope) && !out.includes(scope as OperatorScope)) out.push(scope as OperatorScope);
  return out;
}

/**
 * Whether granted scopes satisfy a required one: `operator.admin` covers every
 * operator scope; `operator.write` covers `operator.read`.
 */
export function hasScope(granted: readonly string[], required: OperatorScope): boolean {
  if (granted.includes(required) || granted.includes('operator.admin')) return true;
  return required === 'operator.read' && granted.includes('operator.write');
}
