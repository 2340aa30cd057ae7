import type { Command } from 'commander';
import type { NodeRecord } from '@corral/identity';
import { printable, printJson } from '../output.ts';
import { existingState } from '../state-dir.ts';
import { dirOf, withIdentity } from './agents.ts';
import { recordIdentityEvent } from './identity-record.ts';

interface NodeRow extends NodeRecord {
  commands: string[];
  lastSeenAt?: string;
  /** The address it last connected, or asked to be paired, from. */
  remoteIp?: string;
}

/** The command's state directory, when a gateway has used it (its gateway.db is there): see existingState. */
export async function gatewayStateDir(command: Command): Promise<string> {
  const { GATEWAY_DB_FILE } = await import('@corral/gateway');
  return existingState(dirOf(command), GATEWAY_DB_FILE, 'gateway state', 'start `corral gateway` with this state directory');
}

/** Identity's pairing state joined with what the gateway last heard from each node. */
async function nodeRows(command: Command): Promise<NodeRow[]> {
  const { openGatewayDb, SurfaceStore } = await import('@corral/gateway');
  const dir = await gatewayStateDir(command);
  const list = await withIdentity(command, (id) => id.nodes.list());
  const db = openGatewayDb(dir);
  try {
    const surfaces = new SurfaceStore(db);
    return list.map((node) => {
      const surface = surfaces.get(node.deviceId);
      return { ...node, commands: surface?.commands ?? [], ...(surface ? { lastSeenAt: new Date(surface.lastSeenAt).toISOString() } : {}), ...(surface?.remoteIp ? { remoteIp: surface.remoteIp } : {}) };
    });
  } finally {
    db.close();
  }
}

function printRows(rows: NodeRow[], empty: string): void {
  if (rows.length === 0) return void process.stdout.write(`${empty}\n`);
  for (const n of rows) process.stdout.write(`${printable(`${n.deviceId.slice(0, 16)}  ${n.status.padEnd(8)}  ${n.displayName}  ${n.platform}  ${n.remoteIp ?? '-'}  ${n.commands.join(',') || '-'}`)}\n`);
}

/** `corral nodes list|pending|pair ID|revoke ID`: machines that serve commands through the gateway. */
export function registerNodes(program: Command): void {
  const nodes = program.command('nodes').description('nodes (machines) that connect to the gateway, and their pairing');
  nodes
    .command('list')
    .description('every known node: paired, pending and revoked')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const rows = await nodeRows(command);
      if (opts.json) return printJson(rows);
      printRows(rows, 'no nodes');
    });
  nodes
    .command('pending')
    .description('nodes waiting for an operator to pair them, with the commands they declare')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const rows = (await nodeRows(command)).filter((n) => n.status === 'pending');
      if (opts.json) return printJson(rows);
      printRows(rows, 'no pending nodes');
    });
  for (const verb of ['pair', 'revoke'] as const) {
    nodes
      .command(verb)
      .description(verb === 'pair' ? 'pair a pending node so it may connect' : 'unpair a node; a connected node is cut off at its next command')
      .argument('<id>', 'the device id, or a unique prefix of at least 8 hex digits')
      .option('--by <who>', 'the operator doing it (recorded)', process.env.USER ?? 'operator')
      .option('--json', 'print the node as JSON')
      .action(async (id: string, opts: { by: string; json?: boolean }, command: Command) => {
        const dir = await gatewayStateDir(command);
        const node = await withIdentity(command, (identity) => (verb === 'pair' ? identity.nodes.pair(id, opts.by) : identity.nodes.revoke(id)));
        await recordIdentityEvent(dir, { action: `node.${verb}`, resource: { kind: 'node', id: node.deviceId }, details: { displayName: node.displayName, status: node.status } });
        if (opts.json) printJson(node);
        else process.stdout.write(`node ${node.deviceId.slice(0, 16)} is ${node.status}\n`);
      });
  }
}
