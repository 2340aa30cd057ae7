// A cd in a payload moves the commands after it to another working
// directory: a policy that reads context.cwd must see each one they may run
// in, not only the one the request names.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { decideRun } from './decide.ts';

const POLICY = `
${['ls', 'cat', 'cd', 'echo', 'pwd']
  .map((name) => `@id("${name}-allowed") permit (principal == Agent::"bot", action == Action::"system.run", resource == Command::"${name}");`)
  .join('\n')}
@id("no-ls-in-secret") forbid (principal, action == Action::"system.run", resource == Command::"ls") when { context has cwd && context.cwd like "*/secret*" };
`;

function decide(command: string[], cwd: string | null, env?: Record<string, string>): string {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: POLICY }]));
  return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command, cwd, ...(env ? { env } : {}) })).decision;
}

describe('a payload that changes its working directory', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-cwd-'));
    mkdirSync(join(dir, 'secret'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('decides ls after cd secret in the folder cd reaches, where a policy forbids it (regression: decided in the request\'s folder, and allowed)', () => {
    const shown = spawnSync('sh', ['-c', 'cd secret && pwd'], { cwd: dir, encoding: 'utf8' }).stdout.trim();
    assert.equal(shown, join(dir, 'secret'), 'the shell runs pwd in secret');
    assert.equal(decide(['ls'], dir), 'allow');
    assert.equal(decide(['sh', '-c', 'cd secret && ls'], dir), 'deny');
    assert.equal(decide(['sh', '-c', 'cd secret/../secret/. ; ls'], dir), 'deny');
    assert.equal(decide(['sh', '-c', `cd ${join(dir, 'secret')}; ls`], null), 'deny');
    assert.equal(decide(['sh', '-c', 'cd secret && echo hi'], dir), 'allow');
  });

  it('decides a command after a cd that may fail in both folders (cd /missing; ls runs where the run started)', () => {
    const shown = spawnSync('sh', ['-c', 'cd missing; pwd'], { cwd: join(dir, 'secret'), encoding: 'utf8' }).stdout.trim();
    assert.equal(shown, join(dir, 'secret'), 'pwd runs where the run started when cd fails');
    assert.equal(decide(['sh', '-c', `cd ${join(dir, 'missing')}; ls`], join(dir, 'secret')), 'deny');
  });

  it('makes a cd opaque whose folder cannot be told: home, back, with options, zsh cd OLD NEW; and CDPATH or PWD set', () => {
    for (const payload of ['cd; ls', 'cd -; ls', 'cd -P secret; ls', 'cd a b; ls', 'pushd +1; ls']) assert.equal(canonicalRun({ command: ['bash', '-c', payload], cwd: dir }).opaque, true, payload);
    assert.equal(canonicalRun({ command: ['bash', '-c', 'cd secret; ls'], cwd: dir, env: { CDPATH: '/' } }).opaque, true);
    assert.equal(canonicalRun({ command: ['bash', '-c', 'export PWD=/x; cd ..; ls'], cwd: dir }).opaque, true);
  });

  it('makes a program named by a relative path after a cd opaque: ./tool is then another file than the request\'s folder holds', () => {
    assert.equal(canonicalRun({ command: ['sh', '-c', 'cd /tmp/x && ./build.sh'], cwd: dir }).opaque, true);
    assert.equal(canonicalRun({ command: ['sh', '-c', './build.sh && cd /tmp/x'], cwd: dir }).opaque, false);
  });

  it('leaves a run without cd as it was: no cwds', () => {
    assert.equal(canonicalRun({ command: ['sh', '-c', 'ls; echo hi'], cwd: dir }).cwds, undefined);
    assert.deepEqual(canonicalRun({ command: ['sh', '-c', 'ls; cd /a && cd b; ls'], cwd: '/w' }).cwds, [['/w'], ['/w'], ['/w', '/a'], ['/w', '/a', '/w/b', '/a/b']]);
  });
});
