// The state directory as `corral up` finds and leaves it: checked writable
// before anything is made; on first creation every entry it adds is noted, so
// a start that fails halfway (port taken, policy broken) removes them again
// and leaves nothing half-created; `up.json` marks a completed first start.
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { IdentityError, securePrivateDir } from '@corral/identity';
import { NodeError, lockStateDir as lockDir } from '@corral/node';
import { replaceFile } from '@corral/node/whole-files';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';

export const UP_MARKER = 'up.json';
/** Held while `corral up` runs: two on one state directory would run two nodes with one device key. */
export const UP_LOCK = 'up.lock';

export interface UpMarker {
  createdAt: string;
  /** The example process installed on first start. */
  example: string;
}

/** The completed first start recorded in this state directory, if any. */
export function readMarker(dir: string): UpMarker | undefined {
  const path = join(dir, UP_MARKER);
  if (!existsSync(path)) return undefined;
  const damaged = () => new CliFailure(`${path} is damaged: remove it to set up the example process again`, EXIT.usage);
  let raw: Partial<UpMarker> | null;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8')) as Partial<UpMarker> | null;
  } catch {
    throw damaged();
  }
  if (typeof raw?.createdAt !== 'string' || typeof raw.example !== 'string') throw damaged();
  return { createdAt: raw.createdAt, example: raw.example };
}

/** Writes the marker whole, renamed into place: a crash leaves no half of it (which would make every later start refuse it as damaged). */
export function writeMarker(dir: string, marker: UpMarker): void {
  replaceFile(join(dir, UP_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
}

/**
 * Makes sure `dir` exists, is this user's alone (mode 0700) and can be
 * written. Returns the directory by the path it resolves to (see
 * securePrivateDir: a link in `dir` is never gone through again), and what to
 * remove to undo it: the entries that were not there before. Throws a
 * CliFailure (exit 3) naming the directory and what to do.
 */
export function claimStateDir(dir: string): StateSnapshot {
  const existed = existsSync(dir);
  try {
    if (existed && !statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new CliFailure(`cannot write the state directory ${dir} (${code}): fix its permissions, or choose another with --state-dir or CORRAL_STATE_DIR`, EXIT.environment);
  }
  // Before anything is written in it: this user's alone (0700), as the identity store demands once the gateway opens it;
  // until then, whoever else may write there could swap what `corral up` puts there (a policy, a profile).
  let real: string;
  try {
    real = securePrivateDir(dir);
  } catch (error) {
    if (!(error instanceof IdentityError)) throw error;
    throw new CliFailure(error.message, EXIT.environment, error.code);
  }
  const entries = readdirSync(real);
  refuseOthersEntries(real, entries);
  return new StateSnapshot(real, existed ? entries : undefined);
}

/**
 * Throws a CliFailure (exit 3) naming the first entry of `dir` another user
 * owns. Only someone who could write `dir` put it there, before it was made
 * 0700: a link of theirs would have `corral up` write where they chose, and
 * a folder or file they still hold open they could read or change at will.
 */
function refuseOthersEntries(dir: string, entries: string[]): void {
  const uid = process.getuid?.();
  if (uid === undefined) return;
  for (const entry of entries) {
    const path = join(dir, entry);
    const owner = lstatSync(path).uid;
    if (owner !== uid) {
      throw new CliFailure(`${path} belongs to another user (uid ${owner}), who put it there while others could write the state directory: remove it, or choose another state directory with --state-dir`, EXIT.environment, 'IDENTITY_STATE_DIR_UNSAFE');
    }
  }
}


/** What a state directory held before `corral up` touched it. */
export class StateSnapshot {
  /** The state directory, by the path with no link in it that corral up uses from here on. */
  readonly dir: string;
  /** Entries present before; undefined when the directory itself was new. */
  readonly #before: Set<string> | undefined;

  constructor(dir: string, before: string[] | undefined) {
    this.dir = dir;
    this.#before = before ? new Set(before) : undefined;
  }

  /** Removes what was added since (the directory too, if it was new). */
  rollback(): void {
    if (!this.#before) {
      rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    for (const entry of readdirSync(this.dir)) if (!this.#before.has(entry)) rmSync(join(this.dir, entry), { recursive: true, force: true });
  }
}

/**
 * Fails early, before anything is created, when `host:port` cannot be
 * listened on (port 0, any free one, needs no check). The gateway binds it
 * again moments later; a race lost there is reported the same way.
 */
export async function checkPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error) => reject(portFailure(host, port, error) ?? error));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** The CliFailure for a listen error on `host:port`, or undefined if `error` is not one. */
export function portFailure(host: string, port: number, error: unknown): CliFailure | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? (error as { cause?: NodeJS.ErrnoException } | undefined)?.cause?.code;
  if (code === 'EADDRINUSE') return new CliFailure(`port ${port} on ${host} is already in use (another 'corral up' or 'corral gateway'?): stop it, or choose another port with --port`, EXIT.environment);
  if (code === 'EACCES') return new CliFailure(`not allowed to listen on ${host}:${port}: choose a port above 1023 with --port`, EXIT.environment);
  if (code === 'EADDRNOTAVAIL') return new CliFailure(`${host} is not an address of this machine: choose another with --bind`, EXIT.environment);
  return undefined;
}

/**
 * Takes the state directory for this process (STATE/up.lock holding its pid),
 * as a node takes its own (@corral/node lockStateDir, the one mechanism): a
 * lock naming a process that is gone is taken over; one naming no process is
 * left for the user to judge. Returns the release. Throws a CliFailure (exit
 * 3) naming the process that holds it, or the file.
 */
export function lockStateDir(dir: string): () => void {
  try {
    return lockDir(dir, UP_LOCK, 'corral up');
  } catch (error) {
    if (!(error instanceof NodeError)) throw error;
    throw new CliFailure(error.message, EXIT.environment);
  }
}
