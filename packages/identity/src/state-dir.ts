// The state directory holds identity.db, and so the token-signing private
// keys: only the user Corral runs as may enter it, list it or change it.
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, realpathSync, type Stats } from 'node:fs';
import { IdentityError } from './errors.ts';

/**
 * Makes `stateDir` a directory only this user may use, before anything in it
 * is opened: created mode 0700 (with any missing parent) when it does not
 * exist; made 0700 when this user owns it and others may read, enter or
 * write it. Nothing outside it is changed. It may be a symbolic link to a
 * directory (`~/.corral` → `/srv/corral`): the directory linked to is the
 * one checked and changed, and its path, with no link in it, is returned:
 * what Corral keeps there must be opened by that path, never through the
 * link again, which whoever may write where the link is could have moved
 * since (to a directory of theirs).
 *
 * Throws IDENTITY_STATE_DIR_UNSAFE, naming the directory and what to do,
 * when another user owns it (they could read or replace what Corral keeps
 * there), or when others may write it and it cannot be made 0700;
 * IDENTITY_STORE_FAILED when it cannot be made or opened.
 */
export function securePrivateDir(stateDir: string): string {
  const uid = process.getuid?.();
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new IdentityError('IDENTITY_STORE_FAILED', `cannot make the state directory ${stateDir}: ${reason(error)}`, { cause: error });
  }
  let real: string;
  try {
    real = realpathSync(stateDir);
  } catch (error) {
    throw new IdentityError('IDENTITY_STORE_FAILED', `cannot open the state directory ${stateDir}: ${reason(error)}`, { cause: error });
  }
  // Owners and modes mean nothing to Corral where there are no user ids (Windows).
  if (uid === undefined) return real;
  let fd: number;
  try {
    // Checked and changed through one descriptor: what is changed is what was checked. Opened by the path
    // resolved above, not followed should a link have been put at its last part since.
    fd = openSync(real, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (error) {
    throw new IdentityError('IDENTITY_STORE_FAILED', `cannot open the state directory ${stateDir}: ${reason(error)}`, { cause: error });
  }
  try {
    const found = fstatSync(fd);
    if (found.uid !== uid) {
      throw new IdentityError(
        'IDENTITY_STATE_DIR_UNSAFE',
        `the state directory ${stateDir} belongs to another user (uid ${found.uid}), who could read or replace the identity store in it: run Corral as that user, or give it a state directory of this user's (uid ${uid}) with --state-dir`,
      );
    }
    if ((found.mode & 0o077) === 0) return real;
    let refusal: unknown;
    try {
      fchmodSync(fd, 0o700);
    } catch (error) {
      refusal = error;
    }
    const mode = fstatSync(fd).mode & 0o7777;
    // One that others may only read or enter, on a file system that keeps no modes, lets nobody replace what is in it.
    if ((mode & 0o022) !== 0) {
      throw new IdentityError(
        'IDENTITY_STATE_DIR_UNSAFE',
        `the state directory ${stateDir} may be written by others (mode ${mode.toString(8)}) and cannot be made private${refusal === undefined ? '' : ` (${reason(refusal)})`}: make it so with chmod 700 ${stateDir}, or give Corral another with --state-dir`,
        refusal === undefined ? {} : { cause: refusal },
      );
    }
    return real;
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `path` (mode 0600) if it does not exist, and makes it 0600, without
 * following a symbolic link at it (O_NOFOLLOW); and checks that none of
 * `companions` (files SQLite opens beside it by name: `-wal`, `-shm`,
 * `-journal`) is a symbolic link. A link planted in the state directory
 * would otherwise send the store, and the signing keys written to it,
 * wherever it points, or make Corral create or change a file there.
 * Neither `path` nor any companion may belong to another user: one left
 * from a time others could write the directory (made 0700 since) may still
 * be open in their process, which would read the signing keys written
 * through it or write keys of its own in, whatever its mode is now.
 *
 * Throws IDENTITY_STORE_SYMLINK naming the link; IDENTITY_STATE_DIR_UNSAFE
 * naming a file of another user's; IDENTITY_STORE_FAILED when `path` is not
 * a regular file or cannot be made or changed.
 */
export function privateStoreFile(path: string, companions: readonly string[]): void {
  const uid = process.getuid?.();
  for (const name of [path, ...companions]) {
    let found: Stats | undefined;
    try {
      found = lstatSync(name, { throwIfNoEntry: false });
    } catch (error) {
      throw new IdentityError('IDENTITY_STORE_FAILED', `cannot look at ${name}: ${reason(error)}`, { cause: error });
    }
    if (found?.isSymbolicLink() === true) throw linked(name);
    if (found !== undefined && uid !== undefined && found.uid !== uid) throw foreign(name, found.uid, uid);
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
  } catch (error) {
    // A link put there since the look above.
    if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw linked(path);
    throw new IdentityError('IDENTITY_STORE_FAILED', `cannot open the identity store ${path}: ${reason(error)}`, { cause: error });
  }
  try {
    const opened = fstatSync(fd);
    if (!opened.isFile()) throw new IdentityError('IDENTITY_STORE_FAILED', `the identity store ${path} is not a file: remove what is there, or give Corral another state directory with --state-dir`);
    // What was opened, should it have been put there since the look above.
    if (uid !== undefined && opened.uid !== uid) throw foreign(path, opened.uid, uid);
    fchmodSync(fd, 0o600);
  } catch (error) {
    if (error instanceof IdentityError) throw error;
    throw new IdentityError('IDENTITY_STORE_FAILED', `cannot make the identity store ${path} private (mode 600): ${reason(error)}`, { cause: error });
  } finally {
    closeSync(fd);
  }
}

function linked(path: string): IdentityError {
  return new IdentityError(
    'IDENTITY_STORE_SYMLINK',
    `${path} is a symbolic link, which Corral does not follow for its identity store (a link planted there would send the store and its signing keys elsewhere): remove the link; if it pointed to Corral's own store, move that file into its place`,
  );
}

function foreign(path: string, owner: number, uid: number): IdentityError {
  return new IdentityError(
    'IDENTITY_STATE_DIR_UNSAFE',
    `${path} belongs to another user (uid ${owner}), who may still hold it open and read or change the identity store and its signing keys through it: remove it, and look for anything else they left in the state directory, or give Corral another with --state-dir (Corral runs as uid ${uid})`,
  );
}

function reason(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message.split('\n')[0]!.slice(0, 200) : String(error));
}
