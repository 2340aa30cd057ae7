import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ContainError } from '../errors.ts';
import { parsePolicyText } from './load.ts';

const BOUND_MS = 2000;
const MiB = 1024 * 1024;

function refusalWithin(text: string): ContainError {
  const started = performance.now();
  let refusal: unknown;
  try {
    parsePolicyText(text, 'policy.yaml');
  } catch (error) {
    refusal = error;
  }
  const took = performance.now() - started;
  assert.ok(took < BOUND_MS, `took ${took.toFixed(0)} ms`);
  assert.ok(refusal instanceof ContainError, String(refusal));
  assert.equal(refusal.code, 'CONTAIN_POLICY_INVALID');
  return refusal;
}

describe('parsing a container policy nested deeper than any policy is', () => {
  for (const [name, text, at] of [
    ['1 MiB of [', `filesystem: ${'['.repeat(MiB - 12)}`, 'policy.yaml:1:43'],
    ['1 MiB of nested flow mappings', `network: ${'{a: '.repeat(MiB / 4 - 3)}`, 'policy.yaml:1:130'],
    ['1 MiB of - on one line', `runtime:\n${'- '.repeat(MiB / 2 - 5)}`, 'policy.yaml:2:65'],
    ['a block sequence indented one column deeper each line', Array.from({ length: 1400 }, (_, i) => `${' '.repeat(i)}-`).join('\n'), 'policy.yaml:33:33'],
  ] as const) {
    it(`refuses ${name} at once, at the line and column where it became too deep (regression: 1 MiB of [ took 12 s to say 'Maximum call stack size exceeded', 772 times)`, () => {
      const refusal = refusalWithin(text);
      assert.equal(refusal.issues.length, 1);
      assert.match(refusal.message, new RegExp(`  ${at}: \\(top level\\): nested more than 32 deep;`));
    });
  }

  it('answers any nesting up to 1 MiB within the bound (property)', () => {
    // Each repetition of the unit opens at least one more level (block ones on one line): what is built is nesting, however it is written.
    const opener = fc.constantFrom('[', '{', '{a: ', '[a, ', '[\n', '{a:\n', '- ', '? ', '- a: ', '&a [', '!!seq [', '[# c\n');
    const filler = fc.constantFrom('', ' ', '  ', '&a ', '!!map ');
    fc.assert(
      fc.property(fc.array(fc.tuple(opener, filler), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: MiB }), (pieces, size) => {
        const unit = pieces.flat().join('');
        const text = `filesystem: ${unit.repeat(Math.ceil(size / unit.length))}`.slice(0, size);
        const started = performance.now();
        try {
          parsePolicyText(text);
        } catch (error) {
          assert.ok(error instanceof ContainError, String(error));
        }
        const took = performance.now() - started;
        assert.ok(took < BOUND_MS, `took ${took.toFixed(0)} ms for ${JSON.stringify(unit)} × ${size}`);
      }),
      { numRuns: 40 },
    );
  });
});

describe('parsing a container policy longer than any policy is', () => {
  for (const [name, text] of [
    ['a list of 350,000 items', `runtime: [${'a, '.repeat(MiB / 3 - 4)}]`],
    ['1 MiB of blank lines', '\n'.repeat(MiB)],
    ['100,000 denied paths', `filesystem:\n  denied:\n${'    - ./a\n'.repeat(MiB / 10 - 3)}`],
  ] as const) {
    it(`refuses ${name} in under 2 s of CPU, at the line where it became too long (regression: a list of 350,000 items took 10 s of CPU)`, () => {
      const started = process.cpuUsage();
      let refusal: unknown;
      try {
        parsePolicyText(text, 'policy.yaml');
      } catch (error) {
        refusal = error;
      }
      const { user, system } = process.cpuUsage(started);
      assert.ok(user + system < 2_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU`);
      assert.ok(refusal instanceof ContainError && refusal.code === 'CONTAIN_POLICY_INVALID', String(refusal));
      assert.match(refusal.message, /policy\.yaml:\d+:\d+: \(top level\): longer than any policy/);
    });
  }

  for (const closer of ['}', ']']) {
    it(`refuses 130,000 stray ${closer} (just under the token limit) in under 2 s of CPU, listing 20 and counting all (regression: 88,752 took 2.4 s, an error made with a stack for each)`, () => {
      const started = process.cpuUsage();
      const refusal = refusalWithin(closer.repeat(130_000));
      const { user, system } = process.cpuUsage(started);
      assert.ok(user + system < 2_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU`);
      assert.equal(refusal.issues.length, 20);
      assert.match(refusal.message, /^policy has 130000 problems;.*\n  policy\.yaml:1:1: \(top level\): not valid YAML or JSON: Unexpected flow-(map|seq)-end token/);
      assert.match(refusal.message, /\n  … and 129980 more$/);
    });
  }

  it('refuses a key a megabyte long in under 2 s of CPU, showing its first 64 characters (regression: 10 s of CPU comparing it with every field name, and a message holding it whole)', () => {
    const started = process.cpuUsage();
    const refusal = refusalWithin(`? ${'x? '.repeat(MiB / 3)}`);
    const { user, system } = process.cpuUsage(started);
    assert.ok(user + system < 2_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU`);
    assert.ok(refusal.message.length < 1024, `a message of ${refusal.message.length} characters`);
    assert.match(refusal.message, /unknown field 'x\? x\? .*… \(\d+ characters\)'/);
  });

  it('reads the longest lists a policy may hold (4096 paths in each)', () => {
    const list = Array.from({ length: 4096 }, (_, i) => `    - ./d/${i} # a comment\n`).join('');
    const policy = parsePolicyText(`filesystem:\n  readwrite:\n${list}  readonly:\n${list}  denied:\n${list}`);
    assert.equal(policy.filesystem.denied.length, 4096);
  });

  it('answers any text up to 1 MiB in under 2 s of CPU (property)', () => {
    const piece = fc.constantFrom('[', '{', ']', '}', ', ', 'a: ', '- ', '? ', '\n', '  ', 'x', '"q"', '# c', '&a ', '*a', '!!str ', '|\n', '0x10');
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: MiB }), (pieces, size) => {
        const unit = pieces.join('');
        const text = unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
        const started = process.cpuUsage();
        try {
          parsePolicyText(text);
        } catch (error) {
          assert.ok(error instanceof ContainError, String(error));
        }
        const { user, system } = process.cpuUsage(started);
        assert.ok(user + system < 2_000_000, `took ${((user + system) / 1000).toFixed(0)} ms of CPU for ${JSON.stringify(unit)} × ${size}`);
      }),
      { numRuns: 30 },
    );
  });
});

describe('a policy problem names its column where the text gives one', () => {
  it('gives line and column of a misspelt field, a wrong value and a syntax error', () => {
    const wrong = refusalWithin('filesystem:\n  readonyl: [./a]\nprocess: { memoryMB: "512M" }\n');
    assert.deepEqual(wrong.issues.map((i) => [i.line, i.column]), [[2, 3], [3, 22]]);
    assert.match(wrong.message, /policy\.yaml:2:3: filesystem\.readonyl: unknown field/);
    const broken = refusalWithin('runtime: [shell]\nfilesystem: { readonly: [./a }\n');
    assert.match(broken.message, /policy\.yaml:2:\d+: \(top level\): not valid YAML or JSON/);
  });
});

describe('a limit YAML reads as a number that is none', () => {
  it("says it must be finite and in which unit, for .inf, .nan and 1e400 (regression: 'expected number, got number Infinity')", () => {
    const refusal = refusalWithin('process:\n  memoryMB: .inf\n  maxProcesses: .nan\n  timeoutMs: 1e400\n');
    assert.deepEqual(
      refusal.issues.map((i) => i.message),
      [
        'must be a finite number, got Infinity (.inf, or a number too large to hold): write a plain number of megabytes',
        'must be a finite number, got .nan: write a plain number of processes',
        'must be a finite number, got Infinity (.inf, or a number too large to hold): write a plain number of milliseconds',
      ],
    );
  });
});

describe('an egress CIDR block with host bits set', () => {
  it("is refused, naming the network it would be and both ways to write what was meant (10.1.2.3/8 was widened to 10.0.0.0/8 unremarked)", () => {
    const refusal = refusalWithin('network:\n  egress: { allow: ["10.1.2.3/8:5432", "[fd00::1]/8:443"] }\n');
    assert.deepEqual(refusal.issues.map((i) => i.field), ['network.egress.allow[0]', 'network.egress.allow[1]']);
    assert.match(refusal.issues[0]!.message, /'10\.1\.2\.3\/8' sets bits past its \/8 prefix: it would be the network 10\.0\.0\.0\/8\. Write '10\.0\.0\.0\/8' for that network, or '10\.1\.2\.3\/32' for the one address/);
    assert.match(refusal.issues[1]!.message, /it would be the network \[fd00::\]\/8\. Write '\[fd00::\]\/8' for that network, or '\[fd00::1\]\/128' for the one address/);
  });

  it('is read when it names its network, and an address alone as itself', () => {
    assert.deepEqual(parsePolicyText('network:\n  egress: { allow: ["10.0.0.0/8:5432", "10.1.2.3:5432", "10.1.2.3/32:5432"] }\n').network.egress, { allow: ['10.0.0.0/8:5432', '10.1.2.3:5432', '10.1.2.3/32:5432'] });
  });
});
