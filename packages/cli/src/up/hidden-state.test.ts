// What the sandboxes of `corral up`'s nodes see of its state directory: none
// of it but the process workspaces, even under a profile that grants a folder
// holding it (here a stand-in for the user's home, as `readonly: [~]` would).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { KEY_FILE, openAuditLog } from '@corral/audit';
import { loadPolicyFile, planSandbox, Runner } from '@corral/contain';
import { Gateway } from '@corral/gateway';
import { GATEWAY_TOKEN_FILE, gatewayToken } from '../commands/gateway.ts';
import { ensureAdmin } from './admin.ts';
import { hiddenState } from '../state-dir.ts';
import { installExampleFiles, workspaceDir } from './example.ts';
import { readProfiles } from './profiles.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("corral up's state directory, as its nodes' sandboxes see it", () => {
  it('shows a profile granting a folder that holds it neither the audit key, the gateway token nor the identity database, and keeps its workspace usable', async () => {
    const home = realpathSync(mkdtempSync(join(tmpdir(), 'corral-up-home-')));
    dirs.push(home);
    const state = join(home, '.corral');
    // The state as `corral up` leaves it: the example process, the gateway token, the gateway's
    // identity database with the console's admin password hash, the audit log and its signing key.
    installExampleFiles(state);
    const { token } = gatewayToken(state);
    const gateway = await Gateway.start({ stateDir: state, token, port: 0 });
    await ensureAdmin(gateway.identity);
    await gateway.close();
    await (await openAuditLog({ stateDir: state })).close();
    const secrets = [KEY_FILE, GATEWAY_TOKEN_FILE, 'identity.db'].map((name) => join(state, name));
    for (const secret of secrets) assert.ok(existsSync(secret), secret);

    const [profile] = readProfiles(state);
    const loaded = await loadPolicyFile(profile!.policyFile, dirname(profile!.policyFile));
    const filesystem = { ...loaded.policy.filesystem, readonly: [...loaded.policy.filesystem.readonly, home] };
    const hidden = hiddenState(state);
    const plan = planSandbox({ ...loaded, policy: { ...loaded.policy, filesystem } }, {}, { stateDir: hidden.dir, exposed: hidden.exposed });
    const runner = new Runner();
    try {
      const script = [
        ...secrets.map((secret, i) => `cat ${secret} >/dev/null 2>&1 || echo hidden-${i}`),
        `test -d ${home} && echo home-readable`,
        'cat inbox/invoice-0001.txt >/dev/null && echo inbox-readable',
        'echo summary > outbox/summary.txt && echo outbox-writable',
      ].join('; ');
      const result = await runner.run(plan, ['/bin/sh', '-c', script]);
      assert.deepEqual(result.stdout.trim().split('\n'), ['hidden-0', 'hidden-1', 'hidden-2', 'home-readable', 'inbox-readable', 'outbox-writable'], result.stderr);
      assert.equal(readFileSync(join(workspaceDir(state), 'outbox/summary.txt'), 'utf8'), 'summary\n');
    } finally {
      await runner.close();
    }
  });
});
