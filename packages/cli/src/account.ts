// The system account running corral, as records and approvals name it.
import { userInfo } from 'node:os';

/**
 * The account's name, or `uid<N>` for a user id with no passwd entry (a
 * container run under an arbitrary uid), where userInfo() throws.
 */
export function accountName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid${process.getuid?.() ?? 'unknown'}`;
  }
}
