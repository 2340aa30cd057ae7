import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { corral } from '../../test/corral.ts';

describe('corral node run, refusing bad options before it connects', () => {
  it('refuses --agent-map without --control-plane: nobody would decide for the mapped agents', async () => {
    const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--agent-map', 'main=invoice-bot']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--agent-map needs --control-plane/);
  });

  it('refuses a malformed --agent-map entry, naming it (NODE_CONFIG_INVALID)', async () => {
    const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--control-plane', 'ws://127.0.0.1:9', '--agent-map', 'main=Not A Name']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--agent-map main: .*not a Corral agent name.*NODE_CONFIG_INVALID/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });

  it('refuses an --agent-policy that is not agent=FILE, or a file that is no container policy', async () => {
    const bad = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--agent-policy', 'invoice-bot']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected corralAgent=FILE/);
    const missing = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--agent-policy', 'invoice-bot=/nonexistent/policy.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the container policy \/nonexistent\/policy\.yaml/);
  });
});
