import type { Effect } from '../api/types.ts';

/** A labelled choice of effect for a filter: any, allow, deny or ask. */
export function EffectSelect({ value, onChange }: { value: Effect | ''; onChange: (effect: Effect | '') => void }) {
  return (
    <label>
      Effect
      <select value={value} onChange={(e) => onChange(e.target.value as Effect | '')}>
        <option value="">any</option>
        <option value="allow">allow</option>
        <option value="deny">deny</option>
        <option value="ask">ask</option>
      </select>
    </label>
  );
}
