// Time bounds in a query (`since`, `until`), read by @corral/audit's one
// parser, as `corral audit export --since/--until` reads them.
import { parseTimeBound } from '@corral/audit';

export { TIME_BOUND_FORMAT as TIME_FORMAT } from '@corral/audit';

/** The instant (ms) a `since` or `until` parameter names: undefined when absent or empty, NaN when malformed (see parseTimeBound). */
export function timeParam(url: URL, name: string, end: 'since' | 'until'): number | undefined {
  const text = url.searchParams.get(name);
  return text === null || text === '' ? undefined : parseTimeBound(text, end);
}
