import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../../scripts/testing/temp-dir.ts';
import { createDeviceIdentity, signDeviceAuth, type DeviceAuthFields } from './device.ts';
import { Identity } from './identity.ts';
import { MAX_NODE_AGENTS } from './nodes.ts';

/** A store with two agents and one node that has asked to be paired: its device id. */
function withNode(): { id: Identity; dir: string; deviceId: string; bot: string; ops: string } {
  const dir = tempDir('corral-node-agents-');
  const id = Identity.open(dir);
  const bot = id.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'finance@example.com' }).id;
  const ops = id.agents.create({ name: 'ops-bot', process: 'ops', owner: 'ops@example.com' }).id;
  const dev = createDeviceIdentity();
  const { nonce } = id.nodes.challenge();
  const now = Date.now();
  const fields: DeviceAuthFields = { deviceId: dev.deviceId, clientId: 'node-host', clientMode: 'node', role: 'node', scopes: [], signedAtMs: now, token: '', nonce, platform: 'linux' };
  const device = { id: dev.deviceId, publicKey: dev.publicKey, signature: signDeviceAuth(dev.privateKeyPem, fields), signedAt: now, nonce };
  assert.throws(() => id.nodes.authenticate({ device, client: { id: 'node-host', mode: 'node', platform: 'linux' }, role: 'node', scopes: [], commands: ['system.run'] }, nonce), { code: 'IDENTITY_NODE_NOT_PAIRED' });
  return { id, dir, deviceId: dev.deviceId, bot, ops };
}

describe('the agents a node may ask the control plane for', () => {
  it('are none until an operator names them: pairing alone lets a node ask for no agent, and says none was named', () => {
    const { id, deviceId } = withNode();
    try {
      assert.equal(id.nodes.get(deviceId).agents, undefined);
      assert.equal(id.nodes.pair(deviceId, 'ops').agents, undefined);
      assert.deepEqual(id.nodes.setAgents(deviceId, []).agents, [], 'named as none');
    } finally {
      id.close();
    }
  });

  it('are named at pairing or later, by name or id, kept as ids (each once, sorted), and replaced as a whole', () => {
    const { id, deviceId, bot, ops } = withNode();
    try {
      assert.deepEqual(id.nodes.pair(deviceId, 'ops', { agents: id.agents.idsOf(['invoice-bot', bot]) }).agents, [bot]);
      assert.deepEqual(id.nodes.setAgents(deviceId, id.agents.idsOf(['ops-bot', 'invoice-bot'])).agents, [bot, ops].sort());
      // Pairing a paired node again with agents only changes its agents, not when or by whom it was paired.
      const before = id.nodes.get(deviceId);
      const after = id.nodes.pair(deviceId, 'someone-else', { agents: [ops] });
      assert.deepEqual([after.agents, after.pairedBy, after.pairedAt], [[ops], before.pairedBy, before.pairedAt]);
      assert.deepEqual(id.nodes.setAgents(deviceId, []).agents, []);
    } finally {
      id.close();
    }
  });

  it('are kept across reopening the store, and dropped with the pairing when the node is revoked', () => {
    const { id, dir, deviceId, bot } = withNode();
    id.nodes.pair(deviceId, 'ops', { agents: [bot] });
    id.close();
    const again = Identity.open(dir);
    try {
      assert.deepEqual(again.nodes.get(deviceId).agents, [bot]);
      assert.equal(again.nodes.revoke(deviceId).agents, undefined);
      assert.throws(() => again.nodes.setAgents(deviceId, [bot]), { code: 'IDENTITY_NODE_REVOKED' });
    } finally {
      again.close();
    }
  });

  it('cannot be given to a node waiting to be paired, except by pairing it', () => {
    const { id, deviceId, bot } = withNode();
    try {
      assert.throws(() => id.nodes.setAgents(deviceId, [bot]), { code: 'IDENTITY_NODE_NOT_PAIRED', message: /pair it with its agents/ });
      assert.equal(id.nodes.get(deviceId).agents, undefined);
    } finally {
      id.close();
    }
  });

  it('refuse an unknown or retired agent by name, and anything but agent ids in the store, changing nothing', () => {
    const { id, deviceId, bot } = withNode();
    try {
      id.nodes.pair(deviceId, 'ops', { agents: [bot] });
      assert.throws(() => id.agents.idsOf(['invoice-bot', 'ghost']), { code: 'IDENTITY_AGENT_NOT_FOUND', message: /ghost/ });
      id.agents.retire('ops-bot');
      assert.throws(() => id.agents.idsOf(['ops-bot']), { code: 'IDENTITY_AGENT_STATE', message: /ops-bot is retired/ });
      for (const bad of [['invoice-bot'], ['agt_'], [42], Array.from({ length: MAX_NODE_AGENTS + 1 }, (_, i) => `agt_${i.toString(16).padStart(20, '0')}`)]) {
        assert.throws(() => id.nodes.setAgents(deviceId, bad as string[]), { code: 'IDENTITY_INPUT_INVALID' }, JSON.stringify(bad).slice(0, 60));
      }
      assert.deepEqual(id.nodes.get(deviceId).agents, [bot]);
    } finally {
      id.close();
    }
  });

  it('are read as none from a store made before they were kept, and a damaged list is refused IDENTITY_STORE_FAILED naming the node', () => {
    const { id, dir, deviceId, bot } = withNode();
    id.nodes.pair(deviceId, 'ops', { agents: [bot] });
    id.close();
    const db = new DatabaseSync(join(dir, 'identity.db'));
    db.exec('ALTER TABLE nodes DROP COLUMN agents');
    db.close();
    const older = Identity.open(dir);
    try {
      assert.equal(older.nodes.get(deviceId).agents, undefined);
    } finally {
      older.close();
    }
    const damaged = new DatabaseSync(join(dir, 'identity.db'));
    damaged.prepare('UPDATE nodes SET agents = ?').run('{"not":"a list"}');
    damaged.close();
    const reopened = Identity.open(dir);
    try {
      assert.throws(() => reopened.nodes.get(deviceId), { code: 'IDENTITY_STORE_FAILED', message: new RegExp(`agents of node ${deviceId}`) });
    } finally {
      reopened.close();
    }
  });
});
