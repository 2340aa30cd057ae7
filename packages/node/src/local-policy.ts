// The node's own policy for `system.run`, in the shape of upstream's exec
// approvals file (`{ version: 1, defaults: { security, ask }, agents: { "*":
// { allowlist: [{ pattern }] } } }`), stored in the node's state directory.
// The gateway's yes is necessary, never sufficient: this is checked as well.
// A remote change (`system.execApprovals.set`) must name the current hash and
// may only make the policy stricter.
import { createHash } from 'node:crypto';
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NodeError } from './errors.ts';
import { withFileLock } from './file-lock.ts';
import { looseStep } from './trusted-path.ts';
import { MAX_STATE_FILE_BYTES, readStateFile, replaceFile } from './whole-files.ts';

export type Security = 'deny' | 'allowlist' | 'full';
export type Ask = 'off' | 'on-miss' | 'always';

export interface LocalPolicyFile {
  version: 1;
  defaults: { security: Security; ask?: Ask };
  agents?: { [agent: string]: { allowlist?: Array<{ pattern: string }> } };
}

export const LOCAL_POLICY_FILE = 'node-policy.json';
/** Upstream's node-host default: full, no prompt. Every command still runs contained. */
export const DEFAULT_LOCAL_POLICY: LocalPolicyFile = { version: 1, defaults: { security: 'full', ask: 'off' } };

const SECURITY_RANK: Record<Security, number> = { deny: 0, allowlist: 1, full: 2 };
const ASK_RANK: Record<Ask, number> = { off: 0, 'on-miss': 1, always: 2 };

/**
 * What upstream's allowlist entries also carry that says nothing about what
 * may run (its bookkeeping: an id, where the entry came from, when it was last
 * used and for what): taken and left out. A field that narrows an entry
 * (`argPattern`) is refused instead, since this node would not enforce it.
 */
const ENTRY_BOOKKEEPING = new Set(['id', 'source', 'commandText', 'lastUsedAt', 'lastUsedCommand', 'lastResolvedPath']);

/**
 * Validates an untrusted policy document into a fresh object; `where` names
 * it in messages (its file). Throws NODE_POLICY_INVALID.
 */
export function parseLocalPolicy(value: unknown, where = 'local policy'): LocalPolicyFile {
  const bad = (why: string): NodeError => new NodeError('NODE_POLICY_INVALID', `${where}: ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!['version', 'defaults', 'agents'].includes(key)) throw bad(`unknown field ${key.slice(0, 40)}`);
  if (v.version !== 1) throw bad('version must be 1');
  const d = v.defaults as Record<string, unknown> | undefined;
  if (typeof d !== 'object' || d === null) throw bad('defaults is required');
  for (const key of Object.keys(d)) if (!['security', 'ask'].includes(key)) throw bad(`unknown defaults field ${key.slice(0, 40)}`);
  // Own keys only: `in` also finds what every object inherits (`constructor`), whose rank compares as neither looser nor stricter.
  if (typeof d.security !== 'string' || !Object.hasOwn(SECURITY_RANK, d.security)) throw bad('defaults.security must be deny, allowlist or full');
  if (d.ask !== undefined && (typeof d.ask !== 'string' || !Object.hasOwn(ASK_RANK, d.ask))) throw bad('defaults.ask must be off, on-miss or always');
  const out: LocalPolicyFile = { version: 1, defaults: { security: d.security as Security, ...(d.ask !== undefined ? { ask: d.ask as Ask } : {}) } };
  if (v.agents !== undefined) {
    if (typeof v.agents !== 'object' || v.agents === null || Array.isArray(v.agents)) throw bad('agents must be an object');
    // No prototype: an agent named __proto__ or constructor is an entry like any other.
    out.agents = Object.create(null) as NonNullable<LocalPolicyFile['agents']>;
    for (const [agent, entry] of Object.entries(v.agents as Record<string, unknown>)) {
      const e = entry as { allowlist?: unknown } | null;
      if (typeof e !== 'object' || e === null) throw bad('each agent entry must be an object');
      // Upstream's file may also say an agent's own security or ask, or an entry's argPattern: this node enforces none of them, so it never takes them silently.
      for (const key of Object.keys(e)) if (key !== 'allowlist') throw bad(`unknown agent field ${key.slice(0, 40)}`);
      const list = e.allowlist ?? [];
      if (!Array.isArray(list) || list.length > 1000) throw bad('allowlist must be an array');
      out.agents[agent] = { allowlist: list.map((p: unknown) => {
        if (typeof p !== 'object' || p === null) throw bad('each allowlist entry needs a pattern');
        for (const key of Object.keys(p)) if (key !== 'pattern' && !ENTRY_BOOKKEEPING.has(key)) throw bad(`unknown allowlist entry field ${key.slice(0, 40)}`);
        const pattern = (p as { pattern?: unknown }).pattern;
        if (typeof pattern !== 'string' || pattern === '' || pattern.length > 4096) throw bad('each allowlist entry needs a pattern');
        return { pattern };
      }) };
    }
  }
  return out;
}

export function policyHash(policy: LocalPolicyFile): string {
  return createHash('sha256').update(JSON.stringify(policy), 'utf8').digest('hex');
}

/**
 * Where a bare allowlist entry (`echo`) may find its program: the standard
 * system directories, which only root can write. A bare entry matches a bare
 * argv[0] (`echo`, found on the sandbox's fixed PATH; a request cannot change
 * PATH, canonicalRun treats that as opaque) or exactly `<one of these>/echo`,
 * never some other directory's `echo` (`/tmp/x/evil/echo`). An entry with a
 * `/` names one path and matches only that exact argv[0].
 */
export const SYSTEM_BIN_DIRS: readonly string[] = ['/usr/local/bin', '/usr/local/sbin', '/usr/bin', '/usr/sbin', '/bin', '/sbin'];

/**
 * What the allowlist must cover in a canonical run (`canonicalRun`): every
 * command it would run, and every shell it was looked through that is not the
 * system's own (a bare name, found on the sandbox's PATH, or one in
 * SYSTEM_BIN_DIRS). Looking through `/tmp/x/sh -c 'echo hi'` to `echo` says
 * nothing about /tmp/x/sh, which is what runs, whatever it is.
 */
export function allowlistSubjects(run: { commands: readonly (readonly string[])[]; wrappers: readonly (readonly string[])[] }): (readonly string[])[] {
  return [...run.wrappers.filter((argv) => !systemProgram(argv[0] ?? '')), ...run.commands];
}

/** Whether `program` (an argv[0]) is a bare name or lies directly in a system directory. */
export function systemProgram(program: string): boolean {
  const slash = program.lastIndexOf('/');
  return slash < 0 || SYSTEM_BIN_DIRS.includes(program.slice(0, slash));
}

/** Why the local policy refuses, or that it allows. */
export type LocalRule = 'allowed' | 'security-deny' | 'allowlist-miss' | 'approval-required';

export interface LocalVerdict {
  allowed: boolean;
  rule: LocalRule;
  reason: string;
}

/** Whether `program` (an argv[0]) is what the allowlist entry `pattern` names. */
export function matchesEntry(pattern: string, program: string): boolean {
  if (pattern.includes('/')) return program === pattern;
  if (program === pattern) return true;
  const slash = program.lastIndexOf('/');
  return slash > 0 && program.slice(slash + 1) === pattern && SYSTEM_BIN_DIRS.includes(program.slice(0, slash));
}

/**
 * Whether the local policy lets every command (argv) run, for this agent;
 * for a canonical run, pass `allowlistSubjects(run)`, which adds the shells it
 * was looked through.
 * `approved`: the gateway says a human approved this exact run (upstream's
 * `approved` / `approvalDecision` allow-once|allow-always, or a Corral
 * approval receipt). Upstream's semantics, no looser:
 * - `security: deny` refuses everything; nothing overrides it.
 * - `ask: always` needs that approval for every command.
 * - `ask: on-miss` (with `security: allowlist`) needs it for a command not on
 *   the allowlist, which then runs; with `ask: off` or `always` a miss is refused
 *   whatever was approved (upstream lets an approval cover a miss even then;
 *   the node's allowlist is its own bound, so Corral does not).
 */
export function localAllows(policy: LocalPolicyFile, commands: readonly (readonly string[])[], agentId?: string, approved = false): LocalVerdict {
  const { security, ask = 'off' } = policy.defaults;
  if (security === 'deny') return { allowed: false, rule: 'security-deny', reason: 'local policy denies every command (security=deny)' };
  if (security === 'allowlist') {
    const patterns = [...(policy.agents?.['*']?.allowlist ?? []), ...(agentId ? policy.agents?.[agentId]?.allowlist ?? [] : [])].map((p) => p.pattern);
    for (const argv of commands) {
      const program = argv[0] ?? '';
      if (patterns.some((p) => matchesEntry(p, program))) continue;
      const shown = program.slice(0, 200);
      if (ask !== 'on-miss') return { allowed: false, rule: 'allowlist-miss', reason: `${shown} is not on the node's allowlist` };
      if (!approved) return { allowed: false, rule: 'approval-required', reason: `approval required: ${shown} is not on the node's allowlist (ask=on-miss) and no human approved this run` };
    }
  }
  if (ask === 'always' && !approved) return { allowed: false, rule: 'approval-required', reason: 'approval required: the node asks for every command (ask=always) and no human approved this run' };
  return { allowed: true, rule: 'allowed', reason: security === 'full' ? 'local policy allows commands' : 'every command is on the node allowlist or approved' };
}

/** Whether `next` is at least as strict as `current` in every respect. */
export function isTighter(current: LocalPolicyFile, next: LocalPolicyFile): boolean {
  if (SECURITY_RANK[next.defaults.security] > SECURITY_RANK[current.defaults.security]) return false;
  if (ASK_RANK[next.defaults.ask ?? 'off'] < ASK_RANK[current.defaults.ask ?? 'off']) return false;
  // Under an allowlist, on-miss lets an approved miss run where off refused it: looser, not stricter.
  if (current.defaults.security === 'allowlist' && next.defaults.security === 'allowlist' && (current.defaults.ask ?? 'off') === 'off' && next.defaults.ask === 'on-miss') return false;
  if (next.defaults.security === 'allowlist' && current.defaults.security === 'allowlist') {
    const everyone = new Set((current.agents?.['*']?.allowlist ?? []).map((p) => p.pattern));
    for (const [agent, entry] of Object.entries(next.agents ?? {})) {
      const own = new Set((current.agents?.[agent]?.allowlist ?? []).map((p) => p.pattern));
      for (const p of entry.allowlist ?? []) if (!everyone.has(p.pattern) && !own.has(p.pattern)) return false;
    }
  }
  return true;
}

/**
 * Remote changes the node writes at once, after which it writes one per
 * REMOTE_WRITE_INTERVAL_MS and refuses the rest (NODE_POLICY_CHANGE_BUSY):
 * a gateway alternating two changes that are each no looser (two allowlists
 * under `full`) cannot loosen the policy, but could have the node rewrite
 * and flush its disk without end. A change that writes nothing is not counted.
 */
export const REMOTE_WRITES_BURST = 10;
export const REMOTE_WRITE_INTERVAL_MS = 6_000;

/** The largest policy file the node reads or writes. */
export const MAX_LOCAL_POLICY_BYTES = MAX_STATE_FILE_BYTES;

/**
 * The node's policy file in its state directory, read on every use: an edit
 * on disk applies to the next command, and a remote change is compared with
 * the file as it is then, never with what the node read before.
 */
export class LocalPolicy {
  readonly path: string;
  /** The text last parsed, and its policy: a run reads the file twice, and parses it again only when its text changed. */
  #parsed: { text: string; policy: LocalPolicyFile } | undefined;
  /** A monotonic clock in ms (tests); default performance.now. */
  readonly #now: () => number;
  /** Remote writes the node may make now (up to REMOTE_WRITES_BURST), as of #writesAt. */
  #writes = REMOTE_WRITES_BURST;
  #writesAt: number;

  /** Throws NODE_POLICY_INVALID for a file that is unreadable, too large or not a policy. */
  constructor(stateDir: string, options: { now?: () => number } = {}) {
    this.path = join(stateDir, LOCAL_POLICY_FILE);
    this.#now = options.now ?? (() => performance.now());
    this.#writesAt = this.#now();
    this.#read();
  }

  /** The policy as the file holds it now (the default when there is none). Throws NODE_POLICY_INVALID. */
  get current(): LocalPolicyFile {
    return this.#read().policy;
  }

  /** The snapshot `system.execApprovals.get` returns: `{ path, exists, hash, file }`. Throws NODE_POLICY_INVALID. */
  snapshot(): { path: string; exists: boolean; hash: string; file: LocalPolicyFile } {
    const { exists, policy } = this.#read();
    return { path: this.path, exists, hash: policyHash(policy), file: policy };
  }

  /**
   * A remote change: compare-and-swap on `baseHash` against the file as it is
   * now, and only ever stricter. One that leaves the policy as it is (its hash
   * is `baseHash`) writes nothing and succeeds with that hash: a gateway
   * sending it again and again never has the node rewrite and flush its disk.
   * One that does change it is refused beyond REMOTE_WRITES_BURST at once,
   * then one per REMOTE_WRITE_INTERVAL_MS. One that writes is checked again
   * and written holding the policy's lock (withFileLock), so that of two node
   * processes changing one policy from the same hash, the second finds it
   * changed; one refused, or that writes nothing, never takes it. Throws
   * NODE_POLICY_CHANGE_REFUSED, NODE_POLICY_CHANGE_BUSY (also while another
   * process holds the lock past LOCK_WAIT_MS), NODE_POLICY_INVALID (also for
   * a policy larger than MAX_LOCAL_POLICY_BYTES), and the file system's error.
   */
  replace(file: unknown, baseHash: unknown): { hash: string } {
    // Checked first without the lock: one refused, or that writes nothing, never waits for another process's change.
    if (this.#change(file, baseHash).text === undefined) return { hash: baseHash as string };
    // A link to a policy kept elsewhere (managed for many nodes) stays one: the change is made there, and a later edit there still applies.
    const target = lstatSync(this.path, { throwIfNoEntry: false })?.isSymbolicLink() === true ? realpathSync(this.path) : this.path;
    // Other nodes may change that policy too: checked again against the file as it is now, and written, holding its lock, as one step.
    return withFileLock(target, () => {
      const { hash, text } = this.#change(file, baseHash);
      if (text === undefined) return { hash };
      this.#takeWrite();
      // Its mode stays (a policy other users' nodes read stays readable to them), never one others may write; a new file is 0600.
      replaceFile(target, text, (statSync(target, { throwIfNoEntry: false })?.mode ?? 0o600) & 0o644);
      return { hash };
    });
  }

  /** The change `file` makes to the policy as its file holds it now, based on `baseHash`: its hash, and the text to write unless it writes nothing. Throws as replace does. */
  #change(file: unknown, baseHash: unknown): { hash: string; text?: string } {
    const current = this.#read().policy;
    if (typeof baseHash !== 'string' || baseHash !== policyHash(current)) throw new NodeError('NODE_POLICY_CHANGE_REFUSED', 'exec approvals changed; reload and retry');
    const next = parseLocalPolicy(file);
    // Sized before it is compared: the comparison's work grows with both files.
    const text = `${JSON.stringify(next, null, 2)}\n`;
    if (Buffer.byteLength(text) > MAX_LOCAL_POLICY_BYTES) throw new NodeError('NODE_POLICY_INVALID', `local policy: larger than ${MAX_LOCAL_POLICY_BYTES} bytes`);
    if (!isTighter(current, next)) throw new NodeError('NODE_POLICY_CHANGE_REFUSED', 'a remote change may only make the node policy stricter');
    const hash = policyHash(next);
    return hash === baseHash ? { hash } : { hash, text };
  }

  /** Takes one remote write of the budget, refilled one per REMOTE_WRITE_INTERVAL_MS. Throws NODE_POLICY_CHANGE_BUSY when none is left. */
  #takeWrite(): void {
    const now = this.#now();
    this.#writes = Math.min(REMOTE_WRITES_BURST, this.#writes + Math.max(0, now - this.#writesAt) / REMOTE_WRITE_INTERVAL_MS);
    this.#writesAt = now;
    if (this.#writes < 1) throw new NodeError('NODE_POLICY_CHANGE_BUSY', `remote changes to the node policy come too often: try again in ${Math.ceil(((1 - this.#writes) * REMOTE_WRITE_INTERVAL_MS) / 1000)} s`);
    this.#writes -= 1;
  }

  #read(): { exists: boolean; policy: LocalPolicyFile } {
    // Nothing there at all (no file, no link) is the default, found without a failed open (read at every command, that cost each one).
    // Anything else, or a path that cannot be looked at, is read below, which says what it is.
    if (noEntry(this.path)) return { exists: false, policy: DEFAULT_LOCAL_POLICY };
    this.#refuseLooseWay();
    let text: string;
    try {
      // A regular file of at most MAX_LOCAL_POLICY_BYTES, never a FIFO waited on or a link to /dev/zero read for ever.
      text = readStateFile(this.path, 'NODE_POLICY_INVALID');
    } catch (error) {
      // No file at all is the default; a link to one that is gone is a policy that cannot be read, never the default (which runs everything).
      if ((error as { code?: unknown }).code === 'ENOENT' && lstatSync(this.path, { throwIfNoEntry: false }) === undefined) return { exists: false, policy: DEFAULT_LOCAL_POLICY };
      if ((error as { code?: unknown }).code === 'ENOENT') throw new NodeError('NODE_POLICY_INVALID', `local policy ${this.path} is a link to a file that is not there: restore it, or remove the link (while it leads nowhere, the node runs nothing)`, { cause: error });
      if (error instanceof NodeError) throw new NodeError('NODE_POLICY_INVALID', `local policy ${error.message}: replace it with a policy file of this user's (or root's) that only its owner may change (while it is not one, the node runs nothing)`, { cause: error });
      throw new NodeError('NODE_POLICY_INVALID', `local policy ${this.path} cannot be read`, { cause: error });
    }
    if (this.#parsed?.text === text) return { exists: true, policy: this.#parsed.policy };
    // Until the file is fixed every command is refused (never the default, which allows all): say where and what.
    const fix = 'correct it (while it is not a policy, the node runs nothing)';
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      const at = /\(line \d+ column \d+\)/.exec((error as Error).message)?.[0];
      throw new NodeError('NODE_POLICY_INVALID', `local policy ${this.path} is not JSON${at ? ` ${at}` : ''}: ${fix}`, { cause: error });
    }
    let policy: LocalPolicyFile;
    try {
      policy = parseLocalPolicy(raw, `local policy ${this.path}`);
    } catch (error) {
      throw new NodeError('NODE_POLICY_INVALID', `${(error as Error).message}: ${fix}`, { cause: error });
    }
    this.#parsed = { text, policy };
    return { exists: true, policy };
  }
  /**
   * A link to a policy kept elsewhere is only as safe as the way to it:
   * whoever may change a folder or link on it could point it at a looser
   * policy file that passes the file's own check (this user's, or root's).
   * Throws NODE_POLICY_INVALID naming the first such step (looseStep), or
   * when the way cannot be looked at.
   */
  #refuseLooseWay(): void {
    let loose: ReturnType<typeof looseStep>;
    try {
      loose = lstatSync(this.path, { throwIfNoEntry: false })?.isSymbolicLink() === true ? looseStep(this.path) : undefined;
    } catch (error) {
      throw new NodeError('NODE_POLICY_INVALID', `local policy ${this.path} cannot be read: the way it links to cannot be looked at`, { cause: error });
    }
    if (loose) throw new NodeError('NODE_POLICY_INVALID', `local policy ${this.path} leads through ${loose.path}, which ${loose.why}: another user could put a policy of their choosing there; make every folder and link on the way this user's or root's, writable by them alone (chmod go-w, or chmod +t for a shared folder), or link to a policy kept elsewhere (while it is so, the node runs nothing)`);
  }
}

/** True when nothing, not even a link, is at `path`; false when something is, or when it cannot be looked at. */
function noEntry(path: string): boolean {
  try {
    return lstatSync(path, { throwIfNoEntry: false }) === undefined;
  } catch {
    return false;
  }
}
