// What an approver binds to: the digest covers every environment value, so
// each value is shown by a fingerprint (SHA-256 prefix and length) that tells
// two requests apart without showing a secret.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shownAction } from './store.ts';

describe('shownAction', () => {
  const action = (token: string) => ({ argv: ['deploy'], cwd: '/srv', env: { DEPLOY_TOKEN: token, REGION: 'eu' } });

  it('tells two requests whose environment values differ apart, by each value\'s SHA-256 prefix and length, in the order of the names', () => {
    const one = shownAction(action('s3cr3t-one'));
    const two = shownAction(action('s3cr3t-two!'));
    assert.deepEqual(one.env, ['DEPLOY_TOKEN', 'REGION']);
    const values = one.envValues as Array<{ name: string; sha256: string; bytes: number }>;
    assert.deepEqual(values.map((v) => [v.name, v.bytes]), [['DEPLOY_TOKEN', 10], ['REGION', 2]]);
    assert.match(values[0]!.sha256, /^[0-9a-f]{12}$/);
    assert.notDeepEqual(one.envValues, two.envValues);
    assert.deepEqual(shownAction(action('s3cr3t-one')).envValues, one.envValues, 'the same values, the same fingerprints');
  });

  it('never shows a value', () => {
    assert.doesNotMatch(JSON.stringify(shownAction(action('s3cr3t-one'))), /s3cr3t|"eu"/);
  });

  it('shows an empty environment as no names and no values', () => {
    assert.deepEqual(shownAction({ argv: ['ls'], env: {} }), { argv: ['ls'], env: [], envValues: [] });
  });
});
