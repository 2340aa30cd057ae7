import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { corral } from '../../test/corral.ts';

describe('corral gateway, when its port is taken', () => {
  it('says why it could not listen: EADDRINUSE on that port and address, and how to choose another (regression: no cause given)', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const r = await corral(['gateway', '--port', String(port)], { env: { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' } });
      assert.equal(r.code, 3);
      assert.match(r.stderr, new RegExp(`EADDRINUSE: port ${port} on 127\\.0\\.0\\.1 is in use — choose another with --port \\[GATEWAY_CONFIG_INVALID\\]`));
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });
});
