import type { AuditEventInput } from '@corral/audit';
import { localActor } from './run-record.ts';

/**
 * Records an identity change (an agent suspended, a key rotated, a node
 * paired, a person signed in) in the audit log of the state directory. The
 * change has already happened: a log that cannot be written gives a warning,
 * never an undone kill switch.
 */
export async function recordIdentityEvent(dir: string, event: Omit<AuditEventInput, 'actor'> & { actor?: AuditEventInput['actor'] }): Promise<void> {
  try {
    const { openAuditLog } = await import('@corral/audit');
    const log = await openAuditLog({ stateDir: dir });
    try {
      await log.append({ actor: localActor(), outcome: { status: 'success' }, ...event });
    } finally {
      await log.close();
    }
  } catch (error) {
    process.stderr.write(`corral: warning: the change was made but could not be recorded in the audit log: ${(error as Error).message}\n`);
  }
}
