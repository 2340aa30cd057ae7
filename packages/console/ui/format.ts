// How the console writes amounts, times and durations.

/** An amount in cents (minor units) as money: 125000, "EUR" → "€1,250.00". */
export function formatMoney(cents: number, currency = 'USD'): string {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
  } catch {
    // An unknown currency code still shows the number and the code as given.
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/** Milliseconds left as "14m 05s", "2h 03m", or "expired". */
export function formatCountdown(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m`;
  return `${m}m ${String(sec).padStart(2, '0')}s`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** An ISO time or epoch milliseconds as local "YYYY-MM-DD HH:MM:SS": sortable, the same in every locale. */
export function formatTime(at: string | number | null | undefined): string {
  if (at === null || at === undefined || at === '') return '—';
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return String(at);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A long hash or id shortened for tables: its first 12 characters (the full one goes in a title). */
export function shortHash(hash: string): string {
  return hash.length > 16 ? `${hash.slice(0, 12)}…` : hash;
}

/** Where a policy problem is, as far as the gateway said: "run.cedar:3:14", "run.cedar", "entities.json". */
export function issueText(issue: { file: string; line?: number; column?: number; message: string }): string {
  const at = [issue.file, issue.line, issue.line !== undefined ? issue.column : undefined].filter((part) => part !== undefined && part !== '').join(':');
  return `${at} ${issue.message}`;
}
