// A relative program (`./tool`, `bin/tool`) is the file in the working
// directory the node runs it from (packages/node, sandbox-path.ts, resolves
// it against the request's folder): a forbid on that file holds however it
// is spelled, and a permit for one folder's tool admits no other folder's.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DecisionPoint, loadPolicies } from '@corral/policy';
import { canonicalRun } from './canonical.ts';
import { commandResource, decideRun } from './decide.ts';

function decide(policy: string, command: string[], cwd: string | null): string {
  const point = new DecisionPoint();
  point.load(loadPolicies([{ file: 'test.cedar', text: policy }]));
  return decideRun(point, { type: 'Agent', id: 'bot' }, canonicalRun({ command, cwd })).decision;
}

describe('a program named relative to the working directory', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'corral-relprog-'));
    for (const folder of ['a', 'b']) {
      mkdirSync(join(dir, folder, 'sub'), { recursive: true });
      writeFileSync(join(dir, folder, 'tool'), `#!/bin/sh\necho ${folder}\n`);
      chmodSync(join(dir, folder, 'tool'), 0o755);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the tool of the folder it is run from', () => {
    assert.equal(spawnSync('./tool', { cwd: join(dir, 'a'), encoding: 'utf8' }).stdout.trim(), 'a');
    assert.equal(spawnSync('./tool', { cwd: join(dir, 'b'), encoding: 'utf8' }).stdout.trim(), 'b');
  });

  it('is denied by a forbid on its absolute path, however the relative path is spelled (regression: ./tool in that folder was allowed)', () => {
    const policy = `@id("all") permit (principal, action, resource);\n@id("no-a-tool") forbid (principal, action, resource == Command::"${join(dir, 'a', 'tool')}");`;
    for (const program of ['./tool', './sub/../tool', './/tool', './././tool', 'sub/../tool']) {
      assert.equal(decide(policy, [program], join(dir, 'a')), 'deny', program);
    }
    assert.equal(decide(policy, [`${dir}/a/./tool`], '/'), 'deny');
    assert.equal(decide(policy, [`${dir}//a/tool`], '/'), 'deny');
    assert.equal(decide(policy, ['../a/tool'], join(dir, 'b')), 'deny');
    assert.equal(decide(policy, ['./tool'], join(dir, 'b')), 'allow', 'another folder\'s tool');
  });

  it('is denied by a forbid on ./tool wherever it is run from', () => {
    const policy = `@id("all") permit (principal, action, resource);\n@id("no-tool") forbid (principal, action, resource == Command::"./tool");`;
    for (const cwd of [join(dir, 'a'), join(dir, 'b'), null]) assert.equal(decide(policy, ['./tool'], cwd), 'deny', String(cwd));
  });

  it('is admitted by a permit for its folder\'s tool only (regression: a permit for Command::"./tool" admitted every folder\'s)', () => {
    const forA = `@id("a-tool") permit (principal, action == Action::"system.run", resource == Command::"${join(dir, 'a', 'tool')}");`;
    assert.equal(decide(forA, ['./tool'], join(dir, 'a')), 'allow');
    assert.equal(decide(forA, ['sh', '-c', './tool'], join(dir, 'a')), 'allow');
    assert.equal(decide(forA, ['./tool'], join(dir, 'b')), 'deny');
    const asWritten = `@id("dot-tool") permit (principal, action == Action::"system.run", resource == Command::"./tool");`;
    assert.equal(decide(asWritten, ['./tool'], join(dir, 'b')), 'deny', 'a permit that names no folder admits no folder\'s tool');
    assert.equal(decide(asWritten, ['./tool'], null), 'allow', 'from a folder not known it is named as written');
  });

  it('names the file the node runs: the absolute path in the working directory, a system program by its name', () => {
    assert.deepEqual(commandResource('./tool', '/srv/app').id, '/srv/app/tool');
    assert.deepEqual(commandResource('bin/./tool', '/srv/app/').id, '/srv/app/bin/tool');
    assert.deepEqual(commandResource('../x/tool', '/srv/app').id, '/srv/app/../x/tool');
    assert.ok(commandResource('../x/tool', '/srv/app').spellings.includes('/srv/x/tool'));
    assert.ok(commandResource('./tool', '/srv/app').spellings.includes('./tool'));
    assert.deepEqual(commandResource('./rm', '/usr/bin').id, 'rm');
    assert.deepEqual(commandResource('./tool').id, './tool');
    assert.deepEqual(commandResource('./tool', 'relative').id, './tool');
  });
});
