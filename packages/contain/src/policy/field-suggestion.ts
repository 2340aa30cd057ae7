/**
 * The field a misspelt one most likely meant: the closest of `fields` once case and `_`/`-` are set aside,
 * by edits of a letter (added, dropped, changed) or a swap of two neighbours, and close enough that the
 * slip is plausible (at most one edit in three letters); undefined when none is.
 */
export function suggestField(written: string, fields: readonly string[]): string | undefined {
  const plain = (name: string) => name.toLowerCase().replace(/[-_]/g, '');
  const typed = plain(written);
  let best: { field: string; distance: number } | undefined;
  for (const field of fields) {
    const near = Math.max(1, Math.floor(field.length / 3));
    const meant = plain(field);
    // The distance is at least the difference in length: a key far longer than any field (a megabyte of it) is compared with none.
    if (Math.abs(typed.length - meant.length) > near) continue;
    const distance = editDistance(typed, meant);
    if (distance <= near && (best === undefined || distance < best.distance)) best = { field, distance };
  }
  return best?.field;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}
