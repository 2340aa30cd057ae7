// The governed path for one node command: `node.invoke` from an operator (or
// an agent through the gateway) → canonical form → policy decision → approval
// when policy asks → `node.invoke.request` event to the node →
// `node.invoke.result` → the caller; each step appended to the audit log.
// Also the approval methods (`exec.approval.list|get|resolve`).
import { createHash, randomUUID } from 'node:crypto';
import {
  validateExecApprovalGetParams,
  validateExecApprovalGrantsRevokeParams,
  validateExecApprovalResolveParams,
  validateExecApprovalsNodeGetParams,
  validateExecApprovalsNodeSetParams,
  validateNodeInvokeParams,
  validateNodeInvokeResultParams,
} from '@openclaw/gateway-protocol';
import type { AuditEventInput } from '@corral/audit';
import type { Decider } from '@corral/policy';
import { answeredByGrant, grantApprovalId, grantRevokedEvent, takeOutWithdrawnGrants, type GrantAddition, type GrantWithdrawal, type PolicyGrants } from '../approvals/grants.ts';
import { RECEIPT_VALIDITY_MS, type ApprovalReceipt, type ReceiptSigner } from '../approvals/receipt.ts';
import { SCRIPT_PREVIEW_CAP, scriptPreviewOf } from '../approvals/script-preview.ts';
import { shownAction, tokenApprover, type ApprovalStore, type Approval, type ApprovalDecision, type ResolveOptions } from '../approvals/store.ts';
import { GatewayError, type WireError } from '../errors.ts';
import { codeOf } from '../http/policy-control.ts';
import type { NodeInventory, NodeRoute } from '../nodes/inventory.ts';
import { hasScope } from '../protocol/scopes.ts';
import type { Connection, Peer } from '../server/connection.ts';
import type { GatewayServer } from '../server/server.ts';
import { runsCode } from '../approvals/runs-code.ts';
import { boundOperand, scriptBoundByContent } from '../approvals/bound-script.ts';
import { actionDigest, canonicalRun, type CanonicalRun, type FileOperand } from './canonical.ts';
import { decideNamed, decideRun, deciderFor, nodeAsked, type GatewayDecider, type PrincipalRef, type RunDecision } from './decide.ts';
import { NodeAuditBudget, rateLimited, type NodeAuditLimits } from './node-audit-budget.ts';
import { nodeRefusal, refusalRecord } from './node-refusal.ts';
import type { OpenRun, OpenRuns } from './open-runs.ts';
import { governanceOf, RUN_COMMANDS, type Governance } from './rules.ts';
import { cut } from '../well-formed.ts';
import { UNMEASURED, type InvokeMeter, type RunFacts } from '../metrics/invoke-metrics.ts';

/**
 * Corral's addition to the node protocol: a node that declares this cap holds
 * a `system.run` whose params say `awaitRelease: true` until this event
 * `{ id, ok }` tells it the decision is durable (`ok: false`: it was not, run
 * nothing). It checks and plans the run meanwhile.
 */
export const INVOKE_RELEASE_EVENT = 'corral.invoke.release';

/**
 * Upstream's gateway → node event `{ invokeId, nodeId }`: stop the run of
 * that request. Sent when the caller of a `node.invoke` leaves before its
 * result; a node that does not know it ignores it, as any unknown event.
 */
export const INVOKE_CANCEL_EVENT = 'node.invoke.cancel';

/**
 * Corral's gateway → node event `{ agentId, name, reason }`: that agent was
 * suspended or retired; a Corral node stops its running containers and
 * reports them (`corral.agent.stopped`).
 */
export const AGENT_SUSPENDED_EVENT = 'corral.agent.suspended';

/** What a wait for a node's result settles with when its caller has left. */
const CALLER_LEFT = Symbol('caller-left');

/** Commands a raw `node.invoke` may never carry (upstream relays them through exec.approvals.node.*). */
const RESERVED = new Set(['system.execApprovals.get', 'system.execApprovals.set']);
const DEFAULT_INVOKE_TIMEOUT_MS = 30_000;
/** Runs one node may have authorized and not yet reported; a Corral node runs at most 32 at once. */
export const MAX_OPEN_RUNS = 64;
const MAX_INVOKE_TIMEOUT_MS = 24 * 3600_000;
/** Approvals one principal may have pending on one node: each is stored and put before every approver, so no requester may flood them. */
export const MAX_PENDING_APPROVALS = 32;
/** How many allowed approvals' records may be remembered (NodeInvoker#resolveRecords) before those no longer allowed are forgotten. */
const RESOLVE_RECORDS_SWEEP_AT = 256;

export interface InvokerOptions {
  approvals: ApprovalStore;
  /** Signs the receipt of every run an approval allowed (the node checks it; the audit log keeps it). */
  receipts: ReceiptSigner;
  /** Runs authorized for nodes serving another gateway and not yet reported (kept across restarts). */
  openRuns: OpenRuns;
  /** Where allow-always approvals become Cedar grants; without it allow-always allows the one run only. */
  grants?: PolicyGrants;
  /** The policy decision point; absent (or throwing) means deny. Each action is decided with what its `decider()` gives, waited for (a set another process activated, being compiled). */
  decider?: GatewayDecider;
  /** Where events go (packages/audit's `append`); a failed append fails the command closed. */
  audit?: (event: AuditEventInput) => Promise<unknown>;
  /** The human principal an operator connection acts as (default `Human::"operator"`). */
  operatorPrincipal?: (peer: Peer) => PrincipalRef;
  /** How long an approval may wait (default 15 min). */
  approvalTtlMs?: number;
  /** How often to look for an approval resolved by another process (the CLI); default 250 ms. */
  approvalPollMs?: number;
  /** How many records each node may cause on its own word (default NODE_AUDIT_LIMITS). */
  nodeAuditLimits?: NodeAuditLimits;
  /** Where decisions and timings are counted (the gateway's metrics); default none. */
  metrics?: InvokeMeter;
}

/**
 * What became of an allow-always approval's grant, as its approver is told
 * (the `grant` of a resolve's answer): `made` (it stands, recorded; `id` may
 * be another approval's grant for the same action), `not-made` (withdrawn
 * before it was made), `failed` (the set with it could not be activated:
 * `code`), or refused by the audit log (`code`): `taken-back` (it never
 * allowed anything) or `unrecorded` (its file stays in the set, which then
 * decides nothing: every request is denied until a set is activated or the
 * grant revoked). Short of `made` and `not-made`, the approval allows its
 * one waiting run only, as allow-once.
 */
export interface GrantView {
  id: string;
  status: GrantAddition['status'] | 'failed';
  code?: string;
}

/** A request whose caller left, or whose timeout passed, before its node answered (`why`): what its late result is recorded as. */
type Abandoned = { connection: Connection; nodeId: string; command: string; principal: PrincipalRef; approvalId: string | undefined; why: 'caller-left' | 'timeout'; trace: string; timer: NodeJS.Timeout; leftRecorded: Promise<unknown> };

/** A request sent to a node; the node's `node.invoke.result` is acknowledged once `acknowledgeAfter` settles. */
type Waiter = {
  connection: Connection;
  nodeId: string;
  resolve: (result: InvokeResult) => void;
  reject: (error: GatewayError) => void;
  timer: NodeJS.Timeout;
  acknowledgeAfter: Promise<unknown>;
  /** The agent (its name) the command runs for, if an agent asked. */
  agent?: string;
};

/** What an upstream node host's `system.run.prepare` answers with (the parts Corral checks; the rest is passed back as is). */
interface PreparedPlan {
  argv: string[];
  cwd: string | null;
  commandText: string;
  /** The script the run runs, bound by its content (upstream's and Corral's node give it; unchecked until boundOperand). */
  mutableFileOperand?: unknown;
}

interface InvokeResult {
  ok: boolean;
  payload?: unknown;
  payloadJSON?: string | null;
  error?: { code?: string; message?: string } | null;
}

export class NodeInvoker {
  readonly #server: GatewayServer;
  readonly #inventory: NodeInventory;
  readonly #options: InvokerOptions;
  readonly #waiting = new Map<string, Waiter>();
  /** Requests whose node was told to stop the run because its agent was stopped (stopRunsOf), while their result is awaited. */
  readonly #stopped = new Set<string>();
  /** What to do when each caller with a command at its node closes its connection. */
  readonly #onLeave = new Map<Connection, Set<() => void>>();
  /** Requests whose caller left before their node answered, oldest first: a result that still comes is recorded (see #abandon). */
  readonly #abandoned = new Map<string, Abandoned>();
  readonly #approvalListeners = new Map<string, Set<() => void>>();
  /** Grants being made for an approval (its resolve and its run ask together): one making, one set of records. */
  readonly #granting = new Map<string, Promise<GrantView>>();
  /** Approvals resolved here whose own record is not yet durable: their waiting runs hold until it is. */
  readonly #recording = new Set<string>();
  /**
   * What became of the allowing `approval.resolve` record of approvals this
   * gateway resolved: made durable here (`durable`), or refused by the audit
   * log (`refused`). Only a `durable` one vouches for its run. Any other
   * approval — resolved by another process (`corral approvals approve`, a
   * second gateway on this state directory, which commits an approval before
   * its record), before this gateway started, or forgotten here — is
   * `unconfirmed`: nothing here knows its record is durable. A run of one not
   * vouched for carries a decision record of its own, durable before it runs
   * (see #authorize).
   */
  readonly #resolveRecords = new Map<string, 'durable' | 'refused'>();
  /** Runs authorized for each node (corral.run.authorize) and not yet reported. */
  readonly #openRuns: OpenRuns;
  /** The records each node may cause on its own word; what it asks past that is refused and summarized. */
  readonly nodeAudit: NodeAuditBudget;
  readonly #metrics: InvokeMeter;

  constructor(server: GatewayServer, inventory: NodeInventory, options: InvokerOptions) {
    this.#server = server;
    this.#inventory = inventory;
    this.#options = options;
    this.#openRuns = options.openRuns;
    this.#metrics = options.metrics ?? UNMEASURED;
    this.nodeAudit = new NodeAuditBudget((event) => this.#audit(event), options.nodeAuditLimits);
    server.on('closed', (connection) => {
      const leaving = this.#onLeave.get(connection);
      this.#onLeave.delete(connection);
      for (const left of leaving ?? []) left();
      for (const [id, request] of this.#abandoned) {
        if (request.connection !== connection) continue;
        clearTimeout(request.timer);
        this.#abandoned.delete(id);
      }
      for (const [id, waiter] of this.#waiting) {
        if (waiter.connection !== connection) continue;
        this.#waiting.delete(id);
        clearTimeout(waiter.timer);
        waiter.reject(new GatewayError('GATEWAY_CONNECTION_CLOSED', 'the node disconnected mid-command', { wire: { code: 'UNAVAILABLE', message: 'node disconnected before it answered', details: { code: 'NODE_DISCONNECTED' } } }));
      }
    });
    this.#register();
  }

  /**
   * Resolves an approval (the HTTP API and the protocol come here; the CLI
   * writes the store) and wakes whoever waits for it. `approver` is the
   * authenticated human, as the caller established. An allow-always that
   * reaches its quorum becomes a Cedar grant at once, and the answer says
   * what became of it (`grant`, see GrantView): one the audit log did not
   * record never stands. A `reason` the
   * approver gave goes into the decision's own `approval.resolve` record
   * (details.reason), so the decision and why are recorded in one append,
   * and is the approval's `reason` when this decision settles it. While
   * another process (the CLI) holds gateway.db's write lock it waits with
   * timers, not inside SQLite, so every other connection is served
   * meanwhile. `authority` is who a signed-in approver counts as toward a
   * quorum, whatever name they are shown by (the store's authority());
   * `claimed` the address their provider sent, verified or not, which only
   * ever refuses them (the store's refuseOwnRequest).
   * Throws the store's GATEWAY_APPROVAL_*, GATEWAY_PARAMS_INVALID,
   * and GATEWAY_BUSY (retryable) when the lock is still held after `waitMs`.
   */
  async resolveApprovalWhenFree(id: string, decision: ApprovalDecision, approver: string, reason?: string, more: Omit<ResolveOptions, 'reason' | 'ownerOf' | 'withdraw'> = {}): Promise<Approval & { grant?: GrantView }> {
    // Four eyes: the owner of the agent that asked may deny its request, never allow it, however they reach the gateway.
    const ownerOf = (agent: string) => this.#server.identity.agents.find(agent)?.owner;
    const approval = await this.#options.approvals.resolveWhenFree(id, decision, approver, { ...more, ownerOf, ...(reason !== undefined ? { reason } : {}) });
    const grant = await this.#resolved(approval, decision, approver, reason);
    return grant ? { ...approval, grant } : approval;
  }

  /**
   * Takes back approval `id`, allowed and not yet spent, for `by` (with a
   * reason): it is denied, the run it waits for is refused, and its grant is
   * withdrawn with it: the answer's `grant` says what became of its file, when
   * it had one (see GrantWithdrawal). Recorded as approval.resolve (deny,
   * `withdrawn`). Throws what resolveApprovalWhenFree throws, and
   * GATEWAY_APPROVAL_PENDING for an approval not allowed yet (deny it instead).
   */
  async withdrawApprovalWhenFree(id: string, by: string, reason?: string, more: Pick<ResolveOptions, 'authority' | 'stillAllowed'> = {}): Promise<Approval & { grant?: GrantWithdrawal }> {
    const approval = await this.#options.approvals.resolveWhenFree(id, 'deny', by, { ...more, withdraw: true, ...(reason !== undefined ? { reason } : {}) });
    await this.#resolved(approval, 'deny', by, reason, true);
    const [grant] = await this.#removeWithdrawnGrants([id], by);
    return grant ? { ...approval, grant } : approval;
  }

  /**
   * Takes the files of withdrawn approvals' grants out of the set in one
   * activation, those that have one, and records each as
   * policy.grant.revoke — or, when they cannot be taken out, records that
   * each was left (the withdrawal stands: no decision counts them). What
   * became of each, in the order of `ids` (undefined: it had no file). Never
   * rejects: the withdrawals are already committed.
   */
  #removeWithdrawnGrants(ids: readonly string[], by: string): Promise<Array<GrantWithdrawal | undefined>> {
    return takeOutWithdrawnGrants(
      ids,
      by,
      async () => (await this.#options.grants?.removeAll(ids)) ?? ids.map(() => 'not-found'),
      (events) => Promise.all(events.map((event) => this.#audit(event).then(() => undefined, codeOf))),
    );
  }

  /**
   * The kill switch at the nodes, for an agent suspended or retired (by this
   * gateway's API, or by another process and found by the gateway's sweep):
   * every connected node is told (AGENT_SUSPENDED_EVENT: a Corral node stops
   * the agent's containers and reports them), and a node that does not know
   * that event — an upstream OpenClaw node host — is told to stop each of the
   * agent's commands it runs now (INVOKE_CANCEL_EVENT, as upstream's gateway
   * cancels an invoke). Their results, when they come, are recorded with
   * `details.stopped`. Returns how many commands were told to stop.
   */
  stopRunsOf(agent: { id: string; name: string }, reason: string): number {
    this.#server.broadcast(AGENT_SUSPENDED_EVENT, { agentId: agent.id, name: agent.name, reason }, (peer) => peer.role === 'node');
    let stopped = 0;
    for (const [invokeId, waiter] of this.#waiting) {
      if (waiter.agent !== agent.name || waiter.connection.peer?.caps.includes(INVOKE_RELEASE_EVENT)) continue;
      if (!waiter.connection.event(INVOKE_CANCEL_EVENT, { invokeId, nodeId: waiter.nodeId })) continue;
      this.#stopped.add(invokeId);
      stopped++;
    }
    return stopped;
  }

  /**
   * Withdraws every approval of `principal` that could still let a command
   * run (pending, or allowed and unspent), denied by `by` (an agent's
   * suspension) for `reason` (each approval's reason), and wakes whoever
   * waits for them. Returns their ids. `first` (the suspension itself) runs
   * in the same tick as the withdrawal, once gateway.db's write lock is held:
   * no approval is made between the two, and when it throws nothing is
   * withdrawn. The grants those allowed always made are withdrawn with them
   * (no decision counts them from then on); removeWithdrawnGrants takes their
   * files out of the set. While another process holds the lock it waits with timers;
   * throws GATEWAY_BUSY (retryable, nothing done) past the wait,
   * GATEWAY_PARAMS_INVALID for a reason the store refuses, what `first` throws.
   */
  async withdrawApprovalsOf(principal: PrincipalRef, by: string, reason?: string, first?: () => void): Promise<string[]> {
    const withdrawn = await this.#options.approvals.withdrawAllWhenFree(`${principal.type}::${principal.id}`, by, { ...(reason !== undefined ? { reason } : {}), ...(first ? { first } : {}) });
    for (const approval of withdrawn) this.#resolved(approval, 'deny', by, reason);
    return withdrawn.map((a) => a.id);
  }

  /**
   * Takes the files of the grants approvals `ids` made out of the set, all
   * in one activation, for `by`, once withdrawApprovalsOf has withdrawn them
   * (apart from it: an agent's suspension reaches its nodes first). Each is
   * recorded as withdrawApprovalWhenFree's is; never rejects.
   */
  async removeWithdrawnGrants(ids: readonly string[], by: string): Promise<void> {
    // One made (withdrawn now, but made) may have its file in the set; one never made has none.
    await this.#removeWithdrawnGrants(ids.filter((id) => this.#options.approvals.get(id).standingGrant !== null), by);
  }

  /** Records `approver`'s decision on `approval` (as it now stands) with its reason if any, makes an allow-always grant (resolving to what became of it), tells approvers, and wakes its waiting run once the record is durable. */
  #resolved(approval: Approval, decision: ApprovalDecision, approver: string, reason?: string, withdrawn = false): Promise<GrantView | undefined> {
    const { id } = approval;
    const details = { decision, status: approval.status, digest: approval.digest, approvers: approval.approvers, ...(withdrawn ? { withdrawn } : {}), ...(reason !== undefined ? { reason } : {}) };
    const recorded = this.#audit({ actor: { kind: 'human', id: approver }, action: 'approval.resolve', resource: { kind: 'approval', id }, decision: { effect: decision === 'deny' ? 'deny' : 'allow', approval: id }, details });
    // The approval went through whatever becomes of its grant: the answer says what did.
    const granting = approval.status === 'allowed' && approval.decision === 'allow-always' ? this.#grant(approval).catch((error: unknown): GrantView => ({ id: `approval-${id}`, status: 'failed', code: codeOf(error) })) : Promise.resolve(undefined);
    if (approval.status !== 'pending') {
      this.#metrics.resolved(decision);
      this.#server.broadcast('exec.approval.resolved', { id, decision: approval.decision, status: approval.status, ts: Date.now() }, (p) => hasScope(p.scopes, 'operator.approvals'));
      // The waiting run goes on once the approval's own record is durable. Should that append
      // fail, it goes on all the same: its decision record must then be durable before it runs (#authorize).
      this.#recording.add(id);
      const wakeAll = () => {
        this.#recording.delete(id);
        for (const wake of this.#approvalListeners.get(id) ?? []) wake();
      };
      const settled = (record: 'durable' | 'refused') => () => {
        if (approval.status === 'allowed') this.#rememberResolve(id, record);
        wakeAll();
      };
      void recorded.then(settled('durable'), settled('refused'));
    } else void recorded.catch(() => {});
    return granting;
  }

  /**
   * Remembers what became of allowed approval `id`'s own record (see
   * #resolveRecords). As they grow, those of approvals no longer allowed
   * (spent, expired, withdrawn), gone from gateway.db or unreadable now are
   * forgotten: a forgotten one counts as unconfirmed, so its run carries its
   * own record — never the other way round.
   */
  #rememberResolve(id: string, record: 'durable' | 'refused'): void {
    if (this.#resolveRecords.size >= RESOLVE_RECORDS_SWEEP_AT) {
      for (const known of this.#resolveRecords.keys()) {
        let allowed = false;
        try {
          allowed = this.#options.approvals.get(known).status === 'allowed';
        } catch {
          // Gone, or not readable now: forgetting it only adds a record to its run.
        }
        if (!allowed) this.#resolveRecords.delete(known);
      }
    }
    this.#resolveRecords.set(id, record);
  }

  /**
   * Withdraws an allow-always grant (`approval-ID`) from the active policy
   * set through its compare-and-swap, at once (the next decision asks again),
   * and records who did. Returns upstream's outcome. Throws GATEWAY_CONFLICT
   * when the set keeps changing under it.
   */
  async revokeGrant(grantId: string, by: string): Promise<'revoked' | 'not-found'> {
    const approvalId = grantApprovalId(grantId);
    if (approvalId === undefined) return 'not-found';
    const outcome = (await this.#options.grants?.remove(approvalId)) ?? 'not-found';
    if (outcome === 'not-found') return 'not-found';
    await this.#audit(grantRevokedEvent(approvalId, by, outcome));
    return 'revoked';
  }

  /**
   * Remembers a run this gateway told a node it may start, until the node
   * reports it. At most MAX_OPEN_RUNS per node: past that the oldest is
   * recorded as never reported and forgotten (a node that never reports
   * cannot grow the gateway's memory). Throws GATEWAY_INTERNAL when that
   * record is refused: the oldest then still waits, and this run is not opened.
   */
  async #openRun(nodeId: string, open: (runId: string) => Omit<OpenRun, 'at'>): Promise<{ runId: string; run: OpenRun }> {
    // Checked again after each record: another authorize of this node may have added a run meanwhile.
    while (this.#openRuns.count(nodeId) >= MAX_OPEN_RUNS) {
      const [oldestId, oldest] = this.#openRuns.ofNode(nodeId, 1)[0]!;
      // Unrecorded, it still waits and the run asked for now is not authorized.
      await this.#closeUnreported(nodeId, oldestId, oldest, 'newer runs of its node took its place');
    }
    const runId = randomUUID();
    const run: OpenRun = { ...open(runId), at: Date.now() };
    // At once while gateway.db's lock is free (no turn of the event loop); else waited for with timers.
    const putting = this.#openRuns.put(nodeId, runId, run);
    if (putting instanceof Promise) await putting;
    return { runId, run };
  }

  /**
   * Records a run its node will not report with an unknown outcome (the node
   * may well have run it), or `outcome` when the gateway knows it (one it
   * never allowed after all), and forgets it. Taken out first, so that a
   * report racing this record finds it gone rather than recording it twice;
   * a record the log refuses leaves it waiting, first in line again.
   */
  async #closeUnreported(nodeId: string, runId: string, run: OpenRun, because: string, outcome: AuditEventInput['outcome'] = { status: 'unknown', detail: 'not-reported' }): Promise<void> {
    if (!(await this.#openRuns.take(nodeId, runId))) return;
    try {
      const record = runRecord(nodeId, runId, run);
      await this.#audit({ ...record, actor: { kind: 'service', id: 'gateway' }, outcome, details: { ...record.details, because } });
    } catch (error) {
      await this.#openRuns.put(nodeId, runId, run);
      throw error;
    }
  }

  /**
   * Re-checks the pairing of the node on `connection` (see
   * NodeInventory.assertPaired). The runs of a node unpaired since are closed
   * as not reported: its reports are refused from now on.
   */
  async #assertPaired(connection: Connection, nodeId: string): Promise<void> {
    try {
      this.#inventory.assertPaired(connection);
    } catch (error) {
      await this.#closeRunsOf(nodeId);
      throw error;
    }
  }

  /**
   * Records the runs still waiting for a report from nodes no longer paired
   * (unpaired from the CLI, another process, while disconnected or quiet) as
   * not reported. The gateway calls it every few seconds and on start.
   */
  async closeRunsOfUnpaired(): Promise<void> {
    for (const nodeId of this.#openRuns.nodes()) if (this.#server.identity.nodes.find(nodeId)?.status !== 'paired') await this.#closeRunsOf(nodeId);
  }

  /** Records every run of `nodeId` still waiting for its report as not reported; one the log refuses waits for the next try. */
  async #closeRunsOf(nodeId: string): Promise<void> {
    for (const [runId, run] of this.#openRuns.ofNode(nodeId)) await this.#closeUnreported(nodeId, runId, run, 'its node was unpaired').catch(() => undefined);
  }

  /**
   * Adds an allow-always approval's grant to the policy set and records it
   * (PolicyGrants.add: one the log refuses is taken back, never left
   * standing); resolves to what became of it, undefined without grants.
   * Asked again while it is being made (its resolve and its run), the answer
   * is the same and nothing is recorded twice. A grant that cannot be added
   * is recorded as a failure; so, should the log take it, is one it refused
   * to record as made. Never rejects.
   */
  #grant(approval: Approval): Promise<GrantView | undefined> {
    const grants = this.#options.grants;
    if (!grants) return Promise.resolve(undefined);
    const covering = grants.covering(approval.digest);
    if (covering !== undefined) return Promise.resolve({ id: covering, status: 'made' });
    const under = this.#granting.get(approval.id);
    if (under) return under;
    const granting = this.#makeGrant(grants, approval).finally(() => this.#granting.delete(approval.id));
    this.#granting.set(approval.id, granting);
    return granting;
  }

  async #makeGrant(grants: PolicyGrants, approval: Approval): Promise<GrantView> {
    const id = `approval-${approval.id}`;
    // A grant for a run of one script is bound to what the file held: its record says which file and content.
    const script = scriptBoundByContent(approval.action);
    const record = (outcome: AuditEventInput['outcome'], more: Record<string, unknown> = {}): Promise<void> =>
      this.#audit({ actor: { kind: 'service', id: 'gateway' }, action: 'policy.grant', resource: { kind: 'policy', id }, decision: { effect: 'allow', approval: approval.id }, outcome, details: { digest: approval.digest, approvers: approval.approvers, ...(script ? { mutableFileOperand: { ...script } } : {}), ...more } });
    let added: GrantAddition;
    try {
      added = await grants.add(approval, () => record({ status: 'success' }));
    } catch (error) {
      const code = codeOf(error);
      await record({ status: 'failure', detail: code }).catch(() => undefined);
      return { id, status: 'failed', code };
    }
    if (added.status === 'taken-back' || added.status === 'unrecorded') {
      // The log refused the grant's record a moment ago: should it take this one, it says the grant does not stand.
      await record({ status: 'failure', detail: added.status }, { refused: added.code }).catch(() => undefined);
    }
    return { id, ...added };
  }

  #register(): void {
    const server = this.#server;
    server.method('node.invoke', {
      role: 'operator',
      scopes: ['operator.write'],
      validate: validateNodeInvokeParams,
      handler: (params, ctx) => {
        // The first run's request id: every record of the command carries it as their trace, and so does its trace.
        const id = randomUUID();
        return this.#metrics.invoke((params as InvokeParams).command, runTrace(id), () => this.#invoke(params as InvokeParams, ctx.peer, ctx.connection, id));
      },
    });
    server.method('node.invoke.result', {
      role: 'node',
      validate: validateNodeInvokeResultParams,
      handler: async (params, { connection, peer, server }) => {
        const p = params as { id: string; nodeId: string; ok: boolean; payload?: unknown; payloadJSON?: string | null; error?: { code?: string; message?: string } | null };
        const waiter = this.#waiting.get(p.id);
        const result: InvokeResult = { ok: p.ok, ...(p.payload !== undefined ? { payload: p.payload } : {}), ...(p.payloadJSON !== undefined ? { payloadJSON: p.payloadJSON } : {}), ...(p.error ? { error: p.error } : {}) };
        if (!waiter && p.nodeId === peer.deviceId && (await this.#lateResult(p.id, connection, peer.deviceId, result))) return { ok: true };
        // Only the node the request went to, on the connection it went to, may answer it.
        if (!waiter || waiter.connection !== connection || p.nodeId !== peer.deviceId) {
          // Said so in the log, and a node that keeps forging answers is cut off.
          server.unaskedAnswer(connection, 'node.invoke.result');
          return { ok: true, ignored: true };
        }
        this.#waiting.delete(p.id);
        clearTimeout(waiter.timer);
        waiter.resolve(result);
        await waiter.acknowledgeAfter.catch(() => undefined);
        return { ok: true };
      },
    });
    // A Corral node serving another gateway (upstream OpenClaw) asks here before it runs anything.
    server.method('corral.run.authorize', {
      role: 'node',
      handler: async (params, { connection, peer }) => {
        await this.#assertPaired(connection, peer.deviceId!);
        // Each is decided and recorded: a node asking faster than its budget is refused, nothing decided.
        if (!this.nodeAudit.admit(peer.deviceId!, 'corral.run.authorize')) throw rateLimited('too many runs asked for by this node');
        const p = (params ?? {}) as { command?: unknown; params?: unknown; agentId?: unknown; timeoutMs?: unknown; askHuman?: unknown; mutableFileOperand?: unknown; scriptPreview?: unknown };
        const command = p.command === 'system.run.prepare' ? 'system.run.prepare' : 'system.run';
        const { principal, stands } = typeof p.agentId === 'string' && p.agentId !== '' ? await this.#claimedAgent(p.agentId, peer.deviceId!, command) : { principal: { type: 'Node', id: peer.deviceId! } satisfies PrincipalRef, stands: () => true };
        const decided = await this.#assess(principal, peer.deviceId!, command, { kind: 'run' }, p.params);
        // The node's own policy asks a human for this run (it can only make the decision stricter).
        const asked = typeof p.askHuman === 'string' ? askedByNode(decided, p.askHuman) : decided;
        // Asked of a human, a run of one script is approved for what the file held when the node read it to ask.
        const assessed = asked.verdict.decision === 'ask' && command === 'system.run' ? await this.#boundByAskingNode(principal, peer.deviceId!, command, asked, p.mutableFileOperand, p.scriptPreview) : asked;
        const authorized = await this.#authorize(principal, peer.deviceId!, command, assessed, clampTimeout(typeof p.timeoutMs === 'number' ? p.timeoutMs : undefined), connection, stands);
        // This node runs as soon as it reads the answer: the decision must be durable first.
        if (authorized.unrecorded) await this.#audit(authorized.unrecorded);
        const run = assessed.run!;
        // Its report names this run: only what this gateway authorized is recorded as run. A prepare runs nothing to report.
        // An approval's receipt is issued for that run, as it is opened: the node takes it for that runId only, and only for a minute.
        const opened = command !== 'system.run' ? undefined : await this.#openRun(peer.deviceId!, (id) => ({ digest: assessed.digest, principal, ...(authorized.approvalId ? { approvalId: authorized.approvalId } : {}), ...(authorized.receiptFor ? { receipt: authorized.receiptFor(id) } : {}) }));
        // Allowed only for an agent still as it was when the node asked: one suspended meanwhile (while the set was compiled,
        // an approval awaited, the decision committed) has its run refused, and the run opened for it closed as never run.
        const withdrawn = withdrawal(stands, command, authorized.approvalId);
        if (withdrawn !== undefined) {
          if (opened) await this.#closeUnreported(peer.deviceId!, opened.runId, opened.run, 'its agent was suspended before the run was authorized', { status: 'failure', detail: withdrawn.why });
          throw withdrawn.error;
        }
        const receipt = opened?.run.receipt;
        // A run bound to its script says so: the node then runs the content it read, and nothing else.
        return { decision: 'allow', ...(opened ? { runId: opened.runId } : {}), digest: assessed.digest, argv: run.argv, cwd: run.cwd, env: run.env, ...(assessed.operand ? { mutableFileOperand: assessed.operand } : {}), ...(authorized.approvalId ? { approvalId: authorized.approvalId } : {}), ...(receipt ? { approvalReceipt: receipt } : {}) };
      },
    });
    // The key a Corral node pins to check the receipts of approved runs.
    server.method('corral.receipt.key', { role: 'node', handler: () => ({ keyId: this.#options.receipts.keyId, publicKey: this.#options.receipts.publicKeyPem }) });
    server.method('corral.run.report', {
      role: 'node',
      handler: async (params, { connection, peer }) => {
        await this.#assertPaired(connection, peer.deviceId!);
        const p = (params ?? {}) as { runId?: unknown; ok?: unknown; exitCode?: unknown; resultDigest?: unknown; error?: unknown };
        const nodeId = peer.deviceId!;
        const runId = typeof p.runId === 'string' ? p.runId : undefined;
        // Taken out before its record is written: a second report of it meanwhile is refused, never recorded twice.
        const taking = runId === undefined ? undefined : this.#openRuns.take(nodeId, runId);
        const run = taking instanceof Promise ? await taking : taking;
        if (!run) {
          // A report of a run this gateway never authorized for this node (or one already reported): its word alone, recorded as refused.
          // Past the node's budget it is refused all the same, unrecorded but counted in the node's summary.
          if (this.nodeAudit.admit(nodeId, 'node.report.refused')) await this.#audit({ actor: { kind: 'node', id: nodeId }, action: 'node.report.refused', resource: { kind: 'command', id: 'system.run' }, node: nodeId, outcome: { status: 'failure', detail: 'unknown-run' }, details: { ...(runId !== undefined ? { runId: cut(runId, 100) } : {}) } });
          throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: 'no run of this node waits for a report under this runId' });
        }
        try {
          await this.#audit({
            ...runRecord(nodeId, runId!, run),
            outcome: { status: p.ok === true ? 'success' : 'failure', ...(typeof p.exitCode === 'number' ? { exitCode: p.exitCode } : {}), ...(typeof p.error === 'string' ? { detail: cut(p.error, 200) } : {}) },
            ...(typeof p.resultDigest === 'string' && /^[0-9a-f]{64}$/.test(p.resultDigest) ? { context: { outputs: { result: `sha256:${p.resultDigest}` } } } : {}),
          });
        } catch (error) {
          // Unrecorded, the run still waits for its report (the node is told to retry), or is recorded as not reported.
          await this.#openRuns.put(nodeId, runId!, run);
          throw error;
        }
        return { ok: true };
      },
    });
    // A run the node refused on its own, before asking: recorded as the node's deny, on its word alone (checked, bounded, its budget).
    server.method('corral.run.refused', {
      role: 'node',
      handler: async (params, { connection, peer }) => {
        const nodeId = peer.deviceId!;
        await this.#assertPaired(connection, nodeId);
        const refusal = nodeRefusal(params);
        if (!this.nodeAudit.admit(nodeId, 'corral.run.refused')) throw rateLimited('too many refusals recorded for this node');
        // The agent as this gateway knows it, when this node may ask for it; any other is named as the node's claim, the node the actor.
        const agent = refusal.agentId !== undefined ? this.#server.identity.agents.find(refusal.agentId) : undefined;
        const granted = agent !== undefined && this.#server.identity.nodes.find(nodeId)?.agents?.includes(agent.id) === true;
        const record = refusalRecord(nodeId, granted ? { kind: 'agent', id: agent.name } : { kind: 'node', id: nodeId }, refusal);
        if (refusal.agentId !== undefined && !granted) record.details = { ...record.details, agent: refusal.agentId, ...(agent ? { agentGranted: false } : { agentKnown: false }) };
        await this.#audit(record);
        return { ok: true };
      },
    });
    server.method('exec.approvals.node.get', { role: 'operator', scopes: ['operator.admin'], validate: validateExecApprovalsNodeGetParams, handler: (params, { peer }) => this.#nodePolicy('get', params as { nodeId: string }, peer) });
    server.method('exec.approvals.node.set', { role: 'operator', scopes: ['operator.admin'], validate: validateExecApprovalsNodeSetParams, handler: (params, { peer }) => this.#nodePolicy('set', params as { nodeId: string; file?: unknown; baseHash?: unknown }, peer) });
    // A bounded page of the pending approvals, oldest first (each can carry 256 KiB): `limit` (1–1000, default 200) and `after` (a page's nextAfter).
    server.method('exec.approval.list', {
      role: 'operator',
      scopes: ['operator.approvals'],
      handler: (params) => {
        const { limit = 200, after = 0 } = (params ?? {}) as { limit?: unknown; after?: unknown };
        if (!Number.isSafeInteger(limit) || (limit as number) < 1 || (limit as number) > 1000) throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: 'limit must be a whole number from 1 to 1000' });
        if (!Number.isSafeInteger(after) || (after as number) < 0) throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: 'after must be the nextAfter of a page' });
        const page = this.#options.approvals.listPage({ status: 'pending', limit: limit as number, after: after as number });
        return { approvals: page.approvals.map(view), nextAfter: page.nextAfter };
      },
    });
    server.method('exec.approval.get', { role: 'operator', scopes: ['operator.approvals'], validate: validateExecApprovalGetParams, handler: (params) => view(this.#options.approvals.get((params as { id: string }).id)) });
    server.method('exec.approval.grants.revoke', {
      role: 'operator',
      scopes: ['operator.approvals'],
      validate: validateExecApprovalGrantsRevokeParams,
      handler: async (params, { peer }) => {
        if (peer.agent) throw wire('GATEWAY_ROLE_FORBIDDEN', { code: 'FORBIDDEN', message: 'an agent cannot change grants' });
        return { outcome: await this.revokeGrant((params as { grantId: string }).grantId, peer.deviceId ? `device:${peer.deviceId}` : 'operator') };
      },
    });
    server.method('exec.approval.resolve', {
      role: 'operator',
      scopes: ['operator.approvals'],
      validate: validateExecApprovalResolveParams,
      handler: async (params, { peer }) => {
        const p = params as { id: string; decision: string; reviewer?: { channel: string; accountId: string; senderId: string } };
        const approver = protocolApprover(peer, p.reviewer);
        try {
          return view(await this.resolveApprovalWhenFree(p.id, p.decision as ApprovalDecision, approver));
        } catch (error) {
          if (error instanceof GatewayError && !error.wire) throw new GatewayError(error.code, error.message, { wire: { code: 'INVALID_REQUEST', message: error.message } });
          throw error;
        }
      },
    });
  }

  /**
   * One governed command, `id` its first run's request id: every record of
   * the command carries that id as its trace (runTrace), a run sent again
   * because its node asked a human included.
   */
  async #invoke(params: InvokeParams, peer: Peer, caller: Connection, id: string): Promise<unknown> {
    if (RESERVED.has(params.command)) throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: `${params.command} is reserved; use exec.approvals.node.*` });
    const target = this.#routeFor(params.nodeId, params.command);
    const { node } = target;
    const timeoutMs = clampTimeout(params.timeoutMs);
    const principal = this.#principal(peer, params.command, params.params);
    const stands = this.#stands(peer);
    const governance = governanceOf(params.command);
    const trace = runTrace(id);
    this.#metrics.noted({ node: node.deviceId, principal: actor(principal).kind as RunFacts['principal'] });

    if (!governance) {
      this.#metrics.decided(params.command, 'deny');
      await this.#audit({ actor: actor(principal), action: 'node.invoke.decide', resource: { kind: 'command', id: cut(params.command, 100) }, node: node.deviceId, decision: { effect: 'deny', reason: 'no rule governs this command' }, details: { command: cut(params.command, 100) }, trace });
      throw denied(params.command, 'no rule governs this command');
    }
    if (governance.kind === 'read-only') this.#metrics.decided(params.command, 'allow');
    let assessed = governance.kind !== 'read-only' ? await this.#metrics.stage(params.command, 'decide', () => this.#assess(principal, node.deviceId, params.command, governance, params.params)) : undefined;
    // Asked of a human: a run of one script is approved for what that file holds now, read by its node before any approval is looked up.
    if (assessed?.verdict.decision === 'ask') assessed = await this.#boundToScript(target, principal, params.command, assessed, timeoutMs, caller);
    let authorized: Authorized = assessed ? await this.#authorize(principal, node.deviceId, params.command, assessed, timeoutMs, caller, stands, trace) : { approvalId: undefined, receiptFor: undefined, unrecorded: undefined };
    for (let asked = false, runId = id; ; asked = true, runId = randomUUID()) {
      if (authorized.approvalId !== undefined) this.#metrics.noted({ approval: authorized.approvalId });
      const result = await this.#run(target, params, principal, governance, assessed, authorized, timeoutMs, caller, stands, runId, trace);
      // The node's own policy asks a human for a run Corral's allowed outright (upstream's rule: the
      // stricter of the two applies): asked once, as if Corral's policy had asked (an allow-always
      // grant for exactly this action answers it), then sent again, a request of its own in the same trace.
      if (assessed && !asked && authorized.approvalId === undefined && assessed.verdict.decision === 'allow' && governance.kind === 'run' && nodeAsks(result)) {
        assessed = askedByNode(await this.#boundToScript(target, principal, params.command, assessed, timeoutMs, caller), result.error!.message!);
        authorized = await this.#authorize(principal, node.deviceId, params.command, assessed, timeoutMs, caller, stands, trace);
        continue;
      }
      if (!result.ok) throw wire('GATEWAY_REQUEST_FAILED', { code: result.error?.code ?? 'UNAVAILABLE', message: result.error?.message ?? 'node command failed' });
      const payload = result.payload !== undefined ? result.payload : parsePayload(result.payloadJSON);
      const exitCode = (payload as { exitCode?: unknown } | null | undefined)?.exitCode;
      if (typeof exitCode === 'number') this.#metrics.noted({ exitCode });
      return { ok: true, nodeId: node.deviceId, command: params.command, payload: payload ?? null, payloadJSON: result.payloadJSON ?? (payload === undefined ? null : JSON.stringify(payload)) };
    }
  }

  /**
   * Sends one cleared command to its node and records its result; the
   * node's answer, ok or not, once both records are durable. Nothing is sent
   * or released once the agent it is for no longer `stands` (see #stands):
   * the command is then recorded as withdrawn and refused.
   */
  async #run(target: NodeRoute, params: InvokeParams, principal: PrincipalRef, governance: Governance, assessed: Assessed | undefined, authorized: Authorized, timeoutMs: number, caller: Connection, stands: () => boolean, id: string, trace: string): Promise<InvokeResult> {
    const nodeId = target.node.deviceId;
    // Read again: a human's approval may have taken minutes, in which an operator narrowed or unpaired the node.
    const { connection, commands } = this.#routeFor(nodeId, params.command);
    const { approvalId, receiptFor, unrecorded } = authorized;
    // `id` is the request's: an approval's receipt is issued for it alone. Every record of the command carries `trace`,
    // so the decision and the result can be paired (OCSF correlation_uid).
    let commandParams: unknown = params.params ?? null;
    // Whether anything was waited for since the route was read (then it is read again before the send).
    let waited = false;
    // Checked after every wait, right before anything goes to the node: the kill switch may have been pulled during any of them.
    const unlessWithdrawn = async (): Promise<void> => {
      const withdrawn = withdrawal(stands, params.command, approvalId);
      if (withdrawn === undefined) return;
      // On record as a command that never reached its node; should the log refuse that record, the caller still hears the refusal.
      await this.#audit({ actor: actor(principal), action: 'node.invoke', resource: { kind: 'command', id: params.command }, node: nodeId, outcome: { status: 'failure', detail: withdrawn.why }, details: { invokeId: id, withdrawn: withdrawn.why, ...(approvalId ? { approval: approvalId } : {}) }, trace }).catch(() => undefined);
      throw withdrawn.error;
    };
    if (assessed) {
      // The node gets exactly what was decided, never the raw request, and (below) the signed receipt of any approval.
      // Only the gateway says a human approved — this once (the approval spent), or always (the grant that
      // answered an ask): a caller's own approvalDecision or receipt is dropped (JSON leaves out undefined).
      const approved = approvalId !== undefined || assessed.verdict.decision === 'ask';
      commandParams = { ...assessed.forward, ...(governance.kind === 'run' ? { runId: randomUUID(), approved } : {}), approvalDecision: undefined, approvalReceipt: undefined };
      const operand = assessed.operand;
      if (governance.kind === 'run' && approved && !connection.peer!.caps.includes(INVOKE_RELEASE_EVENT) && commands.includes('system.run.prepare')) {
        await unlessWithdrawn();
        const { plan } = await this.#preparedPlan(connection, nodeId, assessed.forward, timeoutMs, caller);
        waited = true;
        // Prepared again now, the script must be the one approved, as it was: else its new content is refused here, unsent.
        if (operand !== undefined && !sameOperand(boundOperand(plan.mutableFileOperand, operand.argvIndex), operand)) {
          const reason = `the script ${operandName(operand)} changed since it was approved (sha256 ${operand.sha256.slice(0, 12)}…): approve the run again`;
          await this.#audit({ actor: actor(principal), action: 'node.invoke', resource: { kind: 'command', id: params.command }, node: nodeId, outcome: { status: 'failure', detail: 'script-changed' }, details: { invokeId: id, ...(approvalId ? { approval: approvalId } : {}) }, trace });
          throw denied(params.command, reason, approvalId);
        }
        // Sent as the node prepared it (program resolved on its PATH, its working directory filled in), as upstream's gateway does.
        commandParams = { ...(commandParams as object), command: plan.argv, cwd: plan.cwd ?? undefined, rawCommand: plan.commandText, systemRunPlan: { ...plan, ...(operand !== undefined ? { mutableFileOperand: operand } : {}) } };
      } else if (governance.kind === 'run' && operand !== undefined && assessed.run !== undefined) {
        // Corral's node checks the script against the content approved right before it runs (refusing it changed), the run as decided.
        commandParams = { ...(commandParams as object), systemRunPlan: { argv: assessed.run.argv, cwd: assessed.run.cwd, mutableFileOperand: operand } };
      }
    }

    // The decision is durable before the command runs. A Corral node holds a
    // system.run until released (it checks and plans the run meanwhile), so
    // the command is sent while its decision commits and released once it
    // has; any other node gets it only once the decision is durable.
    const held = unrecorded !== undefined && params.command === 'system.run' && connection.peer!.caps.includes(INVOKE_RELEASE_EVENT);
    if (unrecorded && !held) {
      await this.#metrics.stage(params.command, 'decision_record', () => this.#audit({ ...unrecorded, trace }));
      waited = true;
    }
    // Only the gateway says whether a run is held: a caller's own awaitRelease is dropped (JSON leaves out undefined).
    if (governance.kind === 'run') commandParams = { ...(commandParams as Record<string, unknown>), awaitRelease: held || undefined };
    // And once more after waiting for the node's plan or the decision record: still paired, still approved.
    if (waited) this.#routeFor(nodeId, params.command);
    // And the agent it is for still as it was (the decider, an approval, the plan, the record may each have taken a while).
    await unlessWithdrawn();
    // Issued last, as the request goes: the node takes it for a minute.
    const receipt = receiptFor?.(id);
    if (receipt) commandParams = { ...(commandParams as Record<string, unknown>), approvalDecision: receipt.decision, approvalReceipt: receipt };
    // The node's result is acknowledged once it is recorded and the caller answered: a Corral node then
    // replaces the warm sandbox its run took, which on a shared host would compete with that recording.
    const finished = Promise.withResolvers<void>();
    const answered = this.#metrics.stage(params.command, 'node', () => this.#send(connection, nodeId, id, params.command, commandParams, timeoutMs, params.idempotencyKey, finished.promise, principal.type === 'Agent' ? principal.id : undefined));
    let recorded: Promise<void> = Promise.resolve();
    // A held run its agent no longer stood for when its decision became durable: never released, recorded as withdrawn, refused.
    let withheld: ReturnType<typeof withdrawal>;
    const left = this.#whenGone(caller);
    try {
      if (held) {
        recorded = this.#metrics.stage(params.command, 'decision_record', () => this.#audit({ ...unrecorded!, trace }));
        recorded.then(
          () => {
            withheld = withdrawal(stands, params.command, approvalId);
            connection.event(INVOKE_RELEASE_EVENT, { id, ok: withheld === undefined });
          },
          () => connection.event(INVOKE_RELEASE_EVENT, { id, ok: false }),
        );
      }
      let outcome: InvokeResult | typeof CALLER_LEFT;
      try {
        outcome = await Promise.race([answered, left.gone]);
      } catch (error) {
        // Past its timeout the node may have run it all the same: told to stop, its outcome unknown, a late result recorded.
        if (error instanceof GatewayError && error.code === 'GATEWAY_TIMEOUT') return await this.#abandon({ connection, nodeId, command: params.command, principal, approvalId, why: 'timeout', trace }, id, timeoutMs, recorded, error);
        await Promise.all([recorded, this.#audit({ actor: actor(principal), action: 'node.invoke', resource: { kind: 'command', id: params.command }, node: nodeId, outcome: { status: 'failure', detail: error instanceof GatewayError ? error.code : 'error' }, details: { invokeId: id, ...(approvalId ? { approval: approvalId } : {}) }, trace })]);
        throw error;
      }
      if (outcome === CALLER_LEFT) return await this.#abandon({ connection, nodeId, command: params.command, principal, approvalId, why: 'caller-left', trace }, id, timeoutMs, recorded);
      const result = outcome;
      const payload = result.payload !== undefined ? result.payload : parsePayload(result.payloadJSON);
      // Both records durable (the decision's was appended while the node ran) before the caller sees a result.
      await Promise.all([
        recorded,
        this.#metrics.stage(params.command, 'result_record', () =>
          this.#audit({
            actor: actor(principal),
            action: 'node.invoke',
            resource: { kind: 'command', id: params.command },
            node: nodeId,
            ...(approvalId ? { decision: { effect: 'allow', approval: approvalId } } : {}),
            outcome: resultOutcome(result, payload),
            ...(typeof result.payloadJSON === 'string' ? { context: { outputs: { result: `sha256:${sha256(result.payloadJSON)}` } } } : {}),
            details: { invokeId: id, ...(withheld ? { withdrawn: withheld.why } : {}), ...(this.#stopped.has(id) ? { stopped: 'agent-suspended' } : {}), ...containedFacts(payload), ...(receipt ? { approvalReceipt: { ...receipt } } : {}) },
            trace,
          }),
        ),
      ]);
      if (withheld) throw withheld.error;
      return result;
    } finally {
      left.dispose();
      this.#stopped.delete(id);
      // On a later turn: the caller's answer, sent as this returns, is on its way before the node's acknowledgement.
      setImmediate(() => finished.resolve());
    }
  }

  /** Stops waiting for the node's answer to request `id`: an answer that comes later is ignored. */
  #stopWaiting(id: string): void {
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return;
    this.#waiting.delete(id);
    clearTimeout(waiter.timer);
  }

  /** Settles `gone` with CALLER_LEFT once `caller` has closed its connection (at once if it has); `dispose` forgets it. */
  #whenGone(caller: Connection): { gone: Promise<typeof CALLER_LEFT>; dispose(): void } {
    const { promise, resolve } = Promise.withResolvers<typeof CALLER_LEFT>();
    const left = (): void => resolve(CALLER_LEFT);
    if (caller.phase === 'closed') left();
    else this.#onLeave.set(caller, (this.#onLeave.get(caller) ?? new Set()).add(left));
    const dispose = (): void => {
      const set = this.#onLeave.get(caller);
      set?.delete(left);
      if (set?.size === 0) this.#onLeave.delete(caller);
    };
    return { gone: promise, dispose };
  }

  /**
   * The caller of request `id` left, or its timeout passed, before its node
   * answered (`request.why`): nobody hears the result, so the gateway stops
   * waiting for it (the caller's in-flight request ends here), tells the node
   * to stop the run (INVOKE_CANCEL_EVENT), and records why, the outcome
   * unknown. The node is told only once the decision's record has settled:
   * durable, so the run it may have started is on record; or refused, and
   * then the node was told never to start it. Throws `failure` (default
   * GATEWAY_CONNECTION_CLOSED), or the audit log's refusal.
   */
  async #abandon(request: Omit<Abandoned, 'timer' | 'leftRecorded'>, id: string, timeoutMs: number, recorded: Promise<void>, failure: GatewayError = wire('GATEWAY_CONNECTION_CLOSED', { code: 'UNAVAILABLE', message: 'the caller disconnected', retryable: true })): Promise<never> {
    const { connection, nodeId, command, principal, approvalId, why, trace } = request;
    await recorded.catch(() => undefined);
    this.#stopWaiting(id);
    // A node that goes on all the same (one that does not know the event) still has its result recorded, while it could
    // come: at most MAX_OPEN_RUNS a node are kept, the oldest forgotten first (already recorded as left, outcome unknown).
    const ofNode = [...this.#abandoned].filter(([, a]) => a.nodeId === nodeId);
    for (const [oldId, old] of ofNode.slice(0, Math.max(0, ofNode.length - MAX_OPEN_RUNS + 1))) {
      clearTimeout(old.timer);
      this.#abandoned.delete(oldId);
    }
    const timer = setTimeout(() => this.#abandoned.delete(id), timeoutMs + 1_000);
    timer.unref();
    const cancelSent = connection.event(INVOKE_CANCEL_EVENT, { invokeId: id, nodeId });
    const leftRecorded = this.#audit({ actor: actor(principal), action: 'node.invoke', resource: { kind: 'command', id: command }, node: nodeId, outcome: { status: 'unknown', detail: why }, details: { invokeId: id, cancelSent, ...(approvalId ? { approval: approvalId } : {}) }, trace });
    this.#abandoned.set(id, { ...request, timer, leftRecorded });
    await leftRecorded;
    throw failure;
  }

  /**
   * Records the result of a request whose caller had left or whose timeout had passed (#abandon), once,
   * when it comes from the node it went to on the connection it went to.
   * Returns whether it was one.
   */
  async #lateResult(id: string, connection: Connection, nodeId: string | undefined, result: InvokeResult): Promise<boolean> {
    const request = this.#abandoned.get(id);
    if (request === undefined || request.connection !== connection || request.nodeId !== nodeId) return false;
    this.#abandoned.delete(id);
    clearTimeout(request.timer);
    // After the record that its caller left, which it follows.
    await request.leftRecorded.catch(() => undefined);
    const payload = result.payload !== undefined ? result.payload : parsePayload(result.payloadJSON);
    await this.#audit({
      actor: actor(request.principal),
      action: 'node.invoke',
      resource: { kind: 'command', id: request.command },
      node: request.nodeId,
      ...(request.approvalId ? { decision: { effect: 'allow', approval: request.approvalId } } : {}),
      outcome: resultOutcome(result, payload),
      ...(typeof result.payloadJSON === 'string' ? { context: { outputs: { result: `sha256:${sha256(result.payloadJSON)}` } } } : {}),
      details: { invokeId: id, ...(request.why === 'caller-left' ? { callerLeft: true } : { afterTimeout: true }), ...containedFacts(payload) },
      trace: request.trace,
    });
    return true;
  }

  /**
   * What one governed command would do, decided: its snapshot (a canonical
   * run, or a named command's checked params), the digest an approval binds
   * to, the policy's verdict, and the params the node will get. The verdict
   * waits for a set the decider is compiling (GatewayDecider), and is made in
   * the tick that wait ends. Rejects with GATEWAY_PARAMS_INVALID
   * (wire INVALID_REQUEST) for params that do not fit.
   */
  async #assess(principal: PrincipalRef, nodeId: string, command: string, governance: Exclude<Governance, { kind: 'read-only' }>, rawParams: unknown): Promise<Assessed> {
    const who = `${principal.type}::${principal.id}`;
    if (governance.kind === 'named') {
      let params: Record<string, unknown>;
      try {
        params = governance.rule.params(rawParams);
      } catch (error) {
        throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: error instanceof GatewayError ? error.message : `invalid ${command} params` }, error);
      }
      const digest = actionDigest({ principal: who, nodeId, command, params });
      const decideAgain = async () => (this.#options.decider ? decideNamed(await this.#deciderNow(this.#options.decider), principal, governance.rule, params, { node: nodeId, digest }) : NO_POLICY);
      return { digest, verdict: await decideAgain(), decideAgain, resource: command, subject: { command, params, nodeId, principal: who }, auditDetails: { command, params }, forward: params };
    }
    let run: CanonicalRun;
    try {
      run = canonicalRun((rawParams ?? {}) as { command: string[] });
    } catch (error) {
      throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: error instanceof GatewayError ? `invalid ${command} params: ${error.message}` : `invalid ${command} params` }, error);
    }
    const digest = actionDigest({ principal: who, nodeId, command, run });
    const decideAgain = async () => (this.#options.decider ? decideRun(await this.#deciderNow(this.#options.decider), principal, run, { node: nodeId, digest }) : NO_POLICY);
    return {
      digest,
      verdict: await decideAgain(),
      decideAgain,
      resource: run.argv[0]!,
      subject: { command, argv: run.argv, cwd: run.cwd, env: run.env, commands: run.commands, nodeId, principal: who },
      auditDetails: { command, argv: run.argv, commands: run.commands, cwd: run.cwd, envKeys: Object.keys(run.env) },
      // The node runs an agent's command under that agent's container policy: it learns which agent from the gateway, not from the caller.
      forward: { ...(rawParams as object), ...(principal.type === 'Agent' ? { agentId: principal.id } : {}), command: run.argv, ...(run.cwd !== null ? { cwd: run.cwd } : {}), env: run.env },
      run,
    };
  }

  /**
   * The decider for one action (deciderFor), to use at once: with grants, an
   * allow only grants that count for no decision gave is a deny
   * (PolicyGrants.counting), request by request.
   */
  async #deciderNow(decider: GatewayDecider): Promise<Decider> {
    const now = await deciderFor(decider);
    return this.#options.grants?.counting(now) ?? now;
  }

  /**
   * Clears one assessed command for `principal` on `nodeId`: the verdict, and
   * when policy asks, an approval bound to the exact action (reused if one is
   * already open for it), waited for up to `timeoutMs` while `caller` stays
   * connected. Audits the decision. Throws the command's denial (wire details
   * SYSTEM_RUN_DENIED or COMMAND_DENIED), APPROVAL_PENDING,
   * APPROVALS_PENDING_LIMIT (GATEWAY_BUSY: MAX_PENDING_APPROVALS already
   * wait), GATEWAY_CONNECTION_CLOSED (the caller left while it waited), the
   * denial of an action the policy in force once its approval came forbids
   * or asks more approvers for, and the denial of an agent that no longer
   * `stands` once its approval came. Its records carry `trace`, the
   * command's, when it has one (a node.invoke's).
   */
  async #authorize(principal: PrincipalRef, nodeId: string, command: string, assessed: Assessed, timeoutMs: number, caller: Connection, stands: () => boolean, trace?: string): Promise<Authorized> {
    const { digest } = assessed;
    // The same exact action already waiting, or approved and not yet run (after a restart, or from the CLI), is reused, never
    // duplicated; unless it was made for fewer approvers than the policy now asks (its quorum raised since): a new one asks them all.
    const found = assessed.verdict.decision === 'ask' ? this.#options.approvals.open(digest) : undefined;
    const open = found !== undefined && found.quorum >= assessed.verdict.quorum ? found : undefined;
    // An allow-always grant for exactly this action is a permit that an asking
    // policy outranks in Cedar's answer: it answers the ask, once the approval
    // that made it has been spent (so its first run carries its receipt).
    // (An allow that only withdrawn grants gave was decided a deny already: #deciderNow.)
    const grant = assessed.verdict.decision === 'ask' && open?.status !== 'allowed' ? this.#options.grants?.covering(digest) : undefined;
    const verdict = answeredByGrant(assessed.verdict, grant);
    this.#metrics.decided(command, verdict.decision);
    const decided: AuditEventInput = { actor: actor(principal), action: 'node.invoke.decide', resource: { kind: 'command', id: assessed.resource }, node: nodeId, decision: { effect: verdict.decision, policies: verdict.policies, reason: verdict.reason }, details: { digest, ...(verdict.decision === 'ask' ? { quorum: verdict.quorum } : {}), ...assessed.auditDetails }, ...(trace !== undefined ? { trace } : {}) };
    // The caller appends an allow's record, so that it can overlap the commit with the command's way to the node.
    if (verdict.decision === 'allow') return { approvalId: undefined, receiptFor: undefined, unrecorded: decided };
    await this.#metrics.stage(command, 'decision_record', () => this.#audit(decided));
    if (verdict.decision === 'deny') throw denied(command, verdict.reason);
    let approval = open;
    if (!approval) {
      if (this.#options.approvals.pendingCount(`${principal.type}::${principal.id}`, nodeId) >= MAX_PENDING_APPROVALS) {
        throw wire('GATEWAY_BUSY', { code: 'UNAVAILABLE', message: 'too many approvals pending for this requester on this node', retryable: true, details: { code: 'APPROVALS_PENDING_LIMIT' } });
      }
      // Made at once while gateway.db's lock is free (no turn of the event loop); while a corral command holds it, waited for with timers.
      const made = this.#options.approvals.createNowOrWhenFree({ digest, action: { ...assessed.subject, reason: verdict.reason, policies: verdict.policies, quorum: verdict.quorum }, quorum: verdict.quorum, ...(this.#options.approvalTtlMs ? { ttlMs: this.#options.approvalTtlMs } : {}) });
      approval = made instanceof Promise ? await made : made;
      this.#server.broadcast('exec.approval.requested', { id: approval.id, request: shownAction(approval.action), createdAtMs: approval.createdAtMs, expiresAtMs: approval.expiresAtMs }, (p) => hasScope(p.scopes, 'operator.approvals'));
      await this.#audit({ actor: actor(principal), action: 'approval.request', resource: { kind: 'approval', id: approval.id }, node: nodeId, decision: { effect: 'ask', policies: verdict.policies, reason: verdict.reason }, details: { digest, quorum: verdict.quorum, expiresAtMs: approval.expiresAtMs, ...runsCodeOf(approval) }, ...(trace !== undefined ? { trace } : {}) });
    }
    const settled = await this.#metrics.stage(command, 'approval', () => this.#waitForApproval(approval.id, Math.min(approval.expiresAtMs - Date.now(), timeoutMs), caller));
    if (!settled) throw wire('GATEWAY_CONNECTION_CLOSED', { code: 'UNAVAILABLE', message: 'the caller disconnected', retryable: true });
    if (settled.status === 'pending') throw wire('GATEWAY_TIMEOUT', { code: 'UNAVAILABLE', message: 'approval pending: retry the same command once it is approved', retryable: true, details: { code: 'APPROVAL_PENDING', approvalId: settled.id } });
    if (settled.status !== 'allowed') throw denied(command, settled.status === 'denied' ? 'an approver denied it' : 'the approval expired', settled.id);
    // Decided again under the policy in force now: a forbid added while humans looked wins over their allow, and a quorum
    // raised meanwhile is not met by the fewer approvers this approval asked for.
    const now = await assessed.decideAgain();
    const short = now.decision === 'ask' && now.quorum > settled.quorum;
    if (now.decision === 'deny' || short) {
      const reason = short ? `the policy now asks ${now.quorum} approvers, and this approval had ${settled.quorum}: ask again` : now.reason;
      await this.#audit({ ...decided, decision: { effect: 'deny', policies: now.policies, reason, approval: settled.id } });
      throw denied(command, reason, settled.id);
    }
    // An approval lifts an ask; it never outlasts its agent's suspension (the kill switch may come after the approval, or from
    // another process), even one resumed since: its token of before is dead, and so is what it asked for with it.
    if (!stands()) throw agentStopped(command, settled.id);
    let spent: Approval;
    try {
      const spending = this.#options.approvals.consumeNowOrWhenFree(approval.id, digest);
      spent = spending instanceof Promise ? await spending : spending;
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'GATEWAY_BUSY') throw error;
      throw wire('GATEWAY_APPROVAL_RESOLVED', { code: 'INVALID_REQUEST', message: `${denialCode(command)}: approval not usable`, details: { code: denialCode(command) } }, error);
    }
    // Spent: whatever happens next, it allows no other run.
    const resolveRecord = this.#resolveRecords.get(spent.id);
    this.#resolveRecords.delete(spent.id);
    const unvouched = resolveRecord === 'durable' ? undefined : (resolveRecord ?? 'unconfirmed');
    // Resolved outside this process (the CLI): its grant is added on first use. Resolved here: the grant being made is waited for.
    const made = spent.decision === 'allow-always' ? await this.#grant(spent) : undefined;
    // An allow-always whose grant could not be made, or not recorded, allows this one run only, as allow-once: on a
    // decision record saying so, durable before the run (the approval's own record said allow-always).
    const once = made !== undefined && made.status !== 'made' && made.status !== 'not-made' ? made : undefined;
    const receiptFor = (runId: string): ApprovalReceipt => {
      const issuedAtMs = Date.now();
      return this.#options.receipts.sign({ v: 2, approvalId: spent.id, digest, decision: spent.decision === 'allow-always' && !once ? 'allow-always' : 'allow-once', approvers: spent.approvers, quorum: spent.quorum, resolvedAtMs: spent.resolvedAtMs ?? 0, issuedAtMs, expiresAtMs: issuedAtMs + RECEIPT_VALIDITY_MS, runId, principal: `${principal.type}::${principal.id}`, nodeId, command });
    };
    // An approval whose own record is not known to be durable allows its run on a decision record of its own, durable before it runs.
    const why = [
      ...(unvouched === 'refused' ? ['its own record (approval.resolve) was refused by the audit log'] : []),
      ...(unvouched === 'unconfirmed' ? ['it was allowed by another process, or before this gateway started, so its own record (approval.resolve) is not known here to be durable'] : []),
      ...(once !== undefined ? [`its allow-always grant ${once.status === 'failed' ? 'could not be made' : 'was not recorded'} (${once.status})`] : []),
    ];
    const allowed: AuditEventInput | undefined = why.length === 0 ? undefined : {
      ...decided,
      decision: { effect: 'allow', policies: verdict.policies, approval: approval.id, reason: `allowed ${once !== undefined || spent.decision === 'allow-once' ? 'once ' : ''}by its approval: ${why.join('; ')}` },
      details: { ...decided.details, ...(unvouched !== undefined ? { approvalRecord: unvouched } : {}), ...(once !== undefined ? { grant: once.status, ...(once.code !== undefined ? { grantCode: once.code } : {}) } : {}) },
    };
    return { approvalId: approval.id, receiptFor, unrecorded: allowed };
  }

  /** Sends one `node.invoke.request` and waits for that node's `node.invoke.result` on that connection. */
  #send(connection: Connection, nodeId: string, id: string, command: string, commandParams: unknown, timeoutMs: number, idempotencyKey: string, acknowledgeAfter: Promise<unknown> = Promise.resolve(), agent?: string): Promise<InvokeResult> {
    const sent = connection.event('node.invoke.request', { id, nodeId, command, paramsJSON: commandParams === null ? null : JSON.stringify(commandParams), timeoutMs, idempotencyKey });
    if (!sent) return Promise.reject(wire('GATEWAY_CONNECTION_CLOSED', { code: 'UNAVAILABLE', message: 'node not connected', retryable: true }));
    return new Promise<InvokeResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new GatewayError('GATEWAY_TIMEOUT', 'the node did not answer in time', { wire: { code: 'UNAVAILABLE', message: 'node invoke timed out', details: { code: 'TIMEOUT' } } }));
      }, timeoutMs + 1_000);
      this.#waiting.set(id, { connection, nodeId, resolve, reject, timer, acknowledgeAfter, ...(agent !== undefined ? { agent } : {}) });
    });
  }

  /**
   * An upstream node host runs an approved command only with the plan it
   * prepared for it (`system.run.prepare`: the canonical argv, working
   * directory, agent and session, and a snapshot of its own policy) — what its
   * gateway sends. The plan must be for the command Corral decided: the same
   * arguments, the program as the node resolves the name decided on (a bare
   * `printf` may become `/usr/bin/printf`, a path must stay that path), the
   * working directory decided on, or the node's own when none was given.
   */
  async #preparedPlan(connection: Connection, nodeId: string, forward: Record<string, unknown>, timeoutMs: number, caller: Connection): Promise<{ plan: PreparedPlan; scriptPreview: unknown }> {
    const { env: _env, ...asked } = forward;
    // A node that says it can is asked for what approvers read of the script it binds (upstream's would refuse the field).
    const prepare = connection.peer!.caps.includes(SCRIPT_PREVIEW_CAP) ? { ...asked, scriptPreview: true } : asked;
    const prepareId = randomUUID();
    const left = this.#whenGone(caller);
    let result: InvokeResult | typeof CALLER_LEFT;
    try {
      result = await Promise.race([this.#send(connection, nodeId, prepareId, 'system.run.prepare', prepare, timeoutMs, randomUUID()), left.gone]);
    } finally {
      left.dispose();
    }
    // A prepare runs nothing: when its caller has left there is nothing to stop, only a wait to end.
    if (result === CALLER_LEFT) {
      this.#stopWaiting(prepareId);
      throw wire('GATEWAY_CONNECTION_CLOSED', { code: 'UNAVAILABLE', message: 'the caller disconnected', retryable: true });
    }
    const answer = (result.payload !== undefined ? result.payload : parsePayload(result.payloadJSON)) as { plan?: PreparedPlan; scriptPreview?: unknown } | undefined;
    const plan = answer?.plan;
    if (!result.ok || !plan) throw wire('GATEWAY_REQUEST_FAILED', { code: result.error?.code ?? 'UNAVAILABLE', message: `the node did not prepare the run: ${result.error?.message ?? 'no plan'}` });
    const argv = forward.command as string[];
    const program = argv[0]!;
    const sameProgram = (p: unknown) => typeof p === 'string' && (p === program || (!program.includes('/') && p.startsWith('/') && p.slice(p.lastIndexOf('/') + 1) === program));
    const sameArgs = Array.isArray(plan.argv) && plan.argv.length === argv.length && sameProgram(plan.argv[0]) && plan.argv.every((a, i) => i === 0 || a === argv[i]);
    const sameCwd = forward.cwd === undefined || plan.cwd === forward.cwd;
    if (!sameArgs || !sameCwd || typeof plan.commandText !== 'string') {
      throw wire('GATEWAY_POLICY_DENIED', { code: 'INVALID_REQUEST', message: 'SYSTEM_RUN_DENIED: the node prepared another command than the one approved', details: { code: 'SYSTEM_RUN_DENIED' } });
    }
    return { plan, scriptPreview: answer?.scriptPreview };
  }

  /**
   * A run asked of a human whose runs-code verdict names one script file
   * (runsCode's numeric operand: `python3 build.py`, `node x.js`,
   * `./deploy.sh`), bound to what that file holds now: its node prepares the
   * run (system.run.prepare, the argv and cwd forwarded) and the file it
   * binds (mutableFileOperand, its argv index, path and sha256) becomes part
   * of the action's digest, of what approvers are shown and of what the
   * approved run is sent with, for the node to check again right before it
   * runs. So an approval of the script as it was never covers it rewritten;
   * nor does a standing grant, looked up afterwards (#authorize) by this
   * digest, and recorded with it for replay: allowed always, the script is
   * allowed only while it holds this content (store.ts, bound-script.ts).
   * Any other command is returned as it is, with no round trip. A node that
   * cannot bind it (one that does not serve system.run.prepare, refuses the
   * file: missing, a FIFO, too large; gone; or binds another word) has the
   * run refused (SYSTEM_RUN_DENIED, the node's reason) on a deny record of its
   * decision. Throws GATEWAY_CONNECTION_CLOSED when the caller left meanwhile.
   */
  async #boundToScript(target: NodeRoute, principal: PrincipalRef, command: string, assessed: Assessed, timeoutMs: number, caller: Connection): Promise<Assessed> {
    const argvIndex = scriptWord(assessed);
    if (argvIndex === undefined) return assessed;
    const nodeId = target.node.deviceId;
    // Read again: the decision may have waited for a set being compiled.
    const { connection, commands } = this.#routeFor(nodeId, command);
    if (!commands.includes('system.run.prepare')) return this.#refuseUnbound(principal, nodeId, command, assessed, 'the node does not serve system.run.prepare');
    let prepared: { plan: PreparedPlan; scriptPreview: unknown };
    try {
      prepared = await this.#preparedPlan(connection, nodeId, assessed.forward, timeoutMs, caller);
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'GATEWAY_CONNECTION_CLOSED' && caller.phase === 'closed') throw error;
      return this.#refuseUnbound(principal, nodeId, command, assessed, error instanceof GatewayError ? error.message : 'the node did not prepare the run');
    }
    return this.#bindScript(principal, nodeId, command, assessed, prepared.plan.mutableFileOperand, argvIndex, prepared.scriptPreview);
  }

  /**
   * #boundToScript for a run a Corral node asks the control plane about
   * (corral.run.authorize): the node read the file itself as it asked and
   * sends what it bound (`given`: mutableFileOperand, checked here), since it
   * is the one that will run it. A node that sent none for a run of one
   * script has the run refused when a human is to be asked.
   */
  async #boundByAskingNode(principal: PrincipalRef, nodeId: string, command: string, assessed: Assessed, given: unknown, preview: unknown): Promise<Assessed> {
    const argvIndex = scriptWord(assessed);
    return argvIndex === undefined ? assessed : this.#bindScript(principal, nodeId, command, assessed, given, argvIndex, preview);
  }

  /**
   * `assessed` bound to the file its node bound at word `argvIndex` (`given`, unchecked): its digest, decided again by it, shown
   * and recorded with it; approvers are also shown what the node says the file holds (`preview`, scriptPreviewOf), which no digest covers.
   */
  async #bindScript(principal: PrincipalRef, nodeId: string, command: string, assessed: Assessed, given: unknown, argvIndex: number, preview: unknown): Promise<Assessed> {
    const run = assessed.run!;
    const operand = boundOperand(given, argvIndex);
    if (operand === undefined) return this.#refuseUnbound(principal, nodeId, command, assessed, `the node bound no file at word ${argvIndex} of the run`);
    const digest = actionDigest({ principal: `${principal.type}::${principal.id}`, nodeId, command, run, operand });
    const decideAgain = async () => (this.#options.decider ? decideRun(await this.#deciderNow(this.#options.decider), principal, run, { node: nodeId, digest }) : NO_POLICY);
    const scriptPreview = scriptPreviewOf(preview);
    return { ...assessed, digest, decideAgain, operand, subject: { ...assessed.subject, mutableFileOperand: operand, ...(scriptPreview ? { scriptPreview } : {}) }, auditDetails: { ...assessed.auditDetails, mutableFileOperand: operand } };
  }

  /** Refuses a run of one script that cannot be bound to its approval, on a deny record of its decision saying `why`. */
  async #refuseUnbound(principal: PrincipalRef, nodeId: string, command: string, assessed: Assessed, why: string): Promise<never> {
    const reason = `the script this run runs cannot be bound to its approval: ${cut(why, 300)}`;
    await this.#audit({ actor: actor(principal), action: 'node.invoke.decide', resource: { kind: 'command', id: assessed.resource }, node: nodeId, decision: { effect: 'deny', policies: assessed.verdict.policies, reason }, details: { digest: assessed.digest, ...assessed.auditDetails } });
    throw denied(command, reason);
  }

  /**
   * The route to a paired, connected node that may be sent `command` now: an
   * operator approved it and the node declared it. Throws as
   * NodeInventory.route() does, or GATEWAY_PARAMS_INVALID.
   */
  #routeFor(nodeId: string, command: string): NodeRoute {
    const target = this.#inventory.route(nodeId);
    if (!target.commands.includes(command)) throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: notServed(target, command) });
    return target;
  }

  /** `exec.approvals.node.get|set`: the node's local policy, relayed; a set is audited and the node itself refuses anything but a tightening. */
  async #nodePolicy(verb: 'get' | 'set', params: { nodeId: string; file?: unknown; baseHash?: unknown }, peer: Peer): Promise<unknown> {
    const command = verb === 'get' ? 'system.execApprovals.get' : 'system.execApprovals.set';
    const { connection, node } = this.#routeFor(params.nodeId, command);
    const result = await this.#send(connection, node.deviceId, randomUUID(), command, verb === 'get' ? {} : { file: params.file, baseHash: params.baseHash }, DEFAULT_INVOKE_TIMEOUT_MS, randomUUID());
    if (verb === 'set') {
      const principal = this.#options.operatorPrincipal?.(peer) ?? { type: 'Human' as const, id: 'operator' };
      await this.#audit({ actor: actor(principal), action: 'node.policy.set', resource: { kind: 'node', id: node.deviceId }, node: node.deviceId, outcome: { status: result.ok ? 'success' : 'failure', ...(result.error?.code ? { detail: result.error.code } : {}) } });
    }
    if (!result.ok) throw wire('GATEWAY_REQUEST_FAILED', { code: result.error?.code ?? 'UNAVAILABLE', message: result.error?.message ?? 'node refused' });
    return result.payload !== undefined ? result.payload : parsePayload(result.payloadJSON);
  }

  /**
   * The principal a `node.invoke` is decided for: the agent its connection
   * authenticated as (checked live: a suspended agent is refused at once), else
   * the operator. An `agentId`, or a `sessionKey` of upstream's `agent:ID:…`
   * form, in the params must name that same agent — the node runs the command
   * under the container policy of the agent they name; an operator cannot
   * claim one.
   */
  #principal(peer: Peer, command: string, commandParams: unknown): PrincipalRef {
    const { agentId, sessionKey } = (commandParams ?? {}) as { agentId?: unknown; sessionKey?: unknown };
    const named = [agentId, typeof sessionKey === 'string' && sessionKey.startsWith('agent:') ? (sessionKey.split(':')[1] ?? '') : undefined].filter((v) => typeof v === 'string' && v !== '') as string[];
    if (peer.agent) {
      const agent = this.#server.identity.agents.find(peer.agent.name);
      if (!agent || agent.id !== peer.agent.id || !this.#server.agentTokenAlive(peer.agent)) throw agentStopped(command);
      if (named.some((n) => n.toLowerCase() !== agent.name.toLowerCase() && n !== agent.id)) throw denied(command, 'agentId or sessionKey names another agent than the authenticated one');
      return { type: 'Agent', id: agent.name };
    }
    if (named.length > 0) throw denied(command, 'an agent must connect with its own agent token');
    return this.#options.operatorPrincipal?.(peer) ?? { type: 'Human', id: 'operator' };
  }

  /**
   * Whether the caller of a node.invoke still stands as it did when it
   * asked: an agent, while the token its connection was opened with is not
   * taken back (GatewayServer.agentTokenStands: active, of that generation,
   * its key published; one that only ran out since still stands for what it
   * asked while good); an operator, always. Throws what reading identity.db
   * throws.
   */
  #stands(peer: Peer): () => boolean {
    const agent = peer.agent;
    return agent === undefined ? () => true : () => this.#server.agentTokenStands(agent);
  }

  /**
   * A Corral agent named by a paired node's mapping of its gateway's agents:
   * it must be active and one an operator lets this node ask for (`corral
   * nodes agents`), or the claim is refused and recorded as the node's.
   * `stands` while it is still that agent, active, of the same generation (a
   * suspension moves it on, a resumption does not move it back).
   */
  async #claimedAgent(name: string, nodeId: string, command: string): Promise<{ principal: PrincipalRef; stands: () => boolean }> {
    const { agents, nodes } = this.#server.identity;
    const agent = agents.find(name);
    const why = !agent ? 'agent-unknown' : agent.status !== 'active' ? `agent-${agent.status}` : nodes.find(nodeId)?.agents?.includes(agent.id) !== true ? 'agent-not-granted' : undefined;
    if (!agent || why !== undefined) {
      // Its own action, not the command's: a policy replay has no Cedar request to judge here.
      await this.#audit({
        actor: { kind: 'node', id: nodeId },
        action: 'node.claim.refused',
        resource: { kind: 'agent', id: cut(name, 100) },
        node: nodeId,
        decision: { effect: 'deny', reason: why },
        details: { by: 'gateway', command, ...(!agent ? { agentKnown: false } : why === 'agent-not-granted' ? { agentGranted: false } : { agentStatus: agent.status }) },
      });
      // Which of the three the node is not told (a paired node could list the agents otherwise); the log says.
      throw denied(command, 'the requesting agent is unknown, not active, or not one this node may ask for (corral nodes agents)');
    }
    const { id, tokenGeneration } = agent;
    const stands = (): boolean => {
      const now = agents.find(id);
      return now !== undefined && now.status === 'active' && now.tokenGeneration === tokenGeneration;
    };
    return { principal: { type: 'Agent', id: agent.name }, stands };
  }

  /**
   * The approval once it is no longer pending (and its record is durable), or
   * as it stands after `ms`; undefined once `caller` has disconnected: a wait
   * nobody hears spends nothing (the caller's retry, on a new connection,
   * waits for the same approval).
   */
  #waitForApproval(id: string, ms: number, caller: Connection): Promise<Approval | undefined> {
    const approvals = this.#options.approvals;
    return new Promise((resolve) => {
      let set = this.#approvalListeners.get(id);
      if (!set) this.#approvalListeners.set(id, (set = new Set()));
      const check = (): boolean => {
        if (caller.phase === 'closed') {
          finish(undefined);
          return true;
        }
        const current = approvals.get(id);
        if (current.status === 'pending' || this.#recording.has(id)) return false;
        finish(current);
        return true;
      };
      const finish = (approval: Approval | undefined): void => {
        clearTimeout(deadline);
        clearInterval(poll);
        set!.delete(wake);
        if (set!.size === 0) this.#approvalListeners.delete(id);
        resolve(approval);
      };
      const wake = (): void => void check();
      const deadline = setTimeout(() => check() || finish(approvals.get(id)), Math.max(0, ms));
      // Approvals resolved by `corral approvals approve` land in the database from another process, committed once their record is durable.
      const poll = setInterval(wake, this.#options.approvalPollMs ?? 250);
      set.add(wake);
      check();
    });
  }

  async #audit(event: AuditEventInput): Promise<void> {
    if (!this.#options.audit) return;
    try {
      await this.#options.audit(event);
    } catch (error) {
      throw new GatewayError('GATEWAY_INTERNAL', 'the audit log refused the event', { cause: error, wire: { code: 'UNAVAILABLE', message: 'audit unavailable', retryable: true } });
    }
  }
}

/** One governed command, assessed: see NodeInvoker#assess. */
interface Assessed {
  digest: string;
  verdict: RunDecision;
  /** The verdict on the same action under the policy in force when it is called (an approval may have taken minutes). */
  decideAgain: () => Promise<RunDecision>;
  /** The audit record's resource id: the program, or the named command. */
  resource: string;
  /** What an approver is shown. */
  subject: Record<string, unknown>;
  /** What the decision record holds besides the digest (env names, never values). */
  auditDetails: Record<string, unknown>;
  /** The params the node gets. */
  forward: Record<string, unknown>;
  run?: CanonicalRun;
  /** The script the run runs as its node bound it by content (#boundToScript): part of `digest`, shown, and sent for the node to check again. */
  operand?: FileOperand;
}

/** A governed command cleared to run: the approval it spends, and the decision record when it is still to be appended. */
interface Authorized {
  approvalId: string | undefined;
  /**
   * Signs the receipt of the approval for the one run (the request id, or
   * the runId of a corral.run.authorize answer) it is sent with, valid
   * RECEIPT_VALIDITY_MS from then; it goes to the node and into the audit
   * record. Called once: the approval is spent on that run alone.
   */
  receiptFor: ((runId: string) => ApprovalReceipt) | undefined;
  /**
   * An allow's decision record, for the caller to append (durable before the
   * command runs): policy's allow, or an approval's allow when the approval's
   * own record is not known to be durable or its grant did not stand.
   * Undefined when a durable record already allows the run.
   */
  unrecorded: AuditEventInput | undefined;
}

/** Why a node is not sent `command`: it did not declare it, or no operator approved it yet. */
function notServed(target: NodeRoute, command: string): string {
  if (!target.connection.peer!.commands.includes(command)) return 'node command not allowed: the node did not declare it';
  return `node command not allowed: ${command} waits for an operator to approve it for this node (corral nodes pending)`;
}

const NO_POLICY: RunDecision = { decision: 'deny', reason: 'no policy is loaded', quorum: 0, policies: [], commands: [] };

interface InvokeParams {
  nodeId: string;
  command: string;
  params?: unknown;
  timeoutMs?: number;
  idempotencyKey: string;
}

function clampTimeout(value: number | undefined): number {
  if (value === undefined || !Number.isFinite(value) || value <= 0) return DEFAULT_INVOKE_TIMEOUT_MS;
  return Math.min(Math.floor(value), MAX_INVOKE_TIMEOUT_MS);
}

function parsePayload(text: string | null | undefined): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The record of a run another gateway sent a Corral node, as this gateway authorized it: the approval is the one this gateway gave, never the node's word. */
function runRecord(nodeId: string, runId: string, run: OpenRun): AuditEventInput {
  return {
    actor: { kind: 'node', id: nodeId },
    action: 'node.invoke',
    resource: { kind: 'command', id: 'system.run' },
    node: nodeId,
    ...(run.approvalId !== undefined ? { decision: { effect: 'allow' as const, approval: run.approvalId } } : {}),
    details: { runId, digest: run.digest, principal: `${run.principal.type}::${run.principal.id}`, via: 'another gateway', ...(run.receipt ? { approvalReceipt: { ...run.receipt } } : {}) },
  };
}

function actor(principal: PrincipalRef): AuditEventInput['actor'] {
  return { kind: principal.type === 'Agent' ? 'agent' : principal.type === 'Node' ? 'node' : 'human', id: principal.id };
}

function wire(code: GatewayError['code'], shape: WireError, cause?: unknown): GatewayError {
  return new GatewayError(code, shape.message, { wire: shape, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * Who resolves an approval over the protocol: never an agent. Every operator
 * connection holds the shared gateway token, so each is a token approver
 * (one toward a quorum, see tokenApprover): one with a device proof is
 * recorded as that device, one without must name the human as upstream's
 * reviewer `{ channel, accountId, senderId }` (channel `corral`: the sender is
 * the Corral user name; another channel's sender is recorded as `channel:sender`).
 */
function protocolApprover(peer: Peer, reviewer: { channel: string; accountId: string; senderId: string } | undefined): string {
  if (peer.agent) throw wire('GATEWAY_ROLE_FORBIDDEN', { code: 'FORBIDDEN', message: 'an agent cannot resolve approvals' });
  if (peer.deviceId) return tokenApprover(`device:${peer.deviceId}`);
  const who = reviewer === undefined ? '' : reviewer.channel === 'corral' ? reviewer.senderId : `${reviewer.channel}:${reviewer.senderId}`;
  try {
    return tokenApprover(who);
  } catch (error) {
    throw wire('GATEWAY_PARAMS_INVALID', { code: 'INVALID_REQUEST', message: 'with the gateway token, name the approver (reviewer.senderId)' }, error);
  }
}

/**
 * A command the node's own policy asks a human for, as if Corral's policy had
 * asked (upstream's rule: the stricter of the two applies). Only an allow
 * becomes an ask; a deny stays a deny, an ask keeps its quorum.
 */
function askedByNode(assessed: Assessed, why: string): Assessed {
  // Recorded as the node's, so that replaying the decision asks again whatever a candidate policy allows.
  return { ...assessed, verdict: nodeAsked(assessed.verdict, why), decideAgain: async () => nodeAsked(await assessed.decideAgain(), why), auditDetails: { ...assessed.auditDetails, nodeAsks: cut(why, 300) } };
}

/**
 * A node's refusal because its own policy asks a human and none approved the
 * run: upstream's node host and Corral's answer `SYSTEM_RUN_DENIED: approval
 * required…`.
 */
function nodeAsks(result: InvokeResult): boolean {
  return !result.ok && result.error?.code === 'SYSTEM_RUN_DENIED' && /^SYSTEM_RUN_DENIED: approval required/.test(result.error.message ?? '');
}

/** The refusal code upstream callers know for a run (SYSTEM_RUN_DENIED), and Corral's for any other command. */
function denialCode(command: string): 'SYSTEM_RUN_DENIED' | 'COMMAND_DENIED' {
  return RUN_COMMANDS.has(command) ? 'SYSTEM_RUN_DENIED' : 'COMMAND_DENIED';
}

function denied(command: string, reason: string, approvalId?: string): GatewayError {
  const code = denialCode(command);
  return wire('GATEWAY_POLICY_DENIED', { code: 'INVALID_REQUEST', message: `${code}: ${reason}`, details: { code, reason, ...(approvalId ? { approvalId } : {}) } });
}

/** The refusal of a command whose agent is suspended or retired, or whose token died, whenever the gateway finds it so. */
function agentStopped(command: string, approvalId?: string): GatewayError {
  return denied(command, 'the agent is suspended or retired, or its token is no longer valid', approvalId);
}

/**
 * Why nothing more may be sent or released for a command whose agent no
 * longer `stands` as it did when it asked (see NodeInvoker#stands), and the
 * error its caller gets: `agent-suspended` (suspended or retired, or the
 * token it asked with no longer valid: agentStopped), or
 * `agent-unverified` when identity.db cannot be read now (what reading it
 * threw: GATEWAY_BUSY to the caller, retryable). Undefined while it stands.
 */
function withdrawal(stands: () => boolean, command: string, approvalId: string | undefined): { why: 'agent-suspended' | 'agent-unverified'; error: unknown } | undefined {
  try {
    return stands() ? undefined : { why: 'agent-suspended', error: agentStopped(command, approvalId) };
  } catch (error) {
    return { why: 'agent-unverified', error };
  }
}

/**
 * The approval.request record's `runsCode`: the warning its approver is shown
 * (action.runsCode, see approvals/runs-code.ts) that the command runs code its
 * argv does not show; nothing when it has none (null, or a named command).
 */
function runsCodeOf(approval: Approval): { runsCode?: { program: string; via: string; reason: string } } {
  const runs = approval.action.runsCode as { program?: unknown; via?: unknown; reason?: unknown } | null | undefined;
  if (runs === null || typeof runs !== 'object') return {};
  return { runsCode: { program: String(runs.program), via: String(runs.via), reason: String(runs.reason) } };
}

function sameOperand(a: FileOperand | undefined, b: FileOperand): boolean {
  return a !== undefined && a.argvIndex === b.argvIndex && a.path === b.path && a.sha256 === b.sha256;
}

/** A bound script's name as a refusal shows it: the last part of its path, short, printable ASCII, else `it`. */
/** The argv index of the one script file `assessed`'s run runs (runsCode's numeric operand), when it is not bound yet; undefined for any other run. */
function scriptWord(assessed: Assessed): number | undefined {
  if (assessed.run === undefined || assessed.operand !== undefined) return undefined;
  const argvIndex = runsCode(assessed.run.argv)?.operand;
  return typeof argvIndex === 'number' ? argvIndex : undefined;
}

function operandName(operand: FileOperand): string {
  const name = operand.path.slice(operand.path.lastIndexOf('/') + 1);
  return /^[\x21-\x7e]{1,80}$/.test(name) ? name : 'it';
}

/** An approval as operators are sent it: its environment by names only (shownAction). */
function view(approval: Approval & { grant?: GrantView }): Record<string, unknown> {
  return { id: approval.id, status: approval.status, decision: approval.decision, request: shownAction(approval.action), quorum: approval.quorum, approvers: approval.approvers, createdAtMs: approval.createdAtMs, expiresAtMs: approval.expiresAtMs, digest: approval.digest, reason: approval.reason, ...(approval.grant ? { grant: approval.grant } : {}) };
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** What the node reported of the sandbox: the policy digest, counts of refused accesses and network connections, duration. */
/**
 * A result record's outcome. A command that ran but exited non-zero or timed out is a failure, as the node's own
 * report and `corral run` record it: `ok` only says the node answered.
 */
function resultOutcome(result: InvokeResult, payload: unknown): AuditEventInput['outcome'] {
  const facts = payload as { exitCode?: unknown; timedOut?: unknown } | undefined;
  const exitCode = typeof facts?.exitCode === 'number' ? facts.exitCode : undefined;
  const failed = !result.ok || (exitCode !== undefined && exitCode !== 0) || facts?.timedOut === true;
  return { status: failed ? 'failure' : 'success', ...(exitCode !== undefined ? { exitCode } : {}), ...(result.error?.code ? { detail: result.error.code } : {}) };
}

function containedFacts(payload: unknown): Record<string, string | number | boolean> {
  const contained = (payload as { contained?: Record<string, unknown> } | undefined)?.contained;
  const out: Record<string, string | number | boolean> = {};
  if (typeof (payload as { timedOut?: unknown } | undefined)?.timedOut === 'boolean') out.timedOut = (payload as { timedOut: boolean }).timedOut;
  if (!contained || typeof contained !== 'object') return out;
  if (typeof contained.policyDigest === 'string') out.containerPolicy = contained.policyDigest.slice(0, 100);
  for (const key of ['refused', 'connections', 'durationMs'] as const) if (typeof contained[key] === 'number') out[key] = contained[key] as number;
  return out;
}

/** The trace id of a governed run's records: its request id as a W3C trace id (32 lowercase hex). */
function runTrace(invokeId: string): string {
  return invokeId.replaceAll('-', '');
}
