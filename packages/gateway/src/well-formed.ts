// Text a caller sends can hold what the audit log refuses: a lone surrogate
// (JSON frames may carry one), or half an emoji where the gateway cut a long
// word to quote it. A refusal must never go unrecorded for that.

/** `text` cut to at most `max` UTF-16 code units, never inside a surrogate pair. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/**
 * `value` with every lone surrogate in its strings (member names too)
 * replaced by U+FFFD, as the node's operating system is handed it when it
 * runs the command (Node encodes strings as UTF-8 so); `value` itself when it
 * holds none. A member name that would then repeat another's (`"\ud800"` and
 * `"\ud801"` both become `"\ufffd"`) is numbered, ` (2)`, ` (3)`…, so the
 * record keeps every member the caller sent.
 */
export function wellFormed<T>(value: T): T {
  if (typeof value === 'string') return (value.isWellFormed() ? value : value.toWellFormed()) as T;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item: unknown, i) => {
      const made = wellFormed(item);
      if (made !== item) (copy ??= value.slice())[i] = made;
    });
    return (copy ?? value) as T;
  }
  const members = Object.entries(value);
  const taken = new Set(members.map(([key]) => key).filter((key) => key.isWellFormed()));
  let changed = false;
  const entries = members.map(([key, item]): [string, unknown] => {
    const made = wellFormed(item);
    if (made !== item) changed = true;
    if (key.isWellFormed()) return [key, made];
    changed = true;
    return [unused(key.toWellFormed(), taken), made];
  });
  return changed ? (Object.fromEntries(entries) as T) : value;
}

function unused(name: string, taken: Set<string>): string {
  let made = name;
  for (let n = 2; taken.has(made); n++) made = `${name} (${n})`;
  taken.add(made);
  return made;
}
