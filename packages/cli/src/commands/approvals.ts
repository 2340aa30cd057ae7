import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Approval, ApprovalStore, GrantWithdrawal } from '@corral/gateway';
import { EXIT } from '../exit-codes.ts';
import { commandLine } from '@corral/gateway/command-line';
import { CliFailure, printable, printJson, printJsonArray } from '../output.ts';
import { recordIdentityEvent, recordIdentityEvents } from './identity-record.ts';
import { gatewayStateDir, openGatewayState } from './nodes.ts';
import { accountName } from '../account.ts';
import { SHOWN_NODE_ID_DIGITS, shownNodeId } from '../node-id.ts';

/** The `--reason` given, checked as the approval takes it, before anything changes. Throws a CliFailure (exit 2) naming --reason. */
async function reasonOf(reason: string | undefined): Promise<string | undefined> {
  const { checkReason, GatewayError } = await import('@corral/gateway');
  try {
    // Called for its throw: an assertion function imported at run time cannot narrow here.
    (checkReason as (value: unknown) => void)(reason);
    return reason;
  } catch (error) {
    if (error instanceof GatewayError) throw new CliFailure(`--reason: ${error.message}`, EXIT.usage, error.code);
    throw error;
  }
}

/** An id that names no approval (or, to revoke, no grant), exit 2 with the gateway's code for it: what it was, and where the ids are. */
function unknownApproval(what: string): CliFailure {
  return new CliFailure(`${what}: corral approvals list --all shows the id of every approval`, EXIT.usage, 'GATEWAY_APPROVAL_NOT_FOUND');
}

/**
 * Runs `action` on the approvals of the command's gateway state; its coded
 * errors go to the caller as they are, an unknown id saying where the ids
 * are, and SQLite's (a store damaged where it was read) as
 * GATEWAY_STORE_FAILED (exit 3), naming the file, why and what to do.
 */
async function withApprovals<T>(command: Command, action: (store: import('@corral/gateway').ApprovalStore) => T | Promise<T>): Promise<T> {
  const { ApprovalStore, GatewayError, gatewayStoreFailed } = await import('@corral/gateway');
  const dir = await gatewayStateDir(command);
  const db = await openGatewayState(dir);
  try {
    return await action(new ApprovalStore(db));
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'GATEWAY_APPROVAL_NOT_FOUND') throw unknownApproval(error.message);
    if ((error as { code?: unknown }).code === 'ERR_SQLITE_ERROR') throw gatewayStoreFailed(dir, error);
    throw error;
  } finally {
    db.close();
  }
}

/**
 * The approver `--by` names, as the decision and its audit record carry it:
 * what accountApprover admits for the signed-in system account (not blank,
 * at most 150 characters, no control characters). Checked before anything
 * changes. Throws a CliFailure (exit 2) naming --by.
 */
async function approverOf(by: string): Promise<string> {
  const { accountApprover, GatewayError } = await import('@corral/gateway');
  try {
    return accountApprover(accountName(), by);
  } catch (error) {
    if (error instanceof GatewayError) throw new CliFailure(`--by: ${error.message}`, EXIT.usage, error.code);
    throw error;
  }
}

/**
 * The refusal of an allow from a system account that already approved under
 * another name: toward a quorum each account counts once (exit 1).
 */
function alreadyCounted(approval: Approval, approver: string): CliFailure {
  // `account:ACCOUNT:NAME`, an account never holding a colon.
  const account = approver.slice(0, approver.indexOf(':', 'account:'.length) + 1);
  const earlier = approval.approvers.find((a) => a.startsWith(account))?.slice(account.length);
  const left = approval.quorum - approval.approvers.length;
  return new CliFailure(
    `not approved: the system account ${accountName()} already approved ${approval.id}${earlier !== undefined ? ` as ${printable(earlier)}` : ''}, and an account counts once toward a quorum; ${left > 0 ? `${left} more ${left === 1 ? 'approval is' : 'approvals are'} needed from ${left === 1 ? 'another person' : 'other people'}, each from their own account or the console` : 'nothing is left to approve'}`,
    EXIT.failed,
    'GATEWAY_APPROVAL_COUNTED',
  );
}

/**
 * The columns of an approval's first line, each padded to the width of its
 * widest value (an id is a UUID, a status at most 7 letters, a node its
 * shown id), so that rows printed as they are read, a page at a time, line
 * up under the header; the last, who asks for what, is as long as it is.
 */
const COLUMNS = [['ID', 36], ['STATUS', 7], ['QUORUM', 6], ['NODE', SHOWN_NODE_ID_DIGITS], ['REQUEST', 0]] as const;

/** A line of COLUMNS, each cell made printable. */
function row(cells: readonly string[]): string {
  return cells.map((cell, i) => printable(cell).padEnd(COLUMNS[i]![1])).join('  ');
}

/** The header line over approvals, as other listings have one. */
const HEADER = `${row(COLUMNS.map(([title]) => title))}\n`;

/**
 * One approval as the human listing shows it (`a` as ApprovalStore.shown
 * gives it): a line of its own; under it, for a run, what else its digest
 * binds: the working directory, each environment value by its
 * fingerprint (SHA-256 prefix and length, never the value) and the script
 * file it runs by its path and SHA-256 prefix; and for a run
 * that runs code its argv does not show (the gateway's action.runsCode), a
 * line saying so and that --always is refused, or, for a run of one script
 * its node bound by content (action.allowAlways), that --always allows it
 * only while the script holds that content.
 */
function describe(a: Approval): string {
  // A run shows its argv; a named command (payment.create) its name and checked params.
  const argv = Array.isArray(a.action.argv) ? commandLine(a.action.argv) : `${String(a.action.command ?? '')} ${JSON.stringify(a.action.params ?? {})}`;
  const node = typeof a.action.nodeId === 'string' ? shownNodeId(a.action.nodeId) : '-';
  const lines = [row([a.id, a.status, `${allowersOf(a).length}/${a.quorum}`, node, `${String(a.action.principal ?? '-')}  ${argv}${a.reason ? `  — ${a.reason}` : ''}`])];
  if (typeof a.action.cwd === 'string') lines.push(`  cwd ${printable(a.action.cwd)}`);
  if (Array.isArray(a.action.envValues) && a.action.envValues.length > 0) {
    const values = a.action.envValues as Array<{ name: string; sha256: string; bytes: number }>;
    lines.push(`  env ${values.map((v) => printable(`${v.name} sha256:${v.sha256} (${v.bytes} bytes)`)).join(', ')}`);
  }
  const script = boundScript(a.action.mutableFileOperand);
  if (script !== undefined) lines.push(`  script ${printable(script.path)} sha256:${script.sha256.slice(0, 12)} (approved for what it holds now; changed, it is asked again; corral approvals show prints it)`);
  const runs = runsCodeReason(a.action.runsCode);
  if (runs !== undefined && a.action.allowAlways === true && script !== undefined) lines.push('  ! runs code from the script above: --always allows it again only while the script holds this content');
  else if (runs !== undefined) lines.push(`  ! runs code Corral cannot see: ${printable(runs)}; approve it only once (--always is refused)`);
  if (a.standingGrant === 'made') lines.push(`  standing grant approval-${a.id} in force (corral approvals revoke ${a.id} withdraws it)`);
  if (a.standingGrant === 'withdrawn') lines.push(`  standing grant approval-${a.id} withdrawn`);
  return lines.join('\n');
}

/** Who allowed `a` so far: its approvers but, once it is denied, the last, who denied or withdrew it. */
function allowersOf(a: Approval): string[] {
  return a.status === 'denied' ? a.approvers.slice(0, -1) : a.approvers;
}

/**
 * What `approvals show` adds under the listing's lines, as the console's card
 * shows it: why the policy asks and which policies, who approved so far and
 * how many more are needed, when it was asked and when it expires (or was
 * settled), and the digest of the exact action it is bound to.
 */
function decisionLines(a: Approval): string[] {
  const lines: string[] = [];
  if (typeof a.action.reason === 'string' && a.action.reason !== '') lines.push(`  why it asks ${printable(a.action.reason)}`);
  if (Array.isArray(a.action.policies) && a.action.policies.length > 0) lines.push(`  policies ${a.action.policies.map((p) => printable(String(p))).join(', ')}`);
  const allowers = allowersOf(a);
  const left = a.quorum - allowers.length;
  lines.push(`  approved by ${allowers.length > 0 ? allowers.map((name) => printable(name)).join(', ') : 'no one'}${a.status === 'pending' && left > 0 ? ` (${left} more needed of ${a.quorum})` : ''}`);
  if (a.status === 'denied') lines.push(`  denied by ${printable(a.approvers.at(-1) ?? '-')}`);
  lines.push(`  asked ${new Date(a.createdAtMs).toISOString()}, ${a.resolvedAtMs !== null ? `settled ${new Date(a.resolvedAtMs).toISOString()}` : `${a.status === 'pending' ? 'expires' : 'expired'} ${new Date(a.expiresAtMs).toISOString()}`}`);
  lines.push(`  digest ${a.digest}`);
  return lines;
}

/**
 * Prints every approval (or those pending), oldest first. `--json` prints
 * one JSON array once every page was read (printJsonArray): a store that
 * fails part way leaves no partial array on stdout.
 */
async function printAll(store: ApprovalStore, options: { all?: boolean; json?: boolean }): Promise<void> {
  const { ApprovalStore } = await import('@corral/gateway');
  const approvals = shownApprovals(store, ApprovalStore.shown, options);
  if (options.json) return printJsonArray(approvals);
  let printed = 0;
  for (const approval of approvals) {
    process.stdout.write(`${printed === 0 ? HEADER : ''}${describe(approval)}\n`);
    printed += 1;
  }
  if (printed === 0) process.stdout.write(options.all ? 'no approvals\n' : 'no pending approvals\n');
}

/**
 * Every approval (or those pending) as `shown` gives it, oldest first, read
 * a bounded page at a time following the store's cursor: a thousand
 * approvals of 256 KiB each are never read at once.
 */
function* shownApprovals(store: ApprovalStore, shown: (a: Approval) => Approval, options: { all?: boolean }): Generator<Approval> {
  let after: number | undefined;
  do {
    const page = store.listPage({ ...(options.all ? {} : { status: 'pending' as const }), limit: LIST_PAGE, ...(after !== undefined ? { after } : {}) });
    for (const approval of page.approvals) yield shown(approval);
    after = page.nextAfter ?? undefined;
  } while (after !== undefined);
}

/**
 * What the script an approval binds holds, as its node read it to hash it
 * (the gateway's action.scriptPreview), for `corral approvals show`: a
 * line saying how much of it there is, then each line numbered and made
 * printable, its tabs kept; or a line saying it is no text, or that its
 * node sent none (then it is read on the node).
 */
function scriptText(action: Approval['action']): string[] {
  const preview = action.scriptPreview as { bytes?: unknown; truncated?: unknown; text?: unknown } | undefined;
  if (preview === null || typeof preview !== 'object' || typeof preview.bytes !== 'number') return ['  its node sent no copy of the script: read it on the node before approving'];
  if (typeof preview.text !== 'string') return [`  the script is not text (${preview.bytes} bytes): not shown`];
  const lines = preview.text.split('\n');
  // A file's last line break ends its last line: no empty line after it.
  if (lines.length > 1 && lines.at(-1) === '') lines.pop();
  const width = String(lines.length).length;
  return [
    `  the script holds (${lines.length} line${lines.length === 1 ? '' : 's'}, ${preview.bytes} bytes${preview.truncated === true ? '; only the first 65536 bytes are shown' : ''}):`,
    ...lines.map((line, i) => `  ${String(i + 1).padStart(width)} | ${line.split('\t').map(printable).join('\t')}`),
  ];
}

/** The script file a run's approval is bound to by content (the gateway's action.mutableFileOperand), when it has one. */
function boundScript(operand: unknown): { path: string; sha256: string } | undefined {
  if (operand === null || typeof operand !== 'object') return undefined;
  const { path, sha256 } = operand as { path?: unknown; sha256?: unknown };
  return typeof path === 'string' && typeof sha256 === 'string' && /^[0-9a-f]{64}$/.test(sha256) ? { path, sha256 } : undefined;
}

/** The reason of an action's runsCode, when it has one (older gateways send none). */
function runsCodeReason(runsCode: unknown): string | undefined {
  const reason = runsCode !== null && typeof runsCode === 'object' ? (runsCode as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' ? reason.slice(0, 200) : undefined;
}

/**
 * The owner of the agent whose request `approval` is, from the identity
 * store beside the gateway state (four eyes: the owner may deny it, never
 * allow it); none for another's request, or with no identity store (then no
 * agent is known).
 */
async function agentOwner(dir: string, approval: Approval): Promise<(agent: string) => string | undefined> {
  const principal = approval.action.principal;
  if (typeof principal !== 'string' || !principal.startsWith('Agent::') || !existsSync(join(dir, 'identity.db'))) return () => undefined;
  const { Identity } = await import('@corral/identity');
  const identity = Identity.open(dir);
  try {
    const owner = identity.agents.find(principal.slice('Agent::'.length))?.owner;
    return (agent) => (`Agent::${agent}` === principal ? owner : undefined);
  } finally {
    identity.close();
  }
}

/** Approvals `corral approvals list` reads a page, at most (the store bounds each page's bytes too). */
const LIST_PAGE = 200;

/**
 * Takes the grants of approvals `ids`, withdrawn with them, out of the
 * policy set in one activation (a gateway made them when the approvals were
 * allowed), and records each; says what became of each, in the order of
 * `ids` (undefined: it had no grant). They already count for no decision:
 * should this fail, their files stay in the set until `corral approvals
 * revoke`, which is said and recorded.
 */
export async function revokeWithdrawnGrants(dir: string, ids: readonly string[], by: string): Promise<Array<GrantWithdrawal | undefined>> {
  const { ApprovalStore, revokeGrantsIn, takeOutWithdrawnGrants } = await import('@corral/gateway');
  const remove = async () => {
    try {
      const db = await openGatewayState(dir);
      try {
        return await revokeGrantsIn(join(dir, 'policies'), new ApprovalStore(db), ids);
      } finally {
        db.close();
      }
    } catch (error) {
      const one = ids.length === 1;
      const revoke = ids.map((id) => `'corral approvals revoke ${id}'`).join(', ');
      process.stderr.write(`corral: warning: ${one ? 'the approval is withdrawn and its grant counts' : 'the approvals are withdrawn and their grants count'} for nothing, but ${one ? 'its file' : 'their files'} could not be taken out of the policy set (${(error as Error).message}); run ${revoke}\n`);
      throw error;
    }
  };
  // recordIdentityEvents warns, and never rejects, when the log does not take a record; it knows no code to give.
  return takeOutWithdrawnGrants(ids, by, remove, async (events) => (await recordIdentityEvents(dir, events)).map(() => undefined));
}

/** `corral approvals list|show ID|approve ID|deny ID|withdraw ID|revoke ID`: human decisions on governed actions, and standing grants withdrawn. */
export function registerApprovals(program: Command): void {
  const approvals = program.command('approvals').description('approval requests for governed actions (node commands), bound to the exact action');
  approvals
    .command('list')
    .description('pending approvals (all of them with --all)')
    .option('--all', 'every approval, resolved ones too')
    .option('--json', 'print a JSON array')
    .action(async (opts: { all?: boolean; json?: boolean }, command: Command) => {
      await withApprovals(command, (store) => printAll(store, opts));
    });
  approvals
    .command('show')
    .description('one approval as the listing shows it, and what the script it binds holds, line by line, as its node read it')
    .argument('<id>', 'the approval id')
    .option('--json', 'print the approval as JSON')
    .action(async (id: string, opts: { json?: boolean }, command: Command) => {
      const { ApprovalStore } = await import('@corral/gateway');
      const shown = ApprovalStore.shown(await withApprovals(command, (store) => store.get(id)));
      if (opts.json) return printJson(shown);
      const script = boundScript(shown.action.mutableFileOperand) !== undefined ? scriptText(shown.action) : [];
      process.stdout.write(`${HEADER}${[describe(shown), ...decisionLines(shown), ...script].join('\n')}\n`);
    });
  const DESCRIPTION = {
    approve: 'allow the action once (or always, with --always); counts toward its quorum',
    deny: 'deny the action',
    withdraw: 'take back an approval allowed and not yet used: the run it waits for is refused, and its grant (allow-always) is withdrawn with it',
  };
  const DONE = { approve: 'approved', deny: 'denied', withdraw: 'withdrawn' };
  for (const verb of ['approve', 'deny', 'withdraw'] as const) {
    const cmd = approvals
      .command(verb)
      .description(DESCRIPTION[verb])
      .argument('<id>', 'the approval id')
      .option('--by <who>', 'the approver (recorded; toward a quorum, each system account counts once whatever name it gives); default: the signed-in system account', accountName())
      .option('--reason <text>', 'why (at most 500 characters): kept with the approval and in its audit record')
      .option('--json', 'print the approval as JSON');
    if (verb === 'approve') cmd.option('--always', 'allow-always: a standing grant for exactly this action (for a run of one script, bound to what the script holds now; refused for a command that runs code Corral cannot see: python3 -c, node -e, make, npm test…)');
    cmd.action(async (id: string, opts: { by: string; reason?: string; json?: boolean; always?: boolean }, command: Command) => {
      const decision = verb !== 'approve' ? 'deny' : opts.always ? 'allow-always' : 'allow-once';
      // Recorded as --by, counted toward a quorum as the system account that ran this.
      const approver = await approverOf(opts.by);
      const reason = await reasonOf(opts.reason);
      const dir = await gatewayStateDir(command);
      // The decision is committed only once its record is durable: a gateway waiting for it
      // runs nothing before the approval is in the audit log, and a log that cannot take the
      // record leaves the approval as it was.
      const { openAuditLog } = await import('@corral/audit/log');
      const log = await openAuditLog({ stateDir: dir, oneShot: true }).catch((error: Error) => {
        throw new CliFailure(`not ${DONE[verb]}: the audit log in ${dir} cannot be opened (${error.message}); the approval is unchanged`, EXIT.environment);
      });
      let approval: Approval;
      try {
        approval = await withApprovals(command, async (store) =>
          store.resolveRecorded(id, decision, approver, async (resolved) => {
            // An allow this system account already gave under another --by name counts for nothing, and its record would
            // name a second approver: refused, nothing recorded or changed.
            if (decision !== 'deny' && !resolved.approvers.includes(approver)) throw alreadyCounted(resolved, approver);
            await log
              .append({
                actor: { kind: 'human', id: opts.by },
                action: 'approval.resolve',
                resource: { kind: 'approval', id: resolved.id },
                decision: { effect: decision === 'deny' ? 'deny' : 'allow', approval: resolved.id },
                outcome: { status: 'success' },
                details: { decision, status: resolved.status, digest: resolved.digest, approvers: resolved.approvers, ...(verb === 'withdraw' ? { withdrawn: true } : {}), ...(reason !== undefined ? { reason } : {}) },
              })
              .catch((error: Error) => {
                throw new CliFailure(`not ${DONE[verb]}: the audit log in ${dir} did not take the record (${error.message}); the approval is unchanged`, EXIT.environment);
              });
          }, { ...(reason !== undefined ? { reason } : {}), ownerOf: await agentOwner(dir, store.get(id)), withdraw: verb === 'withdraw' }),
        );
      } finally {
        await log.close();
      }
      const [grant] = verb === 'withdraw' ? await revokeWithdrawnGrants(dir, [id], opts.by) : [];
      const { ApprovalStore } = await import('@corral/gateway');
      const shown = { ...ApprovalStore.shown(approval), ...(grant ? { grant } : {}) };
      if (opts.json) return printJson(shown);
      process.stdout.write(`${HEADER}${describe(shown)}\n`);
      if (grant?.status === 'revoked') process.stdout.write(`its grant ${grant.id} left the policy set\n`);
    });
  }
  approvals
    .command('revoke')
    .description('withdraw the standing grant an allow-always approval made (policies/grants/approval-ID.cedar); the next decision on that action asks again (an approval still pending is refused: deny it instead)')
    .argument('<id>', 'the approval id (or its grant id, approval-ID)')
    .option('--by <who>', 'who withdraws it (recorded); default: the signed-in system account', accountName())
    .option('--json', 'print {id, grant, outcome} as JSON')
    .action(async (id: string, opts: { by: string; json?: boolean }, command: Command) => {
      const { grantApprovalId, grantRevokedEvent, revokeGrantIn } = await import('@corral/gateway');
      const approvalId = grantApprovalId(id);
      if (approvalId === undefined) throw unknownApproval(`${id.slice(0, 100)} is not an approval id`);
      // The withdrawal is recorded under --by: a name the record cannot carry withdraws nothing.
      await approverOf(opts.by);
      const dir = await gatewayStateDir(command);
      // The policy store's compare-and-swap: a running gateway adopts the set without the grant at its next decision.
      const outcome = await withApprovals(command, (store) => revokeGrantIn(join(dir, 'policies'), store, approvalId));
      if (outcome === 'not-found') throw unknownApproval(`no grant approval-${approvalId} in force or waiting to be made (an approval allowed once makes none; a revoked grant is gone)`);
      await recordIdentityEvent(dir, grantRevokedEvent(approvalId, opts.by, outcome));
      const answer = { id: approvalId, grant: `approval-${approvalId}`, outcome };
      if (opts.json) return printJson(answer);
      if (outcome === 'withheld') process.stdout.write(`withheld grant approval-${approvalId} before it was made: its approval still allows the one run waiting on it; the next decision on its action asks again\n`);
      else process.stdout.write(`revoked grant approval-${approvalId}: the next decision on its action asks again\n`);
    });
}
