// Runs one change against the gateway at a time for a page section, keeping
// its error and reloading the section's data afterwards.
import { useState } from 'react';

/** `run` answers whether the change went through, so a form can stay open, as filled in, when it did not. */
export function useAction(after: () => void): { busy: boolean; error: Error | undefined; run: (change: () => Promise<unknown>) => Promise<boolean> } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();
  async function run(change: () => Promise<unknown>): Promise<boolean> {
    setBusy(true);
    setError(undefined);
    try {
      await change();
      return true;
    } catch (failure) {
      setError(failure as Error);
      return false;
    } finally {
      setBusy(false);
      after();
    }
  }
  return { busy, error, run };
}
