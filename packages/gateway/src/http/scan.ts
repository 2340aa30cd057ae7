// Paging through the audit log newest first: read windows backwards from
// `before`, keep what the filter accepts, stop at `limit` or after reading
// `budget` records (then the page ends early and `nextBefore` says where to go on).
import { toAuditRecord, type AuditRecord, type AuditStore } from '@corral/audit';

const WINDOW = 500;
const BUDGET = 50_000;

export async function pageBackwards<T>(store: AuditStore, options: { before: number; limit: number; floor?: number }, accept: (record: AuditRecord) => T | undefined): Promise<{ items: T[]; nextBefore: number | null }> {
  const floor = options.floor ?? 0;
  const items: T[] = [];
  let end = options.before;
  let read = 0;
  while (end > floor && read < BUDGET) {
    const start = Math.max(floor, end - WINDOW);
    const window: AuditRecord[] = [];
    for await (const rows of store.scan(start, end, WINDOW)) for (const r of rows) window.push(toAuditRecord(r));
    for (let i = window.length - 1; i >= 0; i--) {
      const record = window[i]!;
      read++;
      const item = accept(record);
      if (item === undefined) continue;
      items.push(item);
      if (items.length === options.limit) return { items, nextBefore: record.seq > floor ? record.seq : null };
    }
    end = start;
  }
  return { items, nextBefore: end > floor ? end : null };
}

/** A whole-number query parameter within [min, max], the default when absent; NaN when malformed. */
export function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const text = url.searchParams.get(name);
  if (text === null || text === '') return fallback;
  if (!/^\d{1,15}$/.test(text)) return Number.NaN;
  const n = Number(text);
  return n < min || n > max ? Number.NaN : n;
}
