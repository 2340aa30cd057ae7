// Approvals: the inbox and its decisions, and the withdrawal of a standing
// (allow-always) grant. Resolving goes through the invoker's resolveApprovalWhenFree,
// so a command waiting on the approval wakes and the audit log records who decided. With a session the approver is the
// signed-in human; with the gateway token the body names them.
import { ApprovalStore, checkReason, refuseOwnRequest, tokenApprover, type ApprovalDecision, type OwnerOf } from '../approvals/store.ts';
import { GatewayError } from '../errors.ts';
import { actingHuman, type Caller } from './auth.ts';
import type { ApiContext } from './context.ts';
import { failure, reply } from './respond.ts';
import type { Route } from './router.ts';
import { intParam } from './scan.ts';

/** Approvals a page holds by default, and at most (and never more than the store's DEFAULT_PAGE_BYTES of them). */
const DEFAULT_PAGE = 200;
const MAX_PAGE = 1000;

function approverOf(caller: Caller, body: Record<string, unknown>): string {
  if (caller.kind === 'session') {
    if (body.approver !== undefined) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the approver is the signed-in human; do not name one');
    return actingHuman(caller);
  }
  if (body.approver === undefined) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'with the gateway token, name the approver');
  return tokenApprover(body.approver as string);
}

/**
 * Who a signed-in human counts as toward a quorum, when the name they are
 * shown by may change: single sign-on names a person by the address their
 * provider verified, which can change, change case or lose its verification,
 * while their issuer and subject (the session's id) stay. A local user's
 * username never changes, and the token's approvers count as the token.
 */
function authorityOf(caller: Caller): string | undefined {
  return caller.kind === 'session' && caller.session.user.id.startsWith('oidc:') ? caller.session.user.id : undefined;
}

/** authorityOf as an option of the store's: absent when there is none. */
function authorityOption(caller: Caller): { authority?: string } {
  const authority = authorityOf(caller);
  return authority !== undefined ? { authority } : {};
}

/**
 * The address a signed-in approver goes by besides their name: never who
 * they are, only a reason to refuse them their own agent's request (store's
 * refuseOwnRequest). A single sign-on person's is the one their provider
 * sent, verified or not; a local user's the one an admin gave them, read
 * from the identity store now, so an address given or changed since they
 * signed in counts (a user removed meanwhile is refused, IDENTITY_USER_NOT_FOUND).
 * The gateway token's approvers have none: the token acts as the operator.
 */
function claimedOf(api: ApiContext, caller: Caller): string | undefined {
  if (caller.kind !== 'session') return undefined;
  const { user } = caller.session;
  if (user.id.startsWith('local:')) return api.identity.localUsers.get(user.name).email;
  return user.claimedEmail;
}

/** The owner of each agent, as the identity store knows it now. */
function ownersIn(api: ApiContext): OwnerOf {
  return (agent) => api.identity.agents.find(agent)?.owner;
}

function reasonOf(body: Record<string, unknown>): string | undefined {
  const reason = body.reason;
  checkReason(reason);
  return reason;
}

export function approvalRoutes(api: ApiContext): Route[] {
  const resolve = async (id: string, decision: ApprovalDecision, caller: Caller, body: Record<string, unknown>, stillAllowed: () => void) => {
    const approver = approverOf(caller, body);
    const reason = reasonOf(body);
    // Four eyes, before anything is written: an allow by the owner of the agent that asked is refused (403).
    const claimed = claimedOf(api, caller);
    if (decision !== 'deny') refuseOwnRequest(api.approvals.get(id), approver, authorityOf(caller), ownersIn(api), claimed);
    // The invoker records the decision and the reason the human gave in one record: a second
    // write after the decision was committed could fail and answer 500 for an approval that went through.
    // While a corral command holds the gateway state it waits off the event loop; past the wait: 503 GATEWAY_BUSY.
    const approval = await api.invoker.resolveApprovalWhenFree(id, decision, approver, reason, { stillAllowed, ...(claimed !== undefined ? { claimed } : {}), ...authorityOption(caller) });
    return reply(200, ApprovalStore.shown(approval));
  };
  return [
    {
      method: 'GET',
      path: '/api/approvals',
      access: 'approvals.read',
      handle: ({ url }) => {
        const status = url.searchParams.get('status') ?? 'pending';
        if (status !== 'pending' && status !== 'all') return failure(400, 'invalid_request', { message: 'status must be pending or all' });
        const limit = intParam(url, 'limit', DEFAULT_PAGE, 1, MAX_PAGE);
        if (Number.isNaN(limit)) return failure(400, 'invalid_request', { message: `limit must be a whole number from 1 to ${MAX_PAGE}` });
        // The inbox, oldest first, a bounded page at a time (each approval can carry 256 KiB); the whole history, newest page first.
        if (status === 'pending') {
          const after = intParam(url, 'after', 0, 0, Number.MAX_SAFE_INTEGER);
          if (Number.isNaN(after)) return failure(400, 'invalid_request', { message: 'after must be the nextAfter of a page' });
          const page = api.approvals.listPage({ status, limit, after });
          return reply(200, { approvals: page.approvals.map(ApprovalStore.shown), nextAfter: page.nextAfter });
        }
        const before = intParam(url, 'before', Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER);
        if (Number.isNaN(before)) return failure(400, 'invalid_request', { message: 'before must be the nextBefore of a page' });
        const page = api.approvals.page({ limit, before });
        return reply(200, { approvals: page.approvals.map(ApprovalStore.shown), nextBefore: page.nextBefore });
      },
    },
    { method: 'GET', path: '/api/approvals/:id', access: 'approvals.read', handle: ({ params }) => reply(200, ApprovalStore.shown(api.approvals.get(params.id!))) },
    {
      method: 'POST',
      path: '/api/approvals/:id/approve',
      access: 'approvals.resolve',
      handle: async ({ params, caller, body, stillAllowed }) => {
        const input = await body();
        const decision = input.decision === undefined ? 'allow-once' : input.decision;
        if (decision !== 'allow-once' && decision !== 'allow-always') return failure(400, 'invalid_request', { message: 'decision must be allow-once or allow-always' });
        return resolve(params.id!, decision, caller!, input, stillAllowed);
      },
    },
    { method: 'POST', path: '/api/approvals/:id/deny', access: 'approvals.resolve', handle: async ({ params, caller, body, stillAllowed }) => resolve(params.id!, 'deny', caller!, await body(), stillAllowed) },
    {
      // Takes back an approval allowed and not yet spent (its run is refused, its grant withdrawn). One still pending:
      // 409 conflict (GATEWAY_APPROVAL_PENDING), deny it instead; one spent or settled otherwise: 409 GATEWAY_APPROVAL_RESOLVED.
      method: 'POST',
      path: '/api/approvals/:id/withdraw',
      access: 'approvals.resolve',
      handle: async ({ params, caller, body, stillAllowed }) => {
        const input = await body();
        const approval = await api.invoker.withdrawApprovalWhenFree(params.id!, approverOf(caller!, input), reasonOf(input), { stillAllowed, ...authorityOption(caller!) });
        return reply(200, ApprovalStore.shown(approval));
      },
    },
    {
      // Withdraws the standing grant an allow-always approval made; the next decision asks again. An approval still
      // pending has none: 409 conflict (GATEWAY_APPROVAL_PENDING), nothing withdrawn, so an allow-always given later still makes its grant; deny it instead.
      method: 'POST',
      path: '/api/approvals/:id/revoke',
      access: 'approvals.resolve',
      handle: async ({ params, caller, body }) => {
        const by = approverOf(caller!, await body());
        const grant = `approval-${params.id!}`;
        const outcome = await api.invoker.revokeGrant(grant, by);
        if (outcome === 'not-found') return failure(404, 'not_found', { message: 'no active grant for this approval' });
        return reply(200, { id: params.id!, grant, outcome });
      },
    },
  ];
}
