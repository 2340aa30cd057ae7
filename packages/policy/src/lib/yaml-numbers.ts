import { isScalar, visit, type Document, type LineCounter } from 'yaml';
import { inexactNumberMessage } from './json.ts';

/**
 * The first number `doc` holds (a key or a value) that is not an integer
 * within ±(2^53 − 1) written in decimal digits alone, with its 1-based line
 * and column and why, or undefined: what misreadJson finds in JSON, for
 * YAML. The YAML library rounds a larger integer as JSON.parse does, reads
 * 1.0, 1e2 and 0x10 as integers, and under `%YAML 1.1` reads 010 as 8 and
 * 1_000 as 1000.
 */
export function misreadYamlNumber(doc: Document, lines: LineCounter): { line: number; column: number; message: string } | undefined {
  let found: { line: number; column: number; message: string } | undefined;
  visit(doc, {
    Scalar(_, node) {
      if (!isScalar(node) || typeof node.value !== 'number') return undefined;
      const source = node.source ?? String(node.value);
      if (/^[-+]?\d+$/.test(source) && Number.isSafeInteger(node.value) && node.value === Number(source)) return undefined;
      const at = lines.linePos(node.range ? node.range[0] : 0);
      found = { line: at.line, column: at.col, message: inexactNumberMessage(source) };
      return visit.BREAK;
    },
  });
  return found;
}
