import { visible } from '../../format.ts';

/** Tabs and carriage returns are ordinary in a policy file; the editor shows them as what they are. */
const ORDINARY = /[\t\r]/g;

/**
 * The lines of a policy file that hold characters the editor draws as nothing
 * or that reorder the line, each spelled out: with a bidi override a permit can
 * read as a comment (Trojan Source), and the editor cannot show that itself.
 */
export function HiddenCharacters({ id, text }: { id: string; text: string }) {
  const lines = text.split('\n').flatMap((line, i) => {
    const plain = line.replace(ORDINARY, ' ');
    const shown = visible(plain);
    return shown === plain ? [] : [{ number: i + 1, shown }];
  });
  if (lines.length === 0) return null;
  return (
    <div id={id} className="error hidden-characters">
      These lines hold characters that draw nothing or reorder the text; as they really read:
      <ul>
        {lines.map((line) => (
          <li key={line.number} className="mono">
            {line.number}: {line.shown}
          </li>
        ))}
      </ul>
    </div>
  );
}
