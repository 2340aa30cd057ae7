// What the governed path measures (exec/invoke.ts): each decision on a node
// command, how long a node.invoke takes end to end in the gateway, and for
// system.run how long each of its steps takes, so the cost governance adds
// (bench/governed-run) can be watched in production. Every label child is
// made once, here: the hot path only looks one up and counts.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ApprovalDecision } from '../approvals/store.ts';
import { COMMAND_LABELS, commandLabel } from './command-label.ts';
import { counting } from './counting.ts';
import { DURATION_BUCKETS, secondsSince } from './durations.ts';

export type Effect = 'allow' | 'deny' | 'ask';
const DECISIONS: readonly ApprovalDecision[] = ['allow-once', 'allow-always', 'deny'];

/**
 * A governed system.run's steps: `decide` (its canonical form and the policy
 * decision), `approval` (a human asked, until the approval was settled),
 * `decision_record` (the decision's audit record made durable), `node` (sent
 * to its node until the result came), `result_record` (the result's audit
 * record made durable). A Corral node runs while the decision commits, so
 * `decision_record` and `node` may overlap.
 */
export type RunStage = 'decide' | 'approval' | 'decision_record' | 'node' | 'result_record';
const STAGES: readonly RunStage[] = ['decide', 'approval', 'decision_record', 'node', 'result_record'];

/**
 * What the governed path learns of a command as it goes, for its trace
 * alone (a metric label of each would be a series per node): its node, the
 * kind of principal it runs for, the approval it spends, the exit code of
 * its run. Never an argv, a working directory, an environment, a path or a
 * token.
 */
export interface RunFacts {
  node?: string;
  principal?: 'agent' | 'human' | 'node';
  approval?: string;
  exitCode?: number;
}

/**
 * What the governed path tells its metrics and, when the gateway sends
 * them, its traces (NodeInvoker's `metrics` option): one call feeds both.
 */
export interface InvokeMeter {
  /** A verdict on `command`: policy's, or the rule table's (a command no rule governs is denied, a read-only one allowed). */
  decided(command: string, effect: Effect): void;
  /** Runs one node.invoke, timing it end to end by command and outcome (resolved: ok; rejected: error); `trace` is what its audit records carry as theirs (32 hex digits), and its trace's id. */
  invoke<T>(command: string, trace: string, run: () => Promise<T>): Promise<T>;
  /** Starts one step of a system.run and times it until it settles; for any other command, only starts it. Returns what `step` returns. */
  stage<T>(command: string, stage: RunStage, step: () => Promise<T>): Promise<T>;
  /** An approval settled by a decision made through this gateway (a withdrawal is a deny). */
  resolved(decision: ApprovalDecision): void;
  /** What became known of the node.invoke under way (RunFacts); only its trace keeps it. */
  noted(facts: RunFacts): void;
}

/** The meter of a NodeInvoker given none: it measures nothing. */
export const UNMEASURED: InvokeMeter = {
  decided: () => {},
  invoke: (_command, _trace, run) => run(),
  stage: (_command, _stage, step) => step(),
  resolved: () => {},
  noted: () => {},
};

/** Upper bounds in seconds of an approval's wait: 5 s to a day (DEFAULT_APPROVAL_TTL_MS and beyond); longer lands in +Inf. */
const APPROVAL_WAIT_BUCKETS: readonly number[] = [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400];

type Observer = { observe(seconds: number): void };
type Incrementer = { inc(): void };

export class InvokeMetrics implements InvokeMeter {
  readonly #decisions = new Map<string, Record<Effect, Incrementer>>();
  readonly #invokes = new Map<string, Record<'ok' | 'error', Observer>>();
  readonly #stages = {} as Record<RunStage, Observer>;
  readonly #resolved = {} as Record<ApprovalDecision, Incrementer>;

  constructor(registry: Registry) {
    const decisions = new Counter({ name: 'corral_node_invoke_decisions_total', help: 'Decisions on governed node commands (node.invoke, and the runs a Corral node asks to have authorized), by command (one the gateway has a rule for, else other) and effect.', labelNames: ['command', 'effect'], registers: [registry] });
    const invokes = new Histogram({ name: 'corral_node_invoke_duration_seconds', help: 'How long node.invoke takes in the gateway, from the request to its answer (an approval waited for included), by command and outcome (ok: the node answered ok; error: refused or failed).', labelNames: ['command', 'outcome'], buckets: [...DURATION_BUCKETS], registers: [registry] });
    const stages = new Histogram({ name: 'corral_run_stage_duration_seconds', help: 'How long each step of a governed system.run takes in the gateway: decide (canonical form and policy), decision_record (its audit record made durable), node (sent to the node until its result), result_record (the result made durable).', labelNames: ['stage'], buckets: [...DURATION_BUCKETS], registers: [registry] });
    // A person's minutes or hours, not a machine's milliseconds: on the steps' buckets every wait fell in +Inf.
    const approvalWaits = new Histogram({ name: 'corral_approval_wait_seconds', help: 'How long a governed system.run waits for the humans its policy asks, from the approval asked for until it is settled (allowed, denied, expired) or its caller leaves.', buckets: [...APPROVAL_WAIT_BUCKETS], registers: [registry] });
    const resolved = new Counter({ name: 'corral_approvals_resolved_total', help: 'Approvals settled by a decision made through this gateway (the console, the API, the protocol), by decision; a withdrawal counts as deny.', labelNames: ['decision'], registers: [registry] });
    for (const command of COMMAND_LABELS) {
      this.#decisions.set(command, { allow: counting(decisions.labels(command, 'allow')), deny: counting(decisions.labels(command, 'deny')), ask: counting(decisions.labels(command, 'ask')) });
      this.#invokes.set(command, { ok: invokes.labels(command, 'ok'), error: invokes.labels(command, 'error') });
    }
    for (const stage of STAGES) this.#stages[stage] = stage === 'approval' ? approvalWaits : stages.labels(stage);
    for (const decision of DECISIONS) this.#resolved[decision] = counting(resolved.labels(decision));
  }

  decided(command: string, effect: Effect): void {
    this.#decisions.get(commandLabel(command))![effect].inc();
  }

  async invoke<T>(command: string, _trace: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const timing = this.#invokes.get(commandLabel(command))!;
    try {
      const result = await run();
      timing.ok.observe(secondsSince(started));
      return result;
    } catch (error) {
      timing.error.observe(secondsSince(started));
      throw error;
    }
  }

  stage<T>(command: string, stage: RunStage, step: () => Promise<T>): Promise<T> {
    if (command !== 'system.run') return step();
    const started = performance.now();
    const running = step();
    const observe = (): void => this.#stages[stage].observe(secondsSince(started));
    // The step itself is handed back untouched: the timing hangs off it, and what it throws still reaches its caller.
    running.then(observe, observe);
    return running;
  }

  resolved(decision: ApprovalDecision): void {
    this.#resolved[decision]?.inc();
  }

  noted(): void {}
}
