// A node's device id (64 hex digits, a SHA-256) as every corral command shows it.

/** How many hex digits of a device id are shown: 64 bits, which no two nodes of a fleet share in practice. */
export const SHOWN_NODE_ID_DIGITS = 16;

/**
 * The first SHOWN_NODE_ID_DIGITS digits of `deviceId`: one length in every
 * listing and message, so the node a line names is found in another, and
 * what `corral nodes pair|agents|reject|revoke` take as its prefix (8 digits
 * or more).
 */
export function shownNodeId(deviceId: string): string {
  return deviceId.slice(0, SHOWN_NODE_ID_DIGITS);
}
