// The raw bubblewrap the benchmarks compare Corral against: every namespace new
// and only what /bin/true needs on a merged-/usr host (/usr read-only, and the
// top-level /bin, /lib, /lib64 symlinks into it). No seccomp, no cgroups, no
// /proc, /dev or /tmp: the floor any bubblewrap sandbox stands on.
import { existsSync, lstatSync, readlinkSync } from 'node:fs';

/** The argv (bwrap path first) of a raw `bwrap --unshare-all` running `command`. */
export function rawBwrapArgv(bwrap: string, command: readonly string[]): string[] {
  const argv = [bwrap, '--unshare-all', '--ro-bind', '/usr', '/usr'];
  for (const top of ['/lib', '/lib64', '/bin']) {
    if (!existsSync(top)) continue;
    if (lstatSync(top).isSymbolicLink()) argv.push('--symlink', readlinkSync(top), top);
    else argv.push('--ro-bind', top, top);
  }
  return [...argv, '--', ...command];
}

/** The argv of a raw `bwrap --unshare-all /bin/true`. */
export function rawBwrapTrueArgv(bwrap: string): string[] {
  return rawBwrapArgv(bwrap, ['/bin/true']);
}
