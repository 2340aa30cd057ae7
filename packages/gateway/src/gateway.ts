// Corral's control plane on one machine: the protocol server, the node
// inventory, and the state they keep in the state directory.
import type { DatabaseSync } from 'node:sqlite';
import { Identity } from '@corral/identity';
import { NodeInventory } from './nodes/inventory.ts';
import { GatewayServer, type GatewayServerOptions } from './server/server.ts';
import { SurfaceStore, openGatewayDb } from './store/store.ts';

export interface GatewayOptions extends Omit<GatewayServerOptions, 'identity'> {
  /** Where identity.db and gateway.db live. */
  stateDir: string;
}

export class Gateway {
  readonly server: GatewayServer;
  readonly inventory: NodeInventory;
  readonly identity: Identity;
  readonly #db: DatabaseSync;

  private constructor(server: GatewayServer, inventory: NodeInventory, identity: Identity, db: DatabaseSync) {
    this.server = server;
    this.inventory = inventory;
    this.identity = identity;
    this.#db = db;
  }

  /** Opens the state and starts listening. Throws GATEWAY_CONFIG_INVALID, and identity's IDENTITY_STORE_FAILED. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const identity = Identity.open(options.stateDir, options.now ? { now: options.now } : {});
    let db: DatabaseSync | undefined;
    try {
      db = openGatewayDb(options.stateDir);
      const { stateDir: _stateDir, ...serverOptions } = options;
      const server = await GatewayServer.start({ ...serverOptions, identity });
      const inventory = new NodeInventory(server, new SurfaceStore(db), options.now);
      return new Gateway(server, inventory, identity, db);
    } catch (error) {
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
    this.#db.close();
    this.identity.close();
  }
}
