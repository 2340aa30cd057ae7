// Loads data for a page: the value, the error, whether it is loading, and a
// reload. A slower earlier load never overwrites a newer one, and what was
// loaded for other deps (the record opened before, the last search) is never
// shown as the answer for these: it is gone the moment the deps change.
// A failed reload keeps what the same deps loaded last, beside the error.
import { useCallback, useEffect, useRef, useState } from 'react';

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

interface Answer<T> {
  /** The load it answers, which changes with the deps. */
  run: () => Promise<T>;
  data: T | undefined;
  error: Error | undefined;
}

export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[]): Loaded<T> {
  const [answer, setAnswer] = useState<Answer<T>>();
  const [loading, setLoading] = useState(true);
  const generation = useRef(0);
  // `deps` says when to load again, as with useEffect.
  const run = useCallback(load, deps);

  const reload = useCallback(() => {
    const mine = ++generation.current;
    setLoading(true);
    run().then(
      (value) => {
        if (mine !== generation.current) return;
        setAnswer({ run, data: value, error: undefined });
        setLoading(false);
      },
      (failure: unknown) => {
        if (mine !== generation.current) return;
        const error = failure instanceof Error ? failure : new Error(String(failure));
        setAnswer((last) => ({ run, data: last?.run === run ? last.data : undefined, error }));
        setLoading(false);
      },
    );
  }, [run]);

  useEffect(reload, [reload]);
  const current = answer?.run === run ? answer : undefined;
  return { data: current?.data, error: current?.error, loading: loading || current === undefined, reload };
}
