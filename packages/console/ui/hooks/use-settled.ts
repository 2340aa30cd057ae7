// Whether something on screen has stayed as it is for a moment: a button that
// just slid under the pointer is not clicked by a click meant for another, nor
// is one whose window just came to the front under the pointer (another
// site's window over the console, closed on the first click of a double
// click, hands the second click to whatever lies beneath it).
import { useEffect, useState } from 'react';

/** How many times this window has gained the focus or changed visibility since the page loaded. */
function useTimesShown(): number {
  const [times, setTimes] = useState(0);
  useEffect(() => {
    const shown = () => setTimes((n) => n + 1);
    window.addEventListener('focus', shown);
    document.addEventListener('visibilitychange', shown);
    return () => {
      window.removeEventListener('focus', shown);
      document.removeEventListener('visibilitychange', shown);
    };
  }, []);
  return times;
}

/** False for `ms` after `key` first appears or changes, and after the window comes to the front; then true. */
export function useSettled(key: string, ms: number): boolean {
  const current = `${useTimesShown()} ${key}`;
  const [settled, setSettled] = useState<string>();
  useEffect(() => {
    const timer = setTimeout(() => setSettled(current), ms);
    return () => clearTimeout(timer);
  }, [current, ms]);
  return settled === current;
}
