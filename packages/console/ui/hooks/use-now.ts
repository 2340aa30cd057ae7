// The current time by the gateway's clock, ticking every `everyMs`, for countdowns to its expiry times.
import { useEffect, useState } from 'react';
import { gatewayNow } from '../api/client.ts';

export function useNow(everyMs = 1_000): number {
  const [now, setNow] = useState(gatewayNow);
  useEffect(() => {
    const timer = setInterval(() => setNow(gatewayNow()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}
