// Text a gateway chose (its error codes and messages) on its way into what
// the node reports: to a log, a status line, a terminal.

/** C0/C1 controls (escape sequences among them), DEL, bidi and other format characters, separators but the space, unassigned and private-use code points. */
const HIDDEN = /(?! )[\p{C}\p{Z}]/gu;

/**
 * `text`, at most `max` characters of it, on one line with every HIDDEN
 * character written as its `\uXXXX` escape: a hostile gateway's message must
 * not move a terminal's cursor, retitle its window or start a line that looks
 * like the node's own.
 */
export function shown(text: string, max: number): string {
  return text.slice(0, max).replace(HIDDEN, (c) => {
    const code = c.codePointAt(0)!.toString(16);
    return code.length <= 4 ? `\\u${code.padStart(4, '0')}` : `\\u{${code}}`;
  });
}
