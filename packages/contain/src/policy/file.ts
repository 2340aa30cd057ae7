import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { ContainError } from '../errors.ts';
import { cachedPolicy, rememberPolicy } from './cache.ts';
import type { ContainerPolicy } from './schema.ts';

/** A validated policy and where it came from (relative paths resolve against `baseDir`). */
export interface LoadedPolicy {
  policy: ContainerPolicy;
  /** The file it was read from, or '<inline>'. */
  source: string;
  /** The folder relative paths in the policy are taken from: the policy file's folder. */
  baseDir: string;
  /** The line of the file where a field (`filesystem.readwrite[1]`) is written, for a problem found later (planning). */
  locate?: (field: string) => number | undefined;
}

const require = createRequire(import.meta.url);

export interface LoadPolicyOptions {
  /**
   * A folder (created owner-only on first use) where policies are remembered
   * once validated, by the digest of their text: loading the same text again
   * skips parsing and validation. See policy/cache.ts for when an entry is believed.
   */
  cacheDir?: string;
}

/**
 * Reads and validates a container policy file (YAML or JSON; JSON is read as
 * YAML 1.2, of which it is a subset).
 *
 * @throws ContainError `CONTAIN_POLICY_UNREADABLE` when the file cannot be read,
 *   `CONTAIN_POLICY_INVALID` with every issue located by line and field.
 */
export async function loadPolicyFile(file: string, baseDir: string, options: LoadPolicyOptions = {}): Promise<LoadedPolicy> {
  const bytes = readPolicyBytes(file);
  const text = policyText(file, bytes);
  const { cacheDir } = options;
  const digest = cacheDir === undefined ? '' : createHash('sha256').update(bytes).digest('hex');
  const cached = cacheDir === undefined ? undefined : cachedPolicy(cacheDir, digest);
  // Asked only on the way to reporting a problem: the parser is loaded then (synchronously, as planning is), from the text loaded.
  const locate = (field: string) => (require('./load.ts') as typeof import('./load.ts')).fieldLine(text, field);
  if (cached) return { policy: cached, source: file, baseDir, locate };
  // Loaded on a miss only: the parser and the schema cost more than the rest of a short run's start.
  const { parsePolicyText } = await import('./load.ts');
  const policy = parsePolicyText(text, file);
  if (cacheDir !== undefined) rememberPolicy(cacheDir, digest, policy);
  return { policy, source: file, baseDir, locate };
}

/**
 * A policy file's text, which must be UTF-8: bytes of another encoding decoded as UTF-8 become U+FFFD, and a
 * path holding one names no file (a deny of it would hide nothing).
 * @throws ContainError `CONTAIN_POLICY_UNREADABLE` naming the first line that is not UTF-8.
 */
function policyText(file: string, bytes: Buffer): string {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new ContainError('CONTAIN_POLICY_UNREADABLE', `cannot read policy ${file}: it is UTF-16 text; save it as UTF-8`);
  }
  const text = bytes.toString('utf8');
  if (!text.includes('\uFFFD')) return text;
  // Each U+FFFD is either written in the file (three bytes, EF BF BD) or stands for bytes that are not UTF-8.
  let offset = 0;
  let line = 1;
  for (const char of text) {
    if (char === '\uFFFD' && !(bytes[offset] === 0xef && bytes[offset + 1] === 0xbf && bytes[offset + 2] === 0xbd)) {
      throw new ContainError('CONTAIN_POLICY_UNREADABLE', `cannot read policy ${file}: line ${line} is not UTF-8 text; save the file as UTF-8`);
    }
    if (char === '\n') line++;
    offset += Buffer.byteLength(char);
  }
  return text;
}

/** Far more than any container policy needs. */
const MAX_POLICY_BYTES = 1024 * 1024;

/**
 * A policy file's bytes, read at once (a policy is small, and this is on the
 * way to starting the sandbox): a regular file of at most MAX_POLICY_BYTES,
 * never a device read for ever (/dev/zero) nor a FIFO waited on.
 * @throws ContainError `CONTAIN_POLICY_UNREADABLE` saying why.
 */
function readPolicyBytes(file: string): Buffer {
  const refuse = (reason: string, cause?: unknown) => new ContainError('CONTAIN_POLICY_UNREADABLE', `cannot read policy ${file}: ${reason}`, cause === undefined ? {} : { cause });
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw refuse(code === 'ENOENT' ? 'no such file' : code === 'ELOOP' ? 'its path leads round a loop of symlinks; give the path of the policy file itself' : (cause as Error).message, cause);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw refuse('not a regular file; give the path of the policy file itself');
    if (stat.size > MAX_POLICY_BYTES) throw refuse(`it is ${stat.size} bytes, more than a policy's ${MAX_POLICY_BYTES}`);
    return readFileSync(fd);
  } catch (cause) {
    if (cause instanceof ContainError) throw cause;
    throw refuse((cause as Error).message, cause);
  } finally {
    closeSync(fd);
  }
}
