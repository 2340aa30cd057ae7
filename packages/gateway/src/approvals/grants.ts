// Allow-always as policy: approving an action "always" adds a Cedar permit to
// the active policy set, in its own file `grants/approval-ID.cedar`, with an
// @id naming the approval. It permits exactly that action (its digest, as
// `context.digest`); forbids still win over it. Like any policy it is listed
// with the set, goes live through the same atomic activation (no restart),
// and is withdrawn by removing its file. It stands only once the audit log
// has its record: one the log refuses is taken back (see PolicyGrants.add).
import type { AuditEventInput } from '@corral/audit';
import type { Decider } from '@corral/policy';
import { GatewayError } from '../errors.ts';
import type { Approval, ApprovalStore } from './store.ts';
import { scriptBoundByContent } from './bound-script.ts';
import { codeOf, PolicyControl, type PolicyFile, type RecordedActivation } from '../http/policy-control.ts';
import type { RunDecision } from '../exec/decide.ts';

export const GRANTS_DIR = 'grants';

/** The policy file of an approval's grant, relative to the policy directory. */
export function grantFile(approvalId: string): string {
  return `${GRANTS_DIR}/approval-${approvalId}.cedar`;
}

/** The approval id a grant is named after: `approval-ID` or the bare approval id (a UUID); undefined for anything else. */
export function grantApprovalId(text: string): string | undefined {
  return /^(?:approval-)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(text)?.[1];
}

/**
 * The audit record of a withdrawn grant: who withdrew it, and whether it was
 * withheld before it was made (the gateway and `corral approvals revoke`
 * record the same). `left`: a grant withdrawn with its approval whose file
 * could not be taken out of the set (`code`: why) — recorded as a failure;
 * the file counts for no decision, and `corral approvals revoke` removes it.
 */
export function grantRevokedEvent(approvalId: string, by: string, outcome: Exclude<GrantRevocation, 'not-found'> | 'left', code?: string): AuditEventInput {
  const details = { approval: approvalId, file: grantFile(approvalId), ...(outcome === 'withheld' ? { withheldBeforeMade: true } : {}), ...(outcome === 'left' ? { fileLeft: true } : {}) };
  return { actor: { kind: 'human', id: by }, action: 'policy.grant.revoke', resource: { kind: 'policy', id: `approval-${approvalId}` }, outcome: outcome === 'left' ? { status: 'failure', detail: code ?? 'unknown' } : { status: 'success' }, details };
}

/**
 * What became of the grant of an approval withdrawn: its file `revoked` (out
 * of the set; `code` when the log refused the revocation's record), or
 * `failed` (`code`): the file stays in the set and counts for no decision —
 * `corral approvals revoke` removes it.
 */
export interface GrantWithdrawal {
  id: string;
  status: 'revoked' | 'failed';
  code?: string;
}

/**
 * Takes the files of withdrawn approvals' grants out of the set with
 * `remove` (removeGrants' answer, one per id: the gateway's PolicyGrants or
 * revokeGrantsIn) and records each as policy.grant.revoke with `record`,
 * all together (a suspension's many grants share a commit) — or, when
 * `remove` throws, records that each file was left, with the error's code
 * (the withdrawals stand: no decision counts the grants). `record` resolves
 * to the code the log refused each event with, if it did, and never
 * rejects. What became of each, in the order of `ids` (undefined: it had no
 * grant).
 */
export async function takeOutWithdrawnGrants(ids: readonly string[], by: string, remove: () => Promise<GrantRevocation[]>, record: (events: AuditEventInput[]) => Promise<Array<string | undefined>>): Promise<Array<GrantWithdrawal | undefined>> {
  if (ids.length === 0) return [];
  let outcomes: GrantRevocation[];
  try {
    outcomes = await remove();
  } catch (error) {
    const code = codeOf(error);
    await record(ids.map((id) => grantRevokedEvent(id, by, 'left', code)));
    return ids.map((id) => ({ id: `approval-${id}`, status: 'failed', code }));
  }
  // The positions of the grants withdrawn (revoked, or withheld before they were made): each is recorded.
  const taken = ids.flatMap((_, i) => (outcomes[i] === 'not-found' ? [] : [i]));
  const refused = await record(taken.map((i) => grantRevokedEvent(ids[i]!, by, outcomes[i] as Exclude<GrantRevocation, 'not-found'>)));
  const results: Array<GrantWithdrawal | undefined> = ids.map(() => undefined);
  taken.forEach((i, k) => {
    const code = refused[k];
    results[i] = { id: `approval-${ids[i]}`, status: 'revoked', ...(code !== undefined ? { code } : {}) };
  });
  return results;
}

/**
 * What adding a grant came to: `made` (in the set and recorded, now or
 * before), `not-made` (withdrawn before it was made, or no allow-always), or
 * made and refused by the audit log (`code`: the refusal's): `taken-back` (out
 * of the set in force: it allowed nothing) or `unrecorded` (still in the set,
 * which decides nothing while it is in force; the grant counts for no
 * decision).
 */
export type GrantAddition = { status: 'made' | 'not-made' } | { status: 'taken-back' | 'unrecorded'; code: string };

/** What withdrawing a grant did: removed it from the set, withheld it before it was made, or found none. */
export type GrantRevocation = 'revoked' | 'withheld' | 'not-found';

/**
 * Withdraws approvals' grants from the policy directory `dir`, from another
 * process than the gateway (`corral approvals revoke`, an agent's
 * suspension): a running gateway sees the directory's link swapped and
 * decides with the set without them from its next decision. What became of
 * each, in the order of `approvalIds`. Throws as PolicyGrants.remove, and
 * POLICY_* when the directory does not load.
 */
export function revokeGrantsIn(dir: string, approvals: ApprovalStore, approvalIds: readonly string[]): Promise<GrantRevocation[]> {
  return removeGrants(PolicyControl.open(dir), approvals, approvalIds);
}

/** revokeGrantsIn for one approval's grant. */
export async function revokeGrantIn(dir: string, approvals: ApprovalStore, approvalId: string): Promise<GrantRevocation> {
  return (await revokeGrantsIn(dir, approvals, [approvalId]))[0]!;
}

/**
 * Withdraws approvals' grants in the approvals store first — from then on
 * no decision counts them, and a gateway making one (maybe in another
 * process) takes it back — then removes them from the active set (read
 * afresh, so a change made by another process is kept) in one activation
 * through its compare-and-swap: a suspension withdrawing many grants
 * compiles the set once, not once a grant. A grant not made yet is withheld
 * (an allow-always approval resolved by `corral approvals approve` makes its
 * grant when its run spends it, maybe minutes later: found missing then, it
 * was made all the same), and so is one a gateway is making now
 * (`withheld`: its maker removes it). A set changed meanwhile is read again.
 * Throws the policy package's POLICY_* when the set without the grants does
 * not validate, GATEWAY_CONFLICT when the set keeps changing under it,
 * GATEWAY_BUSY (retryable, nothing withdrawn) when another process holds
 * gateway.db past the wait, GATEWAY_APPROVAL_PENDING (nothing withdrawn)
 * when one of the approvals is still pending.
 */
async function removeGrants(control: PolicyControl, approvals: ApprovalStore, approvalIds: readonly string[]): Promise<GrantRevocation[]> {
  // While a corral command holds gateway.db this waits with timers, so a gateway revoking goes on serving everyone else.
  const withdrawals = await approvals.withdrawGrantsWhenFree(approvalIds);
  const names = new Set(approvalIds.map(grantFile));
  for (let attempt = 0; attempt < 3; attempt++) {
    const active = await control.refreshOffThread();
    const present = new Set(active.files.filter((f) => names.has(f.name)).map((f) => f.name));
    if (present.size === 0 || (await control.activate(await control.compileOffThread(active.files.filter((f) => !present.has(f.name)), { urgent: true }), active.hash))) {
      return approvalIds.map((id, i) => (present.has(grantFile(id)) ? 'revoked' : withdrawals[i] === 'none' ? 'not-found' : 'withheld'));
    }
  }
  throw new GatewayError('GATEWAY_CONFLICT', `the policy set kept changing while ${approvalIds.length === 1 ? 'the grant was' : 'the grants were'} being removed`);
}

/**
 * The Cedar text of the grant for an allowed allow-always approval. For a
 * run of one script its node bound by content, the comment says which file
 * and content: its digest, which the permit matches, covers them.
 */
export function grantPolicy(approval: Approval): string {
  const principal = cedarEntity(String(approval.action.principal ?? ''));
  const command = String(approval.action.command ?? '');
  const what = Array.isArray(approval.action.argv) ? approval.action.argv : approval.action.params;
  const approvers = approval.approvers.join(', ');
  const script = scriptBoundByContent(approval.action);
  return [
    `// Allowed always by ${printable(approvers)} at ${new Date(approval.resolvedAtMs ?? 0).toISOString()} (approval ${approval.id}).`,
    `// Permits exactly one action on node ${printable(String(approval.action.nodeId ?? ''))}: ${printable(command)} ${printable(JSON.stringify(what ?? null))}`,
    ...(script ? [`// Bound to the script ${printable(script.path)} sha256:${script.sha256}: once it holds anything else, the run is asked for again.`] : []),
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
  readonly #adding = new Map<string, Promise<GrantAddition>>();
  /** Grants in the set whose record is not yet durable: no decision counts them. */
  readonly #recording = new Set<string>();
  /** Grants this process made whose record the audit log refused, by approval id: no decision counts them, and asked again, this is the answer. */
  readonly #unrecorded = new Map<string, GrantAddition>();
  #index: { hash: string; byDigest: Map<string, string> } | undefined;

  constructor(control: PolicyControl, approvals: ApprovalStore) {
    this.#control = control;
    this.#approvals = approvals;
  }

  /**
   * Adds the grant of an allowed (or used) allow-always approval to the
   * active set (read afresh, so a change made by another process is kept)
   * through the compare-and-swap, and records it with `record` (the audit
   * append of the grant made) before it counts for any decision. A grant is
   * made once: one made before and withdrawn since is not made again. A set
   * changed meanwhile is read again. Asked again for the same approval (its
   * run, as it resolves), the answer is the first ask's; `record` is called
   * once.
   *
   * When `record` rejects, the grant never stands: from that moment the set
   * holding it decides nothing (PolicyControl.activateRecorded: every request
   * is denied) while the set without it is put back, the grant is withdrawn
   * in gateway.db (no process counts it, nor this one after a restart, and
   * it is never made again) and counted for no decision here, and this
   * resolves 'taken-back'. When it cannot be taken out of the set in force
   * (another process holds the activation lock, the directory cannot be
   * written), it resolves 'unrecorded': the set holding it stays in force
   * denying every request — in every process on the policy directory, and
   * after a restart: the set is marked unrecorded on disk — (its status says
   * `unrecorded`) until a set is activated and recorded or the grant revoked.
   *
   * Throws the policy package's POLICY_* when the set with the grant does
   * not validate, GATEWAY_CONFLICT when the set keeps changing under it or
   * another process holds its activation lock past the wait, GATEWAY_BUSY
   * (retryable) when another process holds gateway.db past the wait: then
   * nothing was made.
   */
  add(approval: Approval, record: () => Promise<void>): Promise<GrantAddition> {
    // An approval that expired or was denied on the way to its quorum may hold allow-always as its weakest allow so far.
    if ((approval.status !== 'allowed' && approval.status !== 'used') || approval.decision !== 'allow-always') return Promise.resolve({ status: 'not-made' });
    const under = this.#adding.get(approval.id);
    if (under) return under;
    const adding = this.#add(approval, record).finally(() => this.#adding.delete(approval.id));
    this.#adding.set(approval.id, adding);
    return adding;
  }

  async #add(approval: Approval, record: () => Promise<void>): Promise<GrantAddition> {
    const id = approval.id;
    const name = grantFile(id);
    const unrecorded = this.#unrecorded.get(id);
    if (unrecorded) return unrecorded;
    if (this.#approvals.grantWithdrawn(id)) return { status: 'not-made' };
    if ((await this.#control.refreshOffThread()).files.some((f) => f.name === name)) return { status: 'made' };
    if (!(await this.#approvals.claimGrantWhenFree(id))) return { status: 'not-made' };
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const active = await this.#control.refreshOffThread();
        if (active.files.some((f) => f.name === name)) return { status: 'made' };
        const candidate = await this.#control.compileOffThread([...active.files, { name, text: grantPolicy(approval) }], { urgent: true });
        // Withdrawn meanwhile (by `corral approvals revoke` in another process, which found it not made yet): never made.
        if (this.#approvals.grantWithdrawn(id)) return { status: 'not-made' };
        /** The code of the audit log's refusal of its record, once refused. */
        const refused: { code?: string } = {};
        // Counted for no decision until its record is durable.
        this.#recording.add(id);
        let activation: RecordedActivation;
        try {
          activation = await this.#control.activateRecorded(candidate, active.hash, async () => {
            // Withdrawn between that look and the swap: taken back below, never made (its revoke is what is recorded).
            if (this.#approvals.grantWithdrawn(id)) return;
            try {
              await record();
            } catch (error) {
              // From here on, nothing in this process counts it, whatever becomes of its file.
              refused.code = codeOf(error);
              this.#unrecorded.set(id, { status: 'unrecorded', code: refused.code });
              throw error;
            }
          });
        } catch (error) {
          // The swap itself failed: nothing was made (the claim is given back below).
          if (refused.code === undefined) throw error;
          return await this.#takeBack(id, refused.code);
        } finally {
          this.#recording.delete(id);
        }
        if (refused.code !== undefined) return await this.#takeBack(id, refused.code);
        if (activation === 'stale') continue;
        // Withdrawn between that look and the swap: taken back at once (no decision counted it meanwhile).
        if (!this.#approvals.grantWithdrawn(id)) return { status: 'made' };
        await removeGrants(this.#control, this.#approvals, [id]);
        return { status: 'not-made' };
      }
      throw new GatewayError('GATEWAY_CONFLICT', 'the policy set kept changing while the grant was being added');
    } catch (error) {
      // A claim that cannot be given back (gateway.db held past the wait) leaves the grant unmade: less is allowed, never more.
      await this.#approvals.releaseGrantWhenFree(id).catch(() => {});
      throw error;
    }
  }

  /**
   * Takes back a grant swapped into the set whose record was refused (code
   * `code`); its set was put back or left deciding nothing (activateRecorded).
   * Withdrawn in gateway.db, for good, so that no process counts it and no
   * ask makes it again; then taken out of the set in force should it still
   * be there (put back failed, or another process activated a set holding
   * it meanwhile). Whether that worked is remembered: asked again, the
   * answer is the same.
   */
  async #takeBack(id: string, code: string): Promise<GrantAddition> {
    // While another process holds gateway.db past the wait, only this process knows (#unrecorded): it counts the grant for nothing.
    await this.#approvals.withdrawGrantWhenFree(id).catch(() => undefined);
    const name = grantFile(id);
    let inForce = true;
    try {
      for (let attempt = 0; attempt < 3 && inForce; attempt++) {
        const active = await this.#control.refreshOffThread();
        inForce = active.files.some((f) => f.name === name);
        if (inForce && (await this.#control.activate(await this.#control.compileOffThread(active.files.filter((f) => f.name !== name), { urgent: true }), active.hash))) inForce = false;
      }
    } catch {
      // Left in the set: the set decides nothing while it is in force (activateRecorded), and no decision here counts the grant.
    }
    const outcome: GrantAddition = { status: inForce ? 'unrecorded' : 'taken-back', code };
    this.#unrecorded.set(id, outcome);
    return outcome;
  }

  /**
   * Removes approvals' grants from the active set in one activation, or
   * withholds them: see removeGrants. A grant this process is adding is
   * waited for first: found missing mid-way, it would be reported absent
   * and then made.
   */
  async removeAll(approvalIds: readonly string[]): Promise<GrantRevocation[]> {
    for (const id of approvalIds) await this.#adding.get(id)?.catch(() => false);
    return removeGrants(this.#control, this.#approvals, approvalIds);
  }

  /** removeAll for one approval's grant. */
  async remove(approvalId: string): Promise<GrantRevocation> {
    return (await this.removeAll([approvalId]))[0]!;
  }

  /**
   * Whether the policies that allowed a decision are all grants withdrawn
   * since (in another process, their files still in the set for a moment),
   * or grants whose record is not durable (being recorded, or refused by
   * the audit log): then nothing allows it.
   */
  allWithdrawn(policies: readonly string[]): boolean {
    return policies.length > 0 && policies.every((p) => p.startsWith('approval-') && !this.#counts(grantApprovalId(p) ?? ''));
  }

  /**
   * `decider` with the grants no decision may count taken out of its
   * answers: a request whose allow only such grants gave (allWithdrawn) is
   * a deny naming them, with no policy behind it (no forbid). Each request
   * is judged on its own, so a command another permit allows does not carry
   * the withdrawn grant for another command of the same run.
   */
  counting(decider: Decider): Decider {
    return {
      decideEach: (input, resources) =>
        decider.decideEach(input, resources).map((d) => (d.decision === 'allow' && this.allWithdrawn(d.policies) ? { ...d, decision: 'deny', policies: [], reason: `the allow-always grant that allowed it was withdrawn (${d.policies.join(', ')})` } : d)),
    };
  }

  /** Whether a decision may count approval `id`'s grant (its file in the set): recorded, and not withdrawn. */
  #counts(id: string): boolean {
    return !this.#recording.has(id) && !this.#unrecorded.has(id) && !this.#approvals.grantWithdrawn(id);
  }

  /**
   * The policy id of an active grant for exactly this digest, if any,
   * recorded and not withdrawn (its file may outlive a withdrawal made in
   * another process for a moment). None while a set another process
   * activated is being compiled off the thread (PolicyControl.ready): its
   * grants are not known yet, and those of the set it replaces no longer
   * count; `add` waits for it and finds a grant it holds made.
   */
  covering(digest: string): string | undefined {
    // Compiled here, a large set would stall every connection for as long.
    if (this.#control.ready() !== undefined) return undefined;
    const active = this.#control.active();
    if (this.#index?.hash !== active.hash) this.#index = { hash: active.hash, byDigest: grantsByDigest(active.files) };
    const grant = this.#index.byDigest.get(digest);
    return grant === undefined || !this.#counts(grant.slice('approval-'.length)) ? undefined : grant;
  }
}

/** The grants among a set's files (`grants/approval-ID.cedar`), by the action digest each permits: `approval-ID`. */
export function grantsByDigest(files: readonly PolicyFile[]): Map<string, string> {
  const byDigest = new Map<string, string>();
  for (const f of files) {
    const m = /^grants\/approval-([^/]+)\.cedar$/.exec(f.name);
    const d = GRANT_CONDITION.exec(f.text);
    if (m && d) byDigest.set(d[1]!, `approval-${m[1]}`);
  }
  return byDigest;
}

/**
 * The grants of a policy set (its files) that answer asks once it is in
 * force, by the digest of the action each is for: those whose approval is not
 * withdrawn (`approvals`, gateway.db; every grant when there is none to ask).
 * What replay judges a candidate with.
 */
export function standingGrants(files: readonly PolicyFile[], approvals: Pick<ApprovalStore, 'grantWithdrawn'> | undefined): (digest: string) => string | undefined {
  const grants = grantsByDigest(files);
  return (digest) => {
    const grant = grants.get(digest);
    return grant === undefined || approvals?.grantWithdrawn(grant.slice('approval-'.length)) === true ? undefined : grant;
  };
}

/**
 * A verdict once an allow-always grant for exactly its action answers it:
 * an ask becomes an allow by `grant` (a grant is a permit that an asking
 * policy outranks in Cedar's answer); anything else is as it was. What the
 * gateway decides, and what replay judges again.
 */
export function answeredByGrant(verdict: RunDecision, grant: string | undefined): RunDecision {
  if (grant === undefined || verdict.decision !== 'ask') return verdict;
  return { ...verdict, decision: 'allow', quorum: 0, policies: [grant], reason: `allowed always by ${grant}` };
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
