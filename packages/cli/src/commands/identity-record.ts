import type { AuditEventInput, AuditLog } from '@corral/audit';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';
import { privateFolder } from '../state-dir.ts';
import { localActor } from './run-record.ts';

type IdentityEvent = Omit<AuditEventInput, 'actor'> & { actor?: AuditEventInput['actor'] };

/**
 * Records a change that takes something away (an agent suspended or
 * retired, a node revoked, a grant withdrawn, a key rotated) in the audit log
 * of the state directory. The change has already happened: a log that cannot
 * be written gives a warning, never an undone kill switch.
 */
export async function recordIdentityEvent(dir: string, event: IdentityEvent): Promise<void> {
  await recordIdentityEvents(dir, [event]);
}

/**
 * recordIdentityEvent for several events, with the log opened once and the
 * events appended together (one commit for a suspension's many grants).
 * Whether each was recorded, in order.
 */
export async function recordIdentityEvents(dir: string, events: readonly IdentityEvent[]): Promise<boolean[]> {
  let log: AuditLog;
  try {
    // As recordedChange: never a signing key made in another user's state directory; the change stands, with a warning.
    await privateFolder(dir);
    log = await openLog(dir);
  } catch (error) {
    warn(error);
    return events.map(() => false);
  }
  return appendAndClose(log, events);
}

/**
 * Makes a change that lets more happen (an agent created or resumed, a node
 * paired, a password set) and records it. The audit log is opened first: a
 * log that cannot be written stops the change before it is made (exit 3),
 * so none stands unrecorded because the log was broken.
 */
export async function recordedChange<T>(dir: string, change: () => Promise<T> | T, event: (result: T) => IdentityEvent): Promise<T> {
  // Another user's state directory is refused before the log makes its signing key there (CliFailure, exit 3).
  await privateFolder(dir);
  let log: AuditLog;
  try {
    log = await openLog(dir);
  } catch (error) {
    throw new CliFailure(`the audit log in ${dir} cannot record this change, so it was not made: ${(error as Error).message}`, EXIT.environment, (error as { code?: string }).code);
  }
  let result: T;
  try {
    result = await change();
  } catch (error) {
    await log.close().catch(() => undefined);
    throw error;
  }
  await appendAndClose(log, [event(result)]);
  return result;
}

async function openLog(dir: string): Promise<AuditLog> {
  const { openAuditLog } = await import('@corral/audit');
  return openAuditLog({ stateDir: dir });
}

/** Appends `events` together (they share a commit), warns when the log refuses one, closes the log; whether each was recorded. */
async function appendAndClose(log: AuditLog, events: readonly IdentityEvent[]): Promise<boolean[]> {
  try {
    const appended = await Promise.allSettled(events.map((event) => log.append({ actor: localActor(), outcome: { status: 'success' }, ...event })));
    const refused = appended.find((a) => a.status === 'rejected');
    if (refused) warn(refused.reason);
    return appended.map((a) => a.status === 'fulfilled');
  } finally {
    // The records are durable once appended; closing seals a checkpoint, which the next writer seals if this one cannot.
    await log.close().catch(() => undefined);
  }
}

function warn(error: unknown): void {
  process.stderr.write(`corral: warning: the change was made but could not be recorded in the audit log: ${(error as Error).message}\n`);
}
