// The containers this node is running for each agent, so that the kill
// switch reaches them: when the gateway announces that an agent was
// suspended (`corral.agent.suspended`), every run of that agent is aborted —
// the runner kills its container — and the node reports the runs it stopped
// (`corral.agent.stopped`), which the gateway records in the audit log.
import { AGENT_SUSPENDED_EVENT, type GatewayClient } from '@corral/gateway';

interface Run {
  /** As the request named it, for the report; not unique: a caller chooses it, and upstream reuses an allow-always approval's id. */
  runId: string;
  /** The agent's names as this node knows them: the id or name in the request, and the Corral name it maps to. */
  agents: Set<string>;
  controller: AbortController;
}

export class AgentRuns {
  /** Each run its own entry, whatever its runId. */
  readonly #runs = new Set<Run>();

  /** Tracks one run for the agent known by any of `agents` (empty: no agent, never stopped here). Returns the function that ends tracking. */
  track(runId: string, agents: ReadonlyArray<string | undefined>, controller: AbortController): () => void {
    const names = new Set(agents.filter((a): a is string => typeof a === 'string' && a !== ''));
    if (names.size === 0) return () => {};
    const run = { runId, agents: names, controller };
    this.#runs.add(run);
    return () => void this.#runs.delete(run);
  }

  /** Aborts every run of the agent named by its id or name; returns their run ids. */
  stop(agent: { agentId?: unknown; name?: unknown }): string[] {
    const keys = [agent.agentId, agent.name].filter((k): k is string => typeof k === 'string' && k !== '');
    const stopped: string[] = [];
    for (const run of this.#runs) {
      if (!keys.some((k) => run.agents.has(k))) continue;
      run.controller.abort(new Error('the agent was suspended'));
      this.#runs.delete(run);
      stopped.push(run.runId);
    }
    return stopped;
  }

  /** Stops an agent's runs whenever `client`'s gateway announces its suspension, and reports them there. */
  watch(client: GatewayClient): void {
    client.on(AGENT_SUSPENDED_EVENT, (payload) => {
      const p = (payload ?? {}) as { agentId?: unknown; name?: unknown };
      const runIds = this.stop(p);
      if (runIds.length === 0) return;
      void client.request('corral.agent.stopped', { agentId: p.agentId, ...(typeof p.name === 'string' ? { name: p.name } : {}), runIds }).catch(() => {
        // The gateway went away; the runs are stopped all the same.
      });
    });
  }
}
