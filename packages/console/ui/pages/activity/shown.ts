// What live activity shows: events newest first, each sequence number once,
// and where Older goes on from. The stream adds to it for as long as the page
// is open, so past MAX_SHOWN each new event pushes the oldest out: a page left
// open for days must not grow its table, and the work each event costs, without end.
import type { ActivityEvent } from '../../api/types.ts';

export interface Shown {
  events: ActivityEvent[];
  /** The `before` of the next older page; null when nothing older is left. */
  nextBefore: number | null;
}

/** Most events the stream keeps on the page (pages asked for with Older are kept whole). */
export const MAX_SHOWN = 1000;

/** Newest first, each sequence number once. */
export function merge(newer: ActivityEvent[], older: ActivityEvent[]): ActivityEvent[] {
  const seen = new Set<number>();
  const out: ActivityEvent[] = [];
  for (const event of [...newer, ...older]) {
    if (seen.has(event.seq)) continue;
    seen.add(event.seq);
    out.push(event);
  }
  return out.sort((a, b) => b.seq - a.seq);
}

/** One event from the stream added; an event pushed out is older than all kept, so Older goes on from the oldest kept and finds it again. */
export function addLive(shown: Shown, event: ActivityEvent): Shown {
  const events = merge([event], shown.events);
  const room = Math.max(MAX_SHOWN, shown.events.length);
  if (events.length <= room) return { events, nextBefore: shown.nextBefore };
  const kept = events.slice(0, room);
  return { events: kept, nextBefore: kept.at(-1)!.seq };
}
