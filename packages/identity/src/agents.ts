import { randomBytes } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { EMAIL } from './address.ts';
import { CHANGE_MARK, storedNames } from './db.ts';
import { IdentityError } from './errors.ts';

export type AgentStatus = 'active' | 'suspended' | 'retired';

/** An agent's managed identity. */
export interface Agent {
  /** Stable id, `agt_` + 20 hex digits; the `sub` of its tokens. */
  id: string;
  /** Unique, lowercase: what operators type. */
  name: string;
  displayName: string;
  /** The business process the agent serves, e.g. `invoice-intake`. */
  process: string;
  /** The accountable human's email. */
  owner: string;
  scopes: string[];
  status: AgentStatus;
  /** Bumped when the agent is suspended or retired: tokens of an older generation are dead. */
  tokenGeneration: number;
  createdAt: string;
  updatedAt: string;
}

export interface NewAgent {
  name: string;
  process: string;
  owner: string;
  displayName?: string;
  scopes?: string[];
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PROCESS = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const SCOPE = /^[A-Za-z0-9][A-Za-z0-9:._*/-]{0,127}$/;
/** Every scope is written into every token, which a verifier reads only up to 8 KiB: bounded here, an agent's tokens always fit. */
const MAX_SCOPES = 64;
const MAX_SCOPE_TEXT = 2048;
/** The token generation of a new agent (the column's default). */
const FIRST_GENERATION = 1;

interface Row {
  id: string;
  name: string;
  display_name: string;
  process: string;
  owner: string;
  scopes: string;
  status: AgentStatus;
  token_generation: number;
  created_at: number;
  updated_at: number;
}

/** The agent registry, in identity.db. */
export class AgentRegistry {
  readonly #db: DatabaseSync;
  readonly #byRef: StatementSync;
  readonly #now: () => number;

  constructor(db: DatabaseSync, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
    this.#byRef = db.prepare('SELECT * FROM agents WHERE name = ? OR id = ?');
  }

  /** Creates an active agent. Throws IDENTITY_INPUT_INVALID, IDENTITY_AGENT_EXISTS. */
  create(input: NewAgent): Agent {
    if (typeof input.name !== 'string' || !NAME.test(input.name)) throw invalid('name must be 1-63 lowercase letters, digits or dashes, starting with a letter or digit');
    if (typeof input.process !== 'string' || !PROCESS.test(input.process)) throw invalid('process must be 1-63 lowercase letters, digits, dots, dashes or underscores');
    if (typeof input.owner !== 'string' || !EMAIL.test(input.owner)) throw invalid('owner must be an email address');
    if (input.scopes !== undefined && !Array.isArray(input.scopes)) throw invalid('scopes must be a list');
    const scopes = [...new Set(input.scopes ?? [])];
    for (const s of scopes) if (typeof s !== 'string' || !SCOPE.test(s)) throw invalid(`scope "${String(s).slice(0, 40)}" is malformed`);
    if (scopes.length > MAX_SCOPES) throw invalid(`an agent holds at most ${MAX_SCOPES} scopes, not ${scopes.length}`);
    if (scopes.join(' ').length > MAX_SCOPE_TEXT) throw invalid(`an agent's scopes total at most ${MAX_SCOPE_TEXT} characters`);
    const displayName = input.displayName ?? input.name;
    if (typeof displayName !== 'string' || displayName.length > 200) throw invalid('display name must be at most 200 characters');
    const now = this.#now();
    const id = `agt_${randomBytes(10).toString('hex')}`;
    try {
      this.#db
        .prepare('INSERT INTO agents (id, name, display_name, process, owner, scopes, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, input.name, displayName, input.process, input.owner, JSON.stringify(scopes), 'active', now, now);
    } catch (error) {
      if (error instanceof IdentityError) throw error;
      if (String((error as Error).message).includes('UNIQUE')) throw new IdentityError('IDENTITY_AGENT_EXISTS', `an agent named ${input.name} already exists`);
      throw new IdentityError('IDENTITY_STORE_FAILED', 'cannot store the agent', { cause: error });
    }
    return this.get(id);
  }

  /** By name or id. Throws IDENTITY_AGENT_NOT_FOUND. */
  get(ref: string): Agent {
    const row = this.#byRef.get(ref, ref) as Row | undefined;
    if (!row) throw new IdentityError('IDENTITY_AGENT_NOT_FOUND', `no agent named ${String(ref).slice(0, 80)}`);
    return fromRow(row);
  }

  /** By name or id, or undefined. */
  find(ref: string): Agent | undefined {
    const row = this.#byRef.get(ref, ref) as Row | undefined;
    return row ? fromRow(row) : undefined;
  }

  /**
   * The ids of the agents `refs` name (names or ids), each once, for a grant
   * that must not pass to another agent later given a retired one's name.
   * Throws IDENTITY_AGENT_NOT_FOUND, naming the first unknown;
   * IDENTITY_AGENT_STATE for a retired agent.
   */
  idsOf(refs: readonly string[]): string[] {
    const ids = new Set<string>();
    for (const ref of refs) {
      const agent = this.get(ref);
      if (agent.status === 'retired') throw new IdentityError('IDENTITY_AGENT_STATE', `agent ${agent.name} is retired`);
      ids.add(agent.id);
    }
    return [...ids];
  }

  /** The names of the agents `ids` names, in order (an id itself for an agent no longer in the store); none for none. */
  namesOf(ids: readonly string[] = []): string[] {
    return ids.map((id) => this.find(id)?.name ?? id);
  }

  list(): Agent[] {
    return (this.#db.prepare('SELECT * FROM agents ORDER BY name').all() as unknown as Row[]).map(fromRow);
  }

  /**
   * Watches for the kill switch pulled in any process sharing the store
   * (`corral agents suspend` or `retire` in a terminal as well as the
   * gateway's API): the function returned gives, at each call, the agents
   * whose token generation moved on since the call before (suspended or
   * retired meanwhile, whatever their status is now: what they were running
   * under the old generation must stop), and at its first call none. It
   * reads the agents again only when the store changed (PRAGMA data_version
   * for other processes' commits, total_changes() for this connection's).
   * An agent created since is compared with the generation agents start at.
   * Throws IDENTITY_STORE_BUSY, IDENTITY_STORE_FAILED (a damaged store).
   */
  watchStopped(): () => Agent[] {
    const changed = this.#db.prepare(CHANGE_MARK);
    const generations = this.#db.prepare('SELECT id, token_generation FROM agents');
    let seen: string | undefined;
    let known: Map<string, number> | undefined;
    return () => {
      const { version, changes } = changed.get() as { version: number; changes: number };
      const now = `${version}:${changes}`;
      if (known !== undefined && now === seen) return [];
      const rows = generations.all() as Array<{ id: string; token_generation: number }>;
      const before = known;
      seen = now;
      known = new Map(rows.map((r) => [r.id, r.token_generation]));
      if (before === undefined) return [];
      return rows.filter((r) => r.token_generation > (before.get(r.id) ?? FIRST_GENERATION)).map((r) => this.get(r.id));
    };
  }

  /** Active → suspended. Every token issued so far stops verifying at once. */
  suspend(ref: string): Agent {
    return this.#transition(ref, 'suspended', ['active'], true);
  }

  /** Suspended → active. Tokens from before the suspension stay dead; issue new ones. */
  resume(ref: string): Agent {
    return this.#transition(ref, 'active', ['suspended'], false);
  }

  /** Active or suspended → retired, for good. */
  retire(ref: string): Agent {
    return this.#transition(ref, 'retired', ['active', 'suspended'], true);
  }

  /**
   * A compare-and-swap on the status read: another process (a second
   * operator's `corral agents resume`) may change it between the read and the
   * write, and then the change is decided again on what it is now — never
   * reported as made when it was not.
   */
  #transition(ref: string, to: AgentStatus, from: AgentStatus[], bump: boolean): Agent {
    for (let attempt = 0; attempt < 3; attempt++) {
      const agent = this.get(ref);
      if (!from.includes(agent.status)) {
        throw new IdentityError('IDENTITY_AGENT_STATE', `agent ${agent.name} is ${agent.status}; it cannot become ${to}`);
      }
      const { changes } = this.#db
        .prepare('UPDATE agents SET status = ?, token_generation = token_generation + ?, updated_at = ? WHERE id = ? AND status = ? AND token_generation = ?')
        .run(to, bump ? 1 : 0, this.#now(), agent.id, agent.status, agent.tokenGeneration);
      if (changes === 1) return this.get(agent.id);
    }
    throw new IdentityError('IDENTITY_AGENT_STATE', `agent ${String(ref).slice(0, 80)} kept changing under this command; look at it again and retry`);
  }
}

function fromRow(row: Row): Agent {
  return {
    id: row.id,
    name: row.name,
    displayName: row.display_name,
    process: row.process,
    owner: row.owner,
    scopes: storedNames(row.scopes, `the scopes of agent ${row.id}`),
    status: row.status,
    tokenGeneration: row.token_generation,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

function invalid(message: string): IdentityError {
  return new IdentityError('IDENTITY_INPUT_INVALID', message);
}
