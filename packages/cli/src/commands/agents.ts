import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Agent, Identity } from '@corral/identity';
import { EXIT } from '../exit-codes.ts';
import { CliFailure, printJson, printable } from '../output.ts';
import { existingState, stateDir } from '../state-dir.ts';
import { recordedChange, recordIdentityEvent } from './identity-record.ts';
import { accountName } from '../account.ts';
import { revokeWithdrawnGrants } from './approvals.ts';
import { openGatewayState } from './nodes.ts';

/** The state directory of `command`, which must hold an identity store unless `create`. Throws CliFailure (exit 3) naming it. */
export function identityDir(command: Command, options: { create?: boolean } = {}): string {
  return options.create ? dirOf(command) : existingState(dirOf(command), 'identity.db', 'identity store', 'create an agent or run `corral up` with this state directory');
}

/**
 * Opens the identity store of the command's state directory for one action.
 * Only a command that sets an install up (`create`) makes a store where there
 * is none: any other would answer from a fresh, empty one, so a mistyped
 * `--state-dir` exits 3, creating nothing. A name the action gives that is
 * already taken (IDENTITY_AGENT_EXISTS, IDENTITY_USER_EXISTS) is bad input,
 * exit 2 as a name that names nothing is, its message followed by `taken`:
 * where to see the one holding it.
 */
export async function withIdentity<T>(command: Command, action: (identity: Identity) => Promise<T> | T, options: { create?: boolean; taken?: string } = {}): Promise<T> {
  const dir = identityDir(command, options);
  // Loaded on use, so commands of other families do not pay for SQLite and jose at start-up.
  const { Identity, IdentityError } = await import('@corral/identity');
  let identity: Identity;
  try {
    identity = Identity.open(dir);
  } catch (error) {
    // The code goes with the failure, so that --json carries it too.
    if (error instanceof IdentityError && error.code === 'IDENTITY_STORE_FAILED') throw new CliFailure(error.message, EXIT.environment, error.code);
    throw error;
  }
  try {
    return await action(identity);
  } catch (error) {
    if (error instanceof IdentityError && error.code === 'IDENTITY_INPUT_INVALID') throw new CliFailure(error.message, EXIT.usage, error.code);
    if (error instanceof IdentityError && (error.code === 'IDENTITY_AGENT_EXISTS' || error.code === 'IDENTITY_USER_EXISTS')) throw new CliFailure(`${error.message}: ${options.taken ?? 'choose another name'}`, EXIT.usage, error.code);
    throw error;
  } finally {
    identity.close();
  }
}

/**
 * The seconds a duration option (`--ttl 10m`) gives, or bad usage naming the
 * option. `zero` admits `0` (an overlap that ends at once).
 */
export async function durationOption(option: string, text: string, options: { zero?: boolean } = {}): Promise<number> {
  if (options.zero && /^\s*0[smh]?\s*$/.test(text)) return 0;
  const { IdentityError, parseTtl } = await import('@corral/identity');
  try {
    return parseTtl(text);
  } catch (error) {
    if (error instanceof IdentityError) throw new CliFailure(`${option}: ${error.message}${options.zero ? ', or 0' : ''}`, EXIT.usage, error.code);
    throw error;
  }
}

export function dirOf(command: Command): string {
  return stateDir(command.optsWithGlobals().stateDir as string | undefined);
}

function describeAgent(a: Agent): string {
  return [
    `name:     ${a.name}`,
    `id:       ${a.id}`,
    `status:   ${a.status}`,
    `process:  ${a.process}`,
    // Checked when the agent is made, but a store made before that check may hold anything.
    `owner:    ${printable(a.owner)}`,
    `scopes:   ${a.scopes.join(' ') || '(none)'}`,
    `created:  ${a.createdAt}`,
    `updated:  ${a.updatedAt}`,
  ].join('\n');
}

/** `corral agents …`: managed agent identities and their tokens. */
export function registerAgents(program: Command): void {
  const agents = program.command('agents').description("manage agents' identities (create, suspend, retire) and issue their tokens");

  agents
    .command('create')
    .description('create an agent identity for one business process, owned by a human')
    .argument('<name>', 'lowercase name, e.g. invoice-bot')
    .requiredOption('--process <process>', 'the business process it serves, e.g. invoice-intake')
    .requiredOption('--owner <email>', 'the accountable human')
    .option('--scope <scope...>', 'scopes written into its tokens')
    .option('--display-name <text>', 'a name for people')
    .option('--json', 'print the agent as JSON')
    .action(async (name: string, opts: { process: string; owner: string; scope?: string[]; displayName?: string; json?: boolean }, command: Command) => {
      const agent = await recordedChange(
        dirOf(command),
        () => withIdentity(command, (id) => id.agents.create({ name, process: opts.process, owner: opts.owner, scopes: opts.scope ?? [], ...(opts.displayName ? { displayName: opts.displayName } : {}) }), { create: true, taken: `corral agents show ${name} shows it; give the new agent another name` }),
        (agent) => ({ action: 'agent.create', resource: { kind: 'agent', id: agent.id }, details: { name: agent.name, process: agent.process, owner: agent.owner, scopes: agent.scopes } }),
      );
      if (opts.json) printJson(agent);
      else process.stdout.write(`created agent ${agent.name} (${agent.id})\n`);
    });

  agents
    .command('list')
    .description('list agents')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const list = await withIdentity(command, (id) => id.agents.list());
      if (opts.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no agents\n');
      const rows = list.map((a) => [a.name, a.status, a.process, printable(a.owner), a.id]);
      const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['NAME', 'STATUS', 'PROCESS', 'OWNER'][i]!.length));
      const line = (r: string[]) => `${r.slice(0, 4).map((c, i) => c.padEnd(widths[i]!)).join('  ')}  ${r[4]}\n`;
      process.stdout.write(line(['NAME', 'STATUS', 'PROCESS', 'OWNER', 'ID']) + rows.map(line).join(''));
    });

  agents
    .command('show')
    .description('show one agent')
    .argument('<name>', 'name or id')
    .option('--json', 'print the agent as JSON')
    .action(async (name: string, opts: { json?: boolean }, command: Command) => {
      const agent = await withIdentity(command, (id) => id.agents.get(name));
      if (opts.json) printJson(agent);
      else process.stdout.write(`${describeAgent(agent)}\n`);
    });

  for (const [verb, description] of [
    ['suspend', 'suspend an agent: every token it holds stops working at once (the kill switch)'],
    ['resume', 'resume a suspended agent (its old tokens stay dead; issue new ones)'],
    ['retire', 'retire an agent for good'],
  ] as const) {
    agents
      .command(verb)
      .description(description)
      .argument('<name>', 'name or id')
      .option('--json', 'print the agent as JSON')
      .action(async (name: string, opts: { json?: boolean }, command: Command) => {
        const change = () => withIdentity(command, (id) => id.agents[verb](name));
        const event = (agent: Agent, withdrawal?: Withdrawal) => ({ action: `agent.${verb}`, resource: { kind: 'agent', id: agent.id }, details: { name: agent.name, status: agent.status, tokenGeneration: agent.tokenGeneration, ...withdrawal } });
        // A resume lets the agent act again: it needs a log that can record it. A suspension never waits for one.
        const agent = verb === 'resume' ? await recordedChange(identityDir(command), change, (a) => event(a)) : await change();
        const withdrawn = verb === 'resume' ? undefined : await withdrawApprovals(dirOf(command), agent);
        if (withdrawn) await recordIdentityEvent(dirOf(command), event(agent, withdrawn.record));
        if (opts.json) printJson(agent);
        else process.stdout.write(`agent ${agent.name} is ${agent.status}${withdrawn ? withdrawnSummary(withdrawn) : ''}\n`);
      });
  }

  agents
    .command('token')
    .description('issue a short-lived signed token (JWT) for an active agent; prints the token alone')
    .argument('<name>', 'name or id')
    .option('--ttl <duration>', 'lifetime, e.g. 90s, 10m, 1h (default 10m)')
    .option('--json', 'print { token, claims } as JSON')
    .action(async (name: string, opts: { ttl?: string; json?: boolean }, command: Command) => {
      const ttlSeconds = opts.ttl === undefined ? undefined : await durationOption('--ttl', opts.ttl);
      const issued = await withIdentity(command, (id) => {
        const longest = id.settings.maxTtlSeconds;
        if (ttlSeconds !== undefined && ttlSeconds > longest) throw new CliFailure(`--ttl: a token lives at most ${longest} seconds (${longest / 60} minutes)`, EXIT.usage, 'IDENTITY_INPUT_INVALID');
        return id.issueToken(name, ttlSeconds === undefined ? {} : { ttlSeconds });
      });
      if (opts.json) printJson(issued);
      else process.stdout.write(`${issued.token}\n`);
    });
}

/** What the audit record of a suspension or retirement says about the agent's approvals: the ids withdrawn, or why none could be. */
type Withdrawal = { deniedApprovals: string[] } | { approvalsNotWithdrawn: string };

/** ", 3 approvals withdrawn, 2 standing grants taken out of the policy set": what a suspension or retirement withdrew, for the human line. */
function withdrawnSummary({ record, grantsTakenOut }: { record: Withdrawal; grantsTakenOut: number }): string {
  if (!('deniedApprovals' in record) || record.deniedApprovals.length === 0) return '';
  const n = record.deniedApprovals.length;
  const grants = grantsTakenOut > 0 ? `, ${grantsTakenOut} standing grant${grantsTakenOut === 1 ? '' : 's'} taken out of the policy set` : '';
  return `; ${n} approval${n === 1 ? '' : 's'} withdrawn${grants}`;
}

/**
 * Withdraws the approvals of a suspended or retired agent in the gateway
 * state of `dir` (pending, or approved and not yet spent): none lets a
 * command run from now on, nor once the agent is resumed. A gateway waiting
 * for one sees it denied. What its record says (their ids; none when no
 * gateway ever ran here), and how many grant files left the policy set.
 */
async function withdrawApprovals(dir: string, agent: Agent): Promise<{ record: Withdrawal; grantsTakenOut: number }> {
  const { accountApprover, ApprovalStore, GATEWAY_DB_FILE } = await import('@corral/gateway');
  if (!existsSync(join(dir, GATEWAY_DB_FILE))) return { record: { deniedApprovals: [] }, grantsTakenOut: 0 };
  try {
    // Its failure names the file and why.
    const db = await openGatewayState(dir);
    const username = accountName();
    let denied: string[];
    let granted: string[];
    try {
      const store = new ApprovalStore(db);
      const withdrawn = store.withdrawAll(`Agent::${agent.name}`, accountApprover(username, username));
      denied = withdrawn.map((a) => a.id);
      // One whose grant was made (withdrawn now) may have its file in the set.
      granted = withdrawn.filter((a) => a.standingGrant !== null).map((a) => a.id);
    } finally {
      db.close();
    }
    // Withdrawn with their approvals, the grants those allowed always made count for nothing already; their files leave the set.
    const grants = await revokeWithdrawnGrants(dir, granted, username);
    return { record: { deniedApprovals: denied }, grantsTakenOut: grants.filter((g) => g?.status === 'revoked').length };
  } catch (error) {
    // The kill switch stands all the same: a gateway refuses to spend an approval of an agent that is not active.
    // A resume would make them count again, and a second suspend is refused: the operator denies them by hand.
    const remedy = agent.status === 'suspended' ? '; they would count again were it resumed: before resuming it, deny each one (corral approvals list --all, then corral approvals deny ID)' : '';
    process.stderr.write(`corral: warning: the agent is ${agent.status}, but its approvals in ${dir} could not be withdrawn: ${(error as Error).message}${remedy}\n`);
    // The record says so: an empty list would read as "none were pending".
    return { record: { approvalsNotWithdrawn: (error as Error).message }, grantsTakenOut: 0 };
  }
}
