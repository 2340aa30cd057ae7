import { lookAlikes, oddSpaces } from '../format.ts';

/**
 * Under text an agent or node chose, in a table: what in it does not read as
 * what it is. Characters beyond ASCII are named with code point and script (a
 * Cyrillic а makes `https://exаmple.com` read as example.com), and spaces the
 * page does not draw are counted. Nothing for ASCII text whose spaces all show.
 */
export function LookAlikeNote({ text, label = 'Check' }: { text: string | null | undefined; label?: string }) {
  const notes = [...lookAlikes(text), ...oddSpaces(text)];
  if (notes.length === 0) return null;
  return (
    <span className="error look-alikes small">
      {label}: {notes.join(', ')}
    </span>
  );
}
