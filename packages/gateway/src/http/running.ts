// How many governed commands each agent has running now, counted from the
// audit records this gateway appends: a command starts when policy allows it
// (or when its approval is granted) and ends with its `node.invoke` result.
// Commands from before the gateway started are not counted.
import type { AuditRecord } from '@corral/audit';
import type { AuditFeed } from './feed.ts';

const MAX_TRACKED = 10_000;

export class RunningCommands {
  readonly #byAgent = new Map<string, number>();
  /** Digest of an action waiting for approval → its agent. */
  readonly #asked = new Map<string, string>();
  /** Digest of a running action → its agent (a run reported by another gateway names only its digest). */
  readonly #digests = new Map<string, string>();

  constructor(feed: AuditFeed) {
    feed.subscribe((record) => this.#see(record));
  }

  /** Running commands of the agent (records name agents by id or by name: both are counted). */
  count(agent: { id: string; name: string }): number {
    return (this.#byAgent.get(agent.id) ?? 0) + (this.#byAgent.get(agent.name) ?? 0);
  }

  #see({ event }: AuditRecord): void {
    const digest = typeof event.details?.digest === 'string' ? event.details.digest : undefined;
    if (event.action === 'node.invoke.decide' && event.actor.kind === 'agent' && digest) {
      if (event.decision?.effect === 'allow') this.#start(event.actor.id, digest);
      else if (event.decision?.effect === 'ask') remember(this.#asked, digest, event.actor.id);
    } else if (event.action === 'approval.resolve' && digest && event.details?.status === 'allowed') {
      const agent = this.#asked.get(digest);
      this.#asked.delete(digest);
      if (agent) this.#start(agent, digest);
    } else if (event.action === 'node.invoke') {
      const agent = (digest && this.#digests.get(digest)) || (event.actor.kind === 'agent' ? event.actor.id : undefined);
      if (digest) this.#digests.delete(digest);
      if (agent) this.#byAgent.set(agent, Math.max(0, (this.#byAgent.get(agent) ?? 0) - 1));
    }
  }

  #start(agent: string, digest: string): void {
    remember(this.#digests, digest, agent);
    this.#byAgent.set(agent, (this.#byAgent.get(agent) ?? 0) + 1);
  }
}

function remember(map: Map<string, string>, key: string, value: string): void {
  if (map.size >= MAX_TRACKED) map.delete(map.keys().next().value!);
  map.set(key, value);
}
