// The example process `corral up` sets up on first start, from
// examples/invoice-intake/: the invoice-intake agent's identity, its
// workspace and container policy under STATE/processes/invoice-intake/, its
// Cedar rules in STATE/policies/, and its profile (STATE/profiles/) naming the
// container policy its commands run under.
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Agent, Identity } from '@corral/identity';
import { PROCESSES_DIR } from '../state-dir.ts';
import { writeProfile } from './profiles.ts';

export const EXAMPLE_DIR = fileURLToPath(new URL('../../../../examples/invoice-intake/', import.meta.url));

/** The example process, as `corral up` installs it. */
export const INVOICE_INTAKE = {
  process: 'invoice-intake',
  agent: { name: 'invoice-bot', displayName: 'Invoice intake', owner: 'finance@example.com', scopes: ['records:read', 'payments:create'] },
  /** Copied into STATE/processes/invoice-intake/. */
  workspace: ['policy.yaml', 'summarise.sh', 'inbox', 'outbox'],
  containerPolicy: 'policy.yaml',
  /** The host its container may reach. */
  egress: 'api.invoices.example:443',
} as const;

export const POLICIES_DIR = 'policies';

/** Where the example's workspace lives in the state directory. */
export function workspaceDir(stateDir: string): string {
  return join(stateDir, PROCESSES_DIR, INVOICE_INTAKE.process);
}

/**
 * Copies the example's Cedar files into STATE/policies (a file of the same
 * name already there is kept) and its workspace into
 * STATE/processes/invoice-intake, and writes its profile. Touches no database.
 */
export function installExampleFiles(stateDir: string): void {
  const policies = join(stateDir, POLICIES_DIR);
  mkdirSync(policies, { recursive: true, mode: 0o700 });
  for (const name of readdirSync(join(EXAMPLE_DIR, 'cedar'))) {
    const target = join(policies, name);
    if (!existsSync(target)) copyFileSync(join(EXAMPLE_DIR, 'cedar', name), target);
  }
  const workspace = workspaceDir(stateDir);
  mkdirSync(workspace, { recursive: true, mode: 0o700 });
  for (const entry of INVOICE_INTAKE.workspace) {
    if (entry === INVOICE_INTAKE.containerPolicy) continue;
    cpSync(join(EXAMPLE_DIR, entry), join(workspace, entry), { recursive: true, force: false, errorOnExist: false });
  }
  // The example's $schema line points into this repository; a copy elsewhere would point nowhere.
  const policy = readFileSync(join(EXAMPLE_DIR, INVOICE_INTAKE.containerPolicy), 'utf8').replace(/^\$schema:.*\n/m, '');
  const target = join(workspace, INVOICE_INTAKE.containerPolicy);
  if (!existsSync(target)) writeFileSync(target, policy, { mode: 0o600 });
  writeProfile(stateDir, { agent: INVOICE_INTAKE.agent.name, containerPolicy: join(PROCESSES_DIR, INVOICE_INTAKE.process, INVOICE_INTAKE.containerPolicy) });
}

/** The example agent, created unless one of that name exists (in any status: a retired agent stays retired). */
export function ensureExampleAgent(identity: Identity): Agent {
  return identity.agents.find(INVOICE_INTAKE.agent.name) ?? identity.agents.create({ ...INVOICE_INTAKE.agent, scopes: [...INVOICE_INTAKE.agent.scopes], process: INVOICE_INTAKE.process });
}
