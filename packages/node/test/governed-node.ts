// A Corral node serving a gateway the test writes (standing in for upstream
// OpenClaw's) and governed by a real Corral control plane: what the
// corral.run.* tests of the node share.
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEvent } from '@corral/audit';
import type { Identity } from '@corral/identity';
import { Gateway, type Connection } from '@corral/gateway';
import { startTestGateway } from '../../gateway/test/harness.ts';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { NodeHost, loadOrCreateDevice, type NodeHostOptions } from '../src/host.ts';
import { LOCAL_POLICY_FILE } from '../src/local-policy.ts';
import { auditEvents } from '../../../scripts/testing/audit-events.ts';

/** A node's answer to node.invoke.request, as the upstream gateway gets it. */
export interface InvokeAnswer {
  ok: boolean;
  payload?: { stdout?: string; exitCode?: number | null };
  payloadJSON?: string | null;
  error?: { code: string; message: string };
}

/** The node's own policy unless a test gives another: `printf` alone, never asking. */
export const PRINTF_ONLY = { version: 1, defaults: { security: 'allowlist', ask: 'off' }, agents: { '*': { allowlist: [{ pattern: 'printf' }] } } };

/**
 * Starts `host` and pairs it as its operators would: on the upstream gateway once it asks, then on the
 * control plane once it has asked there too (`announced`), letting it ask for invoice-bot where the control plane knows it; resolves when the upstream sees it `connected`.
 */
export async function pairOnBoth(host: NodeHost, deviceId: string, upstream: Identity, controlPlane: Identity, announced: Promise<void>, connected: () => boolean): Promise<void> {
  const started = host.start();
  while (!upstream.nodes.find(deviceId)) await new Promise((r) => setTimeout(r, 10));
  upstream.nodes.pair(deviceId, 'test');
  await started;
  await announced;
  controlPlane.nodes.pair(deviceId, 'test', { agents: controlPlane.agents.idsOf(['invoice-bot'].filter((a) => controlPlane.agents.find(a))) });
  while (!connected()) await new Promise((r) => setTimeout(r, 5));
}

export interface GovernedNodeOptions {
  token: string;
  /** The node's own policy (node-policy.json); PRINTF_ONLY when absent. */
  localPolicy?: object;
  /** The control plane's Cedar policy; when absent it permits invoice-bot `printf`. */
  cedar?: string;
  containerPolicies?: NodeHostOptions['containerPolicies'];
}

/**
 * A Corral control plane (its policy `cedar`, agent invoice-bot), and a node
 * paired with it serving a gateway the test writes, mapping upstream `main`
 * to invoice-bot, its own policy `localPolicy`.
 */
export async function governedNode(options: GovernedNodeOptions) {
  const { token } = options;
  const cpState = tempDir('corral-governed-cp-');
  mkdirSync(join(cpState, 'policies'));
  writeFileSync(join(cpState, 'policies', 'run.cedar'), options.cedar ?? 'permit (principal == Agent::"invoice-bot", action == Action::"system.run", resource == Command::"printf");\n');
  const cp = await Gateway.start({ stateDir: cpState, token, port: 0, approvalPollMs: 20 });
  cp.identity.agents.create({ name: 'invoice-bot', process: 'invoices', owner: 'owner@example.com', scopes: [] });
  const nodeState = tempDir('corral-governed-node-');
  writeFileSync(join(nodeState, LOCAL_POLICY_FILE), JSON.stringify(options.localPolicy ?? PRINTF_ONLY));
  const deviceId = loadOrCreateDevice(nodeState).deviceId;
  const upstream = await startTestGateway({ token });
  const waiting = new Map<string, (answer: InvokeAnswer) => void>();
  upstream.server.method('node.invoke.result', {
    role: 'node',
    handler: (params) => {
      const p = params as InvokeAnswer & { id: string };
      waiting.get(p.id)?.(p);
      return { ok: true };
    },
  });
  let node: Connection | undefined;
  upstream.server.on('ready', (connection) => {
    if (connection.peer?.role === 'node') node = connection;
  });
  const announced = new Promise<void>((resolve) => cp.server.onPairingRequest(() => resolve()));
  const host = new NodeHost({ gateway: upstream.server.url, token, stateDir: nodeState, maxBackoffMs: 200, warmSandboxes: 0, controlPlane: { url: cp.url, token, agents: { main: 'invoice-bot' } }, ...(options.containerPolicies ? { containerPolicies: options.containerPolicies } : {}) });
  await pairOnBoth(host, deviceId, upstream.identity, cp.identity, announced, () => node !== undefined);
  const invoke = (params: Record<string, unknown>): Promise<InvokeAnswer> =>
    new Promise((resolve) => {
      const id = randomUUID();
      waiting.set(id, resolve);
      node!.event('node.invoke.request', { id, nodeId: deviceId, command: 'system.run', paramsJSON: JSON.stringify(params), timeoutMs: 20_000 });
    });
  /** The control plane's records of the node's own refusals, once `count` of them are there (or after 10 s). */
  const refusals = async (count: number): Promise<AuditEvent[]> => {
    for (const deadline = Date.now() + 10_000; ; ) {
      const found = (await auditEvents(cpState)).filter((e) => e.action === 'node.invoke.refuse');
      if (found.length >= count || Date.now() > deadline) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** The control plane's records of runs it allowed this node, once `count` of them were reported (or after 10 s). */
  const reports = async (count: number): Promise<AuditEvent[]> => {
    for (const deadline = Date.now() + 10_000; ; ) {
      const found = (await auditEvents(cpState)).filter((e) => e.action === 'node.invoke' && e.actor.kind === 'node');
      if (found.length >= count || Date.now() > deadline) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  /** The id of the approval the control plane asks a human for about this node's run, once it asks. */
  const asked = async (): Promise<string> => {
    for (;;) {
      const [approval] = cp.approvals.list({ status: 'pending' }).filter((a) => a.action.nodeId === deviceId);
      if (approval) return approval.id;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const approve = (id: string) => cp.invoker.resolveApprovalWhenFree(id, 'allow-once', 'alice');
  return {
    cp,
    cpState,
    nodeState,
    deviceId,
    reports,
    asked,
    approve,
    invoke,
    refusals,
    close: async () => {
      await host.close();
      await upstream.stop();
      await cp.close().catch(() => undefined);
    },
  };
}
