// A node speaking the node role over the real protocol, paired with a
// gateway, that records every `node.invoke.request` reaching it and answers
// it with a handler. What governance lets through is what reaches here.
import { randomBytes } from 'node:crypto';
import { createDeviceIdentity, type DeviceIdentity, type Identity } from '@corral/identity';
import { GatewayClient } from '../src/index.ts';

export interface ReceivedInvoke {
  id: string;
  command: string;
  params: Record<string, unknown>;
}

export interface NodePeer {
  device: DeviceIdentity;
  client: GatewayClient;
  received: ReceivedInvoke[];
  close(): Promise<void>;
}

export type Answer = { ok: true; payload: unknown } | { ok: false; error: { code: string; message: string } } | 'never';

/**
 * Connects a node declaring `commands` (and `caps`), pairs it through
 * `identity` (as `corral nodes pair` does), reconnects, and serves invokes
 * with `answer` (default: ok with `{ ran: command }`).
 */
export async function pairedNodePeer(url: string, token: string, identity: Identity, commands: string[], answer: (invoke: ReceivedInvoke) => Answer = (i) => ({ ok: true, payload: { ran: i.command } }), caps: string[] = []): Promise<NodePeer> {
  const device = createDeviceIdentity();
  const options = { url, token, role: 'node' as const, device, client: { displayName: `peer-${randomBytes(3).toString('hex')}` }, commands, caps };
  await GatewayClient.connect(options).then(
    (c) => c.close(),
    () => undefined,
  );
  identity.nodes.pair(device.deviceId, 'test');
  const client = await GatewayClient.connect(options);
  const received: ReceivedInvoke[] = [];
  client.on('node.invoke.request', (payload) => {
    const p = payload as { id: string; nodeId: string; command: string; paramsJSON?: string | null };
    const invoke = { id: p.id, command: p.command, params: p.paramsJSON ? (JSON.parse(p.paramsJSON) as Record<string, unknown>) : {} };
    received.push(invoke);
    const a = answer(invoke);
    if (a === 'never') return;
    void client.request('node.invoke.result', a.ok ? { id: p.id, nodeId: p.nodeId, ok: true, payloadJSON: JSON.stringify(a.payload) } : { id: p.id, nodeId: p.nodeId, ok: false, error: a.error }).catch(() => {});
  });
  return { device, client, received, close: () => client.close() };
}
