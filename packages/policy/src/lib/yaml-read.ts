import { Composer, Parser, YAMLParseError, type Document, type DocumentOptions, type LineCounter, type ParseOptions, type SchemaOptions } from 'yaml';

/** The first document of YAML text, and how many stray tokens past the bound were counted rather than read. */
export interface ReadYaml {
  doc: Document;
  /** Tokens outside any document (each an error: a run of `}`) past `maxStrayErrors`, left out of `doc.errors`. */
  strayErrorsLeftOut: number;
}

/**
 * Reads the first YAML document of `text` as the YAML library's `parseDocument` does (a second document is an
 * error), but in time linear in the text however broken it is:
 * - its errors are made without a stack: it makes one at each token it cannot place, and 130,000 stacks (a run
 *   of `}`) took seconds of CPU where only their messages and places are read;
 * - stray tokens outside any document past `maxStrayErrors` are counted, not handed to its composer, which takes
 *   microseconds over each (a run of 130,000 `}` spent up to 900 ms there);
 * - its messages are never "prettified" with the line they are on: that copies the whole line for each error,
 *   and 100,000 `}` on one line took 45 s. Places come from `lines`.
 */
export function readYamlDocument(text: string, lines: LineCounter, options: ParseOptions & DocumentOptions & SchemaOptions, maxStrayErrors: number): ReadYaml {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    let strays = 0;
    let strayErrorsLeftOut = 0;
    let documents = 0;
    // Past the first document, a directive starts the next one: tokens that cannot be placed from there on are that
    // document's, refused whole with it, never counted (parseDocument drops its errors). The first still marks where it starts.
    let nextPrelude = false;
    let preludeErrors = 0;
    const tokens = function* () {
      for (const token of new Parser(lines.addNewLine).parse(text)) {
        if (token.type === 'directive' && documents === 1) nextPrelude = true;
        if (token.type === 'error' && nextPrelude) {
          if (++preludeErrors > 1) continue;
        } else if (token.type === 'error' && ++strays > maxStrayErrors) {
          strayErrorsLeftOut++;
          continue;
        }
        yield token;
        // What follows a second document is its own, and that document is refused whole.
        if (token.type === 'document' && ++documents === 2) return;
      }
    };
    let doc: Document | undefined;
    // The composer always ends with a document, an empty one for empty text.
    for (const next of new Composer({ ...options, prettyErrors: false }).compose(tokens(), true, text.length)) {
      if (doc === undefined) {
        doc = next;
        continue;
      }
      doc.errors.push(new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', 'a second document starts here (after --- or ...); the file holds one'));
      break;
    }
    return { doc: doc!, strayErrorsLeftOut };
  } finally {
    Error.stackTraceLimit = limit;
  }
}
