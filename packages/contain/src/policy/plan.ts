import { createHash, hash } from 'node:crypto';
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainError, formatIssue, type PolicyIssue } from '../errors.ts';
import { parseEgressRule, type EgressRule } from '../net/egress-rule.ts';
import type { LoadedPolicy } from './file.ts';
import { displayGrant, type DisplayGrant } from './display.ts';
import { checkHardLinks } from './hard-links.ts';
import { presetGrant } from './presets.ts';
import { PROCESS_DEFAULTS } from './defaults.ts';
import type { ContainerPolicy } from './schema.ts';

/** One mount of the sandbox, in the order it is applied. */
export type Mount =
  /**
   * A host path bound at the same path inside, from a descriptor opened when the sandbox starts;
   * `source` is the host path bound there when it is not `path` itself (a preset's symlink, bound as its target).
   */
  | { kind: 'ro' | 'rw'; path: string; source?: string }
  | { kind: 'symlink'; path: string; target: string }
  /**
   * A path inside a granted tree that the policy denies, or Corral's state directory: masked by an
   * empty, unreadable stand-in (a folder with grants bound back inside it can be crossed to reach them).
   * `missing`: nothing was there when planned, inside a read-write grant where the sandbox could create it;
   * `path` is then the first folder of the denied path that was missing, and the runner makes it, empty,
   * before the sandbox starts, so the mask has somewhere to sit (see placeStandIns in runner.ts).
   */
  | { kind: 'deny'; path: string; directory: boolean; missing?: true };

export type LimitName = keyof typeof PROCESS_DEFAULTS;

/** A resource limit with whether the policy wrote it (a written limit must be enforced). */
export interface Limit {
  value: number;
  explicit: boolean;
}

/**
 * Everything a backend needs to build the sandbox, with every path resolved
 * on this host. Plans are pure data: building one starts nothing.
 */
export interface SandboxPlan {
  /** SHA-256 of the validated policy (canonical JSON): what the audit log records. */
  policyDigest: string;
  policy: ContainerPolicy;
  source: string;
  mounts: Mount[];
  /** The exact environment of the contained command (before Corral's own proxy variables). */
  env: Record<string, string>;
  cwd: string;
  limits: Record<LimitName, Limit>;
  /** null: no network at all. */
  egress: EgressRule[] | null;
  ingress: { port: number; hostPort: number }[];
  /** The display granted by `ui.display`, or null. */
  display: DisplayGrant | null;
  warnings: string[];
}

// Paths the sandbox builds itself; granting the host's would defeat it.
const RESERVED = ['/', '/proc', '/dev', '/sys', '/tmp', '/etc', '/run'];
// The host's kernel interfaces: nothing below them may be granted either (a host process's
// /proc/PID/root reaches the host's whole file system; /sys/fs/cgroup holds the sandbox's limits).
const KERNEL = ['/proc', '/dev', '/sys'];
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
/**
 * Corral's own install: its code, its dependencies, the Node it runs on and
 * its helper programs (the forwarder every networked sandbox starts with).
 * All of it runs on the host outside any sandbox, and in every later sandbox:
 * a sandbox that could write it would choose what runs there next.
 */
const INSTALL = fileURLToPath(new URL('../../../../', import.meta.url));

export interface PlanOptions {
  /**
   * Corral's state directory (audit log, keys, policy cache): a grant at or
   * below it is refused, and inside a grant that holds it the sandbox finds an
   * empty, unreadable stand-in, as for a denied path.
   */
  stateDir?: string;
  /**
   * Folders inside `stateDir` that a policy may still grant (`corral up` keeps
   * its process workspaces in STATE/processes): a grant there is bound back
   * over the stand-in, and nothing else of the state directory is.
   */
  exposed?: readonly string[];
  /**
   * Corral's other state directories on this host (the default `~/.corral`,
   * one CORRAL_STATE_DIR names) when they are not `stateDir`: each holds keys
   * and tokens of its own gateway or node, so each is kept out as `stateDir`
   * is (no grant in it; inside a grant that holds it, a stand-in), none of it
   * exposed but `exposed` in one that holds `stateDir`. One missing, or inside
   * `stateDir` but none of `exposed` (its mask covers it), is left out; one in
   * an exposed folder is masked inside the grant of that folder.
   */
  otherStateDirs?: readonly string[];
  /**
   * Where Corral is installed (default: the install this code runs from): no
   * read-write grant may lie in it, and inside one that holds it, it is bound
   * read-only.
   */
  install?: string;
}

/**
 * Resolves a validated policy into a sandbox plan: `~` and relative paths
 * (against the policy's folder), `..` and symlinks resolved before anything is
 * matched, presets expanded, denies placed inside the grants they cut into.
 * A symlink inside a read-write grant is never followed: the sandbox could
 * have planted it, and would choose what a later sandbox is granted.
 *
 * @param hostEnv the invoking environment, read for `environment.pass` and, when the policy grants the
 *   display, for DISPLAY, XAUTHORITY, WAYLAND_DISPLAY and XDG_RUNTIME_DIR (which name only a display: see displayGrant).
 * @throws ContainError `CONTAIN_PATH_UNRESOLVABLE` (a granted path is missing, is a reserved
 *   system path, lies below /proc, /dev or /sys, or inside the state directory outside
 *   `exposed`; a read-write grant holds the state directory deeper than as its own entry;
 *   a path reaches its target through a symlink inside a read-write grant, a denied path's symlink loop
 *   included; a denied file, or a file in a denied folder a grant holds, has other names, hard links
 *   outside every denied path, which the mask does not cover; the issues of a CONTAIN_UNENFORCEABLE are
 *   listed along). `CONTAIN_UNENFORCEABLE` unless the policy says `onUnenforceable: warn`, which plans
 *   with a warning instead (a denied folder holds more than MAX_DENIED_ENTRIES entries, or one that cannot
 *   be read, so it cannot be checked for hard links, and is masked unchecked; a denied path cannot be
 *   resolved, stopped by what the sandbox could clear and then make the path: a file where a folder
 *   should be, a folder that cannot be searched, a missing folder the path climbs back out of, and is
 *   not masked).
 *
 * A denied path that does not exist yet, below a read-write grant, is masked from its first missing
 * folder (nothing the sandbox may create lies below it): the plan's `deny` mount says `missing`, and
 * the runner makes that folder before the sandbox starts. One that cannot come to be, what stops it
 * lying beyond the sandbox's reach (a file in a read-only grant on its way), needs no mask.
 *
 * `loaded.policy`, which the plan holds, is frozen with everything in it: what the plan was made of
 * cannot change under it (its digest is kept: see policyDigestOf). A changed copy is another policy.
 */
export function planSandbox(loaded: LoadedPolicy, hostEnv: NodeJS.ProcessEnv = process.env, options: PlanOptions = {}): SandboxPlan {
  const { policy, source, baseDir } = loaded;
  const issues: PolicyIssue[] = [];
  const warnings: string[] = [];
  // Protections the policy asks for that cannot be given here: refused (CONTAIN_UNENFORCEABLE) unless the policy says warn.
  const unenforceable: PolicyIssue[] = [];
  const cannotEnforce = (field: string, refusal: string, warning: string): void => {
    if (policy.onUnenforceable === 'warn') warnings.push(`not enforced: ${warning}`);
    else unenforceable.push({ file: source, field, message: `${refusal}, or set 'onUnenforceable: warn' to run anyway with a warning` });
  };
  // Every path resolved, with the symlinks it went through: checked against the read-write grants once all are known.
  const reached: { field: string; absolute: string; links: string[]; loop?: boolean }[] = [];
  const reach = (absolute: string, field: string): string | undefined => {
    const found = resolveOnHost(absolute);
    if (found) reached.push({ field, absolute, links: found.links });
    return found?.real;
  };
  const stateDir = options.stateDir === undefined ? undefined : reach(resolve(options.stateDir), 'stateDir');
  const exposed = (options.exposed ?? []).map((p, i) => reach(resolve(p), `exposed[${i}]`)).filter((p): p is string => p !== undefined);
  const inExposed = (path: string) => exposed.some((e) => within(path, e));
  // The other state directories that exist and that this one's mask does not cover: one in its exposed folders it does not.
  const others = (options.otherStateDirs ?? [])
    .map((p, i) => reach(resolve(p), `otherStateDirs[${i}]`))
    .filter((p): p is string => p !== undefined && (stateDir === undefined || !within(p, stateDir) || inExposed(p)));
  // Every state directory kept out: this one first, then the others.
  const stateDirs = [...(stateDir === undefined ? [] : [stateDir]), ...others];
  // The innermost state directory a hidden path lies in, as refusals name it.
  const stateDirOf = (path: string) => stateDirs.filter((d) => within(path, d)).sort((a, b) => depth(b) - depth(a))[0];
  // An exposed folder shows what it holds of this state directory and of one that holds it, never of another lying in it.
  const hidden = (path: string) => stateDirs.some((d) => within(path, d) && !(inExposed(path) && (d === stateDir || !inExposed(d))));
  const install = resolveOnHost(resolve(options.install ?? INSTALL))?.real;

  const absoluteOf = (raw: string): string => {
    const expanded = raw === '~' ? homedir() : raw.startsWith('~/') ? `${homedir()}${raw.slice(1)}` : raw;
    return isAbsolute(expanded) ? resolve(expanded) : resolve(baseDir, expanded);
  };
  const resolvePath = (raw: string, field: string, mustExist: boolean): string | undefined => {
    const absolute = absoluteOf(raw);
    const real = reach(absolute, field);
    if (real === undefined) {
      if (mustExist) issues.push({ file: source, field, message: `${absolute} does not exist on this host; create it or remove it from the policy` });
      return undefined;
    }
    if (RESERVED.includes(real)) {
      issues.push({ file: source, field, message: `${real} cannot be granted: the sandbox provides its own ${real === '/' ? 'root' : real}; name the folders the command needs` });
      return undefined;
    }
    // A deny (the only path that need not exist) only ever hides: it may name any of these.
    const kernel = KERNEL.find((k) => within(real, k));
    if (mustExist && kernel !== undefined) {
      issues.push({ file: source, field, message: `${real} cannot be granted: it lies in the host's ${kernel}, and the sandbox provides its own` });
      return undefined;
    }
    if (mustExist && hidden(real)) {
      issues.push({ file: source, field, message: `${real} cannot be granted: it lies in Corral's state directory ${stateDirOf(real)}, which no sandbox may reach` });
      return undefined;
    }
    return real;
  };

  const preset = presetGrant(policy.runtime);
  const grants = new Map<string, 'ro' | 'rw'>();
  // The field each read-write grant was first named in.
  const rwFields = new Map<string, string>();
  // A preset's path, and the display's, is bound where it is named, from where it leads.
  const sources = new Map<string, string>();
  for (const p of preset.readonly) {
    // Looked up here alone: one that is not on this host (or leads nowhere) is left out.
    const real = reach(p, 'runtime');
    if (real === undefined) continue;
    if (real !== p) sources.set(p, real);
    grants.set(p, 'ro');
  }
  policy.filesystem.readwrite.forEach((raw, i) => {
    const field = `filesystem.readwrite[${i}]`;
    const p = resolvePath(raw, field, true);
    // The mask and the grant's own root are mount points the sandbox cannot rename; a folder between them
    // it can, moving the state directory out from under its mask (the next plan would not find it).
    const heldDeep = p === undefined ? undefined : stateDirs.find((d) => within(d, p) && dirname(d) !== p);
    if (p && heldDeep !== undefined) {
      issues.push({ file: source, field, message: `${p} cannot be granted read-write: it holds Corral's state directory ${heldDeep} below a folder a sandbox could rename; grant a folder inside it, or read-only` });
    } else if (p && install !== undefined && within(p, install)) {
      issues.push({ file: source, field, message: `${p} cannot be granted read-write: it lies in Corral's own install ${install}, which runs on this host outside any sandbox; grant it read-only` });
    } else if (p && grants.get(p) !== 'ro') {
      grants.set(p, 'rw');
      if (!rwFields.has(p)) rwFields.set(p, field);
    }
  });
  policy.filesystem.readonly.forEach((raw, i) => {
    // Named both read-write and read-only: the narrower grant wins.
    const p = resolvePath(raw, `filesystem.readonly[${i}]`, true);
    if (p) grants.set(p, 'ro');
  });
  const denied: string[] = [];
  // The field each denied path was first named in, and whether it is a folder.
  const deniedFields = new Map<string, { field: string; folder: boolean }>();
  // The first missing folder of each denied path that does not exist yet: the sandbox must not create it either.
  const absent = new Set<string>();
  // Denied paths whose resolution stopped short (a file where a folder should be, a symlink loop, …): checked
  // once every grant is known, for a blocker the sandbox could clear and then make the path, unmasked.
  const blocked: { field: string; absolute: string; blocker: Blocker }[] = [];
  policy.filesystem.denied.forEach((raw, i) => {
    const field = `filesystem.denied[${i}]`;
    const absolute = absoluteOf(raw);
    const found = resolvePartly(absolute);
    if ('blocker' in found) {
      reached.push({ field, absolute, links: found.links, loop: found.blocker.kind === 'loop' });
      blocked.push({ field, absolute, blocker: found.blocker });
    } else if (found.missing === undefined) {
      const p = resolvePath(raw, field, false);
      if (p === undefined) return;
      denied.push(p);
      if (!deniedFields.has(p)) deniedFields.set(p, { field, folder: lstatSync(p).isDirectory() });
    } else {
      reached.push({ field, absolute, links: found.links });
      absent.add(found.missing);
    }
  });
  // Another name (a hard link) of a denied file, or of a file in a denied folder, is a path to its content that
  // no mask covers. Each denied file is looked at, and each denied folder a grant holds walked (bounded).
  {
    const paths = [...deniedFields.keys()];
    const folders = paths.filter((d) => deniedFields.get(d)!.folder && !denied.some((o) => o !== d && within(d, o)));
    const masked = folders.filter((d) => [...grants.keys()].some((g) => g !== d && within(d, g)));
    const files = paths.filter((d) => !deniedFields.get(d)!.folder && !masked.some((m) => within(d, m)));
    const { exposed, unchecked } = checkHardLinks([...masked, ...files], folders.filter((d) => !masked.includes(d)));
    const fieldOf = (d: string) => deniedFields.get(d)!.field;
    for (const d of new Set(exposed.map((f) => f.denied))) {
      const [first, ...more] = exposed.filter((f) => f.denied === d);
      const where = first!.path === d ? '' : ` (in the denied folder ${d}${more.length > 0 ? `, with ${more.length} other such file${more.length > 1 ? 's' : ''}` : ''})`;
      issues.push({
        file: source,
        field: fieldOf(d),
        message: `${first!.path}${where} has ${first!.names} names (hard links), ${first!.names - first!.covered} outside every denied path: the sandbox finds its content under any other name a grant holds; replace the other names with copies, or deny the folders that hold them too`,
      });
    }
    for (const { denied: d, reason } of unchecked) {
      cannotEnforce(
        fieldOf(d),
        `${d} cannot be checked for files with other names (hard links), which a grant could hold and its mask would not cover: ${reason}; deny a smaller folder`,
        `${d} is masked, but not checked for files with other names (hard links) a grant could hold: ${reason}`,
      );
    }
  }
  // Inside a read-write grant that holds it, Corral's install is bound read-only, a mount point the sandbox cannot move away.
  if (install !== undefined && !grants.has(install) && [...grants].some(([p, mode]) => mode === 'rw' && within(install, p))) grants.set(install, 'ro');
  // What the sandbox may change at `path` (make, remove, replace, chmod): the deepest grant holding it is read-write,
  // and no mask covers it.
  const writable = (path: string): boolean => {
    const holder = [...grants.keys()].filter((g) => within(path, g)).sort((a, b) => depth(a) - depth(b)).at(-1);
    return holder !== undefined && grants.get(holder) === 'rw' && !denied.some((d) => within(path, d)) && !hidden(path);
  };
  // A denied path that cannot be resolved cannot be masked: nothing is there to mask, nor is a first missing folder
  // known to put a stand-in in. Where the sandbox could clear what stops it, it could make the path and use it.
  for (const { field, absolute, blocker } of blocked) {
    if (blocker.kind === 'loop') continue;
    const { cleared, refusal, warning } = blockedDeny(absolute, blocker);
    // A file granted on its own is a mount point: the sandbox cannot replace it.
    if (!writable(cleared) || (blocker.kind === 'file' && grants.has(cleared))) continue;
    cannotEnforce(field, refusal, warning);
  }

  let cwd = '/tmp';
  if (policy.workingDirectory !== undefined) {
    const p = resolvePath(policy.workingDirectory, 'workingDirectory', true);
    if (p) {
      if (!isGranted(p, grants, denied, stateDirs)) issues.push({ file: source, field: 'workingDirectory', message: `${p} is not inside a granted path (readwrite or readonly)` });
      else if (!statSync(p).isDirectory()) issues.push({ file: source, field: 'workingDirectory', message: `${p} is not a folder; name the folder the command starts in` });
      cwd = p;
    }
  } else {
    // The first read-write folder the sandbox will see: not a file, not one a deny hides.
    const firstRw = [...grants].find(([p, mode]) => mode === 'rw' && isGranted(p, grants, denied, stateDirs) && statSync(p).isDirectory())?.[0];
    if (firstRw) cwd = firstRw;
  }

  let display: DisplayGrant | null = null;
  if (policy.ui.display) {
    const found = displayGrant(hostEnv);
    if (typeof found === 'string') issues.push({ file: source, field: 'ui.display', message: found });
    else {
      display = found;
      // Held to what any grant is: no system path, nothing of the host's kernel interfaces or of Corral's state directory.
      for (const p of found.paths) {
        const real = resolvePath(p, 'ui.display', true);
        if (real !== undefined && real !== p) sources.set(p, real);
      }
    }
  }

  // A policy file the sandbox may write would let one run choose what the next is granted.
  const policyFile = source.startsWith('<') ? undefined : reach(resolve(source), 'policy file');
  if (policyFile !== undefined && !denied.some((d) => within(policyFile, d))) {
    const holder = [...grants.keys()].filter((g) => within(policyFile, g)).sort((a, b) => depth(b) - depth(a))[0];
    if (holder !== undefined && grants.get(holder) === 'rw') issues.push({ file: source, field: rwFields.get(holder) ?? 'filesystem.readwrite', message: `the policy file ${policyFile} lies inside the read-write grant ${holder}: a sandbox could rewrite its own policy; keep the file outside what the sandbox may write, or grant a folder beside it` });
  }

  const readWrite = [...grants].filter(([, mode]) => mode === 'rw').map(([p]) => p);
  for (const { field, absolute, links, loop } of reached) {
    for (const link of new Set(links)) {
      const grant = readWrite.find((w) => within(link, w));
      if (grant === undefined) continue;
      const why = loop
        ? `, in a symbolic link loop: a sandbox could have planted it, and could replace it with a folder and make ${absolute}, unmasked; replace the loop with the folder it should be, or remove the path from the policy`
        : ': a sandbox could have planted it, so it is not followed; name the path it should lead to';
      issues.push({ file: source, field, message: `${absolute} leads through the symlink ${link}, inside the read-write grant ${grant}${why}` });
    }
  }

  if (issues.length > 0 || unenforceable.length > 0) {
    // Paths that cannot be used at all come first (the policy must change); every problem is listed either way.
    const all = [...issues, ...unenforceable];
    for (const issue of all) {
      const line = loaded.locate?.(issue.field);
      if (line !== undefined) issue.line = line;
    }
    all.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    const listed = all.map((i) => `  ${formatIssue(i)}`).join('\n');
    if (issues.length > 0) throw new ContainError('CONTAIN_PATH_UNRESOLVABLE', `policy paths cannot be used; the command was not started:\n${listed}`, { issues: all });
    throw new ContainError('CONTAIN_UNENFORCEABLE', `this host cannot enforce what the policy denies, so the command was not started:\n${listed}`, { issues: all });
  }

  const mounts: Mount[] = [];
  for (const link of preset.symlinks) mounts.push({ kind: 'symlink', path: link.path, target: link.target });
  // Shallower first, so a nested grant lands on top of the tree that holds it.
  const ordered = [...grants].filter(([p]) => !denied.some((d) => within(p, d))).sort(([a], [b]) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0));
  const grant = ([path, kind]: [string, 'ro' | 'rw']): Mount => {
    const from = sources.get(path);
    return from === undefined ? { kind, path } : { kind, path, source: from };
  };
  // The state directory is masked inside a grant that holds it before its exposed folders are bound back.
  const inState = (path: string) => stateDir !== undefined && within(path, stateDir);
  // A grant inside another of its kind adds nothing (unless the state directory's mask lies between), and
  // bound again it fails where its path is a symlink in there: the python preset's /usr/bin/python3
  // under the shell preset's /usr/bin. A symlink is left out only when where it leads is granted as well.
  const granted = (path: string, kind: 'ro' | 'rw') => ordered.filter(([q]) => within(path, q)).at(-1)?.[1] === kind;
  const needed = ordered.filter(([path, kind]) => {
    const holder = ordered.filter(([q]) => q !== path && within(path, q)).at(-1);
    if (holder === undefined || holder[1] !== kind || (inState(path) && !inState(holder[0]))) return true;
    const source = sources.get(path);
    return source !== undefined && !granted(source, kind);
  });
  // Each state directory a bound grant holds is masked (one inside another by the other's mask): nothing in them
  // is granted but this one's exposed folders, bound back after the masks; another state directory in one of
  // those is masked after them.
  const stateMasks = stateDirs
    .filter((d) => needed.some(([p]) => within(d, p) && !within(p, d)))
    .filter((d, _, all) => inExposed(d) || !all.some((o) => o !== d && within(d, o)));
  const lateMasks = stateMasks.filter((d) => d !== stateDir && inState(d));
  // A deny outside every grant is already invisible; inside one, it is masked.
  const masked = denied.filter((d) => ordered.some(([p]) => within(d, p) && d !== p));
  // A denied path not there yet is masked where the sandbox could create it: below a read-write grant and no other mask.
  const standIns = [...absent].filter(writable);
  masked.push(...standIns);
  const bound = [...needed, ...pinned(needed, [...masked, ...stateMasks])].sort(([a], [b]) => depth(a) - depth(b) || (a < b ? -1 : a > b ? 1 : 0));
  for (const g of bound.filter(([p]) => !inState(p))) mounts.push(grant(g));
  for (const d of stateMasks.filter((m) => !lateMasks.includes(m))) mounts.push({ kind: 'deny', path: d, directory: true });
  for (const g of bound.filter(([p]) => inState(p))) mounts.push(grant(g));
  for (const d of lateMasks) mounts.push({ kind: 'deny', path: d, directory: true });
  for (const path of display?.paths ?? []) mounts.push(grant([path, 'ro']));
  for (const d of masked) mounts.push(standIns.includes(d) ? { kind: 'deny', path: d, directory: true, missing: true } : { kind: 'deny', path: d, directory: statSync(d).isDirectory() });

  const env: Record<string, string> = { PATH: [...preset.path, ...(preset.path.length ? [] : DEFAULT_PATH.split(':'))].join(':'), HOME: '/tmp', TMPDIR: '/tmp', LANG: 'C.UTF-8' };
  for (const name of policy.environment.pass) {
    const value = hostEnv[name];
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, display?.env, policy.environment.set);

  const limits = Object.fromEntries(
    (Object.keys(PROCESS_DEFAULTS) as LimitName[]).map((name) => {
      const written = policy.process[name];
      return [name, written === undefined ? { value: PROCESS_DEFAULTS[name], explicit: false } : { value: written, explicit: true }];
    }),
  ) as Record<LimitName, Limit>;

  const egress = policy.network.egress === 'none' ? null : policy.network.egress.allow.map((r) => parseEgressRule(r) as EgressRule);

  return {
    // The policy is frozen: its digest is worked out once, however many plans are made of it (one a run, on a node).
    policyDigest: policyDigestOf(seal(policy)),
    policy,
    source,
    mounts,
    env,
    cwd,
    limits,
    egress,
    ingress: policy.network.ingress.map((i) => ({ port: i.port, hostPort: i.hostPort })),
    display,
    warnings,
  };
}

/**
 * The folders to bind onto themselves, read-write, so that no mount inside a read-write grant can be
 * moved from inside the sandbox. A mount point cannot be renamed or removed, but a folder between it and
 * the read-write grant that holds it can: moved away, it takes the mount along, and the path the policy
 * protects is the sandbox's to fill (a read-only `.git/hooks` in a read-write project, replaced by one of
 * its own), or a denied path lies open, under another name, to the next run. Each folder strictly between
 * a nested mount and the deepest grant above it, when that grant is read-write, becomes a mount point too.
 *
 * @param grants the grants to be bound (each once), shallowest first.
 * @param masks the paths masked inside them (denies, the state directory).
 */
function pinned(grants: readonly [string, 'ro' | 'rw'][], masks: readonly string[]): [string, 'rw'][] {
  const points: [string, 'ro' | 'rw' | 'mask'][] = [...grants, ...masks.map((m): [string, 'mask'] => [m, 'mask'])];
  const pins = new Set<string>();
  for (const [path] of points) {
    const holder = points.filter(([p]) => p !== path && within(path, p)).sort(([a], [b]) => depth(a) - depth(b)).at(-1);
    if (holder?.[1] !== 'rw') continue;
    for (let folder = dirname(path); folder !== holder[0]; folder = dirname(folder)) pins.add(folder);
  }
  return [...pins].filter((p) => !points.some(([q]) => q === p)).map((p) => [p, 'rw']);
}

// Symlinks followed for one path before it counts as a loop (the kernel's own limit).
const MAX_LINKS = 40;

/**
 * What stopped a path's resolution short of its end, at the host path `at`:
 * - `file`: `at` is a file (or anything but a folder) and more of the path follows it;
 * - `loop`: more than MAX_LINKS symlinks were followed, `at` the last;
 * - `climb`: `at` does not exist and the path climbs back out of it (`..`, from a symlink's target), so
 *   where it would lead once `at` is made cannot be told;
 * - `error`: `at` could not be looked up (`code`: EACCES for a folder that cannot be searched, …).
 */
type Blocker = { kind: 'file'; at: string } | { kind: 'loop'; at: string } | { kind: 'climb'; at: string } | { kind: 'error'; at: string; code: string };

/**
 * The host path an absolute, normalised `path` names once its symlinks are
 * resolved, and where each symlink met on the way lies; undefined when there is none.
 */
function resolveOnHost(path: string): { real: string; links: string[] } | undefined {
  const found = resolvePartly(path);
  return 'blocker' in found || found.missing !== undefined ? undefined : { real: found.real, links: found.links };
}

/**
 * As resolveOnHost, and for a path not there yet, `missing`: the first of its folders that does not exist
 * (its own folder is there, all symlinks before it resolved), below which the rest would be made.
 * For a path whose resolution stops short, what stopped it (`blocker`), with the symlinks met until then.
 */
function resolvePartly(path: string): { real: string; links: string[]; missing?: string } | { blocker: Blocker; links: string[] } {
  const links: string[] = [];
  const pending = path.split(sep).filter((name) => name !== '');
  let real: string = sep;
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      real = dirname(real);
      continue;
    }
    const next = join(real, name);
    // Whatever follows a missing folder lies below it, unless a `..` comes back out (only a symlink's target holds one).
    const missing = () => (pending.includes('..') ? { blocker: { kind: 'climb' as const, at: next }, links } : { real: next, links, missing: next });
    let target: string;
    try {
      // Nothing there is answered without an error thrown (a preset's path not on this host, at every plan).
      const stat = lstatSync(next, { throwIfNoEntry: false });
      if (stat === undefined) return missing();
      if (!stat.isSymbolicLink()) {
        // Looked up below a file, the rest would fail (ENOTDIR): named here, whatever the kernel would say.
        if (!stat.isDirectory() && pending.length > 0) return { blocker: { kind: 'file', at: next }, links };
        real = next;
        continue;
      }
      target = readlinkSync(next);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      return code === 'ENOENT' ? missing() : { blocker: { kind: 'error', at: next, code }, links };
    }
    if (links.push(next) > MAX_LINKS) return { blocker: { kind: 'loop', at: next }, links };
    pending.unshift(...target.split(sep).filter((part) => part !== ''));
    if (isAbsolute(target)) real = sep;
  }
  return { real, links };
}

/**
 * For a denied path whose resolution `blocker` stopped (not at a loop: its symlinks are held to the rule for
 * any symlink on a path, see planSandbox): where the sandbox would have to change something for the path to
 * lead somewhere (`cleared`: the file it would replace with a folder, the folder it would make or make
 * searchable), and why the path cannot be masked, for a refusal with what to do and for a warning.
 */
function blockedDeny(absolute: string, blocker: Exclude<Blocker, { kind: 'loop' }>): { cleared: string; refusal: string; warning: string } {
  const { at } = blocker;
  const then = `then make ${absolute}, which no mask would hide`;
  const says = (why: string, todo: string) => ({ refusal: `${absolute} cannot be masked: ${why}; ${todo}`, warning: `${absolute} is not masked: ${why}` });
  switch (blocker.kind) {
    case 'file':
      return { cleared: at, ...says(`${at} is a file where a folder should be, and the command could replace it with a folder and ${then}`, `grant ${at} read-only (bound in place, it cannot be replaced), or deny it`) };
    case 'climb':
      return { cleared: at, ...says(`it leads into ${at}, which does not exist, and back out of it (..), and the command could make ${at} and ${then}`, 'name the path it should lead to') };
    case 'error':
      return { cleared: dirname(at), ...says(`${dirname(at)} cannot be searched (${blocker.code}), and the command could change that and ${then}`, `make ${dirname(at)} searchable, or deny it`) };
  }
}

/** Reads `path` as granted when a grant holds it, no deny covers it and no state-directory mask lies between. */
function isGranted(path: string, grants: Map<string, 'ro' | 'rw'>, denied: string[], stateDirs: readonly string[]): boolean {
  const masked = (grant: string) => stateDirs.some((d) => within(path, d) && !within(grant, d));
  return [...grants.keys()].some((g) => within(path, g) && !masked(g)) && !denied.some((d) => within(path, d));
}

/** True when `path` is `root` or lies below it (both already resolved). */
export function within(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

function depth(path: string): number {
  return path.split(sep).length;
}

// Policies planSandbox froze, with everything they hold: nothing in them can change any more.
const sealed = new WeakSet<object>();
// The digest of each sealed policy, worked out once however many plans are made of it.
const policyDigests = new WeakMap<object, string>();

/** Freezes `value` and everything it holds (plain data: objects, arrays, primitives), and returns it. */
function seal<T>(value: T): T {
  if (typeof value !== 'object' || value === null || sealed.has(value)) return value;
  // Counted as sealed while its members are (data that holds itself ends there); not, if one cannot be frozen.
  sealed.add(value);
  try {
    for (const inner of Object.values(value)) seal(inner);
    Object.freeze(value);
  } catch (error) {
    sealed.delete(value);
    throw error;
  }
  return value;
}

/** SHA-256 of the policy's canonical JSON (what the audit log records); kept for a sealed policy, which cannot change. */
export function policyDigestOf(policy: ContainerPolicy): string {
  const known = policyDigests.get(policy);
  if (known !== undefined) return known;
  const digest = createHash('sha256').update(canonicalJson(policy)).digest('hex');
  if (sealed.has(policy)) policyDigests.set(policy, digest);
  return digest;
}

/**
 * A digest of the whole plan (every mount, variable, limit and grant, and the
 * policy it holds): two plans with the same key build the same sandbox. Warm
 * sandboxes are kept per key. Worked out afresh at each call: a plan is plain
 * data its holder could change.
 *
 * The policy counts by its digest (a frozen one's is kept), the egress rules
 * (which hold bigints) in canonical JSON, every other field as JSON in the
 * order the plan holds it: two plans that differ in anything get different
 * keys, and plans planSandbox makes of the same policy and environment hold
 * their fields in the same order (one built otherwise at worst finds no warm sandbox).
 */
export function planKey(plan: SandboxPlan): string {
  const { policy, egress, ...rest } = plan;
  // Neither the digest (hex) nor canonical JSON holds a line break: each part ends where the next begins.
  return hash('sha256', `${policyDigestOf(policy)}\n${canonicalJson(egress)}\n${JSON.stringify(rest)}`, 'hex');
}

/**
 * Deterministic JSON with sorted keys (members whose value is undefined left
 * out; bigints as `5n`): stable digests of policies, and a plan's egress rules
 * in its key. Its output must not change: the audit log holds policy digests made with it.
 */
function canonicalJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) {
    // Egress rules hold CIDR addresses as bigints, which JSON has no form for.
    return typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) as string | undefined) ?? '';
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  let out = '{';
  for (const key of Object.keys(record).sort()) {
    const inner = record[key];
    if (inner === undefined) continue;
    out += (out === '{' ? '' : ',') + JSON.stringify(key) + ':' + canonicalJson(inner);
  }
  return `${out}}`;
}
