// How many approvals wait, for the navigation: from the gateway's status,
// fetched again every 10 s, whenever the tab comes back into view, and when
// the approvals page says the list changed.
import { useEffect, useState } from 'react';
import { api } from '../api/client.ts';

const EVERY_MS = 10_000;
const CHANGED = 'corral:approvals-changed';

/** Tells the navigation's count to look again (an approval was requested or resolved). */
export function approvalsChanged(): void {
  window.dispatchEvent(new Event(CHANGED));
}

export function usePendingCount(enabled: boolean): number {
  const [count, setCount] = useState(0);
  useEffect(() => {
    if (!enabled) return;
    let current = true;
    const refresh = () => {
      if (document.visibilityState === 'hidden') return;
      api.status().then(
        (status) => current && setCount(status.approvals.pending),
        () => {},
      );
    };
    refresh();
    const timer = setInterval(refresh, EVERY_MS);
    document.addEventListener('visibilitychange', refresh);
    window.addEventListener(CHANGED, refresh);
    return () => {
      current = false;
      clearInterval(timer);
      document.removeEventListener('visibilitychange', refresh);
      window.removeEventListener(CHANGED, refresh);
    };
  }, [enabled]);
  return count;
}
