// A gateway (protocol server, inventory, invoker) over a state directory with
// policies, whose audit appends commit 300 ms late, or are refused: what a
// node sees before, and after, a decision is durable.
import { join } from 'node:path';
import { openAuditLog, type AuditEventInput } from '@corral/audit';
import { Identity } from '@corral/identity';
import { DecisionPoint } from '@corral/policy';
import { ApprovalStore, GatewayClient, GatewayServer, NodeInventory, NodeInvoker, OpenRuns, ReceiptSigner, SurfaceStore, openGatewayDb } from '../src/index.ts';

export interface SlowLogGateway {
  server: GatewayServer;
  identity: Identity;
  /** An operator connected with the token. */
  operator: GatewayClient;
  /** Resolves approvals as the HTTP API and the protocol do. */
  invoker: NodeInvoker;
  approvals: ApprovalStore;
  /** When each `node.invoke.decide` record became durable (performance.now()). */
  durable: number[];
  /** When each `approval.resolve` record became durable. */
  approvalsDurable: number[];
  /** When each `node.invoke` (result) record became durable. */
  resultsDurable: number[];
  close(): Promise<void>;
}

/** Starts one on `stateDir` (which holds `policies/`); with `refuse`, every append fails after the delay. */
export async function slowLogGateway(stateDir: string, token: string, options: { refuse?: boolean } = {}): Promise<SlowLogGateway> {
  const identity = Identity.open(stateDir);
  const db = openGatewayDb(stateDir);
  const server = await GatewayServer.start({ token, identity, port: 0 });
  const log = await openAuditLog({ stateDir });
  const point = new DecisionPoint();
  point.reload(join(stateDir, 'policies'));
  const durable: number[] = [];
  const approvalsDurable: number[] = [];
  const resultsDurable: number[] = [];
  const audit = async (event: AuditEventInput) => {
    await new Promise((r) => setTimeout(r, 300));
    if (options.refuse) throw new Error('the disk is full');
    const record = await log.append(event);
    if (event.action === 'node.invoke.decide') durable.push(performance.now());
    if (event.action === 'approval.resolve') approvalsDurable.push(performance.now());
    if (event.action === 'node.invoke') resultsDurable.push(performance.now());
    return record;
  };
  const approvals = new ApprovalStore(db);
  const invoker = new NodeInvoker(server, new NodeInventory(server, new SurfaceStore(db)), { approvals, openRuns: new OpenRuns(db), receipts: ReceiptSigner.open(db), decider: point, audit });
  const operator = await GatewayClient.connect({ url: server.url, token, role: 'operator', scopes: ['operator.admin'] });
  return {
    server,
    identity,
    operator,
    invoker,
    approvals,
    durable,
    approvalsDurable,
    resultsDurable,
    async close() {
      await operator.close();
      await server.close();
      await log.close();
      db.close();
      identity.close();
    },
  };
}
