// Reads back what a gateway appended to the audit log in its state directory,
// through a separate reader: only what was committed is seen.
import { openAuditReader, toAuditRecord, type AuditEvent } from '@corral/audit';

export async function auditEvents(stateDir: string): Promise<AuditEvent[]> {
  const reader = await openAuditReader({ stateDir });
  try {
    const head = await reader.store.head();
    const events: AuditEvent[] = [];
    for await (const batch of reader.store.scan(0, head.size)) for (const r of batch) events.push(toAuditRecord(r).event);
    return events;
  } finally {
    await reader.close();
  }
}
