import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { hostCapabilities } from './linux/host.ts';
import { validatePolicy } from './policy/load.ts';
import { planSandbox, type SandboxPlan } from './policy/plan.ts';
import type { ContainerPolicyInput } from './policy/schema.ts';
import { Runner } from './runner.ts';

function plan(policy: ContainerPolicyInput): SandboxPlan {
  return planSandbox({ policy: validatePolicy(policy), source: 'test', baseDir: '/tmp' });
}

/** `/bin/sh -c 'echo $#' sh` and `n` words: the command prints how many words it was given. */
function counting(n: number): string[] {
  return ['/bin/sh', '-c', 'echo $#', 'sh', ...Array.from({ length: n }, (_, i) => String(i))];
}

describe('a command line bubblewrap cannot take on its own', () => {
  let runner: Runner;
  before(() => {
    runner = new Runner();
  });
  after(async () => {
    await runner.close();
  });

  describe('more words than the 9000 arguments bubblewrap reads', () => {
    it('runs in a sandbox started for it, with every word (regression: refused as a sandbox this host could not set up)', async () => {
      const r = await runner.run(plan({ runtime: ['shell'] }), counting(10_000));
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, '10000\n');
    });

    it('runs with every word where the plan grants network too', async () => {
      const r = await runner.run(plan({ runtime: ['shell'], network: { egress: { allow: ['api.example.com:443'] } } }), counting(10_000));
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, '10000\n');
    });

    it("is refused as a bad command, before anything starts, where Corral's launcher that would take it is not available", async () => {
      const poor = new Runner({ capabilities: { ...hostCapabilities(), forwarder: { available: false, detail: 'no C compiler to build it' } } });
      try {
        await assert.rejects(poor.run(plan({ runtime: ['shell'] }), counting(10_000)), (error: Error & { code?: string }) => error.code === 'CONTAIN_BAD_COMMAND' && /no C compiler/.test(error.message));
        const r = await poor.run(plan({ runtime: ['shell'] }), counting(8_000));
        assert.equal(r.stdout, '8000\n');
      } finally {
        await poor.close();
      }
    });
  });

  describe('more than a contained command can be handed', () => {
    const shell = plan({ runtime: ['shell'], environment: { set: { WARM: '1' } } });

    for (const [what, argv] of [
      ['more than 65,536 words', counting(70_000)],
      ['a word longer than the 128 KiB Linux passes to a program', ['/bin/echo', 'x'.repeat(200_000)]],
      ['more than 2 MiB in all', ['/bin/echo', ...Array.from({ length: 40 }, () => 'y'.repeat(60_000))]],
    ] as const) {
      it(`refuses ${what} as a bad command before anything starts, cold or warm (regression: reported as the command's own exit or as not found)`, async () => {
        assert.throws(() => runner.spawn(shell, argv), { code: 'CONTAIN_BAD_COMMAND' });
        await runner.keepWarm(shell, 1);
        assert.throws(() => runner.spawn(shell, argv), { code: 'CONTAIN_BAD_COMMAND' });
        const r = await runner.run(shell, ['/bin/true']);
        assert.deepEqual([r.exitCode, r.warm], [0, true], 'the warm sandbox was left for the next run');
        await runner.keepWarm(shell, 0);
      });
    }
  });

  describe('a policy that needs more of bubblewrap\'s arguments than it reads', () => {
    it('is refused as one this host cannot contain, saying why (regression: "the sandbox could not be set up on this host")', async () => {
      const set = Object.fromEntries(Array.from({ length: 3100 }, (_, i) => [`V${i}`, 'x']));
      const p = plan({ runtime: ['shell'], environment: { set } });
      await assert.rejects(runner.run(p, ['/bin/true']), (error: Error & { code?: string }) => error.code === 'CONTAIN_UNENFORCEABLE' && /9000/.test(error.message));
      await assert.rejects(runner.keepWarm(p, 1), { code: 'CONTAIN_UNENFORCEABLE' });
      await runner.keepWarm(p, 0);
    });
  });
});
