import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { ContainError } from '../errors.ts';
import { loadPolicyFile } from './file.ts';
import { parsePolicyText, validatePolicy } from './load.ts';

function invalid(text: string, file = 'policy.yaml'): ContainError {
  try {
    parsePolicyText(text, file);
  } catch (error) {
    assert.ok(error instanceof ContainError);
    assert.equal(error.code, 'CONTAIN_POLICY_INVALID');
    return error;
  }
  assert.fail('the policy was accepted');
}

describe('loading a container policy', () => {
  describe('when the policy is empty', () => {
    it('denies everything: no paths, no network, no display, default limits', () => {
      const policy = parsePolicyText('');
      assert.deepEqual(policy.filesystem, { readwrite: [], readonly: [], denied: [] });
      assert.equal(policy.network.egress, 'none');
      assert.deepEqual(policy.network.ingress, []);
      assert.deepEqual(policy.ui, { display: false, clipboard: 'none', inputInjection: false });
      assert.deepEqual(policy.environment, { set: {}, pass: [] });
      assert.deepEqual(policy.runtime, []);
      assert.deepEqual(policy.process, {});
      assert.equal(policy.onUnenforceable, 'refuse');
    });
  });

  describe('when the policy uses the documented key names', () => {
    it('accepts the shape other tools write', () => {
      const policy = parsePolicyText(`
runtime: [shell]
filesystem:
  readwrite: [./work]
  readonly: [./inbox]
  denied: [./inbox/private]
network:
  egress: { allow: ["api.example.com:443", "*.corp.example:443"] }
process: { maxProcesses: 32, memoryMB: 256, timeoutMs: 30000 }
`);
      assert.deepEqual(policy.filesystem.denied, ['./inbox/private']);
      assert.deepEqual(policy.network.egress, { allow: ['api.example.com:443', '*.corp.example:443'] });
      assert.equal(policy.process.maxProcesses, 32);
    });

    it('reads JSON as well as YAML', () => {
      const policy = parsePolicyText('{"runtime": ["node"], "network": {"egress": "none"}}', 'p.json');
      assert.deepEqual(policy.runtime, ['node']);
    });
  });

  describe('when a field is misspelt', () => {
    it('names the file, the line, the field and the allowed names', () => {
      const error = invalid('filesystem:\n  readwrite: [./a]\n  readonyl: [./b]\n');
      assert.equal(error.issues.length, 1);
      assert.deepEqual({ ...error.issues[0], message: undefined }, { file: 'policy.yaml', line: 3, column: 3, field: 'filesystem.readonyl', message: undefined });
      assert.match(error.issues[0]!.message, /readwrite, readonly, denied/);
    });
  });

  describe('when a field is misspelt in any section', () => {
    it('suggests the field meant, by a slip of a letter, a swap, a case or a separator', () => {
      const cases = [
        ['netwrok: {}\n', 'netwrok', 'network'],
        ['filesystem: { readonyl: [] }\n', 'filesystem.readonyl', 'readonly'],
        ['process: { max_processes: 8 }\n', 'process.max_processes', 'maxProcesses'],
        ['process: { timeout: 8 }\n', 'process.timeout', 'timeoutMs'],
        ['ui: { Display: true }\n', 'ui.Display', 'display'],
        ['network: { egres: none }\n', 'network.egres', 'egress'],
      ];
      for (const [text, field, meant] of cases) {
        const error = invalid(text!);
        assert.equal(error.issues[0]?.field, field);
        assert.ok(error.issues[0]!.message.includes(`did you mean '${meant}'?`), error.issues[0]!.message);
      }
      assert.doesNotMatch(invalid('colour: red\n').issues[0]!.message, /did you mean/);
    });

    it("names each unknown field on its key's own line (it named the line its value started on, and one line for all of a section's)", () => {
      const error = invalid('runtime: [shell]\nnetwrok:\n  egress: none\nfilesystem:\n  readonyl:\n    - ./b\n  denide: [./c]\n');
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [['netwrok', 2], ['filesystem.readonyl', 5], ['filesystem.denide', 7]]);
    });
  });

  describe('when lines end in CR alone or CR LF', () => {
    it('reads the policy and names the line of each problem as an editor numbers it (CR alone was refused as not YAML, at line 1)', () => {
      for (const eol of ['\r', '\r\n']) {
        const error = invalid(['runtime: [shell]', '', 'process:', '  memoryMB: 1', 'netwrok: {}', ''].join(eol));
        assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [['process.memoryMB', 4], ['netwrok', 5]], JSON.stringify(eol));
        assert.deepEqual(parsePolicyText(['runtime:', '  - shell', ''].join(eol)).runtime, ['shell']);
      }
    });
  });

  describe('when values have the wrong type or range', () => {
    it('reports every problem at once, each with its line', () => {
      const error = invalid('runtime: [shell, perl]\nprocess: { maxProcesses: 0, memoryMB: "big" }\nnetwork: { egress: all }\n');
      const byField = Object.fromEntries(error.issues.map((i) => [i.field, i.line]));
      assert.deepEqual(byField, { 'runtime[1]': 1, 'process.maxProcesses': 2, 'process.memoryMB': 2, 'network.egress': 3 });
    });

    it('says in what unit to write a limit given as text with a unit, or as a number in quotes', () => {
      const error = invalid('process:\n  memoryMB: 512M\n  timeoutMs: "30s"\n  maxOutputBytes: "1048576"\n  cpus: 2 cores\n  maxProcesses: "32"\n');
      assert.deepEqual(
        error.issues.map((i) => [i.field, i.line, /write a plain number of (\w+)/.exec(i.message)?.[1]]),
        [['process.memoryMB', 2, 'megabytes'], ['process.timeoutMs', 3, 'milliseconds'], ['process.maxOutputBytes', 4, 'bytes'], ['process.cpus', 5, 'CPUs'], ['process.maxProcesses', 6, 'processes']],
      );
    });

    it('explains an egress rule without a port', () => {
      const error = invalid('network:\n  egress:\n    allow:\n      - api.example.com\n');
      assert.equal(error.issues[0]?.field, 'network.egress.allow[0]');
      assert.equal(error.issues[0]?.line, 4);
      assert.match(error.issues[0]!.message, /api\.example\.com:443/);
    });

    it('refuses an empty allow list rather than reading it as no network', () => {
      const error = invalid('network: { egress: { allow: [] } }');
      assert.equal(error.issues[0]?.field, 'network.egress.allow');
    });
  });

  describe('when a value is tagged with a YAML 1.1 type', () => {
    it('reads the plain value, so the problem names the field and what it expected (a !!binary filesystem listed every method of a Buffer)', () => {
      const error = invalid('runtime: [shell]\nfilesystem: !!binary aGVsbG8=\n');
      assert.deepEqual(error.issues.map((i) => [i.line, i.field]), [[2, 'filesystem']]);
      assert.ok(error.issues[0]!.message.startsWith('expected object'), error.issues[0]!.message);
      assert.deepEqual(invalid('runtime: !!set {shell}\n').issues.map((i) => i.field), ['runtime']);
    });
  });

  describe('when a number is one JSON cannot write', () => {
    it('shows the number as written, not as JSON (1e400 read "got number null")', () => {
      assert.match(invalid('process: { timeoutMs: 1e400 }\n').issues[0]!.message, /Infinity/);
    });

    it('describes a bigint in an object policy instead of failing to print it', () => {
      assert.throws(() => validatePolicy({ process: { timeoutMs: 10n } }), { code: 'CONTAIN_POLICY_INVALID' });
    });
  });

  describe('when environment.set names a variable no shell could', () => {
    it("says what a variable's name may be, at its line (it said 'Invalid key in record')", () => {
      const error = invalid('runtime: [shell]\nenvironment:\n  set:\n    GOOD: x\n    "A-B": x\n');
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [['environment.set.A-B', 5]]);
      assert.match(error.issues[0]!.message, /letters, digits and _/);
    });

    it('refuses __proto__ (it was dropped without a word, and the variable never set)', () => {
      const error = invalid('environment:\n  set:\n    __proto__: x\n');
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [['environment.set.__proto__', 3]]);
    });
  });

  describe('when a value holds a NUL byte', () => {
    it('refuses it in a path, the working directory and a variable, each with its field and line', () => {
      const error = invalid('filesystem:\n  denied: ["./inbox/private\\0"]\nworkingDirectory: "./a\\0"\nenvironment:\n  set: { LD_PRELOAD: "x\\0--bind" }\n');
      const byField = Object.fromEntries(error.issues.map((i) => [i.field, i.line]));
      assert.deepEqual(byField, { 'filesystem.denied[0]': 2, workingDirectory: 3, 'environment.set.LD_PRELOAD': 5 });
    });
  });

  describe('when a path is written as a shell would expand it', () => {
    it("refuses a glob, ~user and $VARIABLE, which Corral does not expand, naming each field and line (a deny of ./*.pem or ~alice/.ssh masked nothing, unremarked)", () => {
      const error = invalid('filesystem:\n  readonly: [/home]\n  denied:\n    - ./*.pem\n    - ~alice/.ssh\n    - $HOME/.aws\n    - ./secrets/key?.txt\n    - ${XDG_CONFIG_HOME}/gh\nworkingDirectory: ~bob\n');
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [
        ['filesystem.denied[0]', 4],
        ['filesystem.denied[1]', 5],
        ['filesystem.denied[2]', 6],
        ['filesystem.denied[3]', 7],
        ['filesystem.denied[4]', 8],
        ['workingDirectory', 9],
      ]);
      assert.deepEqual(parsePolicyText('filesystem:\n  readonly: ["~", ~/src, ./a~b, ./cost$, ./$5]\n').filesystem.readonly, ['~', '~/src', './a~b', './cost$', './$5']);
    });
  });

  describe('when a path holds a character no one sees', () => {
    it('refuses a line break, a tab, a zero-width space or a bidi override, which make the path shown differ from the path granted', () => {
      const error = invalid('filesystem:\n  readwrite: ["./work\\n"]\n  readonly: ["./a\\tb"]\n  denied: ["./.e\\u200Bnv", "./\\u202Etxt.pem"]\n');
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [
        ['filesystem.readwrite[0]', 2],
        ['filesystem.readonly[0]', 3],
        ['filesystem.denied[0]', 4],
        ['filesystem.denied[1]', 4],
      ]);
      assert.equal(parsePolicyText('environment:\n  set: { CERT: "line1\\nline2" }\n').environment.set.CERT, 'line1\nline2');
    });
  });

  describe('when a key or an egress rule holds terminal escapes or line breaks', () => {
    it('shows them escaped, so the error prints as many lines as it has problems (a key could clear the screen or print a forged line)', () => {
      const error = invalid('"x\\u001b[2J\\npolicy.yaml:9: ok": 1\nnetwork:\n  egress: { allow: ["\\u001b]0;pwned\\u0007a.example"] }\n');
      assert.deepEqual(error.issues.map((i) => i.line), [1, 3]);
      assert.equal(error.message.split('\n').length, 3);
      assert.doesNotMatch(error.message.replaceAll('\n', ''), /\p{Cc}/u);
      for (const text of ['runtime: *a\u001b\n', '"\u202Etxt.pem": 1\n']) assert.doesNotMatch(invalid(text).message.replaceAll('\n', ''), /[\p{Cc}\p{Cf}]/u, text);
    });
  });

  describe('when a path is a bare ~', () => {
    it("says YAML read it as null and how to write the home folder (it said only 'got null')", () => {
      const error = invalid('filesystem:\n  readonly: [~]\nworkingDirectory: ~\n');
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [['filesystem.readonly[0]', 2], ['workingDirectory', 3]]);
      for (const issue of error.issues) assert.match(issue.message, /'~' in quotes/);
      assert.doesNotMatch(invalid('workingDirectory: null\n').issues[0]!.message, /quotes/);
    });
  });

  describe('when a filesystem list names more paths than any sandbox holds', () => {
    it('refuses it, naming the list and its line (regression: 16,000 denied paths were accepted and took 26 s to plan)', () => {
      const paths = (n: number) => Array.from({ length: n }, (_, i) => `    - ./project/f${i}\n`).join('');
      for (const list of ['readwrite', 'readonly', 'denied']) {
        const error = invalid(`runtime: [shell]\nfilesystem:\n  ${list}:\n${paths(4097)}`);
        assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [[`filesystem.${list}`, 4]]);
        assert.match(error.issues[0]!.message, /at most 4096/);
      }
      assert.equal(parsePolicyText(`filesystem:\n  denied:\n${paths(4096)}`).filesystem.denied.length, 4096);
    });
  });

  describe('when network.ingress asks for what the sandbox cannot publish', () => {
    const ingress = (ports: number[], egress = false) => `network:\n${egress ? '  egress: { allow: ["api.example.com:443"] }\n' : ''}  ingress:\n${ports.map((p) => `    - port: ${p}\n`).join('')}`;
    const ports = (n: number) => Array.from({ length: n }, (_, i) => 8000 + i);

    it("refuses more ports than the sandbox's launcher publishes, naming the field (regression: the run was reported as the command's exit 125, and the command never ran)", () => {
      const error = invalid(ingress(ports(65)));
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [['network.ingress', 3]]);
      assert.match(error.issues[0]!.message, /at most 64/);
      invalid(ingress(ports(64), true));
      assert.equal(parsePolicyText(ingress(ports(64))).network.ingress.length, 64);
      assert.equal(parsePolicyText(ingress(ports(63), true)).network.ingress.length, 63);
    });

    it('refuses a port listed twice, naming the second with its line', () => {
      const error = invalid(ingress([8080, 9090, 8080]));
      assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [['network.ingress[2].port', 5]]);
    });

    it('refuses a host port listed twice (0, any free port, may be listed as often as wanted)', () => {
      const error = invalid('network:\n  ingress:\n    - { port: 80, hostPort: 8080 }\n    - { port: 81, hostPort: 0 }\n    - { port: 82, hostPort: 0 }\n    - { port: 83, hostPort: 8080 }\n');
      assert.deepEqual(error.issues.map((i) => i.field), ['network.ingress[3].hostPort']);
    });

    it("refuses the proxy's own port inside the sandbox when egress is granted: the published port would lead host clients to the sandbox's egress", () => {
      const error = invalid(ingress([3128], true));
      assert.deepEqual(error.issues.map((i) => i.field), ['network.ingress[0].port']);
      assert.equal(parsePolicyText(ingress([3128])).network.ingress[0]?.port, 3128);
    });
  });

  describe('when the text is not YAML or JSON', () => {
    it('refuses with the line of the syntax error', () => {
      const error = invalid('runtime: [shell\nfilesystem: {', 'p.yaml');
      assert.ok(error.issues[0]?.line !== undefined);
    });

    for (const [name, text] of [
      ['a broken line repeated', 'runtime: [shell]\n' + 'a: b: c\n'.repeat(1000)],
      ['a run of stray `}` after the document', 'runtime: [shell]\n' + '}'.repeat(1000)],
    ] as const) {
      it(`lists the first 20 problems and counts the rest, for ${name} (1 MiB of broken lines made a 44 MB message, all of it printed)`, () => {
        // How many errors the yaml package finds in such text depends on what it parsed before in the process
        // (1007 on a first parse, 1000 after, here): the message is checked to count them consistently, not against a second parse.
        const error = invalid(text);
        const lines = error.message.split('\n');
        const total = Number(/^policy has (\d+) problems/.exec(lines[0]!)?.[1]);
        assert.ok(total > 900, lines[0]);
        assert.equal(error.issues.length, 20);
        assert.equal(lines.length, 1 + 20 + 1);
        assert.match(lines[1]!, /^  policy\.yaml:2:\d+: /);
        assert.equal(lines.at(-1), `  … and ${total - 20} more`);
      });
    }

    it('refuses a document that is a list, not a mapping', () => {
      invalid('- shell\n- node\n');
    });

    it('refuses an alias to an anchor that does not exist (found by the property test below)', () => {
      invalid('*missing');
      invalid('runtime: *missing\n');
    });

    it('refuses aliases that fan out into a huge document', () => {
      const laughs = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
      for (let i = 1; i < 9; i++) laughs.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
      invalid(laughs.join('\n'));
    });

    it("refuses a key that is a list, a mapping or an alias, at its line, without a warning of the YAML library's on stderr (it printed '(node:PID) Warning: Keys with collection values will be stringified')", async () => {
      const warnings: Error[] = [];
      const listen = (warning: Error) => warnings.push(warning);
      process.on('warning', listen);
      try {
        assert.deepEqual(invalid('runtime: [shell]\n? [filesystem]\n: { readwrite: [/] }\n').issues.map((i) => i.line), [2]);
        assert.deepEqual(invalid('runtime: &r [shell]\n? *r\n: 1\nx: &k a\n*k : 1\n').issues.map((i) => i.line), [2, 5]);
        await new Promise((settled) => setImmediate(settled));
      } finally {
        process.off('warning', listen);
      }
      assert.deepEqual(warnings.map((w) => w.message), []);
    });

    it('names a key written twice at its second line, with its first, and every such key (even when one is a number and the other text)', () => {
      const error = invalid('runtime: [shell]\nenvironment:\n  set:\n    "true": a\n    true: b\nruntime: [node]\n');
      assert.deepEqual(error.issues.map((i) => i.line), [5, 6]);
      assert.match(error.issues[1]!.message, /'runtime' is written twice, first at line 1/);
    });

    it('refuses duplicate keys instead of letting the last one win', () => {
      invalid('runtime: [shell]\nruntime: [node]\n');
    });
  });

  describe('when the file cannot be read', () => {
    it('says so with its own code', async () => {
      await assert.rejects(loadPolicyFile('/nonexistent/policy.yaml', '/'), { code: 'CONTAIN_POLICY_UNREADABLE' });
    });

    it('refuses a device, a folder or a file over 1 MiB at once, saying why (regression: --policy /dev/zero read for ever)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'corral-load-'));
      writeFileSync(join(dir, 'huge.yaml'), `# ${'x'.repeat(1024 * 1024)}\nruntime: [shell]\n`);
      for (const [path, says] of [['/dev/zero', /not a regular file/], [dir, /not a regular file/], [join(dir, 'huge.yaml'), /more than a policy's 1048576/]] as const) {
        await assert.rejects(loadPolicyFile(path, '/'), (e: Error & { code?: string }) => e.code === 'CONTAIN_POLICY_UNREADABLE' && says.test(e.message) && e.message.includes(path));
      }
    });

    it('refuses a file that is not UTF-8, naming the line (regression: a Latin-1 é became U+FFFD, so a denied ./café hid nothing)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'corral-load-'));
      writeFileSync(join(dir, 'latin1.yaml'), Buffer.concat([Buffer.from('runtime: [shell]\nfilesystem:\n  denied: ["./caf'), Buffer.from([0xe9]), Buffer.from('"]\n')]));
      writeFileSync(join(dir, 'utf16.yaml'), Buffer.from('\uFEFFruntime: [shell]\n', 'utf16le'));
      writeFileSync(join(dir, 'ok.yaml'), 'filesystem:\n  denied: ["./café\uFFFD"]\n');
      await assert.rejects(loadPolicyFile(join(dir, 'latin1.yaml'), dir), (e: Error & { code?: string }) => e.code === 'CONTAIN_POLICY_UNREADABLE' && /line 3 is not UTF-8/.test(e.message));
      await assert.rejects(loadPolicyFile(join(dir, 'utf16.yaml'), dir), (e: Error & { code?: string }) => e.code === 'CONTAIN_POLICY_UNREADABLE' && /UTF-16/.test(e.message));
      assert.deepEqual((await loadPolicyFile(join(dir, 'ok.yaml'), dir)).policy.filesystem.denied, ['./café\uFFFD']);
    });

    it("says a path that leads round a loop of symlinks does so (it gave the system's 'ELOOP: too many symbolic links encountered, open …')", async () => {
      const dir = mkdtempSync(join(tmpdir(), 'corral-load-'));
      symlinkSync(join(dir, 'b.yaml'), join(dir, 'a.yaml'));
      symlinkSync(join(dir, 'a.yaml'), join(dir, 'b.yaml'));
      await assert.rejects(loadPolicyFile(join(dir, 'a.yaml'), dir), (e: Error & { code?: string }) => e.code === 'CONTAIN_POLICY_UNREADABLE' && /loop of symlinks/.test(e.message) && !e.message.includes('ELOOP'));
    });

    it('keeps the folder for relative paths', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'corral-load-'));
      writeFileSync(join(dir, 'p.yaml'), 'runtime: [shell]\n');
      const loaded = await loadPolicyFile(join(dir, 'p.yaml'), dir);
      assert.equal(loaded.baseDir, dir);
    });
  });

  describe('for any input text', () => {
    it('either returns a policy or throws CONTAIN_POLICY_INVALID, never a foreign error', () => {
      fc.assert(
        fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => stringify(v))), (text) => {
          try {
            parsePolicyText(text);
          } catch (error) {
            return error instanceof ContainError && error.code === 'CONTAIN_POLICY_INVALID';
          }
          return true;
        }),
        { numRuns: 3000 },
      );
    });
  });

  describe('for any policy with a field misspelt, whatever its line endings', () => {
    it('names that field on the line an editor shows it on', () => {
      const fields = ['runtime: [shell]', 'filesystem:\n  readonly: [./a]', 'process:\n  maxProcesses: 8', 'ui: { display: false }', '# a comment', ''];
      fc.assert(
        fc.property(fc.shuffledSubarray(fields), fc.nat(), fc.constantFrom('\n', '\r\n', '\r'), fc.constantFrom('netwrok', 'enviroment', 'UI2'), (lines, at, eol, typo) => {
          const k = at % (lines.length + 1);
          const before = lines.slice(0, k).flatMap((field) => field.split('\n'));
          const text = [...before, `${typo}: {}`, ...lines.slice(k)].join('\n').replaceAll('\n', eol);
          const error = invalid(text);
          assert.deepEqual(error.issues.map((i) => [i.field, i.line]), [[typo, before.length + 1]]);
        }),
        { numRuns: 300 },
      );
    });
  });

  describe('for any valid policy', () => {
    // Any text but what a path may not hold: globs, ~user, $VARIABLES, control and invisible characters.
    const arbitraryPath = fc.string({ minLength: 1 }).map((p) => p.replace(/[*?$~\p{Cc}\p{Cf}]/gu, '_'));
    const arbitraryPolicy = fc.record(
      {
        runtime: fc.uniqueArray(fc.constantFrom('shell', 'node', 'python')),
        filesystem: fc.record({ readwrite: fc.array(arbitraryPath), readonly: fc.array(arbitraryPath) }),
        process: fc.record({ maxProcesses: fc.integer({ min: 1, max: 65536 }), timeoutMs: fc.integer({ min: 1, max: 3_600_000 }) }, { requiredKeys: [] }),
        network: fc.record({
          egress: fc.oneof(
            fc.constant('none'),
            fc.record({ allow: fc.array(fc.tuple(fc.domain(), fc.integer({ min: 1, max: 65535 })).map(([d, p]) => `${d}:${p}`), { minLength: 1 }) }),
          ),
        }),
      },
      { requiredKeys: [] },
    );

    it('reads the same from YAML, from JSON and from an object', () => {
      fc.assert(
        fc.property(arbitraryPolicy, (policy) => {
          const fromObject = validatePolicy(policy);
          assert.deepEqual(parsePolicyText(stringify(policy)), fromObject);
          assert.deepEqual(parsePolicyText(JSON.stringify(policy)), fromObject);
        }),
        { numRuns: 200 },
      );
    });
  });
});
