// Whether something on screen has stayed as it is for a moment: a button that
// just slid under the pointer is not clicked by a click meant for another.
import { useEffect, useState } from 'react';

/** False for `ms` after `key` first appears or changes, then true. */
export function useSettled(key: string, ms: number): boolean {
  const [settled, setSettled] = useState<string>();
  useEffect(() => {
    const timer = setTimeout(() => setSettled(key), ms);
    return () => clearTimeout(timer);
  }, [key, ms]);
  return settled === key;
}
