import { CST, Lexer } from 'yaml';

/** Where YAML text first goes past a limit, and which: 1-based line and column. */
export interface PastLimit {
  limit: 'depth' | 'tokens';
  line: number;
  column: number;
}

/**
 * Where `text` first nests more than `max.depth` nodes deep (flow `[`/`{`, block
 * collections by their indentation or their `- `, `? `, `: ` on one line),
 * or holds more than `max.tokens` tokens (names, values, punctuation, spaces,
 * comments, line breaks), or undefined when it does neither. Read from the YAML
 * library's lexer, which is linear, and stopped there: its parser slows with
 * depth (1 MiB of `[` took 10 s) and with length (a flow list of 350,000 items,
 * 10 s), and its composer recurses until the stack overflows.
 *
 * A block node's depth is counted as the columns it is nested under: a
 * sequence written at its mapping key's own column counts with it, so a
 * count is at most the depth and at least half of it.
 */
export function yamlPastLimit(text: string, max: { depth: number; tokens: number }): PastLimit | undefined {
  const columns: number[] = [];
  let flow = 0;
  let line = 1;
  let column = 0;
  // The next token starts a node: the first on a line, or the one after a block indicator.
  let startsNode = true;
  let scalarNext = false;
  let tokens = 0;
  for (const token of new Lexer().lex(text)) {
    if (++tokens > max.tokens) return { limit: 'tokens', line, column: column + 1 };
    const type: string | null = scalarNext ? 'scalar-source' : CST.tokenType(token);
    scalarNext = type === 'scalar';
    switch (type) {
      case 'byte-order-mark':
      case 'doc-mode':
      case 'flow-error-end':
      case 'scalar':
        // The lexer's own marks, not in the text.
        continue;
      case 'doc-start':
      case 'doc-end':
        columns.length = 0;
        flow = 0;
        break;
      case 'space':
      case 'comment':
      case 'newline':
      case 'anchor':
      case 'tag':
        break;
      default:
        if (flow === 0 && startsNode) {
          while (columns.length > 0 && columns.at(-1)! > column) columns.pop();
          if (columns.length === 0 || columns.at(-1)! < column) columns.push(column);
        }
        if (type === 'flow-seq-start' || type === 'flow-map-start') flow++;
        else if ((type === 'flow-seq-end' || type === 'flow-map-end') && flow > 0) flow--;
        if (columns.length + flow > max.depth) return { limit: 'depth', line, column: column + 1 };
    }
    startsNode = type === 'newline' || (flow === 0 && (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind')) || (startsNode && (type === 'space' || type === 'anchor' || type === 'tag'));
    const lastBreak = token.lastIndexOf('\n');
    if (lastBreak === -1) {
      column += token.length;
    } else {
      for (let at = token.indexOf('\n'); at !== -1; at = token.indexOf('\n', at + 1)) line++;
      column = token.length - lastBreak - 1;
    }
  }
  return undefined;
}
