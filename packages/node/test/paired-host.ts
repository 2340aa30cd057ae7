// A node host started against a gateway and paired there, as an operator
// would pair it once it asks to be.
import type { Identity } from '@corral/identity';
import type { NodeHost } from '../src/host.ts';

/** Starts `host`, pairs it on `gw` as soon as it has asked to be (within 5 s), and resolves once it is connected. */
export async function startPaired(host: NodeHost, gw: { identity: Identity }): Promise<void> {
  const connected = host.start();
  const deadline = Date.now() + 5_000;
  while (!gw.identity.nodes.find(host.device.deviceId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  gw.identity.nodes.pair(host.device.deviceId, 'test');
  await connected;
}
