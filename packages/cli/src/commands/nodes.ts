import type { Command } from 'commander';
import type { DatabaseSync } from 'node:sqlite';
import type { Identity, NodeRecord } from '@corral/identity';
import { EXIT } from '../exit-codes.ts';
import { CliFailure, printable, printJson, table } from '../output.ts';
import { existingState } from '../state-dir.ts';
import { accountName } from '../account.ts';
import { shownNodeId } from '../node-id.ts';
import { dirOf, withIdentity } from './agents.ts';
import { recordedChange, recordIdentityEvent } from './identity-record.ts';

interface NodeRow extends NodeRecord {
  /** The names of the agents it may ask for (NodeRecord.agents holds their ids). */
  agentNames: string[];
  /** What it last declared when it connected (or asked to be paired). */
  declaredCommands: string[];
  lastSeenAt?: string;
  /** The address it last connected, or asked to be paired, from. */
  remoteIp?: string;
}

/** The command's state directory, when a gateway has used it (its gateway.db is there): see existingState. */
export async function gatewayStateDir(command: Command): Promise<string> {
  const { GATEWAY_DB_FILE } = await import('@corral/gateway');
  return existingState(dirOf(command), GATEWAY_DB_FILE, 'gateway state', 'start `corral gateway` with this state directory');
}

/**
 * Opens the gateway state (`gateway.db`) of `dir`. One that cannot be opened
 * (not a database, a directory in its place, unreadable) is a CliFailure,
 * exit 3 (the host, not the request), with GATEWAY_STORE_FAILED as its code
 * and the gateway's message, which names the file, why and what to do.
 */
export async function openGatewayState(dir: string): Promise<DatabaseSync> {
  const { GatewayError, openGatewayDb } = await import('@corral/gateway');
  try {
    return openGatewayDb(dir);
  } catch (error) {
    if (!(error instanceof GatewayError) || error.code !== 'GATEWAY_STORE_FAILED') throw error;
    throw new CliFailure(error.message, EXIT.environment, error.code);
  }
}

/** Identity's pairing state joined with what the gateway last heard from each node. */
async function nodeRows(command: Command): Promise<NodeRow[]> {
  const { SurfaceStore } = await import('@corral/gateway');
  const dir = await gatewayStateDir(command);
  const list = await withIdentity(command, (id) => id.nodes.list().map((node) => ({ ...node, agentNames: id.agents.namesOf(node.agents) })));
  const db = await openGatewayState(dir);
  try {
    const surfaces = new SurfaceStore(db);
    return list.map((node) => {
      const surface = surfaces.get(node.deviceId);
      return { ...node, declaredCommands: surface?.commands ?? [], ...(surface ? { lastSeenAt: new Date(surface.lastSeenAt).toISOString() } : {}), ...(surface?.remoteIp ? { remoteIp: surface.remoteIp } : {}) };
    });
  } finally {
    db.close();
  }
}

/** The nodes as a table: with `request`, each one's pending request id first; the last column lists `commands.of` each node, after the agents it may ask for with `agents`. */
function printRows(rows: NodeRow[], empty: string, commands: { title: string; of: (n: NodeRow) => string[] }, { request = false, agents = false } = {}): void {
  if (rows.length === 0) return void process.stdout.write(`${empty}\n`);
  const header = [...(request ? ['REQUEST'] : []), 'NODE', 'STATUS', 'NAME', 'PLATFORM', 'ADDRESS', ...(agents ? ['AGENTS'] : []), commands.title];
  const cells = (n: NodeRow) => [...(request ? [n.surfaceRequest!.requestId] : []), shownNodeId(n.deviceId), n.status, n.displayName, n.platform, n.remoteIp ?? '-', ...(agents ? [n.agentNames.join(',') || '-'] : []), commands.of(n).join(',') || '-'];
  process.stdout.write(table(header, rows.map(cells)));
}

/** What a pending request asks for, in words: a new node, or a paired one's additions. */
function requestLine(n: NodeRow): string[] {
  const asked = n.surfaceRequest?.commands ?? [];
  if (n.status !== 'paired') return asked;
  const added = asked.filter((c) => !n.commands.includes(c));
  return added.map((c) => `+${c}`);
}

/** `a,b` or `none` as the names it lists. */
function agentList(text: string): string[] {
  return text.trim() === 'none' ? [] : text.split(',').map((a) => a.trim()).filter((a) => a !== '');
}

/** A request id as `corral nodes pending` shows it. */
const REQUEST_ID = /^[0-9a-f]{32}$/;

/**
 * What `pair` or `reject` decides on: given a request id, that request and
 * only while it is the node's current one (a node that declared another
 * surface since the listing is not decided on for what it asks now); given a
 * device id, the node's request as it stands. Throws IDENTITY_NODE_NOT_FOUND
 * (exit 2) for what is neither, such as the node's name; IDENTITY_NODE_REQUEST_STALE (exit 1).
 */
function decisionOf(identity: Identity, id: string): { ref: string; requestId?: string } {
  if (!isHexId(id)) throw new CliFailure(`${printable(id)} is not a request id nor a device id: corral nodes pending lists each request by id (a node is not paired by its name)`, EXIT.usage, 'IDENTITY_NODE_NOT_FOUND');
  if (!REQUEST_ID.test(id)) return { ref: id };
  const node = identity.nodes.byRequest(id);
  if (node) return { ref: node.deviceId, requestId: id };
  if (identity.nodes.find(id)) return { ref: id };
  throw new CliFailure('no node has this pending request now (it may have declared another command surface since); list the pending requests again', EXIT.failed, 'IDENTITY_NODE_REQUEST_STALE');
}

/**
 * Whether `id` could name a node: a device id, a request id or a unique
 * prefix of one, hex. The name a node asked to be paired under is its own
 * word, and two may ask under one: never what an operator acts on.
 */
function isHexId(id: string): boolean {
  return /^[0-9a-f]{8,64}$/.test(id);
}

/** A device id to act on, or a failure (exit 2) saying that a node goes by its id here, not its name, and where its id is. */
function deviceIdOf(id: string): string {
  if (!isHexId(id)) throw new CliFailure(`${printable(id)} is not a device id: corral nodes list shows each node's id (a node goes by its id here, never by its name)`, EXIT.usage, 'IDENTITY_NODE_NOT_FOUND');
  return id;
}

/**
 * `--by`, as identity (`paired_by`) and the audit log record the operator:
 * a name as an approver's is checked (approverName), and not `corral up`,
 * the name under which `corral up` pairs (and may pair again) nodes of its
 * own. Throws CliFailure (exit 2).
 */
async function operatorOf(by: string): Promise<void> {
  const { approverName, GatewayError } = await import('@corral/gateway');
  try {
    approverName(by);
  } catch (error) {
    if (error instanceof GatewayError) throw new CliFailure('--by must name the operator: 1 to 150 characters of text without control or format characters', EXIT.usage, error.code);
    throw error;
  }
  if (by === 'corral up') throw new CliFailure("--by 'corral up' is the name corral up pairs its own nodes under: name yourself", EXIT.usage);
}

/** `--by`, defaulting as approvals' does: the audit log names one person alike whether they pair a node or approve a command (not $USER, which anyone may set). */
const BY = 'the operator doing it (recorded); default: the signed-in system account';

/**
 * `pair ID [--commands a,b] [--agents a,b]`, `agents ID [a,b]`, `reject ID`
 * and `revoke ID` on a group of commands (`corral nodes`, `corral identity
 * nodes`): pairing approves the commands the node asks for (or the part of
 * them named), and the agents it may ask for, recorded in the audit log of
 * `dirFor(command)`.
 */
export function addPairingVerbs(group: Command, dirFor: (command: Command) => Promise<string> | string): void {
  group
    .command('pair')
    .description('pair a pending node, or approve the commands a paired node asks for since; it may then be sent them')
    .argument('<id>', 'the request id `corral nodes pending` shows (approves exactly that request), or the device id or a unique prefix of at least 8 hex digits')
    .option('--commands <list>', 'approve only these of the commands it asks for (comma-separated); on a paired node, narrow what it may be sent')
    .option('--agents <list>', 'the agents it may ask the control plane for, when it serves another gateway (comma-separated names; `none`); see `agents`')
    .option('--by <who>', BY, accountName())
    .option('--json', 'print the node as JSON')
    .action(async (id: string, opts: { commands?: string; agents?: string; by: string; json?: boolean }, command: Command) => {
      await operatorOf(opts.by);
      const dir = await dirFor(command);
      const commands = opts.commands?.split(',').map((c) => c.trim()).filter((c) => c !== '');
      if (commands?.length === 0) throw new CliFailure('--commands names no command: name those it may be sent (comma-separated), or leave it out to approve what it asks for; corral nodes revoke unpairs a node', EXIT.usage);
      const { node, names } = await recordedChange(
        dir,
        () =>
          withIdentity(command, (identity) => {
            const { ref, requestId } = decisionOf(identity, id);
            const agents = opts.agents === undefined ? undefined : identity.agents.idsOf(agentList(opts.agents));
            const node = identity.nodes.pair(ref, opts.by, { ...(requestId ? { requestId } : {}), ...(commands === undefined ? {} : { commands }), ...(agents === undefined ? {} : { agents }) });
            return { node, requestId, names: identity.agents.namesOf(node.agents) };
          }),
        ({ node, requestId, names }) => ({ action: 'node.pair', resource: { kind: 'node', id: node.deviceId }, details: { displayName: node.displayName, status: node.status, by: opts.by, commands: node.commands, agents: names, ...(requestId ? { requestId } : {}) } }),
      );
      if (opts.json) return printJson({ ...node, agentNames: names });
      process.stdout.write(`${printable(`node ${shownNodeId(node.deviceId)} is paired; it may be sent: ${node.commands.join(', ') || 'no commands'}; it may ask for agents: ${names.join(', ') || 'none'}`)}\n`);
    });
  group
    .command('agents')
    .description('the agents a paired node may ask the control plane for: a Corral node serving another gateway (OpenClaw) names the agent asking, and only these are decided for; any other is denied')
    .argument('<id>', 'the device id, or a unique prefix of at least 8 hex digits')
    .argument('[agents]', 'the agents, comma-separated names (`none` for none), replacing those it had; left out, show them')
    .option('--by <who>', BY, accountName())
    .option('--json', 'print the node as JSON')
    .action(async (id: string, list: string | undefined, opts: { by: string; json?: boolean }, command: Command) => {
      const change = (identity: Identity) => {
        const node = list === undefined ? identity.nodes.get(deviceIdOf(id)) : identity.nodes.setAgents(deviceIdOf(id), identity.agents.idsOf(agentList(list)));
        return { node, names: identity.agents.namesOf(node.agents) };
      };
      let result: { node: NodeRecord; names: string[] };
      if (list === undefined) result = await withIdentity(command, change);
      else {
        await operatorOf(opts.by);
        result = await recordedChange(await dirFor(command), () => withIdentity(command, change), ({ node, names }) => ({ action: 'node.agents', resource: { kind: 'node', id: node.deviceId }, details: { displayName: node.displayName, by: opts.by, agents: names } }));
      }
      const { node, names } = result;
      if (opts.json) return printJson({ ...node, agentNames: names });
      process.stdout.write(`${printable(`node ${shownNodeId(node.deviceId)} may ask for agents: ${names.join(', ') || 'none'}`)}\n`);
    });
  for (const verb of ['reject', 'revoke'] as const) {
    group
      .command(verb)
      .description(verb === 'reject' ? "turn down a node's pending request: a new node is revoked, a paired one keeps the commands it had" : 'unpair a node; a connected node is cut off at its next command')
      .argument('<id>', verb === 'reject' ? 'the request id `corral nodes pending` shows, or the device id or a unique prefix of at least 8 hex digits' : 'the device id, or a unique prefix of at least 8 hex digits')
      .option('--by <who>', BY, accountName())
      .option('--json', 'print the node as JSON')
      .action(async (id: string, opts: { by: string; json?: boolean }, command: Command) => {
        await operatorOf(opts.by);
        const dir = await dirFor(command);
        const { node, declined } = await withIdentity(command, (identity) => {
          if (verb === 'revoke') return { node: identity.nodes.revoke(deviceIdOf(id)) };
          const { ref, requestId } = decisionOf(identity, id);
          const declined = identity.nodes.get(ref).surfaceRequest;
          return { node: identity.nodes.decline(ref, requestId ? { requestId } : {}), declined };
        });
        await recordIdentityEvent(dir, { action: `node.${verb}`, resource: { kind: 'node', id: node.deviceId }, details: { displayName: node.displayName, status: node.status, by: opts.by, ...(declined ? { requestId: declined.requestId, commands: declined.commands } : {}) } });
        if (opts.json) return printJson(node);
        process.stdout.write(`node ${shownNodeId(node.deviceId)} is ${node.status}\n`);
      });
  }
}

/** `corral nodes list|pending|pair ID|agents ID|reject ID|revoke ID`: machines that serve commands through the gateway. */
export function registerNodes(program: Command): void {
  const nodes = program.command('nodes').description('nodes (machines) that connect to the gateway, and their pairing');
  nodes
    .command('list')
    .description('every known node: paired, pending and revoked, with the commands it may be sent')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const rows = await nodeRows(command);
      if (opts.json) return printJson(rows);
      printRows(rows, 'no nodes', { title: 'COMMANDS', of: (n) => n.commands }, { agents: true });
    });
  nodes
    .command('pending')
    .description('requests waiting for an operator: new nodes with the commands they declare, paired nodes with the commands they add (+)')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const rows = (await nodeRows(command)).filter((n) => n.surfaceRequest !== undefined);
      if (opts.json) return printJson(rows);
      // The request id first: what `pair` and `reject` take to decide on exactly the surface shown.
      printRows(rows, 'no pending requests', { title: 'ASKS FOR', of: requestLine }, { request: true });
    });
  addPairingVerbs(nodes, gatewayStateDir);
}
