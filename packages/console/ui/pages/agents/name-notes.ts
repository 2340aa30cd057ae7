// What makes a node's name read as another node's. A node chooses its own
// name, so a second "runner-1", or one spelled with a Cyrillic е, passes for
// the runner-1 already paired: in a pairing request, and in the list of nodes
// an admin revokes from.
import type { NodeEntry } from '../../api/types.ts';
import { lookAlikes, oddSpaces, visible } from '../../format.ts';

/**
 * Each other node of `node`'s exact name, named by the start of its id and its
 * state; then the characters beyond ASCII in the name and the spaces that do
 * not show (`nodes`: every node known, `node` itself among them or not).
 */
export function nameNotes(node: { nodeId: string; displayName: string }, nodes: readonly NodeEntry[]): string[] {
  const namesakes = nodes.filter((n) => n.nodeId !== node.nodeId && n.displayName === node.displayName);
  return [
    ...namesakes.map((n) => `another node is named ${visible(n.displayName)} (${n.nodeId.slice(0, 16)}, ${n.status ?? (n.paired ? 'paired' : 'not paired')})`),
    ...lookAlikes(node.displayName),
    ...oddSpaces(node.displayName),
  ];
}
