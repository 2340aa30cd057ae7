// Every decision as it happens: the latest page of activity, then each new
// record from the gateway's event stream, filtered by agent, node and effect.
import { useCallback, useEffect, useState } from 'react';
import { api } from '../../api/client.ts';
import type { ActivityEvent, ActivityFilter } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { EventTable } from '../../common/EventTable.tsx';
import { useEventStream } from '../../hooks/use-event-stream.ts';
import { ActivityFilters } from './ActivityFilters.tsx';
import { addLive, merge, type Shown } from './shown.ts';

const NOTHING: Shown = { events: [], nextBefore: null };

export function Activity() {
  const [filter, setFilter] = useState<ActivityFilter>({ agent: '', node: '', effect: '' });
  const [shown, setShown] = useState<Shown>(NOTHING);
  const { events, nextBefore } = shown;
  const [error, setError] = useState<Error>();
  const [ready, setReady] = useState(false);

  const onRecord = useCallback((event: ActivityEvent) => setShown((now) => addLive(now, event)), []);
  const stream = useEventStream<ActivityEvent>(api.activityStreamUrl(filter), 'record', onRecord);
  const live = stream === 'open';

  // The latest page is fetched when the filter changes and again each time the
  // stream (re)opens: whatever happened before the stream was listening is in
  // that page, so nothing falls between the two.
  useEffect(() => {
    let current = true;
    api.activity(filter).then(
      (page) => {
        if (!current) return;
        setShown((now) => ({ events: merge(now.events, page.items), nextBefore: now.nextBefore ?? page.nextBefore }));
        setError(undefined);
        setReady(true);
      },
      (failure: Error) => current && setError(failure),
    );
    return () => {
      current = false;
    };
  }, [filter, live]);

  function changeFilter(next: ActivityFilter) {
    setShown(NOTHING);
    setReady(false);
    setFilter(next);
  }

  async function older() {
    if (nextBefore === null) return;
    try {
      const page = await api.activity(filter, nextBefore);
      setShown((now) => ({ events: merge(now.events, page.items), nextBefore: page.nextBefore }));
    } catch (failure) {
      setError(failure as Error);
    }
  }

  return (
    <section aria-labelledby="activity-title">
      <div className="page-head">
        <h1 id="activity-title">Live activity</h1>
        <span className={`stream stream-${stream}`} role="status" aria-live="polite">
          {stream === 'open' ? 'live' : stream}
        </span>
      </div>
      <ActivityFilters value={filter} onChange={changeFilter} />
      <ErrorNote error={error} />
      {ready && events.length === 0 ? <p className="muted">No activity matches.</p> : <EventTable events={events} caption="Activity, newest first" />}
      {nextBefore !== null && (
        <button type="button" onClick={older}>
          Older
        </button>
      )}
    </section>
  );
}
