// Events for tests: realistic, varied enough to exercise every part of the record.
import type { AuditEventInput } from '../src/record/event.ts';

export function sampleEvent(i: number): AuditEventInput {
  return {
    time: new Date(Date.UTC(2026, 10, 25, 12, 0, 0, 0) + i * 1000),
    actor: { kind: 'agent', id: 'agent:invoice-intake', onBehalfOf: { kind: 'human', id: 'alice@example.com' } },
    action: i % 3 === 0 ? 'run.exec' : i % 3 === 1 ? 'net.connect' : 'tool.call',
    resource: i % 3 === 1 ? { kind: 'endpoint', id: 'api.example.com:443' } : { kind: 'command', id: `/bin/sh summarise.sh invoice-${i}.pdf` },
    decision: { effect: i % 5 === 4 ? 'deny' : 'allow', policies: ['invoice-intake@sha256:' + 'ab'.repeat(32)] },
    context: { inputs: { policy: 'sha256:' + 'cd'.repeat(32) } },
    outcome: { status: 'success', exitCode: 0 },
    details: { argv: ['/bin/sh', 'summarise.sh', `invoice-${i}.pdf`], n: i },
    node: 'node-1',
    trace: '0af7651916cd43dd8448eb211c80319c',
  };
}
