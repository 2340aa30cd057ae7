import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Gateway } from '@corral/gateway';
import { WebSocketServer } from 'ws';
import { refusingGateway } from '../../../../scripts/testing/refusing-gateway.ts';
import { CORRAL_BIN, corral, tempStateDir } from '../../test/corral.ts';

describe('corral node run given its tokens on the command line', () => {
  it('hides them from its command line, which every user of the host can read, once it has them, and says to pass them in the environment (regression: the gateway token stayed in ps for as long as the node ran)', async () => {
    const [gatewayToken, controlPlaneToken] = [randomBytes(18).toString('base64url'), randomBytes(18).toString('base64url')];
    const child = spawn(CORRAL_BIN, ['--state-dir', tempStateDir(), 'node', 'run', '--gateway', 'ws://127.0.0.1:9', `--token=${gatewayToken}`, '--control-plane', 'ws://127.0.0.1:8', '--control-plane-token', controlPlaneToken], { env: { ...process.env, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      let stdout = '';
      // Once it says anything of its connections, it has read its options.
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (c: Buffer) => ((stdout += c.toString()), /unreachable/.test(stdout) && resolve()));
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const commandLine = execFileSync('cat', [`/proc/${child.pid}/cmdline`], { encoding: 'utf8' });
      assert.doesNotMatch(commandLine, new RegExp(`${gatewayToken}|${controlPlaneToken}`));
      assert.match(commandLine, /--token=\*\*\*.*--control-plane-token\0?\s?\*\*\*/s);
      assert.match(stderr, /--token on the command line could be read by every user of this host.*pass it in CORRAL_GATEWAY_TOKEN instead/);
      assert.match(stderr, /--control-plane-token on the command line .*CORRAL_CONTROL_PLANE_TOKEN instead/);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('corral node run, refusing bad options before it connects', () => {
  it('refuses --agent-map without --control-plane: nobody would decide for the mapped agents', async () => {
    const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--agent-map', 'main=invoice-bot']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--agent-map needs --control-plane/);
  });

  it("refuses the console's http:// URL, the one corral up prints, as --gateway, saying the ws:// address to give instead", async () => {
    const r = await corral(['node', 'run', '--gateway', 'http://127.0.0.1:18789/']);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--gateway takes the gateway's WebSocket address: ws:\/\/127\.0\.0\.1:18789, not http:\/\/127\.0\.0\.1:18789\//);
  });

  it('refuses a user name or password in --gateway or --control-plane, which it would print and log, never echoing it (regression: printed as given)', async () => {
    for (const args of [['--gateway', 'ws://me:s3cret-pass@127.0.0.1:9'], ['--gateway', 'ws://127.0.0.1:9', '--control-plane', 'wss://s3cret-pass@127.0.0.1:8', '--control-plane-token', 't2']]) {
      const r = await corral(['node', 'run', '--token', 't', ...args]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /must not hold a user name or password/);
      assert.ok(!(r.stdout + r.stderr).includes('s3cret-pass'), 'the secret is not printed');
    }
  });

  it("refuses a state directory another user owns as the host's problem, exit 3 with NODE_STATE_DIR_UNAVAILABLE, as one another node holds (regression: exit 1, as if a check had failed, with NODE_DEVICE_INVALID, as if its key were damaged)", { skip: process.getuid?.() !== 0 && 'only root can give a folder to another user' }, async () => {
    const theirs = join(tempStateDir(), 'theirs');
    mkdirSync(theirs);
    chownSync(theirs, 65534, 65534);
    const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--json'], { env: { CORRAL_STATE_DIR: theirs } });
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stderr, /belongs to another user \(uid 65534\)/);
    assert.equal(JSON.parse(r.stdout).error.code, 'NODE_STATE_DIR_UNAVAILABLE');
  });

  it('refuses a malformed --agent-map entry, naming it (NODE_CONFIG_INVALID)', async () => {
    const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--control-plane', 'ws://127.0.0.1:8', '--control-plane-token', 't2', '--agent-map', 'main=Not A Name']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--agent-map main: .*not a Corral agent name.*NODE_CONFIG_INVALID/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });

  it('refuses a --control-plane that is the --gateway itself, rather than running that gateway\'s commands ungoverned (regression: the option was silently ignored, and so was --agent-map)', async () => {
    for (const cp of ['ws://127.0.0.1:9', 'ws://127.0.0.1:9/', 'ws://127.0.0.1:09']) {
      const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--control-plane', cp, '--control-plane-token', 't', '--agent-map', 'main=invoice-bot']);
      assert.equal(r.code, 2, cp);
      assert.match(r.stderr, /--control-plane names the gateway this node serves/, cp);
    }
  });

  it('asks for the gateway token when the node has no device token for that gateway yet (exit 2, no stack trace)', async () => {
    const r = await corral(['--state-dir', tempStateDir(), 'node', 'run', '--gateway', 'ws://127.0.0.1:9'], { env: { CORRAL_GATEWAY_TOKEN: '' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /a gateway token is needed to reach 127\.0\.0\.1:9 the first time.*\[NODE_CONFIG_INVALID\]/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/);
  });

  it('refuses an --agent-policy that is not agent=FILE, or a file that is no container policy', async () => {
    const bad = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--agent-policy', 'invoice-bot']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected corralAgent=FILE/);
    const missing = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--agent-policy', 'invoice-bot=/nonexistent/policy.yaml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read policy \/nonexistent\/policy\.yaml: no such file/);
  });

  it('refuses a policy that is a FIFO or a device at once, as corral run does (regression: a FIFO was waited on for good, /dev/zero read until memory ran out)', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'corral-node-policy-'));
    execFileSync('mkfifo', [join(dir, 'policy.yaml')]);
    for (const file of [join(dir, 'policy.yaml'), '/dev/zero']) {
      const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 't', '--policy', file]);
      assert.equal(r.code, 2, file);
      assert.match(r.stderr, /not a regular file/, file);
    }
  });
});

describe('corral node run, when the gateway refuses or cannot be reached', () => {
  it('exits non-zero at a wrong token, naming AUTH_TOKEN_MISMATCH (regression: it printed refused (INVALID_REQUEST) forever)', async () => {
    const state = tempStateDir();
    const gw = await Gateway.start({ stateDir: state, token: randomBytes(24).toString('base64url'), port: 0 });
    try {
      const r = await corral(['node', 'run', '--gateway', gw.url, '--token', 'WRONG-token-for-this-gateway']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /refused this node: AUTH_TOKEN_MISMATCH .*retrying cannot fix this: check the gateway token/);
      assert.doesNotMatch(r.stderr, /WRONG-token/, 'the token is never echoed');
      assert.doesNotMatch(r.stdout, /refused/);
    } finally {
      await gw.close();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('under --json, writes JSON lines only: who it is, its statuses, then its refusal as an error document, exit 1 (regression: --json was refused as an unknown option)', async () => {
    const state = tempStateDir();
    const gw = await Gateway.start({ stateDir: state, token: randomBytes(24).toString('base64url'), port: 0 });
    try {
      const r = await corral(['node', 'run', '--gateway', gw.url, '--token', 'WRONG-token-for-this-gateway', '--json']);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(Object.keys(lines[0]!), ['node', 'gateway']);
      assert.equal(lines[0]!.gateway, gw.url);
      assert.deepEqual(lines.at(-2), { state: 'stopped', detail: 'AUTH_TOKEN_MISMATCH' });
      assert.equal((lines.at(-1)!.error as { code: string }).code, 'NODE_CONFIG_INVALID');
      for (const status of lines.slice(1, -1)) assert.equal(typeof status.state, 'string', JSON.stringify(status));
      assert.doesNotMatch(r.stdout + r.stderr, /WRONG-token/, 'the token is never echoed');
    } finally {
      await gw.close();
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('under --json, says each retry of a gateway that is not there as a JSON line', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', `ws://127.0.0.1:${port}`, '--token', 'a-token', '--json'], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      while ((out.match(/"state":"unreachable"/g) ?? []).length < 1 && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
    const lines = out.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const unreachable = lines.find((l) => l.state === 'unreachable')!;
    assert.equal(unreachable.detail, 'ECONNREFUSED');
    assert.equal(typeof unreachable.retryInMs, 'number');
  });

  it('keeps retrying a gateway that is not there, saying so and when it tries again', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', `ws://127.0.0.1:${port}`, '--token', 'a-token'], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 15_000;
    while ((out.match(/unreachable \(ECONNREFUSED\); retrying in \d+\.\d s/g) ?? []).length < 2 && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(child.exitCode, null, 'it gave up');
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    // A random wait (so nodes restarted together spread out) from 250 ms up to a ceiling that starts there and doubles.
    assert.match(out, /unreachable \(ECONNREFUSED\); retrying in 0\.3 s\n.*unreachable \(ECONNREFUSED\); retrying in 0\.[345] s/s);
  });
});

describe('corral node run, waiting to be paired', () => {
  it('says once how an operator pairs it, not again at each retry (regression: its 64-digit id, and no word of how, every few seconds)', async () => {
    const state = tempStateDir();
    const token = randomBytes(24).toString('base64url');
    const gw = await Gateway.start({ stateDir: state, token, port: 0 });
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', gw.url, '--name', 'waits'], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir(), CORRAL_GATEWAY_TOKEN: token }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 15_000;
      while (!/waiting for an operator/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Its first retries come within 0.25–0.5 s each: by 2.5 s it has asked at least three more times.
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(child.exitCode, null, out);
      assert.equal((out.match(/waiting for an operator/g) ?? []).length, 1, out);
      assert.match(out, /waiting for an operator to pair node [0-9a-f]{64}: on the gateway's host, corral nodes pending lists its request and corral nodes pair REQUEST pairs it/);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await gw.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});

/** What Corral's gateway answers a new node while 256 wait to be paired. */
const PENDING_FULL = { code: 'UNAVAILABLE', message: 'too many devices already wait to be paired: try again later, or ask an operator to pair or reject the waiting ones', retryable: true, details: { code: 'PAIRING_PENDING_FULL', recommendedNextStep: 'wait_then_retry', retryable: true, pauseReconnect: false } };

describe('corral node run, when the gateway already has as many nodes waiting to be paired as it keeps', () => {
  it('says plainly it was asked to try again later, and keeps trying (regression: it printed refused for now (PAIRING_PENDING_FULL), as if refused)', async () => {
    const gw = await refusingGateway(PENDING_FULL);
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', gw.url, '--token', 'a-token'], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const said = /the gateway has as many nodes waiting to be paired as it keeps and asked this one to try again later \(PAIRING_PENDING_FULL\); retrying in \d+\.\d s/g;
      const deadline = Date.now() + 15_000;
      while ((out.match(said) ?? []).length < 2 && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(child.exitCode, null, 'it gave up');
      assert.equal((out.match(said) ?? []).length >= 2, true, out);
      assert.doesNotMatch(out, /refused/);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await gw.close();
    }
  });

  it('says the same of a control plane that has as many waiting, and that it asks again at the next command', async () => {
    const cp = await refusingGateway(PENDING_FULL);
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 'upstream-token', '--control-plane', cp.url, '--control-plane-token', 'cp-token'], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 15_000;
      while (!/PAIRING_PENDING_FULL/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /control plane ws:\/\/127\.0\.0\.1:\d+ has as many nodes waiting to be paired as it keeps and asked this one to try again later \(PAIRING_PENDING_FULL\): it asks again at the next command/);
      assert.doesNotMatch(out, /refused/);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await cp.close();
    }
  });
});

describe('corral node run, when a hostile gateway writes control characters in its refusal', () => {
  const escape = '\u001b]0;owned\u0007\u001b[2J\u001b[31m';

  it('prints its code escaped in the status line, never raw to the terminal', async () => {
    const gw = await refusingGateway({ code: 'INVALID_REQUEST', message: 'no', details: { code: `X${escape}` } });
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', gw.url, '--token', 'a-token'], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 15_000;
      while (!/refused for now/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /refused for now \(X\\u001b\]0;owned\\u0007\\u001b\[2J/);
      assert.doesNotMatch(out, /[\u0000-\u0009\u000b-\u001f\u007f]/, 'no control character reaches the terminal');
    } finally {
      child.kill('SIGTERM');
      await exited;
      await gw.close();
    }
  });

  it('stops at a final refusal with its message on one line, escaped', async () => {
    const gw = await refusingGateway({ code: 'INVALID_REQUEST', message: `bad proof\ncorral: fake line${escape}`, details: { code: `DEVICE_AUTH_${escape}` } });
    try {
      const r = await corral(['node', 'run', '--gateway', gw.url], { env: { CORRAL_GATEWAY_TOKEN: 'a-token' } });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /refused this node: DEVICE_AUTH_/);
      assert.doesNotMatch(r.stderr, /[\u0000-\u0009\u000b-\u001f\u007f]/, 'no control character reaches the terminal');
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, 'the gateway cannot start a line of its own');
    } finally {
      await gw.close();
    }
  });
});

describe('corral node run under another gateway, governed by a Corral control plane', { timeout: 60_000 }, () => {
  it('needs a token of its own for the control plane the first time, naming the option', async () => {
    const r = await corral(['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 'upstream-token', '--control-plane', 'ws://127.0.0.1:8'], { env: { CORRAL_CONTROL_PLANE_TOKEN: '' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /a control plane token is needed to reach 127\.0\.0\.1:8 the first time.*--control-plane-token/);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, 'no stack trace');
  });

  it("never sends the control plane's token to the other gateway, nor that gateway's to the control plane (regression: --token went to both, so OpenClaw held Corral's token)", async () => {
    const seen: unknown[] = [];
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (socket) => {
      socket.send(JSON.stringify({ type: 'event', event: 'connect.challenge', payload: { nonce: 'n', ts: Date.now() } }));
      socket.on('message', (data) => {
        const frame = JSON.parse(String(data)) as { id?: string; params?: { auth?: unknown } };
        seen.push(frame.params?.auth);
        socket.send(JSON.stringify({ type: 'res', id: frame.id, ok: false, error: { code: 'UNAVAILABLE', message: 'starting', retryable: true } }));
      });
    });
    const cpToken = randomBytes(24).toString('base64url');
    const state = tempStateDir();
    const cp = await Gateway.start({ stateDir: state, token: cpToken, port: 0 });
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', `ws://127.0.0.1:${(wss.address() as { port: number }).port}`, '--token', 'upstream-token', '--control-plane', cp.url, '--control-plane-token', cpToken], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 15_000;
      let announced = false;
      while (!(announced && seen.length > 0 && /waiting for an operator/.test(out)) && child.exitCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        const id = /node ([0-9a-f]{64}) connecting/.exec(out)?.[1];
        announced = id !== undefined && cp.inventory.list().some((n) => n.nodeId === id);
      }
      assert.ok(announced, 'the node reached the control plane with its own token');
      assert.match(out, /control plane ws:\/\/127\.0\.0\.1:\d+: waiting for an operator to pair node [0-9a-f]{64} there/);
      assert.deepEqual(seen[0], { token: 'upstream-token' });
      assert.ok(!JSON.stringify(seen).includes(cpToken));
    } finally {
      child.kill('SIGTERM');
      await exited;
      await cp.close();
      await new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      });
      rmSync(state, { recursive: true, force: true });
    }
  });
});

describe('corral node run with a control plane token that is wrong', { timeout: 60_000 }, () => {
  it('says the control plane refused it and which option to check, rather than denying every command in silence', async () => {
    const state = tempStateDir();
    const cp = await Gateway.start({ stateDir: state, token: randomBytes(24).toString('base64url'), port: 0 });
    const child = spawn(CORRAL_BIN, ['node', 'run', '--gateway', 'ws://127.0.0.1:9', '--token', 'upstream-token', '--control-plane', cp.url, '--control-plane-token', 'WRONG-cp-token'], { env: { ...process.env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 15_000;
      while (!/control plane .* refused/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(out, /control plane ws:\/\/127\.0\.0\.1:\d+ refused this node \(AUTH_TOKEN_MISMATCH\): every command is denied; check --control-plane-token/);
      assert.doesNotMatch(out, /WRONG-cp-token/);
    } finally {
      child.kill('SIGTERM');
      await exited;
      await cp.close();
      rmSync(state, { recursive: true, force: true });
    }
  });
});
