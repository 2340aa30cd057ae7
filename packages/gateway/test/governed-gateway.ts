// The setup most tests of the governed path share: Corral's whole gateway on
// a temporary state directory holding a policy set, a node paired with it
// that records every command reaching it (node-peer.ts), and an operator
// (operator.admin) that asks for runs and resolves approvals. And, for tests
// of what a run does when its audit log refuses, stalls or rations records,
// the gateway's protocol server and invoker alone, appending where the test says.
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEventInput } from '@corral/audit';
import { Identity } from '@corral/identity';
import { DecisionPoint } from '@corral/policy';
import { ApprovalStore, Gateway, GatewayClient, GatewayServer, NodeInventory, NodeInvoker, OpenRuns, PolicyGrants, ReceiptSigner, SurfaceStore, openGatewayDb, type Approval, type GatewayOptions, type InvokerOptions } from '../src/index.ts';
import type { PolicyControl } from '../src/http/policy-control.ts';
import { pairedNodePeer, type Answer, type NodePeer, type ReceivedInvoke } from './node-peer.ts';
import { policyStateDir, type PolicySet } from './policy-state.ts';

/** A node's answer to every command: it ran, and exited 0. */
export const exitsZero = (): Answer => ({ ok: true, payload: { exitCode: 0 } });

/** Whether a refused request's wire error carries `code` in its details (APPROVAL_PENDING, SYSTEM_RUN_DENIED, …): for assert.rejects. */
export const refusedWith = (code: string) => (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === code;

export type GovernedGatewayOptions = (
  | {
      /** The policy set, in a state directory made for this gateway and removed by close(). */
      policy: PolicySet;
      state?: never;
    }
  | {
      /** A state directory holding `policies/`, made (and removed) by the caller: close() leaves it. */
      state: string;
      policy?: never;
    }
) & {
  /** More of Gateway.start's options (approvalPollMs, approvalTtlMs, port, …); port 0 unless given. */
  gateway?: Partial<Omit<GatewayOptions, 'stateDir' | 'token'>>;
  /** How the node answers each command (default: exitsZero); 'never' leaves it unanswered. */
  answer?: (invoke: ReceivedInvoke) => Answer;
  /** The node's caps (e.g. INVOKE_RELEASE_EVENT). */
  caps?: string[];
  /** The commands the node declares (default: system.run). */
  commands?: string[];
};

export interface GovernedGateway {
  /** The state directory. */
  state: string;
  /** Its policy directory. */
  policies: string;
  /** The gateway's shared token. */
  token: string;
  gw: Gateway;
  /** The paired node, declaring system.run. */
  node: NodePeer;
  /** An operator connected with the token, scope operator.admin. */
  operator: GatewayClient;
  /** Asks, as the operator, for `argv` to run on the node: the gateway gives the run `timeoutMs`, the operator waits for its answer `waitMs`. */
  run(argv: string[], timeoutMs?: number, waitMs?: number): Promise<unknown>;
  /** The approval waiting for a run of exactly `argv`, if there is one. */
  pendingFor(argv: string[]): Approval | undefined;
  /** Pairs another node declaring system.run (answering as pairedNodePeer does by default), closed with the gateway. */
  pairNode(answer?: (invoke: ReceivedInvoke) => Answer, caps?: string[]): Promise<NodePeer>;
  /** Closes the nodes paired since, the operator, the node and the gateway, and removes the state directory it made. */
  close(): Promise<void>;
}

/** Starts a gateway on `options.policy` (or `options.state`), pairs a node with it and connects an operator. */
export async function governedGateway(options: GovernedGatewayOptions): Promise<GovernedGateway> {
  const state = options.state ?? policyStateDir('governed', options.policy);
  const token = randomBytes(24).toString('base64url');
  /** What is open, closed newest first: on close(), or when the setup fails half way (nothing is left to keep the test process alive). */
  const opened: Array<{ close(): Promise<void> }> = [];
  const close = async () => {
    for (let last = opened.pop(); last; last = opened.pop()) await last.close();
    if (options.state === undefined) rmSync(state, { recursive: true, force: true });
  };
  try {
    const gw = await Gateway.start({ port: 0, ...options.gateway, stateDir: state, token });
    opened.push(gw);
    const pair = async (answer?: (invoke: ReceivedInvoke) => Answer, caps: string[] = [], commands: string[] = ['system.run']) => {
      const node = await pairedNodePeer(gw.url, token, gw.identity, commands, answer, caps);
      opened.push(node);
      return node;
    };
    const node = await pair(options.answer ?? exitsZero, options.caps, options.commands);
    const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
    opened.push(operator);
    return {
      state,
      policies: join(state, 'policies'),
      token,
      gw,
      node,
      operator,
      run: (argv, timeoutMs = 10_000, waitMs = timeoutMs + 5_000) => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: waitMs }),
      pendingFor: (argv) => gw.approvals.list({ status: 'pending' }).find((a) => JSON.stringify(a.action.argv) === JSON.stringify(argv)),
      pairNode: pair,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

export interface InvokerGatewayOptions {
  /** A state directory holding `policies/`, made (and removed) by the caller. */
  state: string;
  token: string;
  /** Where each audit record goes instead of the audit log: it refuses one by throwing, stalls one by waiting. */
  audit: (event: AuditEventInput) => Promise<unknown>;
  /** Decides instead of the state directory's policies as they load at start (a PolicyControl, a decider that waits). */
  decider?: InvokerOptions['decider'];
  /** The policy set allow-always approvals become grants in (without it, allow-always allows the one run only). */
  grants?: PolicyControl;
  /** More of NodeInvoker's options (approvalPollMs, nodeAuditLimits). */
  invoker?: Partial<InvokerOptions>;
}

/** A gateway's protocol server, node inventory and invoker on `options.state`, with no HTTP API and no audit log of its own. */
export interface InvokerGateway {
  server: GatewayServer;
  identity: Identity;
  approvals: ApprovalStore;
  /** With `options.grants`: the grants made in it. */
  grants: PolicyGrants | undefined;
  invoker: NodeInvoker;
  /** Closes the server, gateway.db and the identity store (not the state directory). */
  close(): Promise<void>;
}

/** Starts one on `options.state`, deciding with its policies (or `options.decider`) and appending to `options.audit`. */
export async function invokerGateway(options: InvokerGatewayOptions): Promise<InvokerGateway> {
  const { state, token, audit } = options;
  const identity = Identity.open(state);
  const db = openGatewayDb(state);
  const server = await GatewayServer.start({ token, identity, port: 0 });
  let decider = options.decider;
  if (!decider) {
    const point = new DecisionPoint();
    point.reload(join(state, 'policies'));
    decider = point;
  }
  const approvals = new ApprovalStore(db);
  const grants = options.grants ? new PolicyGrants(options.grants, approvals) : undefined;
  const invoker = new NodeInvoker(server, new NodeInventory(server, new SurfaceStore(db)), { approvals, openRuns: new OpenRuns(db), receipts: ReceiptSigner.open(db), decider, audit, ...(grants ? { grants } : {}), ...options.invoker });
  return {
    server,
    identity,
    approvals,
    grants,
    invoker,
    async close() {
      await server.close();
      db.close();
      identity.close();
    },
  };
}
