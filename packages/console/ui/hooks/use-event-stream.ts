// Server-sent events from the gateway. EventSource reconnects by itself and
// sends Last-Event-ID, so a dropped connection resumes where it stopped.
import { useEffect, useRef, useState } from 'react';

export type StreamState = 'connecting' | 'open' | 'reconnecting';

/**
 * Opens `url` (null: nothing) and calls `onEvent` with each `event: NAME`
 * message's parsed data. Messages whose data is not JSON are skipped.
 */
export function useEventStream<T>(url: string | null, name: string, onEvent: (data: T) => void): StreamState {
  const [state, setState] = useState<StreamState>('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;

  useEffect(() => {
    if (url === null) return;
    setState('connecting');
    const source = new EventSource(url, { withCredentials: true });
    source.onopen = () => setState('open');
    source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'connecting' : 'reconnecting');
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
      source.removeEventListener(name, listener);
      source.close();
    };
  }, [url, name]);

  return state;
}
