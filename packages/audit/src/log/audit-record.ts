// A record as callers see it: what append() resolves with and what the
// readers return.
import { recordBytes } from '../record/envelope.ts';
import type { AuditEvent } from '../record/event.ts';

export interface AuditRecord {
  seq: number;
  prev: string;
  /** Leaf hash: SHA-256(0x00 || record bytes), hex. */
  hash: string;
  event: AuditEvent;
  /** The record's canonical bytes (what `hash` covers, after the 0x00 prefix). */
  canonical: string;
}

/**
 * An AuditRecord that puts its canonical bytes together when asked for them.
 * Few callers want them, and every string kept alive with a record until its
 * caller lets go is work for the garbage collector: built eagerly, they cost
 * about a fifth of the CPU time per append with 2,000 appends in flight
 * (19–21 against 15–18 µs, alternating runs).
 */
export class LogRecord implements AuditRecord {
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
  readonly event: AuditEvent;
  /** Canonical JSON of `event`. */
  readonly #body: string;

  constructor(seq: number, prev: string, hash: string, event: AuditEvent, body: string) {
    this.seq = seq;
    this.prev = prev;
    this.hash = hash;
    this.event = event;
    this.#body = body;
  }

  get canonical(): string {
    return recordBytes(this.seq, this.prev, this.#body);
  }

  /** Every member, `canonical` included, as a plain object would have them. */
  toJSON(): AuditRecord {
    return { seq: this.seq, prev: this.prev, hash: this.hash, event: this.event, canonical: this.canonical };
  }
}
