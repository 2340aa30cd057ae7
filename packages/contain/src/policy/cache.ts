// Validated policies remembered by the SHA-256 of their text, so that running an
// unchanged policy file again skips the YAML parser and the schema: loading those
// two is most of a short contained run's start-up.
//
// An entry is believed only under its MAC. The key is a random secret kept
// owner-only in the cache folder, and the MAC also covers the validator's
// fingerprint (its source and the parser's and schema library's versions): an
// entry edited by hand, copied from elsewhere or written by another version of
// Corral is ignored, and the policy is validated afresh. Whoever can read the
// key can forge entries: the owner of the state directory the cache sits in,
// who can already replace the audit log's signing key there. A policy that
// grants a sandbox that directory hands it both; none should.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerPolicy } from './schema.ts';

const KEY_FILE = 'key';
const KEY_BYTES = 32;

// What decides whether a text is a valid policy and what it reads as.
const VALIDATOR_SOURCES = ['./load.ts', './schema.ts', './defaults.ts', '../net/egress-rule.ts'];
const VALIDATOR_PACKAGES = ['yaml', 'zod'];

let fingerprint: string | null | undefined;

/** The validated policy remembered for text with this digest, or undefined (none, or not to be believed). Never throws. */
export function cachedPolicy(dir: string, textDigest: string): ContainerPolicy | undefined {
  const key = readKey(dir);
  const validator = validatorFingerprint();
  if (!key || !validator) return undefined;
  let entry: string;
  try {
    entry = readFileSync(entryPath(dir, textDigest), 'utf8');
  } catch {
    return undefined;
  }
  const newline = entry.indexOf('\n');
  if (newline !== 64) return undefined;
  const json = entry.slice(newline + 1);
  const expected = mac(key, validator, textDigest, json);
  const given = Buffer.from(entry.slice(0, newline), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    return JSON.parse(json) as ContainerPolicy;
  } catch {
    return undefined;
  }
}

/** Remembers a policy validated from text with this digest. Best effort: a cache that cannot be written is left alone. */
export function rememberPolicy(dir: string, textDigest: string, policy: ContainerPolicy): void {
  const validator = validatorFingerprint();
  if (!validator) return;
  try {
    const key = readKey(dir) ?? createKey(dir);
    if (!key) return;
    const json = JSON.stringify(policy);
    const final = entryPath(dir, textDigest);
    // A name no one can guess, made new (O_EXCL): a link planted in the folder is never written through.
    const temporary = `${final}.${randomBytes(8).toString('hex')}.tmp`;
    writeFileSync(temporary, `${mac(key, validator, textDigest, json).toString('hex')}\n${json}`, { mode: 0o600, flag: 'wx' });
    renameSync(temporary, final);
  } catch {
    // Only a cache: the next run validates the policy again.
  }
}

function entryPath(dir: string, textDigest: string): string {
  return join(dir, `${textDigest}.json`);
}

function mac(key: Buffer, validator: string, textDigest: string, json: string): Buffer {
  return createHmac('sha256', key).update(`corral policy cache v1\0${validator}\0${textDigest}\0`).update(json).digest();
}

/** The key, when it exists, is this user's and nobody else's. */
function readKey(dir: string): Buffer | undefined {
  const path = join(dir, KEY_FILE);
  try {
    const stat = statSync(path);
    if ((stat.mode & 0o077) !== 0 || stat.uid !== process.getuid?.()) return undefined;
    const key = readFileSync(path);
    return key.length === KEY_BYTES ? key : undefined;
  } catch {
    return undefined;
  }
}

function createKey(dir: string): Buffer | undefined {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(join(dir, KEY_FILE), randomBytes(KEY_BYTES), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    // Another process made it first: use theirs.
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readKey(dir);
}

/** A digest of the validator's own code and of the libraries it uses; null when one cannot be read (then nothing is cached). */
function validatorFingerprint(): string | null {
  if (fingerprint !== undefined) return fingerprint;
  try {
    const hash = createHash('sha256');
    for (const source of VALIDATOR_SOURCES) hash.update(readFileSync(new URL(source, import.meta.url))).update('\0');
    for (const name of VALIDATOR_PACKAGES) hash.update(installedManifest(name)).update('\0');
    fingerprint = hash.digest('hex');
  } catch {
    fingerprint = null;
  }
  return fingerprint;
}

/**
 * The package.json of the copy of `name` this module's imports load: the first
 * node_modules/NAME up the folders, as Node looks. Looked up by hand because
 * the first resolution through Node's loader costs more than the whole cache lookup.
 */
function installedManifest(name: string): Buffer {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    try {
      return readFileSync(join(dir, 'node_modules', name, 'package.json'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dir === dirname(dir)) throw error;
    }
  }
}
