import { lookAlikes, visible } from '../../format.ts';

/** Tabs and carriage returns are ordinary in a policy file; the editor shows them as what they are. */
const ORDINARY = /[\t\r]/g;

/**
 * The lines of a policy file that hold characters the editor draws as nothing
 * or that reorder the line, each spelled out: with a bidi override a permit can
 * read as a comment (Trojan Source), and the editor cannot show that itself.
 * Lines with characters beyond ASCII are listed too, those characters named:
 * `Agent::"іnvoice-bot"` with a Cyrillic і reads as the agent it never matches,
 * so a forbid that can never apply passes for one that does.
 */
export function HiddenCharacters({ id, text }: { id: string; text: string }) {
  const lines = text.split('\n').flatMap((line, i) => {
    const plain = line.replace(ORDINARY, ' ');
    const shown = visible(plain);
    const foreign = lookAlikes(plain);
    return shown === plain && foreign.length === 0 ? [] : [{ number: i + 1, shown, foreign }];
  });
  if (lines.length === 0) return null;
  return (
    <div id={id} className="error hidden-characters">
      These lines hold characters that draw nothing, reorder the text, or lie beyond ASCII and can pass for other letters; as they really read:
      <ul>
        {lines.map((line) => (
          <li key={line.number} className="mono">
            {line.number}: {line.shown}
            {line.foreign.length > 0 && ` — beyond ASCII: ${line.foreign.join(', ')}`}
          </li>
        ))}
      </ul>
    </div>
  );
}
