// How the console writes amounts, times, durations, and text it did not choose.

/** ISO 4217 minor units of the currencies whose exponent is not 2. */
const MINOR_DIGITS = new Map(Object.entries({ BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0, BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3, CLF: 4, UYW: 4 }));

/** An amount in minor units as money, every minor digit shown: 125000 "EUR" → "€1,250.00", 5000 "JPY" → "¥5,000", 1234 "BHD" → "BHD 1.234". */
export function formatMoney(minor: number, currency = 'USD'): string {
  // Intl takes a code in any case ("jpy" is yen), so its exponent must be looked up the same way.
  const digits = MINOR_DIGITS.get(currency.toUpperCase()) ?? 2;
  const major = minor / 10 ** digits;
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency, minimumFractionDigits: digits, maximumFractionDigits: digits }).format(major);
  } catch {
    // An unknown currency code still shows the number and the code as given (the agent's text, so through visible()).
    return `${major.toFixed(digits)} ${visible(currency)}`;
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

/**
 * An ISO time or epoch milliseconds as "YYYY-MM-DD HH:MM:SS UTC": sortable, the same in every locale, and in the zone
 * the audit log, its export and the CLI write, so a time read here is the time found there. A value that is not a time is shown through visible().
 */
export function formatTime(at: string | number | null | undefined): string {
  if (at === null || at === undefined || at === '') return '—';
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return visible(String(at));
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} UTC`;
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

/**
 * Characters that draw nothing, look like a plain space, or reorder the text around them (bidi overrides and isolates, zero-width and control characters, other spaces, unassigned and private-use code points, lone surrogates).
 * Unicode's Default_Ignorable_Code_Point adds those that draw nothing though they are letters or marks
 * (Hangul fillers U+3164 and U+115F, the combining grapheme joiner, variation selectors); the Braille blank U+2800 is a symbol drawn as a space.
 */
const HIDDEN = /(?! )[\p{C}\p{Z}\p{Default_Ignorable_Code_Point}\u2800]/gu;

/**
 * Most combining marks kept on one character. Ordinary text needs few (Vietnamese two, pointed Hebrew four); a font stacks
 * every one of them, so thousands on one letter ("Zalgo") paint far above and below its line, over other rows and the approve buttons.
 */
const MOST_MARKS = 4;
/** The marks after a character beyond the first MOST_MARKS. */
const STACKED = new RegExp(`(?<=\\p{M}{${MOST_MARKS}})\\p{M}+`, 'gu');
/** A mark with no letter or number of the text before it to sit on: it would draw over a space, a quote, or whatever the page writes before the text (a colon, a list number). */
const STRAY = /(?<![\p{L}\p{N}\p{M}])\p{M}/gu;

/** `char` as its `\uXXXX` (`\UXXXXXXXX`) escape. */
function escaped(char: string): string {
  const code = char.codePointAt(0)!.toString(16).toUpperCase();
  return code.length <= 4 ? `\\u${code.padStart(4, '0')}` : `\\U${code.padStart(8, '0')}`;
}

/**
 * Text an agent or node chose, as an approver must read it: every HIDDEN character and STRAY mark written as its `\uXXXX` (`\UXXXXXXXX`)
 * escape, and the combining marks on one character past MOST_MARKS removed, with how many in their place; a field the gateway left out (null) is ''.
 */
export function visible(text: string | null | undefined): string {
  const spelled = (text ?? '').replace(HIDDEN, escaped).replace(STRAY, escaped);
  // Counted after spelling out: a joiner between runs of marks draws nothing and would leave every run stacked on one letter; spelled out, each run sits on its escape.
  return spelled.replace(STACKED, (marks) => {
    const removed = [...marks].length;
    return `[${removed} combining mark${removed === 1 ? '' : 's'} removed]`;
  });
}

/** Scripts a look-alike note names; a character of any other is named by its code point alone. */
const SCRIPTS = ['Latin', 'Greek', 'Cyrillic', 'Armenian', 'Cherokee', 'Georgian', 'Hebrew', 'Arabic', 'Han', 'Hiragana', 'Katakana', 'Hangul', 'Common', 'Inherited'].map((name) => ({ name, test: new RegExp(`\\p{Script=${name}}`, 'u') }));
/** One combining mark. */
const MARK = /^\p{M}$/u;
/** Most characters one field's note lists; the rest are counted. */
const MOST_LISTED = 8;

/**
 * The characters beyond ASCII that visible() leaves as they are, each once in
 * the order met, as "а U+0430 Cyrillic": a Cyrillic а, a Greek ο or a Latin ı
 * reads as the ASCII letter it resembles, so `https://exаmple.com` and the payee
 * "АСМЕ GmbH" look like what they are not. Empty for ASCII text.
 */
export function lookAlikes(text: string | null | undefined): string[] {
  const seen = new Set<string>();
  for (const char of visible(text)) if (char.codePointAt(0)! > 0x7e) seen.add(char);
  const named = [...seen].slice(0, MOST_LISTED).map((char) => {
    const code = char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    const script = SCRIPTS.find((s) => s.test.test(char))?.name;
    // A mark named alone sits on a dotted circle, as Unicode's charts show one, not on the comma before it.
    const shown = MARK.test(char) ? `\u25CC${char}` : char;
    return `${shown} U+${code}${script ? ` ${script}` : ''}`;
  });
  return seen.size > MOST_LISTED ? [...named, `and ${seen.size - MOST_LISTED} more`] : named;
}

/**
 * What of an activity summary (the gateway's `Event.summary`) to check for
 * look-alikes: all of it but the characters the gateway itself writes there,
 * the → before the outcome and the … that marks a summary cut short. Every
 * summary with an outcome holds the arrow, and a note on each row would teach
 * approvers to pass over the one that matters.
 */
export function summaryToCheck(summary: string): string {
  return summary.replaceAll(' \u2192 ', ' ').replace(/\u2026$/, '');
}

/**
 * The plain spaces of `text` a reader cannot count, as "a space at the end",
 * "2 spaces in a row": a page draws a run of spaces as one and none at either
 * end, so "ACME  GmbH " reads as "ACME GmbH". Empty when every space shows.
 */
export function oddSpaces(text: string | null | undefined): string[] {
  const found: string[] = [];
  const value = text ?? '';
  const lead = /^ +/.exec(value)?.[0].length ?? 0;
  const core = value.replace(/^ +| +$/g, '');
  const trail = core === '' ? 0 : (/ +$/.exec(value)?.[0].length ?? 0);
  if (lead > 0) found.push(lead === 1 ? 'a space at the start' : `${lead} spaces at the start`);
  if (trail > 0) found.push(trail === 1 ? 'a space at the end' : `${trail} spaces at the end`);
  const inner = (core.match(/ {2,}/g) ?? []).map((run) => run.length);
  if (inner.length > 0) found.push(`${Math.max(...inner)} spaces in a row`);
  return found;
}
