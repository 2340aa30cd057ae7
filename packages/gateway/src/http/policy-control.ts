// The active policy set: the policy directory's Cedar files (with
// `entities.json` and `cases.yaml` beside them), the decision point the
// gateway decides with, and activation of a candidate. Activation writes the
// candidate as a new version directory and swaps a symbolic link to it with
// one rename(2), so a reader sees the old set or the new one, never a mix;
// the decision point is swapped the same way (one reference), so decisions
// in flight finish under the set they started with. Activation is a
// compare-and-swap on the active set's hash, held under a lock that other
// processes activating the same directory take too. A hand edit of the
// directory that does not validate never replaces the set in use, and the
// status says so (refusedEdit); a set another process activated (the link
// swapped) is compiled off the gateway's thread while the decisions that
// arrive meanwhile wait for it (ready), never deciding with the set it
// replaced; a set whose activation could be neither
// recorded nor undone decides nothing (every request is denied), in any
// process and after a restart: it is marked on disk (see markUnrecorded).
// A running gateway watches the directory (watch): a hand edit is taken up
// off the thread as it is saved, not at the next unrelated reading of the
// set, and recorded in the audit log as a change of the set in force.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, lstatSync, mkdirSync, openSync, readlinkSync, renameSync, rmSync, symlinkSync, watch, writeFileSync, writeSync, type FSWatcher } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DecisionPoint, decisionPointOffThread, loadPolicies, parseEntitiesFile, PolicyError, readPolicyDir, setEntitiesOffThread, type Decider, type Decision, type PolicyErrorCode, type PolicyIssue, type PolicySet, type PolicySource } from '@corral/policy';
import { GatewayError } from '../errors.ts';
import { withIdentityEntities, type IdentityEntities } from './identity-entities.ts';
import { inTransactionWhenFree, setBusyTimeout } from '../store/write-lock.ts';

export interface PolicyFile {
  name: string;
  text: string;
}

/** A candidate that validated: its files, hash, and a decision point holding it. */
export interface Candidate {
  files: PolicyFile[];
  hash: string;
  point: DecisionPoint;
  /** The digest of the identity store's entities its point holds composed with entities.json (IdentityEntities), '' for none. */
  added: string;
}

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}(\/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,3}$/;
const KINDS = ['.cedar', '.json', '.yaml', '.yml'];
const MAX_FILES = 200;
export const MAX_SET_BYTES = 1024 * 1024;

/** SHA-256 over the files, sorted by name: what `baseHash` is compared with. */
export function hashFiles(files: readonly PolicyFile[]): string {
  const hash = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : 1))) hash.update(`${Buffer.byteLength(f.name)}:${f.name}${Buffer.byteLength(f.text)}:${f.text}`);
  return hash.digest('hex');
}

/**
 * Checks a candidate's file list as it arrived (untrusted): a list of at most
 * 200 `{name, text}` with relative names of `.cedar`, `.json`, `.yaml` files,
 * no duplicates, 1 MiB in all. Names are compared without case, and no name
 * is also a folder of another: every set must be writable as one directory,
 * on a case-insensitive file system too. Throws GATEWAY_PARAMS_INVALID.
 */
export function parseFiles(input: unknown): PolicyFile[] {
  if (!Array.isArray(input)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'files must be a list of {name, text}');
  if (input.length > MAX_FILES) throw new GatewayError('GATEWAY_PARAMS_INVALID', `at most ${MAX_FILES} files`);
  const files: PolicyFile[] = [];
  /** Each name taken, without case: by a file, or by a folder a file is in. */
  const taken = new Map<string, 'file' | 'folder'>();
  let bytes = 0;
  for (const [i, raw] of input.entries()) {
    const f = raw as { name?: unknown; text?: unknown } | null;
    const name = f?.name;
    const text = f?.text;
    if (typeof name !== 'string' || !FILE_NAME.test(name) || !KINDS.some((k) => name.endsWith(k))) throw new GatewayError('GATEWAY_PARAMS_INVALID', `files[${i}].name must be a relative .cedar, .json or .yaml file name`);
    if (typeof text !== 'string' || !text.isWellFormed()) throw new GatewayError('GATEWAY_PARAMS_INVALID', `files[${i}].text must be text`);
    const key = name.toLowerCase();
    const folders = key.split('/').slice(0, -1).map((_, j, parts) => parts.slice(0, j + 1).join('/'));
    if (taken.has(key) || folders.some((folder) => taken.get(folder) === 'file')) throw new GatewayError('GATEWAY_PARAMS_INVALID', `files[${i}]: ${name} is listed twice (names are compared without case), or as a file and a folder`);
    taken.set(key, 'file');
    for (const folder of folders) taken.set(folder, 'folder');
    bytes += Buffer.byteLength(text);
    if (bytes > MAX_SET_BYTES) throw new GatewayError('GATEWAY_PARAMS_INVALID', `the files hold more than ${MAX_SET_BYTES} bytes`);
    files.push({ name, text });
  }
  return files;
}

/** An issue as the API sends it: file and message, line and column when known. */
export function issueView(i: PolicyIssue): { file: string; line?: number; column?: number; message: string } {
  return { file: i.file, ...(i.line !== undefined ? { line: i.line } : {}), ...(i.column !== undefined ? { column: i.column } : {}), message: i.message };
}

/** Every issue that keeps a candidate from validating; undefined for an error that says nothing of the candidate (the checker busy or failed). */
export function candidateIssues(error: unknown): PolicyIssue[] | undefined {
  if (!(error instanceof PolicyError) || error.code === 'POLICY_ENGINE_BUSY' || error.code === 'POLICY_ENGINE_FAILED') return undefined;
  return error.issues.length > 0 ? [...error.issues] : [{ file: error.code === 'POLICY_ENTITIES_INVALID' ? 'entities.json' : '<set>', message: error.message }];
}

/**
 * Builds a decision point holding `files`, on this thread: for a set being
 * read at start-up or adopted from the directory. Throws POLICY_SET_INVALID
 * (with issues), POLICY_ENTITIES_INVALID (entities.json not JSON or not valid entities).
 */
export function compileCandidate(files: PolicyFile[], added?: IdentityEntities): Candidate {
  return candidateOf(files, loadPolicies(cedarSources(files)), added);
}

/**
 * As compileCandidate, with the slow parts on a worker thread, so a
 * candidate sent to the API does not stall every connection the gateway
 * serves: Cedar parsing and validation (seconds for a large set), and the
 * checks of its entities as a whole (hierarchy depth, loops and weight, and
 * cedar-wasm's parse: 1–4 s for a large org chart), made before cedar-wasm
 * sees the hierarchy. The gateway's thread, which must hold the entities to
 * decide with them, then reads them again in slices of a few milliseconds
 * (decisionPointOffThread), deciding as compileCandidate's would. `urgent`:
 * a set about to become active, checked before candidates that wait. A set
 * and its entities both wrong report the set. Rejects as compileCandidate,
 * or with POLICY_ENGINE_FAILED, POLICY_ENGINE_BUSY.
 */
export async function compileCandidateOffThread(files: PolicyFile[], options: { urgent?: boolean; added?: IdentityEntities } = {}): Promise<Candidate> {
  const { added, ...rest } = options;
  const entities = entitiesSource(files, added);
  const point = await decisionPointOffThread(cedarSources(files), { ...(entities ? { entities } : {}), ...rest });
  return { files, hash: hashFiles(files), point, added: added?.digest ?? '' };
}

/** The candidate's Cedar files, as the policy package reads sources. */
export function cedarSources(files: readonly PolicyFile[]): PolicySource[] {
  return files.filter((f) => f.name.endsWith('.cedar')).map((f) => ({ file: f.name, text: f.text }));
}

/**
 * The entities the candidate's decisions read: its `entities.json` parsed,
 * with `added`, the identity store's, composed in (withIdentityEntities);
 * undefined with neither. Throws POLICY_ENTITIES_INVALID when entities.json
 * is not JSON or gives a key twice in one object. Nesting is the policy
 * package's to refuse: a decision point takes 32 levels inside an entity,
 * and what is too deep to copy to a checker's worker is refused as the
 * entities' fault. An entities.json that is not a list is given as it is,
 * for the decision point to refuse.
 */
export function candidateEntities(files: readonly PolicyFile[], added?: IdentityEntities): unknown {
  const entities = files.find((f) => f.name === 'entities.json');
  // Not JSON.parse: it keeps the last of a key given twice in one object silently (parseEntitiesFile refuses it, naming the line).
  const own = entities === undefined ? undefined : parseEntitiesFile({ file: 'entities.json', text: entities.text });
  if (added === undefined || added.list.length === 0 || (own !== undefined && !Array.isArray(own))) return own;
  return withIdentityEntities((own as unknown[] | undefined) ?? [], added.list);
}

/** candidateEntities as the text of a file named entities.json (its own text when nothing is added): what a check off the thread reads. */
export function entitiesSource(files: readonly PolicyFile[], added?: IdentityEntities): PolicySource | undefined {
  const own = files.find((f) => f.name === 'entities.json');
  if (added === undefined || added.list.length === 0) return own === undefined ? undefined : { file: own.name, text: own.text };
  return { file: 'entities.json', text: JSON.stringify(candidateEntities(files, added)) };
}

/**
 * The identity store's entities a decision point holds composed in: their
 * digest, and when the store was read for them (a stamp of `reads`; 0 when
 * not known). Kept by point, not by candidate: candidates that share a point
 * (a set and its recompositions) decide with what the point holds.
 */
interface Composition {
  digest: string;
  read: number;
}

/** Reads of the identity store, counted in the order they were made: a composition read after a decision began waiting holds every change the store held then. */
let reads = 0;

/** What each point holds (Composition), once this module composed it; a point not listed holds its candidate's `added`, read at a time not known. */
const composedIn = new WeakMap<DecisionPoint, Composition>();

/**
 * Points whose entities are being written off the thread, and the end of
 * the last write (never rejects): a write waits for the one before it, so
 * a point's entities only move forward, in the order the store was read for
 * them; one written on this thread meanwhile would be overwritten, so the
 * thread composes into a point of its own instead (recomposed).
 */
const writing = new WeakMap<DecisionPoint, Promise<void>>();

/** What `candidate`'s point holds composed in (Composition). */
function compositionOf(candidate: Candidate): Composition {
  return composedIn.get(candidate.point) ?? { digest: candidate.added, read: 0 };
}

/**
 * `active` with the identity store's entities `added` (read at `read`)
 * composed into its entities.json instead of those it holds: its point,
 * whose policies are compiled and loaded already, takes the new entities
 * once they are checked off the thread and read (a new agent or node takes
 * the entities' time, not a large set's seconds), after any write of them
 * still under way; refused, it keeps the old ones. Rejects as
 * compileCandidateOffThread's entities do.
 */
async function recomposedOffThread(active: Candidate, added: IdentityEntities | undefined, read: number): Promise<Candidate> {
  const { point } = active;
  const entities = entitiesSource(active.files, added);
  const before = writing.get(point);
  const write = (async () => {
    await before;
    if (entities === undefined) point.setEntities([]);
    else await setEntitiesOffThread(point, entities, { urgent: true });
    composedIn.set(point, { digest: added?.digest ?? '', read });
  })();
  const written = write.then(
    () => undefined,
    () => undefined,
  );
  writing.set(point, written);
  try {
    await write;
  } finally {
    if (writing.get(point) === written) writing.delete(point);
  }
  return { ...active, added: added?.digest ?? '' };
}

/**
 * As recomposedOffThread, on this thread: into `active`'s point, or, while
 * that point's entities are being written off the thread, into a new point
 * loaded with the same set (its policies are not checked again). Throws as
 * compileCandidate's entities do.
 */
function recomposed(active: Candidate, added: IdentityEntities | undefined, read: number): Candidate {
  let { point } = active;
  const set = point.policySet;
  if (writing.has(point) && set !== undefined) {
    point = new DecisionPoint({ schema: point.schema });
    point.load(set);
  }
  point.setEntities(candidateEntities(active.files, added) ?? [], { file: 'entities.json' });
  composedIn.set(point, { digest: added?.digest ?? '', read });
  return { ...active, point, added: added?.digest ?? '' };
}

/** Whether `held` is at least as new as the store was when `need` was read: the same entities, or read after. */
function fresh(held: Composition, need: Need): boolean {
  return held.digest === need.digest || held.read > need.read;
}

function candidateOf(files: PolicyFile[], set: PolicySet, added?: IdentityEntities): Candidate {
  const point = new DecisionPoint();
  point.load(set);
  const entities = candidateEntities(files, added);
  if (entities !== undefined) point.setEntities(entities, { file: 'entities.json' });
  return { files, hash: hashFiles(files), point, added: added?.digest ?? '' };
}

/**
 * What the gateway's log is told about its policy set: a hand edit of the
 * directory that was refused, an activation left in force unrecorded. Codes
 * and hashes only: never policy text, entity data, an issue's message or
 * where the directory is.
 */
export interface PolicyLogEntry {
  event: 'policy-edit-refused' | 'policy-activation-unrecorded' | 'policy-edit-unrecorded' | 'policy-watch-failed';
  /**
   * Why: the refusal's POLICY_* code; for an unrecorded activation or an
   * adopted hand edit whose record failed, the code of the record's failure;
   * for a watch of the directory that could not be kept (ENOSPC: no inotify
   * watches left), the file system's code: hand edits are then taken up only
   * when the set is next read (GET /api/policies) or an identity changes. A set found in force marked unrecorded on disk
   * (at start, or by another process; no `putBack`) is logged once, as
   * POLICY_NOT_LOADED, or POLICY_UNREADABLE when the marks cannot be read.
   */
  code: string;
  /** The hash (hashFiles) of the files refused, or of the set left unrecorded; absent when the files could not be read. */
  hash?: string;
  /** How many issues the refusal lists. */
  issues?: number;
  /** For an unrecorded activation: the code of the failure that kept the replaced set from being put back. */
  putBack?: string;
}

/** A hand edit of the policy directory that was not adopted: the set in use stays. What the API shows; it names no path. */
export interface RefusedEdit {
  /** The hash (hashFiles) of the files found; absent when they could not be read. */
  hash?: string;
  code: PolicyErrorCode;
  /** Corral's sentence for a human: what was refused and what is decided meanwhile. */
  message: string;
  /** Each issue, by file relative to the directory, line and column: empty when the files could not be read. */
  issues: ReturnType<typeof issueView>[];
}

/** The set in use, and what keeps the directory or the gateway from being as they seem. */
export interface PolicyStatus {
  hash: string;
  files: PolicyFile[];
  /** The directory holds an edit made by hand that was refused: decisions use `hash`'s set (none: every request is denied). */
  refusedEdit?: RefusedEdit;
  /** The set in use was activated but its activation is not recorded in the audit log (or the marks that say so cannot be read): every process on the directory denies every request until a set is activated and recorded, or a set not marked comes into force. */
  unrecorded?: true;
}

/** What an activation that is recorded came to (see PolicyControl.activateRecorded). */
export type RecordedActivation = 'activated' | 'stale' | 'unrecorded';

/** Refusals that say only what the files hold: the same files are refused again, so they are not read as a set twice. */
const LASTING: ReadonlySet<PolicyErrorCode> = new Set(['POLICY_SET_INVALID', 'POLICY_ENTITIES_INVALID']);

export class PolicyControl {
  readonly dir: string;
  #active: Candidate | undefined;
  /** The version the policy directory's link pointed at when the active set was read. */
  #linked: string | undefined;
  /** The directory's set being compiled off the thread (see ready): decisions wait for it; a later change supersedes it. */
  #adopting: Adoption | undefined;
  /** The last hand edit of the directory that was refused, while the directory still holds it. */
  #refused: RefusedEdit | undefined;
  /** The digest of the identity store's entities the set in use could not be recomposed with (they do not compose with its entities.json). */
  #recomposeRefused: string | undefined;
  /** The digest of the identity store's entities the refused files were composed with. */
  #refusedAdded = '';
  /** The identity store's entities as they are now, composed into every set this control compiles (see identity-entities.ts); none without a store. */
  readonly #identity: (() => IdentityEntities) | undefined;
  /** The digest of the identity store's entities when last seen. */
  #identitySeen: string;
  /** Sets this process swapped in whose record it is writing, by hash (how many activations): their marks on disk do not stop this process deciding with them meanwhile. */
  readonly #recording = new Map<string, number>();
  /** The set and mark last told to the log as found marked unrecorded, so each is told once. */
  #toldMark: string | undefined;
  readonly #log: ((entry: PolicyLogEntry) => void) | undefined;

  /** How long an activation waits for another process's to finish, ms. */
  readonly #lockWaitMs: number;
  /** The version the directory's link pointed at when the set in force was read from it (or activated): an adopted set read from the same one was edited there by hand. */
  #readFrom: string | undefined;
  /** The watch of the directory's files (watch): undefined before watch(), after close() and once it failed. */
  #watching: DirectoryWatch | undefined;
  /** Records a hand edit adopted (watch): in the audit log, as an activation is. */
  #recordEdit: ((edit: AdoptedEdit) => Promise<void>) | undefined;

  private constructor(dir: string, active: Candidate | undefined, options: { lockWaitMs: number; log: ((entry: PolicyLogEntry) => void) | undefined; identity: (() => IdentityEntities) | undefined }) {
    this.dir = dir;
    this.#lockWaitMs = options.lockWaitMs;
    this.#log = options.log;
    this.#identity = options.identity;
    this.#identitySeen = active?.added ?? '';
    this.#active = active;
    this.#linked = linkTarget(dir);
    this.#readFrom = this.#linked;
  }

  /**
   * Takes up a change of the directory's files as it is saved: a watch
   * (inotify) on the folder that holds the set in use, and on its parent,
   * where an activation (by this process or another) swaps the link to
   * another version, which is then watched instead. A burst of events (an
   * editor writing a temporary file and renaming it over) is taken up once,
   * SETTLE_MS after the last, off the thread (refreshOffThread): decisions
   * wait for it from then on, as for any set noticed (ready). A hand edit
   * adopted is given to `record` (an activation records itself); a record
   * that fails is told to the log. A watch that cannot be set up or fails
   * later stops, told to the log once: hand edits are then taken up as
   * before, when the set is next read. The watch keeps no process alive;
   * close() ends it.
   */
  watch(record?: (edit: AdoptedEdit) => Promise<void>): void {
    this.#recordEdit = record;
    try {
      const name = basename(this.dir);
      // The parent is where the link is swapped; its other files' events are let go at once.
      const parent = watch(dirname(this.dir), { persistent: false }, (_event, changed) => {
        if (changed === null || changed === name) this.#settle();
      });
      this.#watching = { parent, inner: undefined, timer: undefined };
      parent.on('error', (error) => this.#unwatch(error));
      this.#follow();
    } catch (error) {
      this.#unwatch(error);
    }
  }

  /** Ends the watch of the directory (watch), if any. */
  close(): void {
    const watching = this.#watching;
    this.#watching = undefined;
    clearTimeout(watching?.timer);
    watching?.parent.close();
    watching?.inner?.close();
  }

  /** Watches the folder the directory is now (its link followed, by inotify), instead of the one watched before. */
  #follow(): void {
    const watching = this.#watching;
    if (watching === undefined) return;
    watching.inner?.close();
    watching.inner = undefined;
    try {
      const inner = watch(this.dir, { persistent: false }, () => this.#settle());
      inner.on('error', (error) => this.#unwatch(error));
      watching.inner = inner;
    } catch (error) {
      // No directory yet: the parent's watch sees it made.
      if (codeOf(error) !== 'ENOENT') this.#unwatch(error);
    }
  }

  /** An event of the directory: the set is taken up once they settle (watch), and the folder the link then points at is watched. */
  #settle(): void {
    const watching = this.#watching;
    if (watching === undefined) return;
    clearTimeout(watching.timer);
    watching.timer = setTimeout(() => {
      watching.timer = undefined;
      if (this.#watching !== watching) return;
      this.#follow();
      void this.refreshOffThread();
    }, SETTLE_MS).unref();
  }

  /** Stops a watch that failed, telling the log once: hand edits are taken up as before the watch. */
  #unwatch(error: unknown): void {
    this.close();
    this.#log?.({ event: 'policy-watch-failed', code: codeOf(error) });
  }

  /**
   * Loads the directory when it exists. `log` is told of a hand edit refused
   * later and of an activation left unrecorded (PolicyLogEntry). `identity`
   * gives the identity store's entities as they are now
   * (watchIdentityEntities): every set is decided with them composed into its
   * entities.json, and composed again when they change. Throws
   * POLICY_SET_INVALID, POLICY_ENTITIES_INVALID, POLICY_UNREADABLE, and what
   * `identity` throws.
   */
  static open(dir: string, options: { lockWaitMs?: number; log?: (entry: PolicyLogEntry) => void; identity?: () => IdentityEntities } = {}): PolicyControl {
    const active = existsSync(dir) ? compileCandidate(readFiles(dir), options.identity?.()) : undefined;
    return new PolicyControl(dir, active, { lockWaitMs: options.lockWaitMs ?? ACTIVATION_WAIT_MS, log: options.log, identity: options.identity });
  }

  /** The identity store's entities as they are now, which every set this control compiles composes in; undefined without a store. Throws what reading the store throws. */
  identityEntities(): IdentityEntities | undefined {
    return this.#identity?.();
  }

  /** As compileCandidateOffThread, with the identity store's entities as they are now composed in, as the set in force has them. */
  compileOffThread(files: PolicyFile[], options: { urgent?: boolean } = {}): Promise<Candidate> {
    const added = this.identityEntities();
    return compileCandidateOffThread(files, { ...options, ...(added ? { added } : {}) });
  }

  /**
   * The identity store as a decision finds it when it begins to wait: its
   * digest (undefined while it cannot be read; '' without a store), stamped
   * as read now.
   */
  #needNow(): Need {
    const read = ++reads;
    if (this.#identity === undefined) return { digest: '', read };
    try {
      return { digest: this.#identity().digest, read };
    } catch {
      return { digest: undefined, read };
    }
  }

  /**
   * Starts what `need` shows is to be done: the directory's set when its
   * link moved (as #linked follows it), a recomposition when the identity
   * store's entities changed since last seen. While a set or recomposition
   * is under way, a change of the store is noted on it instead (`again`),
   * and picked up once it ends, by one more. A store that cannot be read is
   * left to #usable, which reads it again and denies.
   */
  #notice(need: Need): void {
    const target = linkTarget(this.dir);
    const moved = need.digest !== undefined && need.digest !== this.#identitySeen;
    if (need.digest !== undefined) this.#identitySeen = need.digest;
    if (target !== this.#linked) {
      this.#linked = target;
      this.#adopt();
    } else if (moved) {
      if (this.#adopting !== undefined) this.#adopting.again = true;
      else this.#adopt();
    }
  }

  /**
   * Whether a decision whose store was `need` may decide with the set in
   * force now: no set of the directory is being compiled, and the set's
   * entities are at least as new as the store was then (fresh) — a change
   * made since, while the decision waited, need not be in them. With no set,
   * or a store that cannot be read, there is nothing to wait for: #usable
   * denies.
   */
  #met(need: Need): boolean {
    if (this.#adopting !== undefined && this.#adopting.base === undefined) return false;
    return this.#active === undefined || need.digest === undefined || fresh(compositionOf(this.#active), need);
  }

  /**
   * What a decision must wait for before it decides with this set: undefined
   * when the set in use is the directory's as last seen (one readlink(2), as
   * every decision makes) with the identity store's entities as they are
   * now, or as they were since this call; or a promise that resolves once
   * that holds — once the set another process activated (the link swapped)
   * is compiled off the gateway's thread and in force, or refused, the set
   * in use staying (refusedEdit), and any set activated while it compiled
   * after it; and once the identity store's entities, as they are now, are
   * composed in off the thread. During a burst of changes to the store the
   * recomposition under way is finished, not thrown away, and one more
   * takes in every change made meanwhile, so a decision waits for two
   * recompositions at most, however long the burst. Until then the event
   * loop serves everyone else. Decisions made in the tick it resolves decide
   * with the set in force; decide() made before it resolves composes the
   * store's entities, or compiles the set, on this thread instead, so that
   * nothing decides with a set replaced once the change was seen. Never
   * rejects.
   */
  ready(): Promise<void> | undefined {
    const need = this.#needNow();
    this.#notice(need);
    return this.#met(need) ? undefined : this.#until(need);
  }

  /**
   * Resolves once `need` is met (#met), noticing link changes made
   * meanwhile, or once nothing can be done to meet it (the store's entities
   * refused or unreadable: #usable says why).
   */
  async #until(need: Need): Promise<void> {
    for (;;) {
      const adopting = this.#adopting;
      if (adopting === undefined) {
        this.#adopt();
        if (this.#adopting === undefined) return;
        continue;
      }
      await adopting.done;
      const target = linkTarget(this.dir);
      if (target !== this.#linked) {
        this.#linked = target;
        this.#adopt();
      }
      if (this.#met(need)) return;
    }
  }

  /**
   * Adopts the directory's set as refresh() does, off the thread: a set
   * compiled, or, when only the identity store's entities changed, the set
   * in use recomposed. What is under way for the same files is kept, and a
   * change of the store's entities meanwhile noted on it (`again`): once it
   * ends, one more recomposition takes in all of them. A set of other files
   * supersedes a set under way (its set is never put in force). A compile
   * that fails refuses the files as refresh() does; one that says nothing of
   * them (the checker failed) is made again on this thread, as refresh()
   * makes it.
   */
  #adopt(): void {
    const changed = this.#changed();
    const under = this.#adopting;
    if (under !== undefined && (changed === undefined ? under.base !== undefined : under.hash === changed.hash)) {
      // Its point is written whatever comes: what it holds is looked at again once it is.
      if (changed?.added?.digest !== under.added) under.again = true;
      return;
    }
    if (changed === undefined) {
      this.#adopting = undefined;
      return;
    }
    const base = this.#sameSet(changed);
    const adoption: Adoption = { hash: changed.hash, added: changed.added?.digest ?? '', ...(base ? { base } : {}), again: false, done: Promise.resolve() };
    adoption.done = (async () => {
      try {
        const candidate = base ? await recomposedOffThread(base, changed.added, changed.read) : await compileCandidateOffThread(changed.files, { urgent: true, ...(changed.added ? { added: changed.added } : {}) });
        if (!base) composedIn.set(candidate.point, { digest: candidate.added, read: changed.read });
        if (this.#adopting === adoption && (!base || this.#active?.point === base.point)) this.#inForce(candidate);
      } catch (error) {
        if (this.#adopting !== adoption) return;
        if (candidateIssues(error) === undefined) this.#compile(changed);
        else this.#refuse(changed.hash, error, changed.added?.digest);
      } finally {
        if (this.#adopting === adoption) {
          this.#adopting = undefined;
          if (adoption.again) this.#adopt();
        }
      }
    })();
    this.#adopting = adoption;
  }

  /** Decides with the active set. Throws POLICY_NOT_LOADED when there is none, or while it is an activation left unrecorded (see activateRecorded). */
  decide(input: unknown): Decision {
    return this.#deciding().point.decide(input);
  }

  /** Decides `input` for each of `resources` with the active set (DecisionPoint.decideEach). Throws as `decide`. */
  decideEach(input: unknown, resources: readonly unknown[]): Decision[] {
    return this.#deciding().point.decideEach(input, resources);
  }

  /**
   * A decider for one action, to use at once (in the tick it is given):
   * after waiting for the set noticed being compiled (ready), it decides
   * with the set then in force, whatever its decisions of that action ask —
   * one readlink(2) for them all — and throws as `decide`, each decision
   * checking the set's mark (see activateRecorded) as `decide` does.
   */
  decider(): Decider | Promise<Decider> {
    const need = this.#needNow();
    this.#notice(need);
    return this.#met(need) ? this.#fixed(need) : this.#until(need).then(() => this.#fixed(need));
  }

  /** A decider of the set in force now (see decider), for a decision that began to wait when the store was `need`. */
  #fixed(need: Need): Decider {
    const active = this.#active;
    return { decideEach: (input, resources) => this.#usable(active, need).point.decideEach(input, resources) };
  }

  /** The set to decide with. Throws POLICY_NOT_LOADED when none is loaded, and while the set in force is marked unrecorded (or the marks cannot be read). */
  #deciding(): Candidate {
    const active = this.#current();
    // Deciding on this thread, the identity store's entities as they are now are composed in here (ready() does it off the thread); unreadable, #usable denies.
    const now = this.#needNow().digest;
    if (active !== undefined && now !== undefined && compositionOf(active).digest !== now) this.refresh();
    return this.#usable(this.#active);
  }

  /**
   * `active`, when it may decide: throws as #deciding, when the identity
   * store cannot be read, and when its entities are not composed into
   * `active` as they are now — or, for a decision that began to wait when
   * the store was `need`, as they were then or since (a change made while it
   * waited need not be in them).
   */
  #usable(active: Candidate | undefined, need?: Need): Candidate {
    if (!active) throw new PolicyError('POLICY_NOT_LOADED', 'no policy set is loaded');
    // A forbid on an agent's process must not miss an agent made before the decision: nothing is decided with entities older than the store was then.
    const held = compositionOf(active);
    if (this.#identity !== undefined && held.digest !== this.#identity().digest && (need?.digest === undefined || !fresh(held, need))) {
      throw new PolicyError('POLICY_NOT_LOADED', "the identity store's agents, humans or nodes changed and the policy set in force is not yet decided with them (or they do not compose with its entities.json: see the set's status)");
    }
    const mark = this.#markOf(active.hash);
    if (mark === 'marked') throw new PolicyError('POLICY_NOT_LOADED', 'the policy set in force was activated, but its activation is not recorded in the audit log: nothing is decided with it until a set is activated and recorded');
    if (mark === 'unreadable') throw new PolicyError('POLICY_NOT_LOADED', "the policy directory's marks of sets activated unrecorded cannot be read (they are not a directory, or not readable): nothing is decided until a set is activated and recorded");
    return active;
  }

  /** Whether set `hash` is marked unrecorded on disk, for this process: not while this process is writing its record. The log is told once of a set found marked. */
  #markOf(hash: string): Mark {
    const mark = this.#recording.has(hash) ? 'none' : markOf(this.dir, hash);
    const told = mark === 'none' ? undefined : `${hash}:${mark}`;
    if (told !== undefined && told !== this.#toldMark) this.#log?.({ event: 'policy-activation-unrecorded', code: mark === 'marked' ? 'POLICY_NOT_LOADED' : 'POLICY_UNREADABLE', hash });
    this.#toldMark = told;
    return mark;
  }

  /** The active files and their hash (no files: the empty set's hash). */
  active(): { hash: string; files: PolicyFile[] } {
    const active = this.#current();
    return { hash: active?.hash ?? hashFiles([]), files: active?.files ?? [] };
  }

  /**
   * The set in use, after adopting an activation another process made (`corral
   * approvals revoke`, another gateway on the same state directory): it swaps
   * the directory's link, so one readlink(2) tells whether to read the set again.
   * A set noticed and still compiling off the thread (ready) is compiled here, on
   * this thread, rather than decided without.
   */
  #current(): Candidate | undefined {
    const target = linkTarget(this.dir);
    // A recomposition under way changes no file: the set in use is the directory's still.
    if (target !== this.#linked || (this.#adopting !== undefined && this.#adopting.base === undefined)) {
      this.#linked = target;
      this.refresh();
    }
    return this.#active;
  }

  /**
   * Adopts the directory's set when it was changed by hand and still
   * validates. An edit that does not validate, or files that cannot be read,
   * never replace the set in use (with none, every request stays denied):
   * the returned status names the refusal (`refusedEdit`) until the
   * directory holds a valid set again, and the log is told once for each
   * refused edit. Returns the status of the set in use. The set is compiled
   * on this thread (a large one stalls the event loop for as long):
   * refreshOffThread compiles it off the thread.
   */
  refresh(): PolicyStatus {
    // What the directory holds now is adopted here: a compile in flight off the thread is of what it held before.
    this.#adopting = undefined;
    // An edit refused in the first pass, the second recomposes the set in use with the store's entities as they are now (see #changed).
    for (let pass = 0; pass < 2; pass++) {
      const changed = this.#changed();
      if (changed === undefined) break;
      this.#compile(changed);
    }
    return this.status();
  }

  /**
   * As refresh, compiling the directory's set off the thread (a compile in
   * flight for the same files is shared): decisions wait for it meanwhile
   * (ready), and the event loop serves everyone else. Never rejects.
   */
  async refreshOffThread(): Promise<PolicyStatus> {
    const need = this.#needNow();
    this.#adopt();
    if (!this.#met(need)) await this.#until(need);
    return this.status();
  }

  /**
   * The directory's files when they are a set to compile: not the set in use,
   * nor an edit refused already for what it holds (asked again before every
   * GET of the set, it is not checked a second time). Files that cannot be
   * read are refused here; found to be the set in use, no refusal stands.
   * The set in use is one to compile again when the identity store's
   * entities changed (`added`); while they cannot be read, nothing is
   * (#usable denies meanwhile).
   */
  #changed(): Changed | undefined {
    let files: PolicyFile[];
    try {
      files = existsSync(this.dir) ? readFiles(this.dir) : [];
    } catch (error) {
      this.#refuse(undefined, error);
      return undefined;
    }
    let added: IdentityEntities | undefined;
    const read = ++reads;
    try {
      added = this.#identity?.();
    } catch {
      return undefined;
    }
    const digest = added?.digest ?? '';
    const hash = hashFiles(files);
    const composed = this.#active === undefined || compositionOf(this.#active).digest === digest;
    if (hash === (this.#active?.hash ?? hashFiles([])) && composed) {
      this.#refused = undefined;
      return undefined;
    }
    if (this.#refused?.hash === hash && this.#refusedAdded === digest && LASTING.has(this.#refused.code)) {
      // An edit refused, the set in use goes on deciding: with the store's entities as they are now (unless they were refused with it), or nothing would.
      if (composed || hash === this.#active?.hash || this.#recomposeRefused === digest) return undefined;
      return { files: this.#active!.files, hash: this.#active!.hash, read, ...(added !== undefined ? { added } : {}) };
    }
    return { files, hash, read, ...(added !== undefined ? { added } : {}) };
  }

  /** Compiles the directory's files on this thread and puts them in force, or refuses them. */
  #compile(changed: Changed): void {
    let adopted: Candidate;
    const base = this.#sameSet(changed);
    try {
      adopted = base ? recomposed(base, changed.added, changed.read) : compileCandidate(changed.files, changed.added);
    } catch (error) {
      this.#refuse(changed.hash, error, changed.added?.digest);
      return;
    }
    if (!base) composedIn.set(adopted.point, { digest: adopted.added, read: changed.read });
    this.#inForce(adopted);
  }

  /** The set in use when `changed` holds its files (only the identity store's entities differ): its policies need not be compiled again. */
  #sameSet(changed: Changed): Candidate | undefined {
    return this.#active?.hash === changed.hash ? this.#active : undefined;
  }

  /** The set in use, and the refused edit or unrecorded activation that goes with it, as last seen (refresh reads the directory again). */
  status(): PolicyStatus {
    const active = this.active();
    return { ...active, ...(this.#refused ? { refusedEdit: this.#refused } : {}), ...(this.#active && this.#markOf(this.#active.hash) !== 'none' ? { unrecorded: true as const } : {}) };
  }

  /**
   * Notes a hand edit refused (files of `hash`, or unreadable ones; composed
   * with the identity store's entities of digest `added`), telling the log
   * when it is not the refusal noted already.
   */
  #refuse(hash: string | undefined, error: unknown, added = ''): void {
    const code: PolicyErrorCode = error instanceof PolicyError ? error.code : 'POLICY_ENGINE_FAILED';
    if (this.#refused?.hash === hash && this.#refused?.code === code && this.#refusedAdded === added) return;
    const issues = code === 'POLICY_UNREADABLE' ? [] : (candidateIssues(error) ?? []).map(issueView);
    // The set in use itself, composed with the store's entities as they are now: they, not an edit, were refused.
    const recomposed = hash !== undefined && hash === this.#active?.hash;
    const meanwhile = recomposed
      ? 'every request is denied'
      : this.#active
        ? `the gateway goes on deciding with the set in use (${this.#active.hash.slice(0, 12)})`
        : 'no valid set is loaded, so every request is denied';
    const what = recomposed
      ? "the identity store's agents, humans and nodes, composed with the set's entities.json, are not valid entities"
      : {
          POLICY_UNREADABLE: 'the policy directory could not be read (a file that is a link or not a regular file, or more than 1 MiB of policy files)',
          POLICY_ENTITIES_INVALID: "the policy directory's entities.json was edited into entities that are not valid",
          POLICY_SET_INVALID: 'the policy directory was edited into a set that does not validate',
        }[code as string] ?? "the policy directory's files could not be checked";
    this.#refusedAdded = added;
    if (recomposed) this.#recomposeRefused = added;
    this.#refused = { ...(hash !== undefined ? { hash } : {}), code, message: `${what}: ${meanwhile} until the directory holds a valid set or a set is activated`, issues };
    this.#log?.({ event: 'policy-edit-refused', code, ...(hash !== undefined ? { hash } : {}), issues: issues.length });
  }

  /**
   * Makes `candidate` the set decisions use: the directory holds it, so no
   * refused edit stands, unless it is the set in use recomposed. The identity store's entities are taken as seen
   * as the candidate holds them: composed with others (or none), it is
   * composed again at the next decision.
   */
  #inForce(candidate: Candidate, activated = false): void {
    const previous = this.#active?.hash ?? hashFiles([]);
    const from = linkTarget(this.dir);
    // The set in use recomposed with the store's entities leaves an edit refused standing (the directory still holds it); a refusal of that set's own composition ends.
    if (candidate.hash !== previous || this.#refused?.hash === candidate.hash) this.#refused = undefined;
    this.#recomposeRefused = undefined;
    this.#active = candidate;
    this.#identitySeen = compositionOf(candidate).digest;
    // Read from the version the set it replaced was read from: edited there by hand (another process's activation moves the link, and records itself).
    if (!activated && from === this.#readFrom && candidate.hash !== previous) void this.#recordAdopted({ hash: candidate.hash, previous, files: candidate.files });
    this.#readFrom = from;
  }

  /** Records a hand edit adopted (watch's `record`), telling the log when the record fails: the set stays in force, as it is on disk. */
  async #recordAdopted(edit: AdoptedEdit): Promise<void> {
    try {
      await this.#recordEdit?.(edit);
    } catch (error) {
      this.#log?.({ event: 'policy-edit-unrecorded', code: codeOf(error), hash: edit.hash });
    }
  }

  /**
   * Makes a validated candidate active when `baseHash` is the hash of the
   * active set (after adopting a valid edit made by hand), and resolves to
   * whether it did. The comparison and the swap hold the directory's
   * activation lock, so another process's activation (`corral approvals
   * revoke`, a second gateway) cannot slip between them and be lost. While
   * another process holds the lock this waits with timers, so the gateway
   * goes on serving everyone else; once it has the lock, the comparison and
   * the swap run in that same tick, so no other activation of this process
   * comes between them either. Rejects with GATEWAY_CONFLICT, nothing
   * changed, when another process holds the lock longer than `lockWaitMs`
   * (default 10 s). It records nothing and clears no mark: a set marked
   * unrecorded (see activateRecorded) decides nothing once swapped in, as
   * before; a set never marked decides.
   */
  async activate(candidate: Candidate, baseHash: string): Promise<boolean> {
    return (await this.#swap(candidate, baseHash)) !== undefined;
  }

  /**
   * As `activate`, then records the activation with `record` (handed the set
   * it replaced, as it was in force when swapped). A set is never left
   * deciding unrecorded, in this process or any other: before it is swapped
   * in, it is marked unrecorded on disk (markUnrecorded), so that another
   * process sharing the directory, or this one after a crash and a restart,
   * decides nothing with it (decide throws POLICY_NOT_LOADED, the status
   * says `unrecorded`) until the mark is cleared once `record` resolves;
   * this process alone decides with it meanwhile, as it did before. When
   * `record` rejects, nothing more is decided with the candidate anywhere
   * while the set it replaced is put back, and this rejects with the
   * record's error once it is back (or once another set is in force): the
   * candidate stays marked should it come into force again unrecorded, and a
   * set put back keeps the mark it had. When the put-back fails too (another
   * process holds the activation lock past `lockWaitMs`, the directory
   * cannot be written), the candidate stays on disk, unrecorded and marked:
   * every process denies every request while it is in force, the log is
   * told, and this resolves 'unrecorded'. That ends when a set is activated
   * and recorded (the same one included), or another set comes into force.
   * Resolves 'stale' (nothing changed) when `baseHash` is not the active
   * hash; rejects as `activate`, and with POLICY_NOT_LOADED when the record
   * was made but the mark cannot be cleared (the set stays denied, as
   * unrecorded, until it is activated again).
   */
  async activateRecorded(candidate: Candidate, baseHash: string, record: (replaced: Candidate) => Promise<void>): Promise<RecordedActivation> {
    const swapped = await this.#swap(candidate, baseHash, true);
    if (swapped === undefined) return 'stale';
    const { replaced, wasMarked } = swapped;
    try {
      await record(replaced);
    } catch (error) {
      this.#recorded(candidate.hash);
      // Refused meanwhile, the set is this activation's to tell the log of (below), not one found marked.
      this.#toldMark = `${candidate.hash}:marked`;
      try {
        // The same set put back over itself keeps the mark it had; another set, its own.
        if (replaced.hash === candidate.hash && !wasMarked) unmark(this.dir, candidate.hash);
        await this.activate(replaced, candidate.hash);
      } catch (putBack) {
        if (this.active().hash !== candidate.hash) throw error;
        this.#log?.({ event: 'policy-activation-unrecorded', code: codeOf(error), hash: candidate.hash, putBack: codeOf(putBack) });
        return 'unrecorded';
      }
      throw error;
    }
    this.#recorded(candidate.hash);
    try {
      unmark(this.dir, candidate.hash);
    } catch (error) {
      throw new PolicyError('POLICY_NOT_LOADED', 'the activation was recorded, but the mark that keeps the set from deciding until it is recorded could not be cleared: nothing is decided with it until it is activated again', { cause: error });
    }
    return 'activated';
  }

  /** Ends one of this process's records of set `hash` (see #recording): from now on, its mark on disk counts here too. */
  #recorded(hash: string): void {
    const left = (this.#recording.get(hash) ?? 1) - 1;
    if (left > 0) this.#recording.set(hash, left);
    else this.#recording.delete(hash);
  }

  /**
   * Swaps `candidate` in when `baseHash` is the active hash, under the
   * activation lock; resolves to the set it replaced (the empty set for
   * none) and whether the candidate was marked unrecorded before, or
   * undefined when the hash was stale. `recording`: the candidate is marked
   * unrecorded on disk before the swap, and this process is writing its
   * record (#recording) from the same tick. The directory's set is adopted
   * first, off the thread; one found under the lock that is not compiled yet
   * (another process activated it meanwhile) is compiled off the thread
   * with the lock let go, then the lock is taken again (ADOPT_TRIES times,
   * then on this thread, under the lock).
   */
  async #swap(candidate: Candidate, baseHash: string, recording = false): Promise<{ replaced: Candidate; wasMarked: boolean } | undefined> {
    for (let tries = 0; ; tries++) {
      await this.refreshOffThread();
      const swapped = await this.#swapLocked(candidate, baseHash, recording, tries < ADOPT_TRIES);
      if (swapped !== ADOPT_FIRST) return swapped;
    }
  }

  /** #swap's work under the activation lock; ADOPT_FIRST when the directory holds a set not compiled yet and `mayLeave`. */
  #swapLocked(candidate: Candidate, baseHash: string, recording: boolean, mayLeave: boolean): Promise<{ replaced: Candidate; wasMarked: boolean } | undefined | typeof ADOPT_FIRST> {
    return withActivationLock(this.dir, this.#lockWaitMs, () => {
      const changed = this.#changed();
      if (changed !== undefined && mayLeave) return ADOPT_FIRST;
      this.#adopting = undefined;
      if (changed !== undefined) this.#compile(changed);
      if (baseHash !== this.status().hash) return undefined;
      const replaced = this.#active ?? compileCandidate([]);
      const marks = markOf(this.dir, candidate.hash);
      if (recording) {
        // Marks that cannot be read stopped the replaced set from deciding: rewritten, they still do.
        markUnrecorded(this.dir, marks === 'unreadable' && replaced.hash !== candidate.hash ? [candidate.hash, replaced.hash] : [candidate.hash]);
        this.#recording.set(candidate.hash, (this.#recording.get(candidate.hash) ?? 0) + 1);
      }
      try {
        swapDirectory(this.dir, candidate);
      } catch (error) {
        if (recording) {
          this.#recorded(candidate.hash);
          // Not swapped in: a mark it did not have would deny the set in force when that is the same set.
          if (marks === 'none') unmark(this.dir, candidate.hash);
        }
        throw error;
      }
      this.#inForce(candidate, true);
      this.#linked = linkTarget(this.dir);
      return { replaced, wasMarked: marks !== 'none' };
    });
  }
}

/** A hand edit of the directory adopted (watch): the set now in force, its files, and the hash of the set it replaced. */
export interface AdoptedEdit {
  hash: string;
  previous: string;
  files: PolicyFile[];
}

/** The watch of the directory (PolicyControl.watch): its parent, the folder its link points at, and the pending take-up of a burst of events. */
interface DirectoryWatch {
  parent: FSWatcher;
  inner: FSWatcher | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** File names a policy.activate record lists, for an activation and an adopted hand edit alike (the set's hash names it whole): 100 of the longest still fit in one record. */
export const RECORDED_POLICY_FILES = 100;

/** How long the directory's events must have stopped before its set is taken up: an editor's save is several (write, rename, chmod). */
const SETTLE_MS = 50;

/** An activation found the directory holding a set not compiled yet: it lets go of the lock to compile it off the thread. */
const ADOPT_FIRST: unique symbol = Symbol('adopt first');

/** How many times an activation lets go of the lock to compile off the thread a set found under it, before compiling one on the thread. */
const ADOPT_TRIES = 3;

/** The directory's files to compile (#changed): their hash, and the identity store's entities to compose in, read at `read` (Composition). */
interface Changed {
  files: PolicyFile[];
  hash: string;
  added?: IdentityEntities;
  read: number;
}

/**
 * A set of the policy directory being compiled off the thread, or the set in
 * use (`base`) being recomposed with the identity store's entities: its
 * files' hash, the digest of the entities composed in, whether the store
 * changed since it read them (`again`: once it ends, one more recomposition
 * takes in every change made meanwhile), and its end (never rejects).
 */
interface Adoption {
  hash: string;
  added: string;
  base?: Candidate;
  again: boolean;
  done: Promise<void>;
}

/** The identity store as a decision found it when it began to wait: its digest (undefined while it could not be read; '' without a store), read at `read` (Composition). */
interface Need {
  digest: string | undefined;
  read: number;
}

/** Whether a set is marked unrecorded: 'unreadable' when the marks cannot be read (every set counts as marked then). */
type Mark = 'none' | 'marked' | 'unreadable';

/** Where the marks of sets activated unrecorded are kept: `<dir>.versions/unrecorded/<hash>`, one file a set. */
const MARKS = 'unrecorded';

const MARK_TEXT = 'This policy set was activated, but its activation is not recorded in the audit log: Corral decides nothing with it while it is in force. Activate a set (this one included) through Corral to clear it.\n';

/**
 * Whether the set of `hash` is marked unrecorded in the policy directory
 * `dir` (one lstat(2), before every decision). Marks that cannot be read —
 * `unrecorded` a file or a link to one, or not searchable — mark every set:
 * what they hold is unknown.
 */
function markOf(dir: string, hash: string): Mark {
  try {
    return lstatSync(join(`${dir}.versions`, MARKS, hash), { throwIfNoEntry: false }) === undefined ? 'none' : 'marked';
  } catch {
    return 'unreadable';
  }
}

/**
 * Marks the sets of `hashes` unrecorded, durably (the file and its
 * directories are synced), before anything comes into force that depends on
 * it. What stands in the way of the marks' directory (a file, a link) is
 * removed first. Only a mark's name counts; its text tells a human what it is.
 * Throws the file system's error when it cannot be written.
 */
function markUnrecorded(dir: string, hashes: readonly string[]): void {
  const versions = `${dir}.versions`;
  const marks = join(versions, MARKS);
  const found = lstatSync(marks, { throwIfNoEntry: false });
  if (found !== undefined && !found.isDirectory()) rmSync(marks, { force: true });
  mkdirSync(marks, { recursive: true, mode: 0o700 });
  for (const hash of hashes) {
    // Only the name counts: something else of that name (a directory, a link) is replaced by a plain file.
    if (lstatSync(join(marks, hash), { throwIfNoEntry: false })?.isFile() === false) rmSync(join(marks, hash), { recursive: true, force: true });
    const fd = openSync(join(marks, hash), 'w', 0o600);
    try {
      writeSync(fd, MARK_TEXT);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  for (const path of [marks, versions]) {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

/** Clears the mark of the set of `hash`, if any. Throws the file system's error when the marks cannot be written. */
function unmark(dir: string, hash: string): void {
  rmSync(join(`${dir}.versions`, MARKS, hash), { recursive: true, force: true });
}

/**
 * A failure's code, for the log and for an approver: a coded error's
 * (POLICY_*, AUDIT_*), a system call's (ENOSPC), or GATEWAY_INTERNAL for
 * anything else. Never its message, which may name a path.
 */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : 'GATEWAY_INTERNAL';
}

/** How long an activation waits for another process's to finish, by default. */
const ACTIVATION_WAIT_MS = 10_000;

/**
 * Runs `work` holding the activation lock of the policy directory: the write
 * lock of a small SQLite file beside its versions, which the kernel releases
 * if the holder dies (a lock file left behind by a crash would need a guess).
 * Each attempt waits for nothing (busy_timeout 0: SQLite would wait inside
 * the call, stalling the event loop); between attempts it waits 1, 2, 4… up
 * to 16 ms with timers. `work` must be synchronous: it runs in the tick the
 * lock was taken, and the lock is let go before this returns. Rejects with
 * GATEWAY_CONFLICT when the lock is still held elsewhere after `waitMs`
 * (measured on the monotonic clock), and with any other failure as it is.
 */
async function withActivationLock<T>(dir: string, waitMs: number, work: () => T): Promise<T> {
  const versions = `${dir}.versions`;
  mkdirSync(versions, { recursive: true, mode: 0o700 });
  const lock = new DatabaseSync(join(versions, 'activation.lock'));
  try {
    setBusyTimeout(lock, 0);
    return await inTransactionWhenFree(
      lock,
      waitMs,
      () => {
        try {
          return work();
        } finally {
          lock.exec('ROLLBACK');
        }
      },
      // Without the directory's path: the API sends this message to its caller.
      () => new GatewayError('GATEWAY_CONFLICT', `another process kept the policy set locked for ${(waitMs / 1000).toFixed(1)} s; try again`),
    );
  } finally {
    lock.close();
  }
}

/** Where the policy directory's link points (a version directory), or undefined for a plain directory. */
function linkTarget(dir: string): string | undefined {
  // Asked before every decision: lstat first, since readlink of a plain directory throws, and a thrown error costs more than the call.
  if (!lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink()) return undefined;
  try {
    return readlinkSync(dir);
  } catch {
    return undefined;
  }
}

/** The set on disk, read as the policy package reads a policy directory (one version, regular files only, 1 MiB at most). Throws POLICY_UNREADABLE. */
export function readFiles(dir: string): PolicyFile[] {
  return readPolicyDir(dir, KINDS).map((source) => ({ name: source.file, text: source.text }));
}

/**
 * Writes the candidate to `<dir>.versions/<hash>` and points `<dir>` at it.
 * The first activation of a plain directory moves it into the versions
 * directory first (the one moment `<dir>` is briefly absent). A saved
 * version is used again only while it holds the candidate's files: once
 * `<dir>` links to it, a hand edit of the directory edits it, so one that
 * holds anything else is moved aside to `edited-<time>-<hash>` and written
 * again. When `<dir>` links to that very version, it is pointed at a fresh
 * copy first, so it never links to a missing or edited version meanwhile.
 */
function swapDirectory(dir: string, candidate: Candidate): void {
  const versions = `${dir}.versions`;
  mkdirSync(versions, { recursive: true, mode: 0o700 });
  const target = join(versions, candidate.hash);
  if (existsSync(target) && !holds(target, candidate.hash)) {
    const linked = join(basename(versions), candidate.hash);
    const interim = linkTarget(dir) === linked ? writeVersion(versions, candidate.files) : undefined;
    if (interim !== undefined) pointAt(dir, join(basename(versions), basename(interim)));
    renameSync(target, join(versions, `edited-${Date.now()}-${candidate.hash}`));
    renameSync(writeVersion(versions, candidate.files), target);
    if (interim !== undefined) {
      pointAt(dir, linked);
      rmSync(interim, { recursive: true, force: true });
    }
  }
  if (!existsSync(target)) renameSync(writeVersion(versions, candidate.files), target);
  if (existsSync(dir) && !lstatSync(dir).isSymbolicLink()) {
    const previous = join(versions, `previous-${Date.now()}`);
    renameSync(dir, previous);
  }
  pointAt(dir, join(basename(versions), candidate.hash));
}

/** Whether the version directory `path` holds exactly the files of `hash` (hashFiles); not when it cannot be read as a set. */
function holds(path: string, hash: string): boolean {
  try {
    return hashFiles(readFiles(path)) === hash;
  } catch {
    return false;
  }
}

/** Writes `files` to a new staging directory in `versions`; returns its path. */
function writeVersion(versions: string, files: readonly PolicyFile[]): string {
  const staging = join(versions, `.staging-${randomBytes(6).toString('hex')}`);
  for (const f of files) {
    mkdirSync(dirname(join(staging, f.name)), { recursive: true, mode: 0o700 });
    writeFileSync(join(staging, f.name), f.text, { mode: 0o600 });
  }
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  return staging;
}

/** Points the link `dir` at `target` (relative to dir's parent) with one rename(2), replacing the link there. */
function pointAt(dir: string, target: string): void {
  const link = `${dir}.link-${randomBytes(6).toString('hex')}`;
  symlinkSync(target, link);
  try {
    renameSync(link, dir);
  } catch (error) {
    rmSync(link, { force: true });
    throw error;
  }
}
