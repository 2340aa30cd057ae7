// A gateway (protocol server, inventory, invoker) over a state directory with
// policies, whose audit log refuses the appends a test picks, and one node
// answering every command at once: what a run does when a record it depends on
// is refused. It decides with the policy directory as it loads, or — with
// `grants` — through PolicyControl, making allow-always grants in it.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { AuditEventInput } from '@corral/audit';
import { GatewayClient, grantFile } from '../src/index.ts';
import { PolicyControl } from '../src/http/policy-control.ts';
import { invokerGateway } from './governed-gateway.ts';
import { pairedNodePeer, type NodePeer } from './node-peer.ts';

/** What the node answers each command it gets. */
export type NodeAnswer = () => { ok: true; payload: unknown };

export interface RefusingLogGatewayOptions {
  state: string;
  token: string;
  /** Decide through PolicyControl and make grants (a put-back meeting another process's activation lock gives up after 300 ms). */
  grants?: boolean;
  /** The node's caps (e.g. INVOKE_RELEASE_EVENT). */
  caps?: string[];
  /** Connects the node instead of pairing a new one (one paired before a restart). */
  node?: (url: string, answer: NodeAnswer) => Promise<NodePeer>;
}

export async function refusingLogGateway(options: RefusingLogGatewayOptions) {
  const { state, token } = options;
  const dir = join(state, 'policies');
  const control = options.grants ? PolicyControl.open(dir, { lockWaitMs: 300 }) : undefined;
  const events: AuditEventInput[] = [];
  /** Which appends the log refuses ("the disk is full"); none while unset. */
  const refusing: { when?: (event: AuditEventInput) => boolean } = {};
  const audit = async (event: AuditEventInput) => {
    if (refusing.when?.(event)) throw new Error('the disk is full');
    events.push(event);
  };
  const gateway = await invokerGateway({ state, token, audit, ...(control ? { decider: control, grants: control } : {}), invoker: { approvalPollMs: 20 } });
  const { server, identity, approvals, grants, invoker } = gateway;
  /** For each command the node got: the records durable when it got it. */
  const durableAtRun: AuditEventInput[][] = [];
  const answer: NodeAnswer = () => {
    durableAtRun.push([...events]);
    return { ok: true as const, payload: { exitCode: 0 } };
  };
  const node = options.node ? await options.node(server.url, answer) : await pairedNodePeer(server.url, token, identity, ['system.run'], answer, options.caps ?? []);
  const operator = await GatewayClient.connect({ url: server.url, token, role: 'operator', scopes: ['operator.admin'] });
  const run = (argv: string[], timeoutMs = 10_000) => operator.request('node.invoke', { nodeId: node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs, idempotencyKey: randomUUID() }, { timeoutMs: timeoutMs + 5_000 });
  const pendingFor = (argv: string[]) => approvals.list({ status: 'pending' }).find((a) => JSON.stringify(a.action.argv) === JSON.stringify(argv));
  /** Asks for `argv` and resolves once its approval waits: the waiting run, and the approval's id and digest. */
  const asked = async (argv: string[]) => {
    // Its approver may take a while on a loaded machine (a large set compiled first): a run waits for them up to a minute.
    const waiting = run(argv, 60_000);
    waiting.catch(() => undefined);
    let approval = pendingFor(argv);
    for (let i = 0; !approval && i < 500; i++) {
      await new Promise((r) => setTimeout(r, 10));
      approval = pendingFor(argv);
    }
    assert.ok(approval, 'an approval request');
    return { waiting, id: approval.id, digest: approval.digest };
  };
  /** Whether approval `id`'s grant file is in the set in force. */
  const inSet = (id: string) => PolicyControl.open(dir).active().files.some((f) => f.name === grantFile(id));
  return {
    dir,
    server,
    identity,
    approvals,
    /** With `grants`: the policy set's control and its grants. */
    control,
    grants,
    invoker,
    node,
    events,
    durableAtRun,
    refusing,
    run,
    asked,
    pendingFor,
    inSet,
    async close() {
      await operator.close();
      await node.close();
      await gateway.close();
    },
  };
}
