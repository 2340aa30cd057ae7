import { useState, type FormEvent } from 'react';
import type { ActivityFilter, Effect } from '../../api/types.ts';
import { EffectSelect } from '../../common/EffectSelect.tsx';

/** Agent, node and effect filters; applied on submit so typing does not reopen the stream per key. */
export function ActivityFilters({ value, onChange }: { value: ActivityFilter; onChange: (filter: ActivityFilter) => void }) {
  const [agent, setAgent] = useState(value.agent ?? '');
  const [node, setNode] = useState(value.node ?? '');
  const [effect, setEffect] = useState<Effect | ''>(value.effect ?? '');

  function apply(event: FormEvent) {
    event.preventDefault();
    onChange({ agent: agent.trim(), node: node.trim(), effect });
  }

  return (
    <form className="filters" onSubmit={apply} aria-label="Filter activity">
      <label>
        Agent
        <input value={agent} onChange={(e) => setAgent(e.target.value)} placeholder="any" />
      </label>
      <label>
        Node
        <input value={node} onChange={(e) => setNode(e.target.value)} placeholder="any" />
      </label>
      <EffectSelect
        value={effect}
        onChange={(next) => {
          setEffect(next);
          onChange({ agent: agent.trim(), node: node.trim(), effect: next });
        }}
      />
      <button type="submit">Filter</button>
    </form>
  );
}
