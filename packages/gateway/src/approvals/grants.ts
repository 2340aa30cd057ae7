// Allow-always as policy: approving an action "always" adds a Cedar permit to
// the active policy set, in its own file `grants/approval-ID.cedar`, with an
// @id naming the approval. It permits exactly that action (its digest, as
// `context.digest`); forbids still win over it. Like any policy it is listed
// with the set, goes live through the same atomic activation (no restart),
// and is withdrawn by removing its file.
import type { AuditEventInput } from '@corral/audit';
import { GatewayError } from '../errors.ts';
import type { Approval, ApprovalStore } from './store.ts';
import { compileCandidateOffThread, PolicyControl } from '../http/policy-control.ts';

export const GRANTS_DIR = 'grants';

/** The policy file of an approval's grant, relative to the policy directory. */
export function grantFile(approvalId: string): string {
  return `${GRANTS_DIR}/approval-${approvalId}.cedar`;
}

/** The approval id a grant is named after: `approval-ID` or the bare approval id (a UUID); undefined for anything else. */
export function grantApprovalId(text: string): string | undefined {
  return /^(?:approval-)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(text)?.[1];
}

/** The audit record of a withdrawn grant: who withdrew it, and whether it was withheld before it was made (the gateway and `corral approvals revoke` record the same). */
export function grantRevokedEvent(approvalId: string, by: string, outcome: Exclude<GrantRevocation, 'not-found'>): AuditEventInput {
  return { actor: { kind: 'human', id: by }, action: 'policy.grant.revoke', resource: { kind: 'policy', id: `approval-${approvalId}` }, outcome: { status: 'success' }, details: { approval: approvalId, file: grantFile(approvalId), ...(outcome === 'withheld' ? { withheldBeforeMade: true } : {}) } };
}

/** What withdrawing a grant did: removed it from the set, withheld it before it was made, or found none. */
export type GrantRevocation = 'revoked' | 'withheld' | 'not-found';

/**
 * Withdraws an approval's grant from the policy directory `dir`, from another
 * process than the gateway (`corral approvals revoke`): a running gateway sees
 * the directory's link swapped and decides with the set without it from its
 * next decision. Throws as PolicyGrants.remove, and POLICY_* when the
 * directory does not load.
 */
export function revokeGrantIn(dir: string, approvals: ApprovalStore, approvalId: string): Promise<GrantRevocation> {
  return removeGrant(PolicyControl.open(dir), approvals, approvalId);
}

/**
 * Withdraws an approval's grant in the approvals store first — from then on
 * no decision counts it, and a gateway making it (maybe in another process)
 * takes it back — then removes it from the active set (read afresh, so a
 * change made by another process is kept) through the activation's
 * compare-and-swap. A grant not made yet is withheld (an allow-always
 * approval resolved by `corral approvals approve` makes its grant when its
 * run spends it, maybe minutes later: found missing then, it was made all the
 * same), and so is one a gateway is making now (`withheld`: its maker removes
 * it). A set changed meanwhile is read again. Throws the policy package's
 * POLICY_* when the set without the grant does not validate,
 * GATEWAY_CONFLICT when the set keeps changing under it, GATEWAY_BUSY
 * (retryable, nothing withdrawn) when another process holds gateway.db past
 * the wait.
 */
async function removeGrant(control: PolicyControl, approvals: ApprovalStore, approvalId: string): Promise<GrantRevocation> {
  // While a corral command holds gateway.db this waits with timers, so a gateway revoking goes on serving everyone else.
  const withdrawal = await approvals.withdrawGrantWhenFree(approvalId);
  const name = grantFile(approvalId);
  for (let attempt = 0; attempt < 3; attempt++) {
    const active = control.refresh();
    if (!active.files.some((f) => f.name === name)) return withdrawal === 'none' ? 'not-found' : 'withheld';
    if (await control.activate(await compileCandidateOffThread(active.files.filter((f) => f.name !== name), { urgent: true }), active.hash)) return 'revoked';
  }
  throw new GatewayError('GATEWAY_CONFLICT', 'the policy set kept changing while the grant was being removed');
}

/** The Cedar text of the grant for an allowed allow-always approval. */
export function grantPolicy(approval: Approval): string {
  const principal = cedarEntity(String(approval.action.principal ?? ''));
  const command = String(approval.action.command ?? '');
  const what = Array.isArray(approval.action.argv) ? approval.action.argv : approval.action.params;
  const approvers = approval.approvers.join(', ');
  return [
    `// Allowed always by ${printable(approvers)} at ${new Date(approval.resolvedAtMs ?? 0).toISOString()} (approval ${approval.id}).`,
    `// Permits exactly one action on node ${printable(String(approval.action.nodeId ?? ''))}: ${printable(command)} ${printable(JSON.stringify(what ?? null))}`,
    `// Withdraw it with exec.approval.grants.revoke (grantId approval-${approval.id}) or by removing this file from the set.`,
    `@id(${JSON.stringify(`approval-${approval.id}`)})`,
    `@reason(${JSON.stringify(printable(`allowed always by ${approvers}`))})`,
    `permit (principal == ${principal}, action == Action::${JSON.stringify(command)}, resource)`,
    grantCondition(approval.digest),
    '',
  ].join('\n');
}

/** The grants in a policy directory's active set, kept as policy files through a PolicyControl; `approvals` remembers which were made. */
export class PolicyGrants {
  readonly #control: PolicyControl;
  readonly #approvals: ApprovalStore;
  /** Grants being added by this process: asked again meanwhile (its run, as it resolves), the answer is that add's. */
  readonly #adding = new Map<string, Promise<boolean>>();
  #index: { hash: string; byDigest: Map<string, string> } | undefined;

  constructor(control: PolicyControl, approvals: ApprovalStore) {
    this.#control = control;
    this.#approvals = approvals;
  }

  /**
   * Adds the grant of an allowed (or used) allow-always approval to the
   * active set (read afresh, so a change made by another process is kept) and
   * activates it through the compare-and-swap; returns whether the grant is
   * active. A grant is made once: one made before and withdrawn since is not
   * made again (false). A set changed meanwhile is read again. Throws the
   * policy package's POLICY_* when the set with the grant does not validate,
   * GATEWAY_CONFLICT when the set keeps changing under it, GATEWAY_BUSY
   * (retryable, not made) when another process holds gateway.db past the wait.
   */
  add(approval: Approval): Promise<boolean> {
    // An approval that expired or was denied on the way to its quorum may hold allow-always as its weakest allow so far.
    if ((approval.status !== 'allowed' && approval.status !== 'used') || approval.decision !== 'allow-always') return Promise.resolve(false);
    const under = this.#adding.get(approval.id);
    if (under) return under;
    const adding = this.#add(approval).finally(() => this.#adding.delete(approval.id));
    this.#adding.set(approval.id, adding);
    return adding;
  }

  async #add(approval: Approval): Promise<boolean> {
    const name = grantFile(approval.id);
    if (this.#control.refresh().files.some((f) => f.name === name)) return true;
    if (!(await this.#approvals.claimGrantWhenFree(approval.id))) return false;
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const active = this.#control.refresh();
        if (active.files.some((f) => f.name === name)) return true;
        const candidate = await compileCandidateOffThread([...active.files, { name, text: grantPolicy(approval) }], { urgent: true });
        // Withdrawn meanwhile (by `corral approvals revoke` in another process, which found it not made yet): never made.
        if (this.#approvals.grantWithdrawn(approval.id)) return false;
        if (await this.#control.activate(candidate, active.hash)) {
          // Withdrawn between that look and the swap: taken back at once (no decision counted it meanwhile: covering() asks the store).
          if (!this.#approvals.grantWithdrawn(approval.id)) return true;
          await removeGrant(this.#control, this.#approvals, approval.id);
          return false;
        }
      }
      throw new GatewayError('GATEWAY_CONFLICT', 'the policy set kept changing while the grant was being added');
    } catch (error) {
      // A claim that cannot be given back (gateway.db held past the wait) leaves the grant unmade: less is allowed, never more.
      await this.#approvals.releaseGrantWhenFree(approval.id).catch(() => {});
      throw error;
    }
  }

  /**
   * Removes an approval's grant from the active set, or withholds it: see
   * removeGrant. A grant this process is adding is waited for first: found
   * missing mid-way, it would be reported absent and then made.
   */
  async remove(approvalId: string): Promise<GrantRevocation> {
    await this.#adding.get(approvalId)?.catch(() => false);
    return removeGrant(this.#control, this.#approvals, approvalId);
  }

  /**
   * Whether the policies that allowed a decision are all grants withdrawn
   * since (in another process, their files still in the set for a moment):
   * then nothing allows it any more.
   */
  allWithdrawn(policies: readonly string[]): boolean {
    return policies.length > 0 && policies.every((p) => p.startsWith('approval-') && this.#approvals.grantWithdrawn(grantApprovalId(p) ?? ''));
  }

  /** The policy id of an active grant for exactly this digest, if any and not withdrawn (its file may outlive a withdrawal made in another process for a moment). */
  covering(digest: string): string | undefined {
    const active = this.#control.active();
    if (this.#index?.hash !== active.hash) {
      const byDigest = new Map<string, string>();
      for (const f of active.files) {
        const m = /^grants\/approval-([^/]+)\.cedar$/.exec(f.name);
        const d = GRANT_CONDITION.exec(f.text);
        if (m && d) byDigest.set(d[1]!, `approval-${m[1]}`);
      }
      this.#index = { hash: active.hash, byDigest };
    }
    const grant = this.#index.byDigest.get(digest);
    return grant === undefined || this.#approvals.grantWithdrawn(grant.slice('approval-'.length)) ? undefined : grant;
  }
}

/** The condition of a grant's permit, on a line of its own: exactly one action digest. */
function grantCondition(digest: string): string {
  return `when { context has digest && context.digest == ${JSON.stringify(digest)} };`;
}

/**
 * The digest a grant's permit matches, read from its condition line alone:
 * the comments above it quote approvers' names, which may spell another
 * `context.digest == "…"`.
 */
const GRANT_CONDITION = /^when \{ context has digest && context\.digest == "([0-9a-f]{64})" \};$/m;

/** `Agent::invoice-bot` (how approvals name principals) as a Cedar entity literal. */
function cedarEntity(ref: string): string {
  const at = ref.indexOf('::');
  const type = ref.slice(0, at);
  if (!['Agent', 'Human', 'Node'].includes(type)) throw new GatewayError('GATEWAY_INTERNAL', 'an approval names no principal');
  return `${type}::${JSON.stringify(ref.slice(at + 2))}`;
}

/** Text safe inside a Cedar comment or string: printable ASCII only, so nothing can end the comment. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 500);
}
