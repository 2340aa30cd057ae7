// What the gateway holds unread for one principal across its connections:
// one agent token may open MAX_AGENT_CONNECTIONS connections, and each that
// reads nothing could leave maxBufferedBytes in the gateway's memory, so the
// bound per connection alone let one credential pin sixteen times as much.
import type { Connection } from './connection.ts';

/** Why a connection is cut off for its principal (its `closed` line's reason). */
export const PRINCIPAL_BACKLOG_REASON = "slow consumer: its principal's connections left too much unread";

/** The connections of one principal, and what they may leave unread together. */
export class PrincipalBacklog {
  readonly #limit: number;
  readonly #members = new Set<Connection>();

  /** `limit`: the bytes this principal's connections may together leave unread (maxBufferedBytes). */
  constructor(limit: number) {
    this.#limit = limit;
  }

  add(connection: Connection): void {
    this.#members.add(connection);
  }

  /** Takes `connection` out; returns whether the principal has none left. */
  delete(connection: Connection): boolean {
    this.#members.delete(connection);
    return this.#members.size === 0;
  }

  /**
   * Before a frame is written to `sender`: while the principal's connections
   * together leave more than the limit unread, the one leaving most is cut
   * off (Connection.cutOff, which frees what it held at once). Returns
   * whether `sender` may still be written to.
   */
  admit(sender: Connection): boolean {
    for (;;) {
      let total = 0;
      let largest: Connection | undefined;
      for (const member of this.#members) {
        const unread = member.socket.bufferedAmount;
        total += unread;
        if (largest === undefined || unread > largest.socket.bufferedAmount) largest = member;
      }
      if (total <= this.#limit || largest === undefined) return true;
      this.#members.delete(largest);
      largest.cutOff(PRINCIPAL_BACKLOG_REASON);
      if (largest === sender) return false;
    }
  }
}
