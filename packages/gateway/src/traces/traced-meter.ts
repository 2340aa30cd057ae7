// The governed path's meter with traces: each node.invoke a span of its own
// (SERVER kind) whose trace id is the `trace` of the command's audit
// records, each step of it a child span, fed by the same calls that feed the
// metrics (InvokeMeter), which this passes on. Attributes hold what a metric
// label may, and the node, principal kind, approval and exit code
// (RunFacts): never an argv, a working directory, an environment, a path, a
// token or policy text.
import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace as traces, type Span, type Tracer } from '@opentelemetry/api';
import { ATTR_ERROR_TYPE } from '@opentelemetry/semantic-conventions';
import type { ApprovalDecision } from '../approvals/store.ts';
import { GatewayError } from '../errors.ts';
import { commandLabel } from '../metrics/command-label.ts';
import type { Effect, InvokeMeter, RunFacts, RunStage } from '../metrics/invoke-metrics.ts';

/** Trace ids as the governed path chose them: the next root span's is the one `use` was given (see TracedMeter#invoke). */
export interface ChosenTraceIds {
  use(traceId: string): void;
}

export class TracedMeter implements InvokeMeter {
  readonly #inner: InvokeMeter;
  readonly #tracer: Tracer;
  readonly #ids: ChosenTraceIds;
  /** The root span of the node.invoke whose code is running. */
  readonly #current = new AsyncLocalStorage<Span>();

  constructor(inner: InvokeMeter, tracer: Tracer, ids: ChosenTraceIds) {
    this.#inner = inner;
    this.#tracer = tracer;
    this.#ids = ids;
  }

  decided(command: string, effect: Effect): void {
    this.#inner.decided(command, effect);
    this.#current.getStore()?.setAttribute('corral.decision.effect', effect);
  }

  invoke<T>(command: string, trace: string, run: () => Promise<T>): Promise<T> {
    const label = commandLabel(command);
    // Chosen right before the span starts, which takes it as it starts: the trace id is the audit records' trace.
    this.#ids.use(trace);
    const span = this.#tracer.startSpan(`node.invoke ${label}`, { kind: SpanKind.SERVER, attributes: { 'corral.command': label } }, ROOT_CONTEXT);
    return this.#current.run(span, () => settled(span, this.#inner.invoke(command, trace, run)));
  }

  stage<T>(command: string, stage: RunStage, step: () => Promise<T>): Promise<T> {
    const root = this.#current.getStore();
    // A step outside a node.invoke (a run a Corral node asks to have authorized) is measured, not traced.
    if (root === undefined) return this.#inner.stage(command, stage, step);
    const span = this.#tracer.startSpan(stage, { attributes: { 'corral.stage': stage } }, traces.setSpan(ROOT_CONTEXT, root));
    return settled(span, this.#inner.stage(command, stage, step));
  }

  resolved(decision: ApprovalDecision): void {
    this.#inner.resolved(decision);
  }

  noted(facts: RunFacts): void {
    const root = this.#current.getStore();
    if (root === undefined) return;
    if (facts.node !== undefined) root.setAttribute('corral.node.id', facts.node);
    if (facts.principal !== undefined) root.setAttribute('corral.principal.kind', facts.principal);
    if (facts.approval !== undefined) root.setAttribute('corral.approval.id', facts.approval);
    if (facts.exitCode !== undefined) root.setAttribute('corral.exit_code', facts.exitCode);
  }
}

/** Ends `span` as `running` settles, its status ERROR with the error's code when it rejects; `running` is handed back untouched. */
function settled<T>(span: Span, running: Promise<T>): Promise<T> {
  running.then(
    () => span.end(),
    (error: unknown) => {
      const code = errorCode(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: code });
      span.setAttribute(ATTR_ERROR_TYPE, code);
      span.end();
    },
  );
  return running;
}

/** A code word, as the wire and Corral spell them: what a node sends as its error code is kept only when it is one. */
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

/**
 * What a governed command failed with, as its caller was told: the wire
 * details' code (SYSTEM_RUN_DENIED, TIMEOUT, NODE_DISCONNECTED,
 * APPROVAL_PENDING), else the wire code (a node's refusal), else the
 * gateway's own; never a message, which may quote the command.
 */
function errorCode(error: unknown): string {
  if (!(error instanceof GatewayError)) return 'GATEWAY_INTERNAL';
  const details = error.wire?.details as { code?: unknown } | undefined;
  for (const code of [details?.code, error.wire?.code]) if (typeof code === 'string' && CODE.test(code)) return code;
  return error.code;
}
