import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { CORRAL_BIN, corral, tempStateDir } from '../../test/corral.ts';

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

describe('corral gateway, when the policies of its state directory do not load', () => {
  it('exits 2 naming each problem by file and line and what to do, as corral up does (regression: exit 1 and "the policy set is invalid (1 problem)" alone)', async () => {
    const state = tempStateDir();
    mkdirSync(join(state, 'policies'));
    writeFileSync(join(state, 'policies', 'typo.cedar'), '// a typo on line 2\npermit(principal, action, resource\n');
    const r = await corral(['--state-dir', state, 'gateway', '--port', '0', '--json'], { env: { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' } });
    assert.equal(r.code, 2, r.stderr);
    assert.equal(JSON.parse(r.stdout).error.code, 'POLICY_SET_INVALID');
    const policies = join(state, 'policies');
    assert.match(r.stderr, new RegExp(`^corral: the policies in ${policies} do not load: the policy set is invalid \\(1 problem\\)\ntypo\\.cedar:2:\\d+: .*\nfix them \\(corral policy validate ${policies} names each problem\\) and run corral gateway again \\[POLICY_SET_INVALID\\]\n$`));
  });
});

describe('corral gateway, with no policies in its state directory', () => {
  it('says as it starts listening that every governed command is denied, and not when a set is there (regression: denied without a word)', async () => {
    const withPolicies = tempStateDir();
    mkdirSync(join(withPolicies, 'policies'));
    writeFileSync(join(withPolicies, 'policies', 'p.cedar'), 'permit (principal, action == Action::"system.which", resource);\n');
    for (const [state, said] of [[tempStateDir(), true], [withPolicies, false]] as const) {
      const child = spawn(CORRAL_BIN, ['--state-dir', state, 'gateway', '--port', '0'], { env: { ...process.env, CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more', CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
      await once(createInterface({ input: child.stdout! }), 'line');
      // Written before the listening line: all there once it has stopped, however soon.
      child.kill('SIGTERM');
      await once(child, 'close');
      assert.equal(/corral: no Cedar policies in \S+policies: every governed command is denied/.test(stderr), said, stderr);
    }
  });
});

describe('corral gateway, given a --port that is not a port number', () => {
  it("refuses '', ' ', 0x1f90, 1e3, 80.0, -1 and 65536 with exit 2 naming --port, before anything else (regression: '' listened on a random port, 0x1f90 on 8080)", async () => {
    for (const port of ['', ' ', '0x1f90', '1e3', '80.0', '-1', '65536']) {
      // An address that is not one as well: a --port let through is then refused for --bind instead of listening.
      const r = await corral(['gateway', `--port=${port}`, '--bind', 'not-an-address'], { env: { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' } });
      assert.equal(r.code, 2, `--port ${JSON.stringify(port)}: ${r.stderr}`);
      assert.match(r.stderr, /--port must be a port number \(0-65535\)/, `--port ${JSON.stringify(port)}`);
    }
  });
});

describe('corral gateway, with single sign-on for the console', () => {
  const settings = { issuer: 'https://login.example.com', clientId: 'corral-console', redirectUri: 'http://127.0.0.1:18789/api/auth/oidc/callback', roleMap: { approver: ['finance-approvers'] } };
  const token = { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' };

  it('offers it on the sign-in page under its name, read from STATE_DIR/console-oidc.json', async () => {
    const state = tempStateDir();
    writeFileSync(join(state, 'console-oidc.json'), JSON.stringify({ ...settings, name: 'Example SSO' }));
    const child = spawn(CORRAL_BIN, ['gateway', '--port', '0'], { env: { ...process.env, ...token, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: state }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const url = /listening on (ws:\/\/\S+)/.exec(line)![1]!.replace(/^ws/, 'http');
      const providers = await (await fetch(`${url}/api/auth/providers`)).json();
      assert.deepEqual(providers, { local: true, oidc: { name: 'Example SSO' } });
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  it('refuses settings it could not use before it listens, naming the file and the setting (exit 2): a redirect elsewhere than the console, an HMAC algorithm, a file that is not JSON (without quoting it: it may hold the secret)', async () => {
    const state = tempStateDir();
    const file = join(state, 'sso.json');
    const run = async (content: string) => {
      writeFileSync(file, content);
      return corral(['gateway', '--port', '0', '--oidc', file], { env: { ...token, CORRAL_STATE_DIR: state } });
    };
    const elsewhere = await run(JSON.stringify({ ...settings, redirectUri: 'http://127.0.0.1:8765/callback' }));
    assert.equal(elsewhere.code, 2);
    assert.match(elsewhere.stderr, /sso\.json: redirectUri must be the console's callback/);
    const hmac = await run(JSON.stringify({ ...settings, idTokenAlgorithms: ['HS256'] }));
    assert.equal(hmac.code, 2);
    assert.match(hmac.stderr, /sso\.json: OIDC setting idTokenAlgorithms must be/);
    const broken = await run('{"clientSecret": "s3cr3t-value" "issuer": 1}');
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /sso\.json is not valid JSON/);
    assert.doesNotMatch(broken.stderr, /s3cr3t/);
    for (const r of [elsewhere, hmac, broken]) assert.doesNotMatch(r.stdout, /listening/);
  });
});

describe('corral gateway, as every command', () => {
  /** Starts `corral gateway --port 0 ARGS` and resolves with its stdout once `ready` accepts it; the caller stops it. */
  async function started(args: string[], env: NodeJS.ProcessEnv, ready: (stdout: string) => boolean): Promise<{ stdout: string; stop: () => Promise<void> }> {
    const child = spawn(CORRAL_BIN, ['gateway', '--port', '0', ...args], { env: { ...process.env, CORRAL_NODE: process.execPath, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'close');
      }
    };
    let stdout = '';
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.setEncoding('utf8').on('data', (c: string) => {
          stdout += c;
          if (ready(stdout)) resolve();
        });
        child.once('close', (code) => reject(new Error(`corral gateway ended (${code}) before it was ready: ${stdout}${stderr}`)));
      });
    } catch (error) {
      await stop();
      throw error;
    }
    return { stdout, stop };
  }

  it('takes --state-dir after the command word (regression: refused as an unknown option)', async () => {
    const state = tempStateDir();
    const gateway = await started(['--state-dir', state], { CORRAL_STATE_DIR: tempStateDir(), CORRAL_GATEWAY_TOKEN: '' }, (out) => out.includes('\n'));
    try {
      assert.match(gateway.stdout, /^corral gateway listening on ws:\/\/127\.0\.0\.1:\d+/);
      assert.ok(existsSync(join(state, 'gateway-token')), 'the token was made in the state directory given');
    } finally {
      await gateway.stop();
    }
  });

  it('prints one JSON document with its URL under --json once it listens (regression: refused as an unknown option)', async () => {
    const parsed = (out: string) => {
      try {
        return JSON.parse(out) as { url: string };
      } catch {
        return undefined;
      }
    };
    const gateway = await started(['--json'], { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' }, (out) => parsed(out) !== undefined);
    try {
      assert.deepEqual(Object.keys(parsed(gateway.stdout)!), ['url'], gateway.stdout);
      assert.match(parsed(gateway.stdout)!.url, /^ws:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      await gateway.stop();
    }
  });

  it('leaves --json after `token` to the token command', async () => {
    const r = await corral(['gateway', 'token', '--json'], { env: { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { token: 'a-token-of-sixteen-or-more', source: 'env' });
  });
});

describe('corral gateway and corral up told to listen beyond loopback', () => {
  it('warn on stderr that the token, passwords and cookies would cross the network in the clear, and what to do; not on loopback, nor behind a named TLS proxy (regression: --bind 0.0.0.0 said nothing)', async () => {
    // A state directory that is a file: each stops right after its checks, before anything listens.
    const notADirectory = join(tempStateDir(), 'a-file');
    writeFileSync(notADirectory, 'not a directory\n');
    const warning = /^corral: listening on (0\.0\.0\.0|::|10\.1\.2\.3), beyond loopback, over plain HTTP: the gateway token, console passwords and session cookies cross the network unencrypted; put a TLS-terminating reverse proxy in front and name it with --public-url \(and --trust-proxy\), or bind to 127\.0\.0\.1$/m;
    for (const [args, warned] of [
      [['gateway', '--bind', '0.0.0.0'], true],
      [['gateway', '--bind', '::'], true],
      [['up', '--bind', '10.1.2.3'], true],
      [['gateway', '--bind', '127.0.0.1'], false],
      [['up', '--bind', '::1'], false],
      [['gateway', '--bind', '0.0.0.0', '--public-url', 'https://corral.example.com'], false],
    ] as const) {
      const r = await corral(['--state-dir', notADirectory, ...args, '--port', '0'], { env: { CORRAL_GATEWAY_TOKEN: '' } });
      assert.notEqual(r.code, 0, r.stderr);
      assert.equal(warning.test(r.stderr), warned, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});

describe('corral gateway, when its state directory cannot hold the token', () => {
  it('exits 3 naming the state directory and what to do, the token given or not (regression: EEXIST of mkdir alone, exit 1, as a check that failed)', async () => {
    const notADirectory = join(tempStateDir(), 'a-file');
    writeFileSync(notADirectory, 'not a directory\n');
    for (const args of [['gateway', 'token'], ['gateway', 'token', '--json'], ['gateway', '--port', '0']]) {
      const r = await corral(['--state-dir', notADirectory, ...args], { env: { CORRAL_GATEWAY_TOKEN: '' } });
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr, `corral: the state directory ${notADirectory} is not a directory, so the gateway token cannot be kept there: choose another with --state-dir or CORRAL_STATE_DIR, or give the token in CORRAL_GATEWAY_TOKEN\n`);
      if (args.includes('--json')) assert.equal(JSON.parse(r.stdout).error.code, 'CLI_UNAVAILABLE');
    }
    const beneathAFile = join(notADirectory, 'state');
    const r = await corral(['--state-dir', beneathAFile, 'gateway', 'token'], { env: { CORRAL_GATEWAY_TOKEN: '' } });
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr, `corral: cannot keep the gateway token in the state directory ${beneathAFile} (ENOTDIR): fix its permissions, or choose another with --state-dir or CORRAL_STATE_DIR, or give the token in CORRAL_GATEWAY_TOKEN\n`);
  });

  it('refuses a state directory another user owns (exit 3), making neither the token nor the audit signing key there (regression: both were made in it before the identity store refused it)', { skip: process.getuid?.() !== 0 && 'only root can give a folder to another user' }, async () => {
    const theirs = join(tempStateDir(), 'theirs');
    mkdirSync(theirs, { mode: 0o777 });
    chmodSync(theirs, 0o777);
    chownSync(theirs, 65534, 65534);
    for (const args of [['gateway', 'token', '--json'], ['gateway', '--port', '0']]) {
      const r = await corral(['--state-dir', theirs, ...args], { env: { CORRAL_GATEWAY_TOKEN: '' } });
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /belongs to another user \(uid 65534\)/);
      assert.deepEqual(readdirSync(theirs), [], `${args.join(' ')} made nothing there`);
    }
  });

  it('refuses a token file other users can read, exit 3 naming the file, its mode and what to do, and never prints it (regression: it was used and shown)', async () => {
    const state = tempStateDir();
    const made = await corral(['--state-dir', state, 'gateway', 'token', '--json'], { env: { CORRAL_GATEWAY_TOKEN: '' } });
    assert.equal(made.code, 0, made.stderr);
    const { token } = JSON.parse(made.stdout) as { token: string };
    const file = join(state, 'gateway-token');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'made private');
    chmodSync(file, 0o644);
    for (const args of [['gateway', 'token'], ['gateway', '--port', '0']]) {
      const r = await corral(['--state-dir', state, ...args], { env: { CORRAL_GATEWAY_TOKEN: '' } });
      assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} can be read by other users \\(mode 644\\).*chmod 600`));
      assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), 'the token is not printed');
    }
    chmodSync(file, 0o600);
    assert.equal(JSON.parse((await corral(['--state-dir', state, 'gateway', 'token', '--json'], { env: { CORRAL_GATEWAY_TOKEN: '' } })).stdout).token, token, 'private again, it is used');
  });
});

describe("corral gateway's log", () => {
  const token = 'a-token-of-sixteen-or-more';

  it('writes a refused connection to stderr as a JSON line with its level and code, never the token it was offered (regression: the gateway was given no log, and nothing was written)', async () => {
    const state = tempStateDir();
    const child = spawn(CORRAL_BIN, ['gateway', '--port', '0'], { env: { ...process.env, CORRAL_GATEWAY_TOKEN: token, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: state }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const url = /listening on (ws:\/\/\S+)/.exec(line)![1]!;
      const { GatewayClient } = await import('@corral/gateway');
      const wrong = 'the-wrong-token-offered-here';
      await assert.rejects(GatewayClient.connect({ url, token: wrong, role: 'operator', scopes: ['operator.read'] }));
      for (let i = 0; i < 100 && !stderr.includes('"refused"'); i++) await new Promise((r) => setTimeout(r, 20));
      const entries = stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const refused = entries.find((e) => e.event === 'refused');
      assert.ok(refused, `no refusal logged: ${stderr}`);
      assert.equal(refused.level, 40);
      assert.equal(refused.msg, 'refused');
      assert.equal(typeof refused.code, 'string');
      assert.equal(typeof refused.time, 'string');
      assert.equal(stderr.includes(wrong), false);
      assert.equal(stderr.includes(token), false);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  it('refuses a --log-level it does not know (exit 2, naming the levels)', async () => {
    const r = await corral(['gateway', '--port', '0', '--log-level', 'loud'], { env: { CORRAL_GATEWAY_TOKEN: token } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--log-level must be one of debug, info, warn, error, silent/);
  });
});

describe('corral gateway with the OpenTelemetry variables set', () => {
  const env = { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' };

  it('refuses an endpoint or headers it could not use, exit 2 naming the variable and what to do, never its value nor a stack, before it listens', async () => {
    const secret = 'sk-live-not-to-be-printed';
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: `collector:4318/${secret}` }, /OTEL_EXPORTER_OTLP_ENDPOINT must be an http: or https: URL/],
      [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://[${secret}` }, /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is not a URL/],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', OTEL_EXPORTER_OTLP_TRACES_HEADERS: `api-key ${secret}` }, /OTEL_EXPORTER_OTLP_TRACES_HEADERS must be a list of name=value pairs/],
    ];
    for (const [otel, message] of cases) {
      const r = await corral(['--state-dir', tempStateDir(), 'gateway', '--port', '0'], { env: { ...env, ...otel } });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /\[GATEWAY_TRACING_INVALID\]\n$/);
      assert.equal(r.stderr.includes(secret), false);
      assert.doesNotMatch(r.stderr, /^\s+at /m);
      assert.doesNotMatch(r.stdout, /listening/);
    }
  });

  it('sends the trace of a governed command to the collector they name, as the service they name, and flushes it as it stops', async () => {
    const spans: Array<{ name: string; service: unknown }> = [];
    const collector = createHttpServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        const sent = JSON.parse(body) as { resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeSpans: Array<{ spans: Array<{ name: string }> }> }> };
        for (const rs of sent.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ name: s.name, service: rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { port } = collector.address() as { port: number };
    const child = spawn(CORRAL_BIN, ['gateway', '--port', '0'], { env: { ...process.env, ...env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: tempStateDir(), OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_SERVICE_NAME: 'corral-cli-test' }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const url = /listening on (ws:\/\/\S+)/.exec(line)![1]!;
      const { GatewayClient } = await import('@corral/gateway');
      const operator = await GatewayClient.connect({ url, token: env.CORRAL_GATEWAY_TOKEN, role: 'operator', scopes: ['operator.write'] });
      // No such node: refused, and traced all the same.
      await assert.rejects(operator.request('node.invoke', { nodeId: 'no-such-node', command: 'system.run', params: { command: ['true'] }, idempotencyKey: 'k-1' }));
      await operator.close();
      child.kill('SIGTERM');
      assert.equal((await once(child, 'close'))[0], 0);
      assert.deepEqual(spans, [{ name: 'node.invoke system.run', service: 'corral-cli-test' }]);
    } finally {
      child.kill('SIGTERM');
      collector.close();
    }
  });
});

describe('corral gateway behind a TLS-terminating reverse proxy (--public-url, --trust-proxy)', () => {
  const env = { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more' };

  it('refuses a public URL it could not use and a proxy that is not an address, exit 2 naming the flag and what to give, before it listens', async () => {
    const cases: Array<[string[], RegExp, string]> = [
      [['--public-url', 'http://corral.example.com'], /--public-url "http:\/\/corral\.example\.com" must be https:\/\//, 'GATEWAY_PUBLIC_URL_INVALID'],
      [['--public-url', 'https://corral.example.com/corral'], /--public-url "https:\/\/corral\.example\.com\/corral" must not have a path/, 'GATEWAY_PUBLIC_URL_INVALID'],
      [['--trust-proxy', '10.0.0.1,proxy.example.com'], /--trust-proxy entry "proxy\.example\.com" is not an IP address or address block/, 'GATEWAY_TRUSTED_PROXY_INVALID'],
      [['--trust-proxy', '10.0.0.1', '--trust-proxy', '0.0.0.0/0'], /--trust-proxy entry "0\.0\.0\.0\/0" is every address/, 'GATEWAY_TRUSTED_PROXY_INVALID'],
    ];
    for (const [args, message, code] of cases) {
      const r = await corral(['--state-dir', tempStateDir(), 'gateway', '--port', '0', ...args], { env });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.match(r.stderr, new RegExp(`\\[${code}\\]\\n$`));
      assert.doesNotMatch(r.stdout, /listening/);
    }
  });

  it('answers its public name, signs in with a Secure __Host- cookie, and logs the client its trusted proxy names (the list given with a space after its comma)', async () => {
    const state = tempStateDir();
    const { Identity } = await import('@corral/identity');
    const identity = Identity.open(state);
    await identity.localUsers.create('alice', 'a password for tests', ['viewer']);
    identity.close();
    const log: string[] = [];
    const child = spawn(CORRAL_BIN, ['gateway', '--port', '0', '--public-url', 'https://corral.example.com', '--trust-proxy', '10.0.0.0/8, 127.0.0.1'], {
      env: { ...process.env, ...env, CORRAL_NODE: process.execPath, CORRAL_STATE_DIR: state },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => log.push(c));
    try {
      const ended = once(child, 'close').then(([code]) => assert.fail(`corral gateway ended (${code}) before it listened: ${log.join('')}`));
      const [line] = (await Promise.race([once(createInterface({ input: child.stdout! }), 'line'), ended])) as [string];
      const port = Number(new URL(/listening on (ws:\/\/\S+)/.exec(line)![1]!).port);
      const post = (path: string, body: unknown, headers: Record<string, string>) =>
        new Promise<{ status: number; cookies: string[] }>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
            res.resume();
            res.once('end', () => resolve({ status: res.statusCode ?? 0, cookies: res.headers['set-cookie'] ?? [] }));
          });
          req.once('error', reject);
          req.end(JSON.stringify(body));
        });
      const signIn = await post('/api/session', { username: 'alice', password: 'a password for tests' }, { host: 'corral.example.com', 'x-forwarded-for': '198.51.100.2' });
      assert.equal(signIn.status, 200, log.join(''));
      assert.match(signIn.cookies[0]!, /^__Host-corral_session=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200; Secure$/);
      const elsewhere = await post('/api/session', {}, { host: 'evil.example' });
      assert.equal(elsewhere.status, 421);
      assert.equal((await post('/api/policies/validate', {}, { 'x-forwarded-for': '198.51.100.9' })).status, 401);
      for (let i = 0; i < 100 && !log.join('').includes('http_unauthenticated'); i++) await new Promise((r) => setTimeout(r, 20));
      const refused = log.join('').split('\n').filter((l) => l.includes('http_unauthenticated')).map((l) => JSON.parse(l) as { remoteAddress?: string });
      assert.deepEqual(refused.map((e) => e.remoteAddress), ['198.51.100.9'], log.join(''));
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await once(child, 'close');
      }
    }
  });
});

describe('corral gateway metrics-token', () => {
  const noEnv = { CORRAL_GATEWAY_TOKEN: '', CORRAL_METRICS_TOKEN: '' };

  it('prints the scrape token, made on first use in STATE/metrics-token (mode 0600), the same at every call and not the gateway token; --json says where it came from', async () => {
    const state = tempStateDir();
    const first = await corral(['--state-dir', state, 'gateway', 'metrics-token'], { env: noEnv });
    assert.equal(first.code, 0, first.stderr);
    const token = first.stdout.trim();
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal((statSync(join(state, 'metrics-token')).mode & 0o777).toString(8), '600');
    const again = await corral(['--state-dir', state, 'gateway', 'metrics-token', '--json'], { env: noEnv });
    assert.deepEqual(JSON.parse(again.stdout), { token, source: 'file' });
    const gatewayToken = await corral(['--state-dir', state, 'gateway', 'token'], { env: noEnv });
    assert.notEqual(gatewayToken.stdout.trim(), token);
  });

  it('prints CORRAL_METRICS_TOKEN when it is set, and refuses one shorter than 16 characters (exit 2)', async () => {
    const given = await corral(['gateway', 'metrics-token', '--json'], { env: { CORRAL_METRICS_TOKEN: 'a-scrape-token-of-sixteen-or-more' } });
    assert.deepEqual(JSON.parse(given.stdout), { token: 'a-scrape-token-of-sixteen-or-more', source: 'env' });
    const short = await corral(['gateway', 'metrics-token'], { env: { CORRAL_METRICS_TOKEN: 'short' } });
    assert.equal(short.code, 2);
    assert.match(short.stderr, /CORRAL_METRICS_TOKEN must be at least 16 characters/);
  });

  it('is the token a running corral gateway lets read GET /metrics, and nothing else (the API answers it 401)', async () => {
    const state = tempStateDir();
    const child = spawn(CORRAL_BIN, ['--state-dir', state, 'gateway', '--port', '0'], { env: { ...process.env, ...noEnv, CORRAL_NODE: process.execPath }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const url = /listening on (ws:\/\/\S+)/.exec(line)![1]!.replace(/^ws/, 'http');
      const token = (await corral(['--state-dir', state, 'gateway', 'metrics-token'], { env: noEnv })).stdout.trim();
      const metrics = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(metrics.status, 200);
      assert.match(await metrics.text(), /^# HELP corral_/m);
      assert.equal((await fetch(`${url}/api/status`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });
});
