// A file whose content was checked before the run (an approved script, by its
// sha256) is read by the command from its path later, when anything that can
// write the file — another sandbox granted its folder, a process on the host —
// may have changed it in between. The runner has bubblewrap write the checked
// bytes, read-only, over every path at which the sandbox would see that file,
// so what runs is what was checked.
import { closeSync, lstatSync, openSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Mount } from './policy/plan.ts';
import { within } from './policy/plan.ts';

/** A host file (absolute, no symlink on the way) the command must see as `content`, with permissions `mode` (its own, read when its content was: a script run by its path needs its execute bits). */
export interface PinnedFile {
  path: string;
  content: Uint8Array;
  mode: number;
}

/** Where a pinned file goes in one sandbox: `path` inside, with its `mode`, its bytes read from the copy at `source`. */
export interface PinnedPlacement {
  path: string;
  mode: number;
  source: string;
}

/** Copies of pinned files in a folder of the runner's own, where a sandbox shows them, and their removal. */
export interface PinnedCopies {
  placements: (mounts: readonly Mount[]) => PinnedPlacement[];
  remove: () => void;
}

let copyCounter = 0;

/**
 * Writes each of `files` to a new file in `dir` (a folder only the runner's
 * user reaches, outside any sandbox) and gives, for the mounts a sandbox is
 * built from, where each is to be placed. A copy stays until `remove`: the
 * runner opens one descriptor on it for each place, which bubblewrap reads.
 */
export function writePinnedCopies(dir: string, files: readonly PinnedFile[]): PinnedCopies {
  const written: { file: PinnedFile; copy: string }[] = [];
  const remove = () => {
    for (const { copy } of written.splice(0)) rmSync(copy, { force: true });
  };
  try {
    for (const file of files) {
      const copy = join(dir, `pinned-${process.pid}-${++copyCounter}`);
      // O_EXCL: a name in the runner's folder is never reused, so nothing else's file is written through.
      const fd = openSync(copy, 'wx', 0o600);
      written.push({ file, copy });
      try {
        for (let at = 0; at < file.content.length; ) at += writeSync(fd, file.content, at);
      } finally {
        closeSync(fd);
      }
    }
  } catch (error) {
    remove();
    throw error;
  }
  const pinned = [...written];
  return {
    // Read and execute bits as the file has them; never writable (bubblewrap's copy is read-only besides).
    placements: (mounts) => pinned.flatMap(({ file, copy }) => sandboxPathsOf(mounts, file.path).map((path) => ({ path, mode: file.mode & 0o555, source: copy }))),
    remove,
  };
}

/**
 * Every path at which a sandbox built from `mounts` (in the order they are
 * applied) shows the host file `path`: through each read-only or read-write
 * bind whose source holds it, unless a later mount covers that spot (a deny's
 * stand-in, another bind, a symlink). None when the sandbox cannot see it,
 * and then there is nothing to pin: the command cannot read the file at all.
 */
export function sandboxPathsOf(mounts: readonly Mount[], path: string): string[] {
  const found = new Set<string>();
  mounts.forEach((m, i) => {
    if (m.kind !== 'ro' && m.kind !== 'rw') return;
    const source = m.source ?? m.path;
    if (!within(path, source)) return;
    const at = m.path + path.slice(source.length);
    if (mounts.slice(i + 1).some((later) => within(at, later.path))) return;
    found.add(at);
  });
  return [...found];
}

/** As many links as Linux follows resolving one path (its MAXSYMLINKS). */
const MAX_LINKS = 40;

/**
 * The host file a sandbox built from `mounts` opens at `path` (absolute, as
 * the command names it: its working directory and the word joined, with
 * `..` and links left for the sandbox to resolve), found as the kernel
 * inside resolves it: a link read from the host file a bind shows there, an
 * absolute one from the sandbox's root, `..` from where the way has got to.
 * A link can lead elsewhere in the sandbox than on the host (/proc/self/cwd
 * is the node's folder there, the run's here; a bind shows a folder at
 * another path), so a file checked on the host is what runs only when this
 * finds it. Undefined when the way passes through anything but binds and the
 * folders bubblewrap makes to hold them (the sandbox's own /proc, /tmp or
 * /etc, a deny's stand-in), or a missing entry, or too many links.
 */
export function hostFileAt(mounts: readonly Mount[], path: string): string | undefined {
  const parts = path.split('/');
  let at = '/';
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      at = dirname(at);
      continue;
    }
    const next = at === '/' ? `/${part}` : `${at}/${part}`;
    const covering = mounts.findLast((m) => within(next, m.path));
    let target: string;
    if (covering === undefined) {
      // A folder bubblewrap made on the way to a mount below it; nothing else of the sandbox's own is vouched for.
      if (!mounts.some((m) => within(m.path, next))) return undefined;
      at = next;
      continue;
    } else if (covering.kind === 'deny' || (covering.kind === 'symlink' && covering.path !== next)) {
      return undefined;
    } else if (covering.kind === 'symlink') {
      target = covering.target;
    } else {
      const host = (covering.source ?? covering.path) + next.slice(covering.path.length);
      let stat;
      try {
        stat = lstatSync(host);
        target = stat.isSymbolicLink() ? readlinkSync(host) : '';
      } catch {
        return undefined;
      }
      if (stat.isFile()) return parts.length === 0 ? host : undefined;
      if (stat.isDirectory()) {
        at = next;
        continue;
      }
      if (!stat.isSymbolicLink()) return undefined;
    }
    if (++links > MAX_LINKS) return undefined;
    parts.unshift(...target.split('/'));
    if (target.startsWith('/')) at = '/';
  }
  return undefined;
}
