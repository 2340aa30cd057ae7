// The gateway's log is told of what happens to its policy set as well as of
// its connections: a hand edit it refused reaches whoever runs the gateway.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { GatewayLogLine } from './gateway.ts';
import { startTestGateway } from './http/testing.ts';

const state = mkdtempSync(join(tmpdir(), 'corral-gateway-log-'));
after(() => rmSync(state, { recursive: true, force: true }));

describe("the gateway's log", () => {
  it('carries a refused hand edit of the policy directory, by its code, without the files\' text (it went nowhere: the gateway was given no log for its policy set)', async () => {
    const dir = join(state, 'policies');
    mkdirSync(dir);
    writeFileSync(join(dir, 'main.cedar'), 'permit (principal, action == Action::"system.run", resource == Command::"ls");\n');
    const lines: GatewayLogLine[] = [];
    const t = await startTestGateway({ stateDir: state, log: (line) => lines.push(line) });
    try {
      writeFileSync(join(dir, 'main.cedar'), 'permit (principal, action, resource // secret-marker');
      const answer = await t.tool().get('/api/policies');
      assert.equal(answer.status, 200);
      assert.equal(answer.body.refusedEdit?.code, 'POLICY_SET_INVALID');
      assert.deepEqual(
        lines.filter((l) => l.event === 'policy-edit-refused').map((l) => l.code),
        ['POLICY_SET_INVALID'],
      );
      assert.equal(JSON.stringify(lines).includes('secret-marker'), false);
    } finally {
      await t.close();
    }
  });
});
