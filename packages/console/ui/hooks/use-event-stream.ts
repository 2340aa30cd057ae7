// Server-sent events from the gateway. EventSource reconnects by itself and
// sends Last-Event-ID, so a dropped connection resumes where it stopped. When
// the gateway refuses the stream outright (the session ended: 401), the
// browser gives up; the hook then asks whether the session is still there
// (which signs the console out if not) and opens the stream again.
import { useEffect, useRef, useState } from 'react';
import { api } from '../api/client.ts';

export type StreamState = 'connecting' | 'open' | 'reconnecting';

const REOPEN_MS = 3_000;

/**
 * Opens `url` (null: nothing) and calls `onEvent` with each `event: NAME`
 * message's parsed data. Messages whose data is not JSON are skipped.
 */
export function useEventStream<T>(url: string | null, name: string, onEvent: (data: T) => void): StreamState {
  const [state, setState] = useState<StreamState>('connecting');
  const [attempt, setAttempt] = useState(0);
  const handler = useRef(onEvent);
  handler.current = onEvent;

  useEffect(() => {
    if (url === null) return;
    setState('connecting');
    let reopen: ReturnType<typeof setTimeout> | undefined;
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => setState('open');
    source.onerror = () => {
      setState('reconnecting');
      if (source.readyState !== EventSource.CLOSED || reopen !== undefined) return;
      void api.session().catch(() => {});
      reopen = setTimeout(() => setAttempt((n) => n + 1), REOPEN_MS);
    };
    const listener = (message: MessageEvent<string>) => {
      let data: T;
      try {
        data = JSON.parse(message.data) as T;
      } catch {
        return;
      }
      handler.current(data);
    };
    source.addEventListener(name, listener);
    return () => {
      clearTimeout(reopen);
      source.removeEventListener(name, listener);
      source.close();
    };
  }, [url, name, attempt]);

  return state;
}
