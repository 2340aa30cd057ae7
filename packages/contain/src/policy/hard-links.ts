import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * How many folder entries planning reads, over all the denied folders of one plan, to look for files
 * with other names: about 4 µs each (a share of a readdir, and an lstat) with the folders in the
 * kernel's cache, some 15–20 ms for the whole budget, more from a cold disk. A denied folder is mostly
 * a handful of secrets (.ssh, .env, keys/) and costs well under a millisecond; a larger one is refused
 * (or masked unchecked, with a warning, under `onUnenforceable: warn`).
 */
export const MAX_DENIED_ENTRIES = 4096;

/** A file under a denied path with a name (a hard link) outside every denied path. */
export interface ExposedFile {
  /** The denied path (as planned) it lies under. */
  denied: string;
  /** Its name there. */
  path: string;
  /** Its names in all (st_nlink), and how many of them lie under the denied paths. */
  names: number;
  covered: number;
}

/** A denied folder that could not be checked whole: over the budget, or a folder in it could not be read. */
export interface UncheckedFolder {
  denied: string;
  reason: string;
}

export interface HardLinkCheck {
  exposed: ExposedFile[];
  unchecked: UncheckedFolder[];
}

/**
 * Finds the regular files under the `checked` denied paths (each a file, or a folder walked to the bottom
 * without following symlinks) that have more names than the denied paths hold. A mask hides a path,
 * not a file: any other name a grant holds reads and writes the same content. Where those other names
 * lie cannot be learnt without walking every grant (/usr, a home folder): a file is reported as soon as
 * one of its names is outside every denied path, reachable or not. The `elsewhere` denied folders (ones no
 * grant holds, invisible anyway) are walked only when a file is left with names unaccounted for, so
 * that a policy can deny the folder holding the other names too.
 *
 * Bounded: at most `budget` folder entries are read over both lists. A `checked` folder not walked whole
 * is reported `unchecked`; what of `elsewhere` could not be walked leaves its files counted as exposed.
 *
 * @param checked the denied folders inside a grant (masked there), none below another, and the denied files
 *   not below one of those; resolved.
 * @param elsewhere the other denied folders, resolved, none below another denied path.
 */
export function checkHardLinks(checked: readonly string[], elsewhere: readonly string[], budget = MAX_DENIED_ENTRIES): HardLinkCheck {
  // Each file with more than one name met under a checked path, by device and inode, with the names met.
  const files = new Map<string, { file: ExposedFile; names: Set<string> }>();
  const unchecked: UncheckedFolder[] = [];
  let left = budget;
  const look = (denied: string, path: string, record: boolean) => {
    const stat = lstatSync(path, { bigint: true });
    if (!stat.isFile() || stat.nlink < 2n) return;
    const key = `${stat.dev}:${stat.ino}`;
    const known = files.get(key);
    if (known) known.names.add(path);
    else if (record) files.set(key, { file: { denied, path, names: Number(stat.nlink), covered: 0 }, names: new Set([path]) });
  };
  const missing = () => [...files.values()].filter((f) => f.names.size < f.file.names);
  /** Walks `root`; false when it stopped short (the reason is in `stop`). */
  const walk = (root: string, record: boolean, stop: (reason: string) => void): boolean => {
    const folders = [root];
    while (folders.length > 0) {
      const folder = folders.pop()!;
      let entries;
      try {
        entries = readdirSync(folder, { withFileTypes: true });
      } catch (error) {
        stop(`${folder} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
        return false;
      }
      left -= entries.length;
      if (left < 0) {
        stop(`it holds more than the ${budget} entries Corral reads, over all denied folders, to plan a sandbox`);
        return false;
      }
      for (const entry of entries) {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) folders.push(path);
        else if (entry.isFile()) {
          try {
            look(root, path, record);
          } catch (error) {
            stop(`${path} cannot be looked at (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
            return false;
          }
        }
      }
    }
    return true;
  };

  for (const denied of checked) {
    let isFolder: boolean;
    try {
      isFolder = lstatSync(denied).isDirectory();
      if (!isFolder) look(denied, denied, true);
    } catch (error) {
      unchecked.push({ denied, reason: `it cannot be looked at (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
      continue;
    }
    if (isFolder) walk(denied, true, (reason) => unchecked.push({ denied, reason }));
  }
  for (const denied of elsewhere) {
    if (missing().length === 0) break;
    walk(denied, false, () => undefined);
  }
  return { exposed: missing().map((f) => ({ ...f.file, covered: f.names.size })), unchecked };
}
