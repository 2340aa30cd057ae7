import { useState, type FormEvent } from 'react';
import type { Effect } from '../../api/types.ts';
import { EffectSelect } from '../../common/EffectSelect.tsx';

export interface Search {
  q?: string;
  actor?: string;
  action?: string;
  effect?: string;
  since?: string;
  until?: string;
}

/** A datetime-local input's value (`2026-11-27T14:00`) read as UTC, the zone every time in the console is shown in; '' for none. */
function utc(value: string): string {
  return value === '' ? '' : new Date(`${value}Z`).toISOString();
}

/** The audit search form: free text plus actor, action, effect and a time range in UTC. */
export function AuditSearch({ onSearch }: { onSearch: (search: Search) => void }) {
  const [q, setQ] = useState('');
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [effect, setEffect] = useState<Effect | ''>('');
  const [since, setSince] = useState('');
  const [until, setUntil] = useState('');

  function submit(event: FormEvent) {
    event.preventDefault();
    onSearch({ q: q.trim(), actor: actor.trim(), action: action.trim(), effect, since: utc(since), until: utc(until) });
  }

  return (
    <form className="filters" role="search" onSubmit={submit} aria-label="Search the audit log">
      <label className="grow">
        Search
        <input type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="actor, action, resource or summary" />
      </label>
      <label>
        Actor
        <input value={actor} onChange={(e) => setActor(e.target.value)} />
      </label>
      <label>
        Action
        <input value={action} onChange={(e) => setAction(e.target.value)} />
      </label>
      <EffectSelect value={effect} onChange={setEffect} />
      <label>
        Since (UTC)
        <input type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} />
      </label>
      <label>
        Until (UTC)
        <input type="datetime-local" value={until} onChange={(e) => setUntil(e.target.value)} />
      </label>
      <button type="submit">Search</button>
    </form>
  );
}
