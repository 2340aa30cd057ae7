// The lines the HTTP API writes to the gateway's log for requests it refuses:
// any web page a person on this host opens can send the gateway requests it
// will refuse (a no-cors fetch needs no preflight), as fast as the browser
// sends them, and so can anyone who reaches the port.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GatewayLogLine } from '../gateway.ts';
import { LOG_REFUSALS_BURST, LOG_REFUSALS_PER_SECOND, type GatewayLogEntry } from '../server/server.ts';
import { startTestGateway } from './testing.ts';

const httpLines = (log: GatewayLogLine[]) => log.filter((e): e is GatewayLogEntry => 'connId' in e && e.connId === 'http');

describe('when a page floods the HTTP API with requests it refuses', () => {
  it(`writes at most ${LOG_REFUSALS_BURST} lines at once, then ${LOG_REFUSALS_PER_SECOND} a second, the next line saying how many it left out (regression: one line for each of 400 refusals, at once)`, async () => {
    const log: GatewayLogLine[] = [];
    const t = await startTestGateway({ log: (entry) => log.push(entry) });
    try {
      const sent = 400;
      const started = performance.now();
      for (let i = 0; i < sent; i++) assert.equal((await t.anonymous().get('/api/status')).status, 401);
      const seconds = (performance.now() - started) / 1000;
      const lines = httpLines(log);
      assert.ok(lines.length <= LOG_REFUSALS_BURST + Math.ceil(seconds * LOG_REFUSALS_PER_SECOND) + 1, `${lines.length} lines for ${sent} refusals in ${seconds.toFixed(1)} s`);
      // Once the budget has refilled, the next refusal is logged with the count of those left out.
      await new Promise((resolve) => setTimeout(resolve, 1100 / LOG_REFUSALS_PER_SECOND));
      assert.equal((await t.anonymous().get('/api/status')).status, 401);
      const after = httpLines(log);
      assert.equal(after.length, lines.length + 1, 'the refusal after the pause is logged');
      assert.equal(after.reduce((n, e) => n + 1 + (e.suppressed ?? 0), 0), sent + 1, 'every refusal is logged or counted');
      assert.ok(after.every((e) => e.event === 'refused' && e.code === 'http_unauthenticated'));
    } finally {
      await t.close();
    }
  });
});
