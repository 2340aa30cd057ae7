import type { Effect } from '../api/types.ts';

/** allow / deny / ask as a coloured word (the word itself carries the meaning, not the colour). */
export function EffectBadge({ effect }: { effect: Effect | null }) {
  if (effect === null) return <span className="badge badge-none">—</span>;
  return <span className={`badge badge-${effect}`}>{effect}</span>;
}
