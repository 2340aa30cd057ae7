// Runs one change against the gateway at a time for a page section, keeping
// its error and reloading the section's data afterwards.
import { useState } from 'react';

export function useAction(after: () => void): { busy: boolean; error: Error | undefined; run: (change: () => Promise<unknown>) => Promise<void> } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  async function run(change: () => Promise<unknown>) {
    setBusy(true);
    setError(undefined);
    try {
      await change();
    } catch (failure) {
      setError(failure as Error);
    } finally {
      setBusy(false);
      after();
    }
  }
  return { busy, error, run };
}
