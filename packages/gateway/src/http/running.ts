// How many governed commands each agent has running now, counted from the
// audit records this gateway appends: a command starts when policy allows it
// (or when its approval is granted) and ends with its `node.invoke` result.
// A result ends a run of the same command only: a read-only command, which
// no decision starts, does not end another run. Commands from before the
// gateway started are not counted.
import type { AuditRecord } from '@corral/audit';
import type { AuditFeed } from './feed.ts';

const MAX_TRACKED = 10_000;

/** A started run: the agent (as the record names it, by id or name) and the command sent (`system.run`). */
interface Run {
  agent: string;
  command: string;
}

export class RunningCommands {
  /** Agent → command → runs started and not yet ended. */
  readonly #byAgent = new Map<string, Map<string, number>>();
  /** Digest of an action waiting for approval → its run. */
  readonly #asked = new Map<string, Run>();
  /** Digest of an action whose run its approval's record started → its run, until the run's own allow record naming the approval, if any. */
  readonly #approved = new Map<string, Run>();
  /** Digest of a running action → its run (a run reported by another gateway names only its digest). */
  readonly #digests = new Map<string, Run>();

  constructor(feed: AuditFeed) {
    feed.subscribe((record) => this.#see(record));
  }

  /** Running commands of the agent (records name agents by id or by name: both are counted). */
  count(agent: { id: string; name: string }): number {
    let n = 0;
    for (const ref of new Set([agent.id, agent.name])) for (const runs of this.#byAgent.get(ref)?.values() ?? []) n += runs;
    return n;
  }

  #see({ event }: AuditRecord): void {
    const digest = typeof event.details?.digest === 'string' ? event.details.digest : undefined;
    if (event.action === 'node.invoke.decide' && event.actor.kind === 'agent' && digest) {
      // The decision names the program as its resource; the command sent (and named by the result) is in its details.
      const run = { agent: event.actor.id, command: typeof event.details?.command === 'string' ? event.details.command : event.resource.id };
      // A run's own allow naming its approval (its approval's record refused, or from before a restart) starts it,
      // unless that approval's record did.
      if (event.decision?.effect === 'allow') {
        if (event.decision.approval === undefined || !this.#approved.delete(digest)) this.#start(run, digest);
        this.#asked.delete(digest);
      } else if (event.decision?.effect === 'ask') {
        // A new ask of the action: an earlier approval's start no longer stands for its runs.
        this.#approved.delete(digest);
        remember(this.#asked, digest, run);
      }
    } else if (event.action === 'approval.resolve' && digest && event.details?.status === 'allowed') {
      const run = this.#asked.get(digest);
      this.#asked.delete(digest);
      if (run) {
        this.#start(run, digest);
        remember(this.#approved, digest, run);
      }
    } else if (event.action === 'node.invoke') {
      const run = (digest && this.#digests.get(digest)) || (event.actor.kind === 'agent' ? { agent: event.actor.id, command: event.resource.id } : undefined);
      if (digest) this.#digests.delete(digest);
      if (run) this.#end(run);
    }
  }

  #start(run: Run, digest: string): void {
    remember(this.#digests, digest, run);
    const commands = this.#byAgent.get(run.agent) ?? new Map<string, number>();
    commands.set(run.command, (commands.get(run.command) ?? 0) + 1);
    this.#byAgent.set(run.agent, commands);
  }

  /** Ends one started run of that agent and command; a result no run was started for ends nothing. */
  #end(run: Run): void {
    const commands = this.#byAgent.get(run.agent);
    const runs = commands?.get(run.command) ?? 0;
    if (runs > 1) commands!.set(run.command, runs - 1);
    else commands?.delete(run.command);
    if (commands?.size === 0) this.#byAgent.delete(run.agent);
  }
}

function remember(map: Map<string, Run>, key: string, value: Run): void {
  if (map.size >= MAX_TRACKED) map.delete(map.keys().next().value!);
  map.set(key, value);
}
