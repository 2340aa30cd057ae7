// A gateway (protocol server, inventory, invoker) over a state directory with
// policies, whose audit appends commit 300 ms late, or are refused: what a
// node sees before, and after, a decision is durable.
import { openAuditLog, type AuditEventInput } from '@corral/audit';
import type { Identity } from '@corral/identity';
import { GatewayClient, type ApprovalStore, type GatewayServer, type NodeInvoker } from '../src/index.ts';
import { invokerGateway } from './governed-gateway.ts';

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
  const log = await openAuditLog({ stateDir });
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
  const gateway = await invokerGateway({ state: stateDir, token, audit });
  const { server, identity, invoker, approvals } = gateway;
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
      await gateway.close();
      await log.close();
    },
  };
}
