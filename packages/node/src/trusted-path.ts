// The way to a file the node trusts (its policy, when a link leads to one kept
// for many nodes): whoever may change a folder or link on it could swap the
// file for another, so each is held to what OpenSSH's StrictModes asks.
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, resolve, sep } from 'node:path';

/** Links followed before the way is taken for a loop, as the kernel does (ELOOP). */
const MAX_LINKS = 40;

/**
 * The first folder or link on the way to `path` (following every link, each
 * `..` taken from where a link put it) that another user could change, and
 * why; undefined when there is none. Such a step belongs to neither this user
 * nor root, or is a folder its group or others may write that is not sticky
 * (sticky: only an entry's owner may replace it, and every entry on the way
 * is this user's or root's). The file itself is not judged (its reader does
 * that); a step that is not there ends the way. Undefined where there are no
 * user ids (Windows). Throws the file system's error for a step that cannot
 * be looked at.
 */
export function looseStep(path: string): { path: string; why: string } | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  const judge = (at: string, stat: Stats): { path: string; why: string } | undefined => {
    if (stat.uid !== uid && stat.uid !== 0) return { path: at, why: `belongs to another user (uid ${stat.uid})` };
    const mode = stat.mode & 0o7777;
    if (stat.isDirectory() && (mode & 0o022) !== 0 && (mode & 0o1000) === 0) return { path: at, why: `can be written by other users (mode ${mode.toString(8)}) and is not sticky` };
    return undefined;
  };
  const top = judge(sep, lstatSync(sep));
  if (top) return top;
  let at: string = sep;
  let rest = resolve(path).split(sep).filter(Boolean);
  let links = 0;
  while (rest.length > 0) {
    const [name, ...after] = rest as [string, ...string[]];
    rest = after;
    if (name === '.') continue;
    if (name === '..') {
      at = dirname(at);
      continue;
    }
    const next = resolve(at, name);
    const stat = lstatSync(next, { throwIfNoEntry: false });
    if (stat === undefined) return undefined;
    // The file at the end is its reader's to judge; a link at the end is a step on the way.
    if (rest.length === 0 && !stat.isSymbolicLink()) return undefined;
    const loose = judge(next, stat);
    if (loose) return loose;
    if (!stat.isSymbolicLink()) {
      at = next;
      continue;
    }
    if (++links > MAX_LINKS) return { path: next, why: `leads through more than ${MAX_LINKS} links` };
    const target = readlinkSync(next);
    if (isAbsolute(target)) at = sep;
    rest = [...target.split(sep).filter(Boolean), ...rest];
  }
  return undefined;
}
