// Agent profiles: what a node needs to know to run an agent's commands. One
// JSON file per agent in STATE/profiles/, naming the container policy its
// commands run under (a path inside the state directory).
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { replaceFile } from '@corral/node/whole-files';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';

export const PROFILES_DIR = 'profiles';

export interface AgentProfile {
  /** The agent's name in the registry. */
  agent: string;
  /** The container policy file, relative to the state directory. */
  containerPolicy: string;
}

export function writeProfile(stateDir: string, profile: AgentProfile): void {
  const dir = join(stateDir, PROFILES_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Whole, renamed into place: a crash leaves the old profile or the new one, never half of one.
  replaceFile(join(dir, `${profile.agent}.json`), `${JSON.stringify(profile, null, 2)}\n`);
}

/**
 * Every profile in the state directory, each with its container policy's
 * absolute path. Throws a CliFailure (exit 2) naming the file for a profile
 * that is not JSON, lacks a field, or points outside the state directory.
 */
export function readProfiles(stateDir: string): Array<AgentProfile & { policyFile: string }> {
  const dir = join(stateDir, PROFILES_DIR);
  if (!existsSync(dir)) return [];
  const out: Array<AgentProfile & { policyFile: string }> = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    const file = join(dir, name);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      throw bad(file, 'is not JSON');
    }
    const p = raw as Partial<AgentProfile> | null;
    if (typeof p?.agent !== 'string' || p.agent === '') throw bad(file, 'names no agent');
    if (typeof p.containerPolicy !== 'string' || p.containerPolicy === '') throw bad(file, 'names no containerPolicy');
    const policyFile = resolve(stateDir, p.containerPolicy);
    const inside = relative(stateDir, policyFile);
    if (isAbsolute(p.containerPolicy) || inside.startsWith('..')) throw bad(file, 'names a containerPolicy outside the state directory');
    out.push({ agent: p.agent, containerPolicy: p.containerPolicy, policyFile });
  }
  return out;
}

function bad(file: string, what: string): CliFailure {
  return new CliFailure(`the agent profile ${file} ${what}: fix or remove it`, EXIT.usage);
}
