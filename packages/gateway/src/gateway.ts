// Corral's control plane on one machine: the protocol server, the node
// inventory, the governed node-command path with its approvals, the policy
// decision point and the audit log, with their state in the state directory.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { openAuditLog, type AuditLog, type AuditEventInput } from '@corral/audit';
import { Identity } from '@corral/identity';
import { DecisionPoint, type Decision } from '@corral/policy';
import { ApprovalStore } from './approvals/store.ts';
import { GatewayError } from './errors.ts';
import { approvalsApi } from './http/api.ts';
import { NodeInvoker, type InvokerOptions } from './exec/invoke.ts';
import { NodeInventory } from './nodes/inventory.ts';
import { GatewayServer, type GatewayServerOptions } from './server/server.ts';
import { SurfaceStore, openGatewayDb } from './store/store.ts';

export interface GatewayOptions extends Omit<GatewayServerOptions, 'identity'> {
  /** Where identity.db, gateway.db, the audit log and `policies/` live. */
  stateDir: string;
  /** Cedar policies (default STATE_DIR/policies; an `entities.json` beside them is loaded too). No policies: every governed command is denied. */
  policyDir?: string;
  /** A decision function instead of a policy directory (tests, embedding). */
  decide?: (input: unknown) => Decision;
  /** Append to the state directory's audit log (default true). */
  audit?: boolean;
  approvalTtlMs?: number;
  approvalPollMs?: number;
  operatorPrincipal?: InvokerOptions['operatorPrincipal'];
}

export class Gateway {
  readonly server: GatewayServer;
  readonly inventory: NodeInventory;
  readonly invoker: NodeInvoker;
  readonly approvals: ApprovalStore;
  readonly identity: Identity;
  readonly #db: DatabaseSync;
  readonly #audit: AuditLog | undefined;

  private constructor(parts: { server: GatewayServer; inventory: NodeInventory; invoker: NodeInvoker; approvals: ApprovalStore; identity: Identity; db: DatabaseSync; audit: AuditLog | undefined }) {
    this.server = parts.server;
    this.inventory = parts.inventory;
    this.invoker = parts.invoker;
    this.approvals = parts.approvals;
    this.identity = parts.identity;
    this.#db = parts.db;
    this.#audit = parts.audit;
  }

  /** The HTTP API's base URL (`/api/approvals`…). */
  get httpUrl(): string {
    return this.url.replace(/^ws/, 'http');
  }

  /** Opens the state and starts listening. Throws GATEWAY_CONFIG_INVALID, identity's IDENTITY_STORE_FAILED, policy's POLICY_SET_INVALID, audit's AUDIT_*. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const identity = Identity.open(options.stateDir, options.now ? { now: options.now } : {});
    let db: DatabaseSync | undefined;
    let audit: AuditLog | undefined;
    try {
      db = openGatewayDb(options.stateDir);
      const decide = options.decide ?? loadDecide(options.policyDir ?? join(options.stateDir, 'policies'));
      if (options.audit !== false) audit = await openAuditLog({ stateDir: options.stateDir });
      const { stateDir: _s, policyDir: _p, decide: _d, audit: _a, approvalTtlMs, approvalPollMs, operatorPrincipal, ...serverOptions } = options;
      let invokerRef: NodeInvoker | undefined;
      let approvalsRef: ApprovalStore | undefined;
      const http = approvalsApi({
        token: options.token,
        approvals: () => approvalsRef,
        resolve: (id, decision, approver) => {
          if (!invokerRef) throw new GatewayError('GATEWAY_INTERNAL', 'not ready');
          return invokerRef.resolveApproval(id, decision, approver);
        },
      });
      const server = await GatewayServer.start({ ...serverOptions, identity, http });
      const inventory = new NodeInventory(server, new SurfaceStore(db), options.now);
      const approvals = new ApprovalStore(db, options.now);
      const log = audit;
      const invoker = new NodeInvoker(server, inventory, {
        approvals,
        ...(decide ? { decide } : {}),
        ...(log ? { audit: (event: AuditEventInput) => log.append(event) } : {}),
        ...(approvalTtlMs ? { approvalTtlMs } : {}),
        ...(approvalPollMs ? { approvalPollMs } : {}),
        ...(operatorPrincipal ? { operatorPrincipal } : {}),
      });
      invokerRef = invoker;
      approvalsRef = approvals;
      return new Gateway({ server, inventory, invoker, approvals, identity, db, audit });
    } catch (error) {
      await audit?.close();
      db?.close();
      identity.close();
      throw error;
    }
  }

  get url(): string {
    return this.server.url;
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.#audit?.close();
    this.#db.close();
    this.identity.close();
  }
}

function loadDecide(dir: string): ((input: unknown) => Decision) | undefined {
  if (!existsSync(dir)) return undefined;
  const point = new DecisionPoint();
  point.reload(dir);
  const entities = join(dir, 'entities.json');
  if (existsSync(entities)) point.setEntities(JSON.parse(readFileSync(entities, 'utf8')));
  return (input) => point.decide(input);
}
