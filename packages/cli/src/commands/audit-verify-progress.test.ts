// `corral audit verify` showing how far it has come on stderr, its report alone on stdout.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAuditLog } from '@corral/audit';
import { corral, tempStateDir } from '../../test/corral.ts';

let dir: string;
before(async () => {
  dir = tempStateDir();
  const log = await openAuditLog({ stateDir: dir, checkpointEvery: 5 });
  for (let i = 0; i < 12; i++) await log.append({ actor: { kind: 'agent', id: 'invoice-bot' }, action: 'run.exec', resource: { kind: 'command', id: `/bin/echo ${i}` }, outcome: { status: 'success' } });
  await log.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `corral audit verify ARGS`, its progress shown after `progressMs` when given (else after the 2 s a user waits). */
const verify = (args: string[], progressMs?: number) => corral(['--state-dir', dir, 'audit', 'verify', ...args], progressMs === undefined ? {} : { env: { CORRAL_VERIFY_PROGRESS_MS: String(progressMs) } });

describe('corral audit verify progress', () => {
  for (const args of [['--json'], []]) {
    describe(args.length ? `with ${args.join(' ')}` : 'as text', () => {
      it('says on stderr how many of the log\'s records it has verified once it has taken long (here: at once), its report alone on stdout (regression: nothing for as long as it took)', async () => {
        const quiet = await verify(args);
        const shown = await verify(args, 0);
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(shown.stderr, /^(corral: verify: (0|12) of 12 records verified\n)+$/);
        assert.match(shown.stderr, /^corral: verify: 12 of 12 records verified$/m);
        assert.equal(shown.stdout, quiet.stdout);
        if (args.includes('--json')) assert.equal(JSON.parse(shown.stdout).verified, 12);
        else assert.match(shown.stdout, /^ok: .*seq 0–11 \(12 records\) verified/);
      });
      it('says so too for an export verified offline (--export)', async () => {
        const exported = await corral(['--state-dir', dir, 'audit', 'export', '--format', 'jsonl']);
        const file = join(dir, 'export.jsonl');
        writeFileSync(file, exported.stdout);
        const key = join(dir, 'public.pem');
        writeFileSync(key, (await corral(['--state-dir', dir, 'audit', 'public-key'])).stdout);
        const offline = ['--export', file, '--public-key', key, ...args];
        const quiet = await verify(offline);
        const shown = await verify(offline, 0);
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(shown.stderr, /^(corral: verify: (0|12) of 12 records verified\n)+$/);
        assert.match(shown.stderr, /^corral: verify: 12 of 12 records verified$/m);
        assert.equal(shown.stdout, quiet.stdout);
        assert.equal(quiet.stderr, '');
      });
      it('shows nothing for a verify that ends within 2 s', async () => {
        const r = await verify(args);
        assert.equal(r.code, 0, r.stdout);
        assert.equal(r.stderr, '');
      });
    });
  }
});
