// Reads back what a gateway appended to the audit log in its state directory,
// through a separate reader: only what was committed is seen.
import { openAuditReader, toAuditRecord, type AuditEvent, type AuditRecord } from '@corral/audit';

/** Every record of the state directory's audit log, oldest first. */
export async function auditRecords(stateDir: string): Promise<AuditRecord[]> {
  const reader = await openAuditReader({ stateDir });
  try {
    const head = await reader.store.head();
    const records: AuditRecord[] = [];
    for await (const batch of reader.store.scan(0, head.size)) for (const r of batch) records.push(toAuditRecord(r));
    return records;
  } finally {
    await reader.close();
  }
}

/** Every event of the state directory's audit log, oldest first. */
export async function auditEvents(stateDir: string): Promise<AuditEvent[]> {
  return (await auditRecords(stateDir)).map((r) => r.event);
}
