import { isMap, isNode, isScalar, visit, type Document, type LineCounter } from 'yaml';

/** A key written a second time in one mapping: where (1-based), and the line of its first. */
export interface RepeatedKey {
  key: string;
  line: number;
  column: number;
  firstLine: number;
}

/**
 * The first key `doc` writes twice in one mapping, compared as the text an
 * object read from it is keyed by (`1` and "1" are one key), or undefined.
 * One pass over each mapping, with a set: the YAML library's own check
 * weighs each key against every other (40,000 keys took 27 s).
 */
export function repeatedKey(doc: Document, lines: LineCounter): RepeatedKey | undefined {
  let found: RepeatedKey | undefined;
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return undefined;
      const seen = new Map<string, number>();
      for (const { key } of map.items) {
        const at = lines.linePos(isNode(key) && key.range ? key.range[0] : 0);
        const name = String(isScalar(key) ? key.value : key);
        const firstLine = seen.get(name);
        if (firstLine === undefined) {
          seen.set(name, at.line);
          continue;
        }
        found = { key: name, line: at.line, column: at.col, firstLine };
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}
