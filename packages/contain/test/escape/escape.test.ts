// Every case of the escape battery, run in a real bubblewrap sandbox through
// Corral's runner, must end contained: no ESCAPED, no trace on the host, and
// for limits and refusals the evidence Corral records. Each case runs twice:
// in a sandbox started for it, and in one started ahead and kept warm for its
// plan (Runner.keepWarm), which must contain exactly as well.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Runner } from '../../src/runner.ts';
import { validatePolicy } from '../../src/policy/load.ts';
import { planSandbox } from '../../src/policy/plan.ts';
import { ESCAPE_CASES } from './cases.ts';
import { buildWorld, type LiveWorld } from './world.ts';

// Names the attacks ask the proxy to resolve; anything else fails to resolve (no real DNS in tests).
const TEST_NAMES: Record<string, string> = {
  'metadata.example.com': '169.254.169.254',
  'rebind.example.com': '127.0.0.1',
  'api.example.com': '192.0.2.10',
};

describe('the escape battery', () => {
  let world: LiveWorld;
  let runner: Runner;
  let warmRunner: Runner;
  before(async () => {
    world = await buildWorld();
    runner = new Runner({ proxy: { lookup: testLookup } });
    warmRunner = new Runner({ proxy: { lookup: testLookup } });
  });
  after(async () => {
    await runner?.close();
    await warmRunner?.close();
    await world?.close();
  });

  it('has at least 40 cases, each with a distinct id', () => {
    assert.ok(ESCAPE_CASES.length >= 40, `only ${ESCAPE_CASES.length} cases`);
    assert.equal(new Set(ESCAPE_CASES.map((c) => c.id)).size, ESCAPE_CASES.length);
  });

  for (const start of ['cold', 'warm'] as const) {
    describe(start === 'cold' ? 'in a sandbox started for the run' : 'in a sandbox started ahead and kept warm for its plan', () => {
      for (const attack of ESCAPE_CASES) {
        describe(`when a contained command tries to ${attack.title}`, () => {
          it(attack.expect ? `is contained and Corral records ${attack.expect}` : 'is contained', async () => {
            const plan = planSandbox({ policy: validatePolicy(attack.policy(world)), source: `escape:${attack.id}`, baseDir: world.dir });
            if (start === 'warm') await warmRunner.keepWarm(plan, 1);
            const result = await (start === 'warm' ? warmRunner : runner).run(plan, attack.argv(world));
            if (start === 'warm') await warmRunner.keepWarm(plan, 0);
            const evidence = `exit ${result.exitCode}, limits ${JSON.stringify(result.limitsHit)}\nstdout: ${result.stdout.slice(0, 600)}\nstderr: ${result.stderr.slice(0, 600)}`;
            assert.equal(result.warm, start === 'warm', `expected a ${start} sandbox`);
            assert.ok(!result.stdout.includes('ESCAPED'), `the attack worked:\n${evidence}`);
            if (attack.hostEffect) assert.equal(await attack.hostEffect(world), false, `the attack left a trace on the host:\n${evidence}`);
            switch (attack.expect) {
              case undefined:
                break;
              case 'network-refused':
                assert.ok(
                  result.connections.some((c) => !c.allowed) && result.connections.every((c) => !c.allowed),
                  `no refusal recorded: ${JSON.stringify(result.connections)}\n${evidence}`,
                );
                break;
              default:
                assert.ok(result.limitsHit.includes(attack.expect), `expected ${attack.expect} in limitsHit:\n${evidence}`);
            }
          });
        });
      }
    });
  }

  it('nothing reached the host servers or the UDP listener', () => {
    assert.equal(world.tcpAccepted(), 0);
    assert.deepEqual(world.udpReceived, []);
  });
});

async function testLookup(hostname: string): Promise<{ address: string; family: 4 | 6 }[]> {
  const address = TEST_NAMES[hostname.toLowerCase()];
  if (!address) throw Object.assign(new Error(`test resolver: no name ${hostname}`), { code: 'ENOTFOUND' });
  return [{ address, family: 4 }];
}
