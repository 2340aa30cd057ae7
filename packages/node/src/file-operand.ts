// The script an approved run runs, bound to the approval by its content, as
// upstream's node host binds it (systemRunPlan.mutableFileOperand): a run of
// `python3 build.py`, `sh x.sh` or `./deploy.sh` is approved for what that
// file holds when system.run.prepare reads it, and system.run refuses once it
// holds anything else. Without it an approval of `python3 build.py` covered
// whatever the agent wrote into build.py after a human had read it.
//
// Which word of the argv is the file is the gateway's reading (runsCode: an
// interpreter's script operand, or a program run by a path outside the
// system's folders), so that what an approver is warned of and what the node
// binds are one table. A file is read as the node reads its own state files:
// opened without waiting on a FIFO, a regular file only, at most
// MAX_OPERAND_BYTES, never through a link swapped in after it was resolved.
// At run time the bytes checked are the bytes run: the node hands them to the
// sandbox as a pinned file (RunOptions.pinned), so a rewrite between the check
// and the interpreter's open of the file changes nothing.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { basename, isAbsolute } from 'node:path';
import { hostFileAt, type Mount, type PinnedFile } from '@corral/contain';
import { runsCode, SCRIPT_PREVIEW_BYTES, type ScriptPreview } from '@corral/gateway';
import { NodeError } from './errors.ts';
import { shown } from './untrusted-text.ts';

/** Far more than any script a person reads before approving it, and room for a program run by its path (`/opt/app/bin/x`). */
export const MAX_OPERAND_BYTES = 64 * 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;

/** Upstream's systemRunPlan.mutableFileOperand: the argv word that names the file, where it leads (absolute, links resolved), and its content's sha256 (hex). */
export interface FileOperand {
  argvIndex: number;
  path: string;
  sha256: string;
}

/** A file bound by its content, and what approvers are shown of the very bytes hashed (the gateway's ScriptPreview; none when they cannot be read again). */
export interface BoundFile {
  operand: FileOperand;
  preview: ScriptPreview | undefined;
}

/**
 * The file `argv` (a canonical run's) runs, read now: null for a run that
 * runs no one local file (`ls -l`, `sh -c TEXT`, `make`). A relative name
 * is resolved against `cwd`. `mountsOf` gives the mounts of the sandbox the
 * run would get (undefined: it cannot be planned now): the file is read only
 * once that sandbox is known to open it (refuseUnopened), so no one learns
 * the hash of a file the run could never reach, as the node's user may read
 * far more than any sandbox. Throws NODE_RUN_DENIED, as upstream refuses,
 * when it cannot be bound: the file is named inside a longer word
 * (`awk -fprog.awk`), by a relative name with no cwd, is missing, is not
 * reached in the sandbox, not a regular file (a FIFO, a device, a folder),
 * larger than MAX_OPERAND_BYTES or unreadable, or the sandbox cannot be
 * planned. An approval of a run whose file Corral cannot read would bind
 * nothing.
 */
export function snapshotOperand(argv: readonly string[], cwd: string | null, mountsOf: () => readonly Mount[] | undefined): BoundFile | null {
  const verdict = runsCode(argv);
  if (verdict === null || (verdict.via !== 'script' && verdict.via !== 'path') || verdict.operand === undefined) return null;
  if (verdict.operand === null) throw new NodeError('NODE_RUN_DENIED', `${verdict.program} names its script inside a longer argument; an approval cannot be bound to it: name the file as an argument of its own`);
  const word = argv[verdict.operand]!;
  const name = nameOf(word);
  if (!isAbsolute(word) && cwd === null) throw new NodeError('NODE_RUN_DENIED', `the script ${name} is named relative to a working directory the run does not give; an approval cannot be bound to it: give the run a cwd`);
  let path: string;
  try {
    path = realpathSync.native(namedPath(word, cwd));
    refuseIrregular(path, name);
  } catch (error) {
    if (error instanceof NodeError) throw error;
    throw new NodeError('NODE_RUN_DENIED', `the script ${name} cannot be found (${codeOf(error)}); an approval cannot be bound to it`, { cause: error });
  }
  const mounts = mountsOf();
  if (mounts === undefined) throw new NodeError('NODE_RUN_DENIED', `the script ${name} cannot be bound: the agent's container policy cannot be planned now, and no run of it would start`);
  refuseUnopened({ argvIndex: verdict.operand, path }, argv, cwd, mounts);
  const { content } = contentOf(path, name);
  return { operand: { argvIndex: verdict.operand, path, sha256: sha256Of(content) }, preview: scriptPreview(content) };
}

/**
 * What approvers are shown of a script holding `content`: its size, and its
 * first SCRIPT_PREVIEW_BYTES as text unless they hold a NUL or are not UTF-8
 * (a cut inside a character drops that character's first bytes).
 */
export function scriptPreview(content: Uint8Array): ScriptPreview {
  const truncated = content.length > SCRIPT_PREVIEW_BYTES;
  const head = content.subarray(0, SCRIPT_PREVIEW_BYTES);
  const text = head.includes(0) ? undefined : utf8(head, truncated ? 3 : 0);
  return { bytes: content.length, truncated, ...(text !== undefined ? { text } : {}) };
}

/** `bytes` as UTF-8, up to `cut` bytes of an unfinished character at their end left out; undefined when they are not UTF-8. */
function utf8(bytes: Uint8Array, cut: number): string | undefined {
  for (let drop = 0; drop <= cut; drop++) {
    try {
      return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, bytes.length - drop));
    } catch {
      // Not UTF-8 up to here: one byte fewer may end before the character the cut fell in.
    }
  }
  return undefined;
}

/**
 * What approvers are shown of the file `operand` binds as it is now, for a
 * plan another gateway holds (the node read it when it prepared the run):
 * undefined for any file approvedContent would refuse to run — one that no
 * longer holds that content, cannot be read, or is not the file the run's
 * word opens in a sandbox built from `mounts`. The plan's path is that
 * gateway's word: only the file the run would run is read, never one outside
 * what the agent's container policy grants.
 */
export function previewOfBound(operand: FileOperand, argv: readonly string[], cwd: string | null, mounts: readonly Mount[]): ScriptPreview | undefined {
  try {
    return scriptPreview(approvedContent(operand, argv, cwd, mounts).content);
  } catch {
    return undefined;
  }
}

/**
 * The mutableFileOperand of a systemRunPlan, copied, or null when it has
 * none: an object of exactly argvIndex (an index of `argv`), path (absolute)
 * and sha256 (64 lowercase hex digits). Throws NODE_REQUEST_INVALID for
 * anything else, as for a plan of another run.
 */
export function planOperand(plan: unknown, argv: readonly string[]): FileOperand | null {
  if (plan === null || typeof plan !== 'object') return null;
  const given = (plan as { mutableFileOperand?: unknown }).mutableFileOperand;
  if (given === undefined || given === null) return null;
  const invalid = (what: string) => new NodeError('NODE_REQUEST_INVALID', `systemRunPlan does not match the run: its mutableFileOperand ${what}`);
  if (typeof given !== 'object' || Array.isArray(given)) throw invalid('must be {argvIndex, path, sha256}');
  const { argvIndex, path, sha256 } = given as Record<string, unknown>;
  if (Object.keys(given).some((key) => key !== 'argvIndex' && key !== 'path' && key !== 'sha256')) throw invalid('must be {argvIndex, path, sha256}');
  if (typeof argvIndex !== 'number' || !Number.isInteger(argvIndex) || argvIndex < 0 || argvIndex >= argv.length) throw invalid('argvIndex is not an index of its argv');
  if (typeof path !== 'string' || !isAbsolute(path) || path.length > 4096) throw invalid('path must be an absolute path');
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw invalid('sha256 must be 64 lowercase hex digits');
  return { argvIndex, path, sha256 };
}

/**
 * The approved file (`operand`, from planOperand) as the run is to see it:
 * argv[argvIndex], resolved against `cwd`, must lead to operand.path, both
 * on the host and in a sandbox built from `mounts`, and the file there must
 * hold content of operand.sha256; the content read is what the sandbox is
 * given at that path. Throws NODE_RUN_DENIED for a run whose file is no
 * longer what was approved, or would be another inside the sandbox.
 */
export function approvedContent(operand: FileOperand, argv: readonly string[], cwd: string | null, mounts: readonly Mount[]): PinnedFile {
  const word = argv[operand.argvIndex]!;
  const name = nameOf(word);
  // prepare binds no relative name without a cwd: a plan that has one was not the node's.
  if (!isAbsolute(word) && cwd === null) throw new NodeError('NODE_RUN_DENIED', `${name} is named relative to a working directory the run does not give: approve the run again`);
  let path: string;
  try {
    path = realpathSync.native(namedPath(word, cwd));
  } catch (error) {
    throw new NodeError('NODE_RUN_DENIED', `the script ${name} approved is no longer there (${codeOf(error)}): approve the run again`, { cause: error });
  }
  if (path !== operand.path) throw new NodeError('NODE_RUN_DENIED', `${name} is not the file that was approved (${shown(operand.path, 200)}): approve the run again`);
  // Only what the sandbox opens is pinned: a link it follows elsewhere than the host does (/proc/self/cwd, a folder bound at another path) would run a file no one checked.
  refuseUnopened(operand, argv, cwd, mounts);
  const { content, mode } = contentOf(path, name);
  const now = sha256Of(content);
  if (now !== operand.sha256) throw new NodeError('NODE_RUN_DENIED', `the script ${name} changed since it was approved (sha256 ${operand.sha256.slice(0, 12)}…, now ${now.slice(0, 12)}…): approve the run again`);
  return { path, content, mode };
}

/** Whether a sandbox built from `mounts` opens the host file `operand.path` by word operand.argvIndex of `argv` from `cwd` (see hostFileAt). */
export function opensInSandbox(operand: Pick<FileOperand, 'argvIndex' | 'path'>, argv: readonly string[], cwd: string | null, mounts: readonly Mount[]): boolean {
  const word = argv[operand.argvIndex]!;
  if (!isAbsolute(word) && cwd === null) return false;
  return hostFileAt(mounts, namedPath(word, cwd)) === operand.path;
}

/** Throws NODE_RUN_DENIED unless a sandbox built from `mounts` opens operand.path by its word (opensInSandbox). */
export function refuseUnopened(operand: Pick<FileOperand, 'argvIndex' | 'path'>, argv: readonly string[], cwd: string | null, mounts: readonly Mount[]): void {
  if (opensInSandbox(operand, argv, cwd, mounts)) return;
  throw new NodeError('NODE_RUN_DENIED', `the script ${nameOf(argv[operand.argvIndex]!)} is not reached in the sandbox as the node read it (${shown(operand.path, 200)}): the way to it leads through a link the sandbox follows elsewhere, or through what the agent's container policy does not grant; name the file by its own path, inside a granted folder`);
}

/** The path a command opens by `word` from `cwd` (absolute word, or a cwd given), its `..` left for the kernel: after a link it is taken from where the link leads, never from the text before it. */
function namedPath(word: string, cwd: string | null): string {
  return isAbsolute(word) ? word : `${cwd}/${word}`;
}

function sha256Of(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

/** The content and permission bits of the regular file at `path` (links already resolved), read as readStateFile reads. Throws NODE_RUN_DENIED naming it `name`. */
function contentOf(path: string, name: string): { content: Buffer; mode: number } {
  let fd: number;
  try {
    refuseIrregular(path, name);
    // O_NOFOLLOW: a link swapped in since the path was resolved is refused, not followed; O_NONBLOCK: a FIFO swapped in since does not hold the node.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (error) {
    if (error instanceof NodeError) throw error;
    throw new NodeError('NODE_RUN_DENIED', `the script ${name} cannot be read (${codeOf(error)}); an approval cannot be bound to it`, { cause: error });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw irregular(name);
    if (stat.size > MAX_OPERAND_BYTES) throw new NodeError('NODE_RUN_DENIED', `the script ${name} is larger than ${MAX_OPERAND_BYTES} bytes; an approval cannot be bound to it`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const n = readSync(fd, chunk);
      if (n === 0) break;
      total += n;
      // Grown past the cap while it was read: refused as one that large is.
      if (total > MAX_OPERAND_BYTES) throw new NodeError('NODE_RUN_DENIED', `the script ${name} is larger than ${MAX_OPERAND_BYTES} bytes; an approval cannot be bound to it`);
      chunks.push(chunk.subarray(0, n));
    }
    return { content: Buffer.concat(chunks, total), mode: stat.mode & 0o7777 };
  } catch (error) {
    if (error instanceof NodeError) throw error;
    throw new NodeError('NODE_RUN_DENIED', `the script ${name} cannot be read (${codeOf(error)}); an approval cannot be bound to it`, { cause: error });
  } finally {
    closeSync(fd);
  }
}

/**
 * Throws NODE_RUN_DENIED unless `path` is a regular file, looked at without
 * opening it: opening a device can act (a watchdog arms, a tape rewinds),
 * opening a FIFO lets its writer through. Throws lstat's error.
 */
function refuseIrregular(path: string, name: string): void {
  if (!lstatSync(path).isFile()) throw irregular(name);
}

function irregular(name: string): NodeError {
  return new NodeError('NODE_RUN_DENIED', `the script ${name} is not a regular file (a folder, FIFO or device); an approval cannot be bound to it`);
}

/** The file's name as the agent gave it, shown as untrusted text is: its last part, short. */
function nameOf(word: string): string {
  return shown(basename(word) || word, 80);
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? shown(code, 20) : 'error';
}
