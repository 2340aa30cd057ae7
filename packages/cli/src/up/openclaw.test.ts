import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hostCapabilities, planSandbox, Runner, validatePolicy } from '@corral/contain';
import { ensureOpenclaw, OPENCLAW_CACHE } from '../../../gateway/test/openclaw.ts';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';
import { egressFor, INSIDE_PORT, MODEL_PROVIDER, openclawConfig, openclawContainerPolicy, startContainedGateway, startOpenClaw } from './openclaw.ts';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("OpenClaw's configuration", () => {
  it('puts the gateway on loopback with token auth and the exec tool on the Corral node', () => {
    const config = openclawConfig({ port: INSIDE_PORT, token: 't', nodeName: 'corral-node' }) as { gateway: unknown; tools: unknown; models?: unknown };
    assert.deepEqual(config.gateway, { mode: 'local', bind: 'loopback', port: INSIDE_PORT, auth: { mode: 'token', token: 't' } });
    assert.deepEqual(config.tools, { exec: { host: 'node', node: 'corral-node' } });
    assert.equal(config.models, undefined, 'no model provider unless one is given');
  });

  it('names the model provider as an OpenAI-compatible endpoint and makes it the default model', () => {
    const config = openclawConfig({ port: 1, token: 't', nodeName: 'n', modelBaseUrl: 'https://llm.example.com/v1', modelId: 'm1' }) as { models: { providers: Record<string, { baseUrl: string; api: string }> }; agents: unknown };
    assert.equal(config.models.providers[MODEL_PROVIDER]!.baseUrl, 'https://llm.example.com/v1');
    assert.equal(config.models.providers[MODEL_PROVIDER]!.api, 'openai-completions');
    assert.deepEqual(config.agents, { defaults: { model: { primary: `${MODEL_PROVIDER}/m1` } } });
  });
});

describe('the egress of OpenClaw’s container', () => {
  const withProvider = (baseUrl: unknown) => ({ models: { providers: { p: { baseUrl } } } });

  it('lets out only the origins of the model providers its configuration names', () => {
    assert.deepEqual(egressFor(withProvider('https://llm.example.com/v1')), ['llm.example.com:443']);
    assert.deepEqual(egressFor(withProvider('http://10.0.0.5:8000/v1')), ['10.0.0.5/32:8000']);
    assert.deepEqual(egressFor({}), []);
  });

  it('names the address a pinned name resolves to, so a loopback model can be reached by name and nothing else on loopback', () => {
    assert.deepEqual(egressFor(withProvider('http://model.test:9000/v1'), { 'model.test': '127.0.0.1' }), ['model.test:9000', '127.0.0.1/32:9000']);
  });

  it('refuses a provider without a usable http(s) baseUrl', () => {
    assert.throws(() => egressFor(withProvider('not a url')), { name: 'CliFailure' });
    assert.throws(() => egressFor(withProvider('file:///etc/passwd')), { name: 'CliFailure' });
  });

  it('refuses a channel host that is no HOST:PORT rule, before anything starts', async () => {
    const home = mkdtempSync(join(tmpdir(), 'corral-claw-channel-'));
    dirs.push(home);
    await assert.rejects(startContainedGateway({ home, modules: home, entry: join(home, 'openclaw.mjs'), config: {}, channelHosts: ['api.telegram.org'] }), (e: { name?: string; exitCode?: number }) => e.name === 'CliFailure' && e.exitCode === 2);
  });

  it('is a valid container policy: home read-write, install read-only, the gateway port published', () => {
    const policy = validatePolicy(openclawContainerPolicy({ home: '/srv/claw', modules: '/opt/claw/node_modules', egress: ['llm.example.com:443'] }));
    assert.deepEqual(policy.filesystem.readwrite, ['/srv/claw']);
    assert.deepEqual(policy.filesystem.readonly, ['/opt/claw/node_modules', '/srv/claw/.openclaw/openclaw.json']);
    assert.deepEqual(policy.network.ingress, [{ port: INSIDE_PORT, hostPort: 0 }]);
    assert.deepEqual(policy.network.egress, { allow: ['llm.example.com:443'] });
    assert.equal(policy.onUnenforceable, 'refuse');
  });
});

describe("OpenClaw's container, as bubblewrap builds it", () => {
  it('lets it write its home, only read its configuration and install, and not see Corral’s state or the node’s key', async () => {
    const { home, modules } = standIn('box', '// upstream\n');
    const state = dirname(home);
    mkdirSync(join(state, 'openclaw-node'));
    writeFileSync(join(state, 'openclaw-node', 'node-device.json'), '{"privateKeyPem":"secret"}\n');
    writeFileSync(join(state, 'gateway-token'), 'corral-secret\n');
    const plan = planSandbox({ policy: validatePolicy(openclawContainerPolicy({ home, modules, egress: [] })), source: '<openclaw>', baseDir: home });
    const runner = new Runner();
    try {
      const script = [
        `echo data > ${home}/written && echo home-writable`,
        `cat ${modules}/openclaw/openclaw.mjs >/dev/null && echo install-readable`,
        `(echo '{"tools":{"exec":{"host":"gateway"}}}' > ${home}/.openclaw/openclaw.json) 2>/dev/null || echo config-readonly`,
        `(echo x > ${modules}/openclaw/openclaw.mjs) 2>/dev/null || echo install-readonly`,
        `cat ${state}/openclaw-node/node-device.json 2>/dev/null || echo node-key-hidden`,
        `cat ${state}/gateway-token 2>/dev/null || echo corral-state-hidden`,
      ].join('; ');
      const result = await runner.run(plan, ['/bin/sh', '-c', script]);
      assert.deepEqual(result.stdout.trim().split('\n'), ['home-writable', 'install-readable', 'config-readonly', 'install-readonly', 'node-key-hidden', 'corral-state-hidden'], result.stderr);
    } finally {
      await runner.close();
    }
  });
});

/** A stand-in for OpenClaw's entry point, running `script` under Corral's container as OpenClaw would be. */
function standIn(name: string, script: string): { home: string; modules: string; entry: string } {
  const state = mkdtempSync(join(tmpdir(), `corral-claw-${name}-`));
  dirs.push(state);
  const home = join(state, 'openclaw');
  const modules = join(state, 'install', 'node_modules');
  mkdirSync(join(home, '.openclaw'), { recursive: true });
  writeFileSync(join(home, '.openclaw', 'openclaw.json'), '{}\n');
  mkdirSync(join(modules, 'openclaw'), { recursive: true });
  const entry = join(modules, 'openclaw', 'openclaw.mjs');
  writeFileSync(entry, script);
  return { home, modules, entry };
}

/** Processes whose command line names `entry`, as `ps` shows them to everyone. */
function running(entry: string): string[] {
  return spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout.split('\n').filter((line) => line.includes(entry));
}

describe("OpenClaw's gateway, when it does not get ready", () => {
  it('exits early: exit 3 with its exit code and the end of its log, and nothing of it left running (regression: exit 1, saying code null)', async () => {
    const claw = standIn('exits', "console.error('no config for you'); process.exit(7);\n");
    await assert.rejects(startContainedGateway({ ...claw, config: {} }), (e: unknown) => e instanceof CliFailure && e.exitCode === EXIT.environment && /^OpenClaw's gateway exited \(code 7\) before it was ready; nothing of it is left running; what it wrote ends:\nno config for you\n$/.test(e.message));
    assert.deepEqual(running(claw.entry), []);
  });

  it('is slow: exit 3 once its time is up, with the end of its log, and nothing of it left running', async () => {
    const claw = standIn('slow', "console.log('warming up'); setInterval(() => {}, 1000);\n");
    await assert.rejects(startContainedGateway({ ...claw, config: {}, readyTimeoutMs: 2_000 }), (e: unknown) => e instanceof CliFailure && e.exitCode === EXIT.environment && /^OpenClaw's gateway was not ready within 2000 ms: it never said it was ready; it was stopped, and nothing of it is left running; what it wrote ends:\nwarming up\n$/.test(e.message));
    assert.deepEqual(running(claw.entry), []);
  });
});

describe("OpenClaw's container, when it does not publish its port in time", () => {
  it('is given up at the one deadline of the whole start: exit 3 saying its container never published its port, that nothing of it is left running and what it wrote (regression: the ready timeout started only once the port was published, so a container that never published it left corral up --openclaw waiting for good)', async () => {
    // OpenClaw would be ready at once; its container is not set up before 6 s: a stand-in bubblewrap waits first.
    const claw = standIn('unpublished', "console.log('[gateway] ready (stand-in)'); setInterval(() => {}, 1000);\n");
    const slowBwrap = join(claw.home, '..', 'slow-bwrap');
    writeFileSync(slowBwrap, `#!/bin/sh\nsleep 6\nexec ${hostCapabilities().bwrap.path} "$@"\n`, { mode: 0o755 });
    const runner = new Runner({ capabilities: { ...hostCapabilities(), bwrap: { available: true, path: slowBwrap, detail: 'a stand-in that waits 6 s' } } });
    const logFile = join(claw.home, '..', 'openclaw.log');
    const started = performance.now();
    let settledMs = 0;
    await assert.rejects(
      startContainedGateway({ ...claw, config: {}, runner, readyTimeoutMs: 1_500, logFile })
        // Ready after all (past its deadline): stopped, so that the test fails rather than hangs.
        .then(async (gateway) => void (await gateway.close()))
        .finally(() => (settledMs = performance.now() - started)),
      (e: unknown) => e instanceof CliFailure && e.exitCode === EXIT.environment && e.message === `OpenClaw's gateway was not ready within 1500 ms: its container never published its port; it was stopped, and nothing of it is left running; it wrote nothing to its log, ${logFile}`,
    );
    assert.ok(settledMs < 20_000, `gave up after ${Math.round(settledMs)} ms`);
    assert.deepEqual(running(claw.entry), []);
    assert.deepEqual(running(slowBwrap), []);
  });
});

describe("OpenClaw's home, which its container may write", () => {
  it("has Corral follow no link put there: neither its token nor its configuration is read or written through one (regression: a token file linked to Corral's gateway token put that token in OpenClaw's configuration, and a linked configuration overwrote the file it named)", async () => {
    const claw = standIn('linked', 'process.exit(1);\n');
    const state = join(claw.home, '..');
    writeFileSync(join(state, 'gateway-token'), 'corral-secret\n', { mode: 0o600 });
    const victim = join(state, 'victim');
    writeFileSync(victim, 'kept\n');
    // What a process in the container could leave behind for the next start.
    symlinkSync(join(state, 'gateway-token'), join(claw.home, 'corral-gateway-token'));
    rmSync(join(claw.home, '.openclaw', 'openclaw.json'));
    symlinkSync(victim, join(claw.home, '.openclaw', 'openclaw.json'));
    await assert.rejects(startOpenClaw({ stateDir: state, installDir: join(claw.modules, '..'), corralGatewayUrl: 'ws://127.0.0.1:1', token: 'corral-secret', nodeName: 'n', agentMap: {}, pairOnControlPlane: () => undefined }), { name: 'CliFailure' });
    assert.equal(readFileSync(victim, 'utf8'), 'kept\n');
    for (const file of ['corral-gateway-token', join('.openclaw', 'openclaw.json')]) {
      assert.ok(lstatSync(join(claw.home, file)).isFile(), file);
      assert.doesNotMatch(readFileSync(join(claw.home, file), 'utf8'), /corral-secret/, file);
    }
  });

  it('has Corral write its configuration into no folder a link there names', async () => {
    const claw = standIn('linked-folder', 'process.exit(1);\n');
    const state = join(claw.home, '..');
    const elsewhere = join(state, 'elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'openclaw.json'), 'kept\n');
    rmSync(join(claw.home, '.openclaw'), { recursive: true });
    symlinkSync(elsewhere, join(claw.home, '.openclaw'));
    await assert.rejects(startOpenClaw({ stateDir: state, installDir: join(claw.modules, '..'), corralGatewayUrl: 'ws://127.0.0.1:1', token: 'corral-secret', nodeName: 'n', agentMap: {}, pairOnControlPlane: () => undefined }), { name: 'CliFailure' });
    assert.equal(readFileSync(join(elsewhere, 'openclaw.json'), 'utf8'), 'kept\n');
    assert.ok(lstatSync(join(claw.home, '.openclaw')).isDirectory());
  });
});

describe('startOpenClaw on a host that cannot contain it', { skip: ensureOpenclaw() }, () => {
  it('fails closed, naming the missing protection, and starts nothing', async () => {
    const real = hostCapabilities();
    const runner = new Runner({ capabilities: { ...real, forwarder: { available: false, detail: 'no forwarder on this host' } } });
    const state = mkdtempSync(join(tmpdir(), 'corral-claw-closed-'));
    dirs.push(state);
    mkdirSync(state, { recursive: true });
    let paired = false;
    await assert.rejects(
      startOpenClaw({ stateDir: state, installDir: OPENCLAW_CACHE, corralGatewayUrl: 'ws://127.0.0.1:1', token: 't', nodeName: 'n', agentMap: {}, runner, pairOnControlPlane: () => void (paired = true) }),
      (error: { name?: string; exitCode?: number; message?: string }) => error.name === 'CliFailure' && error.exitCode === 3 && /cannot be contained here/.test(error.message ?? '') && /network grants: no forwarder on this host/.test(error.message ?? ''),
    );
    assert.equal(paired, false);
  });
});
