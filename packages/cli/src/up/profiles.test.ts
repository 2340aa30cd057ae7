import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CliFailure } from '../output.ts';
import { readProfiles, writeProfile } from './profiles.ts';

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function state(): string {
  const dir = mkdtempSync(join(tmpdir(), 'corral-profiles-'));
  dirs.push(dir);
  return dir;
}
function withProfile(text: string): string {
  const dir = state();
  mkdirSync(join(dir, 'profiles'));
  writeFileSync(join(dir, 'profiles', 'bot.json'), text);
  return dir;
}
const refused = (what: RegExp) => (e: unknown) => e instanceof CliFailure && e.exitCode === 2 && what.test(e.message);

describe('agent profiles', () => {
  it('reads none from a state directory without any', () => {
    assert.deepEqual(readProfiles(state()), []);
  });

  it('reads back what was written, with the policy file inside the state directory', () => {
    const dir = state();
    writeProfile(dir, { agent: 'invoice-bot', containerPolicy: 'processes/invoice-intake/policy.yaml' });
    assert.deepEqual(readProfiles(dir), [{ agent: 'invoice-bot', containerPolicy: 'processes/invoice-intake/policy.yaml', policyFile: join(dir, 'processes/invoice-intake/policy.yaml') }]);
  });

  describe('refuses, naming the file', () => {
    it('a profile that is not JSON', () => assert.throws(() => readProfiles(withProfile('{')), refused(/bot\.json is not JSON/)));
    it('a profile without an agent', () => assert.throws(() => readProfiles(withProfile('{"containerPolicy":"p.yaml"}')), refused(/names no agent/)));
    it('a profile that is JSON null', () => assert.throws(() => readProfiles(withProfile('null')), refused(/names no agent/)));
    it('a container policy outside the state directory, by .. or absolute path', () => {
      assert.throws(() => readProfiles(withProfile('{"agent":"bot","containerPolicy":"../elsewhere.yaml"}')), refused(/outside the state directory/));
      assert.throws(() => readProfiles(withProfile('{"agent":"bot","containerPolicy":"/etc/policy.yaml"}')), refused(/outside the state directory/));
    });
  });
});
