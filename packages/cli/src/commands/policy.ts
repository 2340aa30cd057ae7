import type { Command } from 'commander';
import { accessSync, constants, existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Identity as IdentityStore } from '@corral/identity';
import type { IdentityEntity } from '@corral/gateway';
import type { Decision, DecisionPoint, PolicyError, PolicySet, PolicySource, RecordedDecision } from '@corral/policy';
import { CountProgress } from '../count-progress.ts';
import { EXIT } from '../exit-codes.ts';
import { fileProblem } from '../file-problem.ts';
import { CliFailure, printable, printJson } from '../output.ts';
import { stateDir } from '../state-dir.ts';
import { openGatewayState } from './nodes.ts';

/**
 * Turns a policy package refusal into a CLI failure that prints each issue as
 * `file:line:column: message`, and after them `note(error)` when it gives one.
 */
async function policyStep<T>(step: () => Promise<T> | T, note?: (error: PolicyError) => string | undefined): Promise<T> {
  const { PolicyError, formatPolicyIssue } = await policyPackage();
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    // An issue the message already is (one problem, where it is) is said once.
    const lines = [error.message, ...error.issues.map(formatPolicyIssue).filter((issue) => issue !== error.message), note?.(error)].filter((l) => l !== undefined);
    const exit = error.code === 'POLICY_ENGINE_FAILED' ? EXIT.failed : EXIT.usage;
    // The code as its own field: under --json the error document carries it.
    throw new CliFailure(lines.join('\n'), exit, error.code);
  }
}

/** What `explain` decides, shown whole when the file is missing: the README names a request.json a new install does not have. */
const REQUEST_EXAMPLE = '{ "principal": { "type": "Agent", "id": "invoice-bot" }, "action": "payment.create", "resource": { "type": "Record", "id": "PAY-7" }, "context": { "amount": 250000 } }';

function readRequest(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CliFailure(`cannot read the request from ${file}: ${fileProblem(error)}${missing ? `; write the request there as JSON: ${REQUEST_EXAMPLE}` : ''}`, EXIT.usage);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new CliFailure(`the request in ${file} is not JSON (${(error as Error).message}); write it as: ${REQUEST_EXAMPLE}`, EXIT.usage);
  }
}

/**
 * Entities to decide with, and the sources they came from in the list's
 * order (see mergeEntities): `parts` counts the entities each source gave.
 */
interface Entities {
  list: unknown[];
  parts: { where: string; count: number }[];
}

/**
 * Hands `entities` to the decision point. A refusal numbers the entity it
 * refuses (`entities[2]`) among all of them: it is then told which source
 * each run of numbers came from, in that source's order, so that the number
 * points into it.
 */
function setEntities(pdp: DecisionPoint, entities: Entities): Promise<void> {
  return policyStep(
    () => pdp.setEntities(entities.list),
    (error) => {
      if (error.code !== 'POLICY_ENTITIES_INVALID' || entities.parts.length === 0) return undefined;
      let first = 0;
      const runs = entities.parts
        .map((p) => {
          const run = p.count === 0 ? '' : `entities[${first}] is the first of ${p.where}, in its order${p.count === 1 ? '' : `, up to entities[${first + p.count - 1}]`}`;
          first += p.count;
          return run;
        })
        .filter((run) => run !== '');
      return `(${runs.join('; ')})`;
    },
  );
}

/**
 * The entities decisions are made about: the policy set's own (`set`, its
 * entities.json; none without one) with the identity store's agents (and
 * their processes as groups), humans and nodes of state directory `dir` composed
 * in as a gateway composes them (withIdentityEntities of @corral/gateway),
 * then each of `later` in turn, replacing the ones before it on the same
 * uid (mergeEntities).
 */
async function composeEntities(dir: string, set: { where: string; list: readonly unknown[] } | undefined, later: readonly { where: string; list: readonly unknown[] }[]): Promise<Entities> {
  const own = set === undefined ? { list: [], parts: [] } : mergeEntities({ list: [], parts: [] }, set.list, set.where);
  const { withIdentityEntities } = await import('@corral/gateway');
  const list = withIdentityEntities(own.list, await stateEntities(dir));
  let entities: Entities = { list, parts: [...own.parts, { where: 'the agents, humans and nodes of the state directory', count: list.length - own.list.length }] };
  for (const source of later) entities = mergeEntities(entities, source.list, source.where);
  return entities;
}

/** The agents (and their processes as groups), humans and paired nodes of the identity store in `dir`, as a gateway on it decides with them. */
async function stateEntities(dir: string): Promise<IdentityEntity[]> {
  if (!existsSync(join(dir, 'identity.db'))) return [];
  const [{ Identity }, { identityEntities }] = await Promise.all([import('@corral/identity'), import('@corral/gateway')]);
  const identity: IdentityStore = Identity.open(dir);
  try {
    return identityEntities(identity);
  } finally {
    identity.close();
  }
}

/** The entities of an `--entities` file: UTF-8 JSON, no key twice in an object (parseEntitiesFile). */
async function entitiesFile(file: string): Promise<{ where: string; list: unknown[] }> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(file));
  } catch (error) {
    const why = error instanceof TypeError ? 'it is not UTF-8 text' : fileProblem(error);
    throw new CliFailure(`cannot read entities from ${file}: ${why}`, EXIT.usage);
  }
  const { parseEntitiesFile } = await policyPackage();
  const list = await policyStep(() => parseEntitiesFile({ file, text }));
  if (!Array.isArray(list)) throw new CliFailure(`${file} must hold a JSON array of entities`, EXIT.usage);
  return { where: file, list };
}

/**
 * The entities of policy directory `dir`'s own `entities.json`, which a
 * gateway decides with once the directory is its set (read as the gateway
 * reads a set: no link followed, 1 MiB in all); none without one.
 */
async function setEntitiesFile(dir: string): Promise<{ where: string; list: unknown[] } | undefined> {
  const { parseEntitiesFile, readPolicyDir } = await policyPackage();
  const file = (await policyStep(() => readPolicyDir(dir, ['.json']))).find((f) => f.file === 'entities.json');
  if (file === undefined) return undefined;
  const where = join(dir, 'entities.json');
  // As the gateway parses it: not JSON, or a key twice in one object (JSON.parse keeps the last silently), is refused naming the line.
  const list = await policyStep(() => parseEntitiesFile({ file: where, text: file.text }));
  if (!Array.isArray(list)) throw new CliFailure(`${where} must hold a JSON array of entities`, EXIT.usage);
  return { where, list };
}

/** An entity's uid as `Type::"id"`, in either of Cedar's spellings (`{type, id}` or `{"__entity": {type, id}}`), or undefined. */
function uidKey(entity: unknown): string | undefined {
  const raw = (entity as { uid?: unknown } | null)?.uid as { __entity?: unknown } | undefined;
  const uid = (typeof raw?.__entity === 'object' && raw.__entity !== null ? raw.__entity : raw) as { type?: unknown; id?: unknown } | undefined;
  if (typeof uid?.type !== 'string' || typeof uid.id !== 'string') return undefined;
  return `${uid.type}::${JSON.stringify(uid.id)}`;
}

/**
 * The entities of `source` (named `where` in messages), in its order, then
 * those of `base` whose uid it does not hold: an entity of `source` replaces
 * the one of `base` with its uid, and keeps its index in `source`. A uid
 * twice in `source` is refused, as the decision point refuses it; keeping
 * either would decide with data its author did not see.
 */
function mergeEntities(base: Entities, source: readonly unknown[], where: string): Entities {
  const seen = new Map<string, number>();
  for (const [i, e] of source.entries()) {
    const key = uidKey(e);
    if (key === undefined) throw new CliFailure(`${where}: entity [${i}] needs uid.type and uid.id (strings)`, EXIT.usage);
    const first = seen.get(key);
    if (first !== undefined) throw new CliFailure(`${where}: entity [${i}] ${key} is entity [${first}] again; keep one`, EXIT.usage);
    seen.set(key, i);
  }
  const kept = (e: unknown) => !seen.has(uidKey(e) ?? '');
  // The named parts of `base` lose what `source` replaces: recounted, so that each run of numbers still points into its source.
  let at = 0;
  const parts = base.parts.map((p) => {
    const count = base.list.slice(at, at + p.count).filter(kept).length;
    at += p.count;
    return { where: p.where, count };
  });
  return { list: [...source, ...base.list.filter(kept)], parts: [{ where, count: source.length }, ...parts] };
}

function policiesDir(command: Command, given: string | undefined): string {
  return given !== undefined ? resolve(given) : join(stateDir(command.optsWithGlobals().stateDir as string | undefined), 'policies');
}

function where(set: PolicySet, id: string): string {
  const p = set.policies.find((x) => x.id === id);
  return p ? `${id} (${p.file}:${p.line})` : id;
}

function describeDecision(d: Decision, set: PolicySet): string {
  const head = d.decision === 'ask' ? `ask (quorum ${d.quorum})` : d.decision;
  const lines = [`decision: ${head}`, `policies: ${d.policies.map((id) => where(set, id)).join(', ') || '(none)'}`, `reason:   ${d.reason}`];
  for (const e of d.errors) lines.push(`error:    ${e.policyId}: ${e.message}`);
  return lines.map(printable).join('\n');
}

/**
 * For a `system.run` request on a Command, the resources a gateway asks
 * about it (commandResource of @corral/gateway): the program's own (`rm` for
 * `/usr/bin/rm`, `/srv/app/tool` for `./tool` run in /srv/app) and its other
 * spellings, whose forbids also deny it. The
 * gateway is loaded only for such a request.
 */
async function commandSpellings(request: unknown): Promise<{ resource: string; spellings: string[] } | undefined> {
  const r = request as { action?: unknown; resource?: { type?: unknown; id?: unknown }; context?: { cwd?: unknown } } | null;
  if (r?.action !== 'system.run' || r.resource?.type !== 'Command' || typeof r.resource.id !== 'string') return undefined;
  const { commandResource } = await import('@corral/gateway');
  // A relative program is the file in the working directory, as the gateway names it.
  const { id, spellings } = commandResource(r.resource.id, typeof r.context?.cwd === 'string' ? r.context.cwd : null);
  return { resource: id, spellings };
}

/**
 * A command's decision as a gateway makes it (decideRun of @corral/gateway):
 * the request on the program's own resource, unless that allows or asks and
 * a forbid on another spelling denies it.
 */
function decideSpellings(pdp: DecisionPoint, request: unknown, asked: { resource: string; spellings: string[] }): Decision {
  const [own, ...others] = pdp.decideEach(request, [asked.resource, ...asked.spellings].map((id) => ({ type: 'Command', id })));
  if (own!.decision === 'deny') return own!;
  // With no approval in the context, a deny that names policies is a forbid.
  return others.find((d) => d.decision === 'deny' && d.policies.length > 0) ?? own!;
}

function askedLine(asked: { resource: string; spellings: string[] }): string {
  return printable(`asked as: Command::"${asked.resource}"${asked.spellings.length > 0 ? `, and for its forbids as ${asked.spellings.join(', ')}` : ''} (as a gateway asks a system.run)`);
}

/** The kinds of file a gateway reads as a policy set, and hashes (hashFiles of @corral/gateway): its Cedar files and the data beside them. */
const SET_FILES = ['.cedar', '.json', '.yaml', '.yml'];

/**
 * Whether the set in force in the policy directory `dir` decides nothing in
 * a gateway: marked unrecorded (its activation was neither recorded in the
 * audit log nor undone, or is being recorded now), or taken as marked since
 * the marks cannot be read. Reads the marks as the gateway reads them
 * (markOf in @corral/gateway's http/policy-control.ts): one file a set,
 * `<dir>.versions/unrecorded/<hash>`, where hash is hashFiles of the set's
 * files. The gateway (slow to load) is loaded only when some mark stands.
 * Throws POLICY_UNREADABLE, POLICY_SET_INVALID when a mark stands and the
 * directory cannot be read as a gateway reads it.
 */
async function unrecordedMark(dir: string): Promise<'none' | { state: 'marked'; hash: string } | { state: 'unreadable'; where: string }> {
  const marks = join(`${dir}.versions`, 'unrecorded');
  const unreadable = { state: 'unreadable', where: marks } as const;
  let names: string[];
  try {
    names = readdirSync(marks);
    // A mark is looked up by name: marks that can be listed but not searched cannot be read either.
    accessSync(marks, constants.X_OK);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : unreadable;
  }
  if (names.length === 0) return 'none';
  const [{ readPolicyDir }, { hashFiles }] = await Promise.all([policyPackage(), import('@corral/gateway')]);
  const sources: PolicySource[] = readPolicyDir(dir, SET_FILES);
  const hash = hashFiles(sources.map((s) => ({ name: s.file, text: s.text })));
  try {
    return lstatSync(join(marks, hash), { throwIfNoEntry: false }) === undefined ? 'none' : { state: 'marked', hash };
  } catch {
    return unreadable;
  }
}

/** The policy package, loaded on use: cedar-wasm costs start-up time other command families should not pay. */
function policyPackage() {
  return import('@corral/policy');
}

/** `corral policy …`: validate, test, explain and replay Cedar authorization policy. */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('Cedar authorization policy: validate, test, explain, replay');

  policy
    .command('validate')
    .description("parse every *.cedar file in DIR and validate it against Corral's schema, with the entities.json beside them")
    .argument('<dir>', 'the policy directory')
    .option('--json', 'print { valid, policies } or { valid, issues } as JSON')
    .action(async (dir: string, opts: { json?: boolean }) => {
      const { DecisionPoint, PolicyError, loadPolicies, parseEntitiesFile, readPolicyDir } = await policyPackage();
      try {
        // Read once, as a gateway reads a set (its Cedar files and the data beside them), and checked as a gateway checks one it would make active: its entities.json too.
        const files = readPolicyDir(resolve(dir), SET_FILES);
        const set = loadPolicies(files.filter((f) => f.file.endsWith('.cedar')));
        const entities = files.find((f) => f.file === 'entities.json');
        if (entities !== undefined) new DecisionPoint().setEntities(parseEntitiesFile(entities), { file: entities.file });
        if (opts.json) printJson({ valid: true, fingerprint: set.fingerprint, policies: set.policies.map(({ id, file, line, effect, approval, quorum }) => ({ id, file, line, effect, approval, quorum })) });
        else process.stdout.write(`${set.policies.length} ${set.policies.length === 1 ? 'policy' : 'policies'} valid\n`);
      } catch (error) {
        if (!(error instanceof PolicyError) || !opts.json) return policyStep(() => Promise.reject(error));
        printJson({ valid: false, code: error.code, message: error.message, issues: error.issues });
        process.exitCode = EXIT.usage;
      }
    });

  policy
    .command('test')
    .description("check the decisions DIR makes, with its entities.json, for the example requests in CASES (YAML)")
    .argument('<dir>', 'the policy directory')
    .argument('<cases>', 'the cases file')
    .option('--json', 'print every result as JSON')
    .action(async (dir: string, casesFile: string, opts: { json?: boolean }, command: Command) => {
      const { DecisionPoint, loadCases, runCases } = await policyPackage();
      const pdp = new DecisionPoint();
      await policyStep(() => pdp.reload(resolve(dir)));
      const cases = await policyStep(() => loadCases(resolve(casesFile)));
      // As a gateway runs a set's cases: with its entities.json, under which the cases' own entities go (here with the identity store's agents, humans and nodes between).
      const own = await setEntitiesFile(resolve(dir));
      await setEntities(pdp, await composeEntities(stateDir(command.optsWithGlobals().stateDir as string | undefined), own, [{ where: `the entities of ${casesFile}`, list: cases.entities }]));
      const results = runCases(pdp, cases.cases);
      const failed = results.filter((r) => !r.passed);
      if (opts.json) printJson({ passed: results.length - failed.length, failed: failed.length, results });
      else {
        // A case's name, the policy ids it expects and a decision's reason are the cases' and policies' authors' text: made printable, one line each.
        for (const r of results) {
          process.stdout.write(`${printable(`${r.passed ? 'ok  ' : 'FAIL'} ${r.name}`)}\n`);
          if (!r.passed) {
            const want = `${r.expected.decision}${r.expected.quorum !== undefined ? ` (quorum ${r.expected.quorum})` : ''}${r.expected.policies ? ` by [${r.expected.policies.join(', ')}]` : ''}`;
            const got = `${r.actual.decision}${r.actual.quorum !== undefined ? ` (quorum ${r.actual.quorum})` : ''} by [${r.actual.policies.join(', ')}]`;
            process.stdout.write(`     ${printable(`expected ${want}`)}\n     ${printable(`got      ${got}: ${r.actual.reason}`)}\n`);
          }
        }
        process.stdout.write(`${results.length - failed.length} passed, ${failed.length} failed\n`);
      }
      if (failed.length > 0) process.exitCode = EXIT.failed;
    });

  policy
    .command('explain')
    .description('decide one request and say which policies decided it and why')
    .requiredOption('--request <file>', 'the request as JSON: { principal, action, resource, context }')
    .option('--policies <dir>', 'the policy directory (default: STATE_DIR/policies)')
    .option('--entities <file>', "extra entities (Cedar JSON) beside the policy directory's entities.json and the agents, humans and nodes of the state directory")
    .option('--json', 'print the decision as JSON')
    .action(async (opts: { request: string; policies?: string; entities?: string; json?: boolean }, command: Command) => {
      const { DecisionPoint } = await policyPackage();
      const pdp = new DecisionPoint();
      const policies = policiesDir(command, opts.policies);
      const set = await policyStep(() => pdp.reload(policies));
      const dir = stateDir(command.optsWithGlobals().stateDir as string | undefined);
      // The data the set decides with (its entities.json); the identity store's agents, humans and nodes as they are now; then any given.
      const entities = await composeEntities(dir, await setEntitiesFile(policies), opts.entities ? [await entitiesFile(resolve(opts.entities))] : []);
      await setEntities(pdp, entities);
      const request = readRequest(resolve(opts.request));
      const asked = await commandSpellings(request);
      const decision = await policyStep(() => (asked ? decideSpellings(pdp, request, asked) : pdp.decide(request)));
      const mark = await policyStep(() => unrecordedMark(policies));
      if (mark === 'none') {
        if (opts.json) printJson(asked ? { ...decision, askedAs: asked } : decision);
        else process.stdout.write(`${describeDecision(decision, set)}\n${asked ? `${askedLine(asked)}\n` : ''}`);
        return;
      }
      // The gateway decides nothing with this set: what it does is deny, whatever the set would decide.
      const reason = mark.state === 'marked'
        ? `the policy set in force (${mark.hash.slice(0, 12)}) was activated, but its activation is not recorded in the audit log: every request is denied, by every gateway and corral command on this policy directory, until a set (this one included) is activated and recorded`
        : `the marks of policy sets activated unrecorded (${mark.where}) cannot be read, so every set counts as marked: every request is denied, by every gateway and corral command on this policy directory, until a set is activated and recorded`;
      if (opts.json) {
        printJson({ decision: 'deny', policies: [], reason, errors: [], code: 'POLICY_NOT_LOADED', unrecorded: true, ...(mark.state === 'unreadable' ? { marksUnreadable: true } : { hash: mark.hash }), setDecision: decision });
      } else {
        const head = [`decision: deny (the policy set in force is ${mark.state === 'marked' ? 'marked unrecorded' : 'taken as unrecorded: its marks cannot be read'})`, `reason:   ${reason}`].map(printable);
        const own = describeDecision(decision, set).split('\n').map((l) => `  ${l}`);
        process.stdout.write(`${[...head, 'once activated and recorded, the set would decide:', ...own].join('\n')}\n`);
      }
      process.exitCode = EXIT.environment;
    });

  policy
    .command('replay')
    .description("run a candidate policy set over the audit log's recorded decisions and list every one it would change")
    .requiredOption('--candidate <dir>', 'the candidate policy directory')
    .option('--history <file>', 'read recorded decisions from JSON lines ({ ref?, at?, request, decision, quorum? } per line) instead of the audit log')
    .option('--entities <file>', "extra entities (Cedar JSON) beside the candidate's entities.json and the agents, humans and nodes of the state directory")
    .option('--json', 'print the report as JSON')
    .action(async (opts: { candidate: string; history?: string; entities?: string; json?: boolean }, command: Command) => {
      const { DecisionPoint, replayAsync } = await policyPackage();
      const dir = stateDir(command.optsWithGlobals().stateDir as string | undefined);
      const pdp = new DecisionPoint();
      await policyStep(() => pdp.reload(resolve(opts.candidate)));
      // The data the candidate would decide with once activated (its entities.json); the identity store's agents, humans and nodes; then any given.
      const entities = await composeEntities(dir, await setEntitiesFile(resolve(opts.candidate)), opts.entities ? [await entitiesFile(resolve(opts.entities))] : []);
      await setEntities(pdp, entities);
      const history = opts.history !== undefined ? readHistory(resolve(opts.history)) : auditHistory(dir, resolve(opts.candidate));
      // A month of decisions may take a while: how many were read so far goes to stderr.
      const progress = new CountProgress(process.stderr, 'replay: %d recorded decisions read');
      let report: Awaited<ReturnType<typeof replayAsync>>;
      try {
        report = await replayAsync(pdp, counted(history, progress));
      } finally {
        progress.done();
      }
      if (opts.json) return printJson(report);
      for (const c of report.changed) {
        const r = c.request as { principal?: { type?: string; id?: string }; action?: unknown; resource?: { type?: string; id?: string } };
        const what = `${r.principal?.type}::"${r.principal?.id}" ${String(r.action)} ${r.resource?.type}::"${r.resource?.id}"`;
        // An ask shows its quorum: a candidate asking fewer approvers changes the decision as much as one that allows.
        const was = `${c.before}${c.beforeQuorum !== undefined ? ` (quorum ${c.beforeQuorum})` : ''}`;
        const now = `${c.after.decision}${c.after.decision === 'ask' && c.after.quorum !== undefined ? ` (quorum ${c.after.quorum})` : ''}`;
        process.stdout.write(`${printable(`${c.ref ?? ''}${c.at ? ` ${c.at}` : ''}  ${what}: ${was} -> ${now} (${c.after.reason})`)}\n`);
      }
      for (const r of report.refused) process.stdout.write(`${printable(`${r.ref ?? ''}  not decidable under the candidate: ${r.message} [${r.code}]`)}\n`);
      process.stdout.write(`${report.total} recorded decisions: ${report.changed.length} would change, ${report.unchanged} unchanged, ${report.refused.length} not decidable\n`);
    });
}

/** `items` as they come, each counted in `progress`. */
async function* counted<T>(items: AsyncIterable<T>, progress: CountProgress): AsyncGenerator<T> {
  for await (const item of items) {
    progress.add();
    yield item;
  }
}

/** Reads recorded decisions from a JSON-lines file, lazily, line by line (a month of history need not fit in memory). */
async function* readHistory(file: string): AsyncGenerator<RecordedDecision> {
  let lines: AsyncIterable<string>;
  try {
    const handle = await open(file);
    lines = handle.readLines({ encoding: 'utf8' });
  } catch (error) {
    throw new CliFailure(`cannot read history from ${file}: ${fileProblem(error)}`, EXIT.usage);
  }
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      let record: RecordedDecision;
      try {
        record = JSON.parse(line) as RecordedDecision;
      } catch {
        throw new CliFailure(`${file}:${n}: not JSON`, EXIT.usage);
      }
      if (!['allow', 'deny', 'ask'].includes(record?.decision) || typeof record.request !== 'object' || record.request === null) {
        throw new CliFailure(`${file}:${n}: a recorded decision needs request and decision (allow, deny or ask)`, EXIT.usage);
      }
      const quorum = record.decision === 'ask' && Number.isSafeInteger(record.quorum) && record.quorum! >= 1 ? { quorum: record.quorum! } : {};
      yield { ref: record.ref ?? n, ...(record.at !== undefined ? { at: record.at } : {}), request: record.request, decision: record.decision, ...quorum };
    }
  } catch (error) {
    if (error instanceof CliFailure) throw error;
    // A directory opens, and fails at its first read (EISDIR); a disk may fail at any line: either names the file, as a missing one does.
    throw new CliFailure(`cannot read history from ${file}${n > 0 ? ` after line ${n}` : ''}: ${fileProblem(error)}`, EXIT.usage);
  }
}

/**
 * The decisions recorded in the audit log of the state directory, oldest
 * first, read in batches, as the gateway's replay reads them
 * (`auditHistory` of @corral/gateway): each governed node command judged as
 * it was decided — an ask answered by an allow-always grant of the
 * `candidate` set whose approval the gateway's state has not withdrawn, as
 * the gateway will answer it — and every other event that carries a decision
 * on one of the schema's actions as one request, its agent named as in the
 * identity store.
 */
async function* auditHistory(dir: string, candidate: string): AsyncGenerator<RecordedDecision> {
  const audit = await import('@corral/audit');
  let reader: Awaited<ReturnType<typeof audit.openAuditReader>>;
  try {
    reader = await audit.openAuditReader({ stateDir: dir });
  } catch (error) {
    // The host's, as for every command that needs the log (exit 3), with the way round it.
    if (error instanceof audit.AuditError) throw new CliFailure(`cannot read the audit log: ${error.message}; pass --history FILE to replay recorded decisions from a file`, EXIT.environment, error.code);
    throw error;
  }
  const names = new Map<string, string>();
  if (existsSync(join(dir, 'identity.db'))) {
    const { Identity } = await import('@corral/identity');
    const identity: IdentityStore = Identity.open(dir);
    try {
      for (const a of identity.agents.list()) names.set(a.id, a.name);
    } finally {
      identity.close();
    }
  }
  const gateway = await import('@corral/gateway');
  const db = existsSync(join(dir, gateway.GATEWAY_DB_FILE)) ? await openGatewayState(dir) : undefined;
  try {
    const standing = gateway.standingGrants(gateway.readPolicySetFiles(candidate), db ? new gateway.ApprovalStore(db) : undefined);
    yield* gateway.auditHistory(reader.store, names, Number.POSITIVE_INFINITY, standing);
  } finally {
    db?.close();
    await reader.close();
  }
}
