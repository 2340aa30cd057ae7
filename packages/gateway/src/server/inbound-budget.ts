// What one authenticated peer may send: the largest frame its kind of peer
// has reason to send, a byte budget and a frame budget over time, counted on
// the raw socket as bytes arrive and as ws delivers frames. A frame past the largest is cut off before ws
// buffers the rest of it or the gateway parses any of it; a peer past its
// budget is held off (its socket is not read until the budget refills), and
// cut off only when it is held off for longer than maxHeldOffMs in a row.
import { MAX_PAYLOAD_BYTES } from '../protocol/limits.ts';
import { TokenBucket } from './token-bucket.ts';

/** Which limits a peer gets: an operator connection carrying an agent token is an agent. */
export type PeerKind = 'operator' | 'agent' | 'node';

export interface InboundLimits {
  /** The largest frame, in bytes (hello-ok's `policy.maxPayload` for this peer). */
  maxPayload: number;
  /** Bytes a second the budget refills by. */
  bytesPerSecond: number;
  /** Bytes the budget holds when full; at least maxPayload, so the largest frame always fits a full budget. */
  burstBytes: number;
  /** Frames (messages, pings, pongs) a second the frame budget refills by. */
  framesPerSecond: number;
  /** Frames the frame budget holds when full: how many the gateway handles of this peer at once, however small. */
  burstFrames: number;
  /**
   * How long a peer may be held off in a row (every read of its socket past
   * its budget, each followed by a wait for the budget to refill) before it
   * is cut off, in milliseconds.
   */
  maxHeldOffMs: number;
}

/**
 * Corral's default limits per kind of peer.
 * - node: its largest frame is `node.invoke.result` of a `system.run`, stdout
 *   and stderr of at most OUTPUT_CAP (200,000) bytes each (packages/node
 *   host.ts), JSON-escaped twice (payloadJSON inside the frame): at worst 7
 *   bytes a byte of output, 2.8 MB; 4 MiB holds that with room for the rest.
 * - agent: `node.invoke` with an argv of at most 128 KiB (exec/canonical.ts)
 *   and its environment, escaped; 1 MiB.
 * - operator: the upstream 25 MiB, for what operators upload.
 * A full budget holds at least two of the largest frames, a node's the
 * results of its 32 runs (MAX_RUNS in packages/node) finishing at once at
 * 1 MiB each; it refills
 * at a rate that keeps parsing one peer's frames to a few per cent of the
 * event loop (JSON.parse takes about 1.3 ms a MiB).
 * A peer past its budget is read only as fast as its budget refills (TCP
 * then slows its sender), and cut off once that has gone on for 30 s in a
 * row: twice what a node's worst burst needs, 32 results of 2.8 MB at once
 * (90 MB: 32 MiB at once, the rest at 4 MiB/s, about 14 s).
 *
 * Frames are budgeted on their own, since what the gateway does for a frame
 * however small (see FRAME_COST_BYTES) is what a burst of small ones costs:
 * a node's 32 MiB held 32,768 frames of the least cost, handled at once,
 * which took the event loop from every other connection for about half a
 * second. The frame budgets refill at the rate the byte budgets already
 * allow small frames (bytesPerSecond / FRAME_COST_BYTES), and hold at once
 * what a peer of that kind has reason to send together:
 * - node: 1,024. What a node sends unasked in a burst is its answers: to
 *   the invokes it was sent (at most MAX_IN_FLIGHT, 64, from each operator
 *   or agent connection, its 32 runs among them), each a result, perhaps an
 *   exec.finished event, and node.invoke.progress chunks; with its pongs,
 *   a few hundred frames at worst.
 * - agent: 256. Its requests in flight are held to MAX_IN_FLIGHT (64) a
 *   connection; four times that. An agent's connections draw on one byte
 *   and one frame budget together (InboundBudgets).
 * - operator: 1,024. Its requests too are held to 64 in flight; a console
 *   or a CLI that sends a page of them at once, many times over.
 * A peer past its frame budget is held off as one past its byte budget is.
 */
export const INBOUND_LIMITS: Readonly<Record<PeerKind, Readonly<InboundLimits>>> = {
  node: { maxPayload: 4 * 1024 * 1024, bytesPerSecond: 4 * 1024 * 1024, burstBytes: 32 * 1024 * 1024, framesPerSecond: 4_096, burstFrames: 1_024, maxHeldOffMs: 30_000 },
  agent: { maxPayload: 1024 * 1024, bytesPerSecond: 1024 * 1024, burstBytes: 2 * 1024 * 1024, framesPerSecond: 1_024, burstFrames: 256, maxHeldOffMs: 30_000 },
  operator: { maxPayload: MAX_PAYLOAD_BYTES, bytesPerSecond: 8 * 1024 * 1024, burstBytes: 2 * MAX_PAYLOAD_BYTES, framesPerSecond: 8_192, burstFrames: 1_024, maxHeldOffMs: 30_000 },
};

/**
 * What a frame costs of a peer's budget at the least, in bytes: what the
 * gateway does for each frame however small (ws's framing, JSON.parse, the
 * frame's and the params' validation, dispatch, an answer, a log line) costs
 * as much as parsing several KiB of JSON. Counted by their bytes alone,
 * 50-byte requests fit a node's 4 MiB/s at some 80,000 a second, and took
 * the whole event loop from every other connection; at 1 KiB, a node's
 * budget refills for 4,096 frames a second, an agent's for 1,024, an
 * operator's for 8,192, a few per cent of the event loop.
 */
export const FRAME_COST_BYTES = 1024;

/** Room for a header and one socket read (64 KiB) beyond the largest frame, so the check never cuts a frame that fits. */
const READ_SLACK = 64 * 1024 + 1024;

/** The bytes of a client frame's header (RFC 6455 §5.2): 2, the extended length, the 4-byte mask. */
function headerBytes(payload: number): number {
  return 2 + 4 + (payload < 126 ? 0 : payload < 65_536 ? 2 : 8);
}

/** Why the meter refused the bytes that arrived: a frame past maxPayload, or a peer held off for longer than maxHeldOffMs in a row. */
export type InboundRefusal = 'frame-too-large' | 'held-off-too-long';

/**
 * Meters one connection's inbound bytes and frames. `arrived` is called with
 * each raw socket read after ws has taken it (so frames it completed were
 * already `delivered`); the bytes not yet delivered are the frame still
 * arriving. A read past either budget holds the peer off: its socket is to
 * be read again only after `holdMs`, when both budgets have refilled.
 */
/**
 * The byte and frame budgets a connection draws on: its own, or those every
 * connection of one agent draws on together (InboundMeter.limit), since one
 * agent token holds MAX_AGENT_CONNECTIONS connections, and a budget each
 * let it have that many times its kind's share of the event loop.
 */
export interface InboundBudgets {
  bytes: TokenBucket;
  frames: TokenBucket;
}

/** Budgets of `limits`, full. */
export function inboundBudgets(limits: Readonly<InboundLimits>, now: () => number): InboundBudgets {
  return { bytes: new TokenBucket(limits.bytesPerSecond, limits.burstBytes, now), frames: new TokenBucket(limits.framesPerSecond, limits.burstFrames, now) };
}

export class InboundMeter {
  #limits: Readonly<InboundLimits>;
  #budget: TokenBucket;
  #frames: TokenBucket;
  readonly #now: () => number;
  #arrived = 0;
  #delivered = 0;
  #holdMs = 0;
  /** When the peer's present run of reads past its budget began, and when it was last held off. */
  #heldOffSince: number | undefined;
  #heldOffAt: number | undefined;

  constructor(limits: Readonly<InboundLimits>, now: () => number) {
    this.#limits = limits;
    this.#now = now;
    this.#budget = new TokenBucket(limits.bytesPerSecond, limits.burstBytes, now);
    this.#frames = new TokenBucket(limits.framesPerSecond, limits.burstFrames, now);
  }

  get limits(): Readonly<InboundLimits> {
    return this.#limits;
  }

  /**
   * Puts the connection under other limits (its kind's, once it is
   * authenticated), with full budgets of its own, or drawing on `shared`
   * (budgets of the same limits) as they are: a connection joining them
   * refills nothing.
   */
  limit(limits: Readonly<InboundLimits>, shared?: InboundBudgets): void {
    this.#limits = limits;
    if (shared !== undefined) {
      this.#budget = shared.bytes;
      this.#frames = shared.frames;
    } else {
      this.#budget.reset(limits.bytesPerSecond, limits.burstBytes);
      this.#frames.reset(limits.framesPerSecond, limits.burstFrames);
    }
    this.#holdMs = 0;
    this.#heldOffSince = undefined;
    this.#heldOffAt = undefined;
  }

  /** How long, after the last read, to read nothing more from the peer (ms): until both its budgets are back to zero. */
  get holdMs(): number {
    return this.#holdMs;
  }

  /** Whether the peer was held off at `since` or after (its pongs may wait behind what it sent). */
  heldOffSince(since: number): boolean {
    return this.#heldOffAt !== undefined && this.#heldOffAt >= since;
  }

  /**
   * A frame (a message, a ping or a pong) of `bytes` payload that ws
   * delivered: one of the frame budget. One smaller than FRAME_COST_BYTES is
   * charged the difference of the byte budget as well: the read it came in
   * (`arrived`, next) finds the budgets that much lower.
   */
  delivered(bytes: number): void {
    const size = headerBytes(bytes) + bytes;
    this.#frames.spend(1);
    this.#delivered += size;
    if (size < FRAME_COST_BYTES) this.#budget.spend(FRAME_COST_BYTES - size);
  }

  /**
   * Continuation frames that arrived (FrameScanner), which ws delivers as
   * part of their message: each is one of the frame budget, the message
   * itself (`delivered`) counting as its first frame. Called before
   * `arrived` with the read they came in.
   */
  continued(frames: number): void {
    if (frames > 0) this.#frames.spend(frames);
  }

  /**
   * Counts a raw read of `bytes`; returns why it is refused, or undefined
   * (then `holdMs` says how long to wait before reading on). A run of reads
   * past either budget ends at the first read within both; it is refused
   * once it, with the wait it now needs, would last longer than maxHeldOffMs.
   */
  arrived(bytes: number): InboundRefusal | undefined {
    const now = this.#now();
    this.#arrived += bytes;
    const left = this.#budget.spend(bytes);
    const framesLeft = this.#frames.spend(0);
    // Every byte read is counted by now, so more delivered than arrived is a miscount: it must never lend a peer room.
    if (this.#delivered > this.#arrived) this.#delivered = this.#arrived;
    if (this.#arrived - this.#delivered > this.#limits.maxPayload + READ_SLACK) return 'frame-too-large';
    if (left >= 0 && framesLeft >= 0) {
      this.#holdMs = 0;
      this.#heldOffSince = undefined;
      return undefined;
    }
    this.#heldOffSince ??= now;
    this.#heldOffAt = now;
    this.#holdMs = Math.max(Math.ceil((Math.max(0, -left) * 1000) / this.#limits.bytesPerSecond), Math.ceil((Math.max(0, -framesLeft) * 1000) / this.#limits.framesPerSecond));
    if (now - this.#heldOffSince + this.#holdMs > this.#limits.maxHeldOffMs) return 'held-off-too-long';
    return undefined;
  }
}

/**
 * Follows the frames of a client's byte stream (RFC 6455 §5.2) by their
 * headers alone, and counts the continuation frames (opcode 0) among them:
 * ws delivers a message sent in fragments as one message, at its last, so
 * the gateway sees no event for the others, and a peer could otherwise send
 * 16,384 fragments of a byte each per message (ws's bound), each taken and
 * buffered by ws, a frame budget counting only one of them.
 * It reads only the bytes of each header, and skips each payload by its
 * length; ws itself refuses a stream whose frames break the RFC.
 */
export class FrameScanner {
  /** Payload bytes of the present frame still to skip. */
  #skip = 0;
  /** Bytes of a header that began in an earlier read. */
  readonly #head: number[] = [];

  /** The continuation frames whose headers end in this read (in order, after every read before it). */
  continuations(chunk: Buffer): number {
    let count = 0;
    let at = 0;
    while (at < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      this.#head.push(chunk[at]!);
      at += 1;
      if (this.#head.length < 2) continue;
      const length7 = this.#head[1]! & 0x7f;
      const extended = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
      const masked = (this.#head[1]! & 0x80) !== 0;
      if (this.#head.length < 2 + extended + (masked ? 4 : 0)) continue;
      let payload = length7;
      if (extended > 0) {
        payload = 0;
        for (let i = 2; i < 2 + extended; i++) payload = payload * 256 + this.#head[i]!;
      }
      if ((this.#head[0]! & 0x0f) === 0) count += 1;
      this.#head.length = 0;
      this.#skip = payload;
    }
    return count;
  }
}

/** Checks configured limits; returns the name of the first bad one, or undefined. */
export function badInboundLimits(limits: Readonly<InboundLimits>): string | undefined {
  for (const [name, value] of Object.entries(limits)) if (!Number.isSafeInteger(value) || value < 1) return name;
  if (limits.burstBytes < limits.maxPayload) return 'burstBytes';
  return undefined;
}
