// Known bypasses (upstream OpenClaw #128470 and kin): an approval or an allow
// rule for one command never covers another chained to it by a shell
// operator, a substitution, a newline, or an env/shell/runner wrapper, or
// given to a program's subcommand that runs it (`bundle exec`, `npx`). The
// decision is made on the canonical argv of everything that would run; none of
// these reaches the node.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { governedGateway, refusedWith, type GovernedGateway } from './governed-gateway.ts';

// The wrappers themselves are allowed, so that only what they would run can refuse.
const POLICY = `
@id("printf-asks") @approval("required") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"printf");
@id("echo") permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"echo");
@id("wrappers") permit (principal == Human::"operator", action == Action::"system.run", resource)
  when { [Command::"sh", Command::"bash", Command::"env", Command::"xargs", Command::"nice", Command::"timeout", Command::"nohup", Command::"bundle", Command::"uv", Command::"npm", Command::"npx", Command::"docker", Command::"yarn", Command::"bun", Command::"make", Command::"cargo"].contains(resource) };
`;

const BYPASSES: Array<[string, string[]]> = [
  ['a pipe', ['sh', '-c', 'printf ok | rm -rf /tmp/victim']],
  ['a semicolon', ['sh', '-c', 'printf ok; rm -rf /tmp/victim']],
  ['&&', ['sh', '-c', 'printf ok && rm -rf /tmp/victim']],
  ['||', ['sh', '-c', 'printf ok || rm -rf /tmp/victim']],
  ['a background &', ['sh', '-c', 'printf ok & rm -rf /tmp/victim']],
  ['a newline', ['sh', '-c', 'printf ok\nrm -rf /tmp/victim']],
  ['$(…)', ['sh', '-c', 'printf ok $(rm -rf /tmp/victim)']],
  ['backticks', ['sh', '-c', 'printf ok `rm -rf /tmp/victim`']],
  ['bash -lc', ['bash', '-lc', 'printf ok; rm -rf /tmp/victim']],
  ['a nested shell', ['sh', '-c', "bash -c 'printf ok; rm -rf /tmp/victim'"]],
  ['env X=1 cmd', ['env', 'X=1', 'rm', '-rf', '/tmp/victim']],
  ['env inside a payload', ['sh', '-c', 'printf ok; env X=1 rm -rf /tmp/victim']],
  ['an environment that changes what runs (LD_PRELOAD)', ['env', 'LD_PRELOAD=/tmp/evil.so', 'printf', 'ok']],
  ['xargs', ['xargs', 'rm', '-rf']],
  ['nice', ['nice', '-n', '5', 'rm', '-rf', '/tmp/victim']],
  ['timeout', ['timeout', '5', 'rm', '-rf', '/tmp/victim']],
  ['nohup', ['nohup', 'rm', '-rf', '/tmp/victim']],
  ['bundle exec', ['bundle', 'exec', 'rm', '-rf', '/tmp/victim']],
  ['uv run', ['uv', 'run', 'rm', '-rf', '/tmp/victim']],
  ['npm exec', ['npm', 'exec', '--', 'rm', '-rf', '/tmp/victim']],
  ['npx', ['npx', 'rm', '-rf', '/tmp/victim']],
  ['docker exec', ['docker', 'exec', 'app', 'rm', '-rf', '/tmp/victim']],
  ['npm init PKG, which runs create-PKG', ['npm', 'init', 'vite']],
  ['yarn create PKG', ['yarn', 'create', 'vite']],
  ['bun CMD, a first word none of its commands', ['bun', 'touch', '/tmp/victim']],
  ['bun run CMD', ['bun', 'run', 'rm', '-rf', '/tmp/victim']],
  ['make --eval', ['make', '--eval=$(shell rm -rf /tmp/victim)']],
  ['make SHELL=CMD', ['make', 'SHELL=/tmp/victim/sh']],
  ['cargo --config naming a runner', ['cargo', 'run', '--config', 'target.x86_64-unknown-linux-gnu.runner="rm"']],
  ['bundle exec inside a payload', ['sh', '-c', 'echo hi; bundle exec rm -rf /tmp/victim']],
  ['the approved command wrapped in sh -c', ['sh', '-c', 'printf ok']],
  ['an allowed command chained to one no policy permits', ['sh', '-c', 'echo hi; rm -rf /tmp/victim']],
];

describe('an approval or allow for one command never covers another chained to it', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: POLICY, gateway: { approvalPollMs: 20 } });
    const { gw, node } = t;
    // printf ok is approved always: a standing grant for exactly that action.
    await assert.rejects(t.run(['printf', 'ok'], 100));
    const [approval] = gw.approvals.list({ status: 'pending' });
    await gw.invoker.resolveApprovalWhenFree(approval!.id, 'allow-always', 'alice');
    await t.run(['printf', 'ok']);
    await t.run(['printf', 'ok']);
    await t.run(['sh', '-c', 'echo hi']);
    // A wrapper's own work, with no command to run, is what its permit allows.
    await t.run(['bundle', 'install']);
    await t.run(['npm', 'init', '-y']);
    await t.run(['yarn', 'install']);
    assert.equal(node.received.length, 6);
  });
  after(() => t.close());

  for (const [name, argv] of BYPASSES) {
    it(`refuses ${name}, and the node never sees it`, async () => {
      const before = t.node.received.length;
      await assert.rejects(t.run(argv, 100), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED' || e.wire?.details?.code === 'APPROVAL_PENDING');
      assert.equal(t.node.received.length, before);
    });
  }
});

// A review of issue 5 ran each of these through a gateway whose policy
// permits everything but rm and ~/.ssh, and each reached the node.
const FORBIDDING = `
@id("operator-all") permit (principal == Human::"operator", action, resource);
@id("no-rm") forbid (principal, action, resource == Command::"rm");
@id("no-ssh") forbid (principal, action, resource) when { context has argv && context.argv.containsAny(["~/.ssh"]) };
`;

const FORBID_BYPASSES: Array<[string, string[]]> = [
  ['rm spelled as /bin/rm', ['/bin/rm', '-rf', '/tmp/victim']],
  ['rm spelled as /bin/rm inside a payload', ['sh', '-c', 'echo; /bin/rm -rf /tmp/victim']],
  ['rm inside if/then/fi', ['sh', '-c', 'if true; then rm -rf /tmp/victim; fi']],
  ['rm inside for/do/done', ['sh', '-c', 'for i in 1; do rm -rf /tmp/victim; done']],
  ['sh -oc noglob PAYLOAD', ['sh', '-oc', 'noglob', 'rm -rf /tmp/victim']],
  ['bash -Oc extglob PAYLOAD', ['bash', '-Oc', 'extglob', 'rm -rf /tmp/victim']],
  ['sh -o noglob -c PAYLOAD', ['sh', '-o', 'noglob', '-c', 'rm -rf /tmp/victim']],
  ['trap running a string', ['sh', '-c', "trap 'rm -rf /tmp/victim' EXIT"]],
];

describe('a forbid holds however the forbidden command is spelled or wrapped', () => {
  let t: GovernedGateway;
  before(async () => {
    t = await governedGateway({ policy: FORBIDDING, gateway: { approvalPollMs: 20 } });
    await t.run(['sh', '-o', 'noglob', '-c', 'id -u']);
    assert.equal(t.node.received.length, 1);
  });
  after(() => t.close());

  for (const [name, argv] of FORBID_BYPASSES) {
    it(`refuses ${name}, and the node never sees it`, async () => {
      const before = t.node.received.length;
      await assert.rejects(t.run(argv, 100), refusedWith('SYSTEM_RUN_DENIED'));
      assert.equal(t.node.received.length, before);
    });
  }
});
