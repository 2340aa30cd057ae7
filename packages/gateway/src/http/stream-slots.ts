// Room for the live activity streams the gateway holds open. Each holds a
// socket, a listener on every new record, a timer and up to 4 MiB unsent, so
// one holder (a signed-in human, or the gateway token) holds at most
// `perHolder` and all of them at most `total`. A stream is never refused:
// room is made by ending the oldest stream of the holder past their share —
// their own when they hold `perHolder` (a tab left open, a socket whose
// client is gone), else, when all are taken, one of whoever holds the most
// — so no one holding many keeps a human holding fewer from their feed.
// An EventSource whose stream ends reconnects and resumes with its last id.

interface Slot {
  holder: string;
  end: () => void;
}

export class StreamSlots {
  readonly #perHolder: number;
  readonly #total: number;
  /** Every stream holding a slot, oldest first. */
  readonly #slots = new Set<Slot>();
  readonly #held = new Map<string, number>();

  /** Throws nothing; both limits must be at least 1. */
  constructor(perHolder: number, total: number) {
    this.#perHolder = perHolder;
    this.#total = total;
  }

  /** Streams holding a slot now. */
  get size(): number {
    return this.#slots.size;
  }

  /**
   * A slot for a new stream of `holder`, made by ending another stream when
   * needed (see above); `end` closes this one should it be chosen later.
   * Answers the release, to call once the stream has closed (again is harmless).
   */
  take(holder: string, end: () => void): () => void {
    if ((this.#held.get(holder) ?? 0) >= this.#perHolder) this.#evict(holder);
    else if (this.#slots.size >= this.#total) this.#evict(this.#largestHolder());
    const slot: Slot = { holder, end };
    this.#slots.add(slot);
    this.#held.set(holder, (this.#held.get(holder) ?? 0) + 1);
    return () => this.#release(slot);
  }

  /** Whoever holds the most slots; among equals, the one holding the oldest. */
  #largestHolder(): string {
    const most = Math.max(...this.#held.values());
    for (const slot of this.#slots) if (this.#held.get(slot.holder) === most) return slot.holder;
    return '';
  }

  /** Ends the oldest stream of `holder`. */
  #evict(holder: string): void {
    for (const slot of this.#slots) {
      if (slot.holder !== holder) continue;
      this.#release(slot);
      slot.end();
      return;
    }
  }

  #release(slot: Slot): void {
    if (!this.#slots.delete(slot)) return;
    const left = (this.#held.get(slot.holder) ?? 1) - 1;
    if (left > 0) this.#held.set(slot.holder, left);
    else this.#held.delete(slot.holder);
  }
}
