// A node host's options are checked before it touches anything: a bad
// gateway URL, a missing token or a warm-sandbox count out of range is a
// NODE_CONFIG_INVALID naming the option.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NodeHost } from './host.ts';

describe('the options of a node host', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'corral-host-options-'));
  after(() => rmSync(stateDir, { recursive: true, force: true }));
  const base = { gateway: 'ws://127.0.0.1:9', token: 'a-token', stateDir };

  it('refuses a gateway that is not a ws:// or wss:// URL, and a missing token', () => {
    assert.throws(() => new NodeHost({ ...base, gateway: 'http://127.0.0.1:9' }), { code: 'NODE_CONFIG_INVALID', message: /--gateway/ });
    assert.throws(() => new NodeHost({ ...base, token: '' }), { code: 'NODE_CONFIG_INVALID', message: /token/ });
  });

  it('refuses a warm-sandbox count that is not a whole number from 0 to 8', () => {
    for (const warmSandboxes of [-1, 9, 1.5, Number.NaN]) {
      assert.throws(() => new NodeHost({ ...base, warmSandboxes }), { code: 'NODE_CONFIG_INVALID', message: /warmSandboxes/ }, String(warmSandboxes));
    }
  });

  it('refuses a hidden state directory that does not hold stateDir, and an exposed folder outside it or holding stateDir', () => {
    assert.throws(() => new NodeHost({ ...base, hiddenState: { dir: join(stateDir, 'elsewhere'), exposed: [] } }), { code: 'NODE_CONFIG_INVALID', message: /hiddenState/ });
    assert.throws(() => new NodeHost({ ...base, hiddenState: { dir: stateDir, exposed: ['/tmp'] } }), { code: 'NODE_CONFIG_INVALID', message: /hiddenState/ });
    assert.throws(() => new NodeHost({ ...base, hiddenState: { dir: stateDir, exposed: [stateDir] } }), { code: 'NODE_CONFIG_INVALID', message: /hiddenState/ });
  });

  it("needs the control plane's own token (or its device token) the first time, never taking the gateway's; none for a control plane that is the gateway itself", () => {
    assert.throws(() => new NodeHost({ ...base, controlPlane: { url: 'ws://127.0.0.1:8' } }), { code: 'NODE_CONFIG_INVALID', message: /a control plane token is needed to reach 127\.0\.0\.1:8/ });
    assert.doesNotThrow(() => new NodeHost({ ...base, controlPlane: { url: 'ws://127.0.0.1:8', token: 'its-token' }, warmSandboxes: 0 }));
    assert.doesNotThrow(() => new NodeHost({ ...base, controlPlane: { url: base.gateway }, warmSandboxes: 0 }));
  });

  it('accepts 0 (no warm sandboxes) and 8', () => {
    for (const warmSandboxes of [0, 8]) assert.doesNotThrow(() => new NodeHost({ ...base, warmSandboxes }));
  });
});
