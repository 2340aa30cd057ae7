// What each role is offered on the console's pages, as docs/http-api.md
// grants it. Runs the console's own module under Node.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CORRAL_ROLES } from '@corral/identity';
import { canResolveApprovals } from '../ui/common/roles.ts';

const user = (role: (typeof CORRAL_ROLES)[number]) => ({ id: `local:${role}`, name: role, roles: [role] });

describe('canResolveApprovals', () => {
  it('offers the ways to answer or take back an approval to admins and approvers only: an auditor or a viewer is offered none', () => {
    assert.deepEqual(
      CORRAL_ROLES.filter((role) => canResolveApprovals(user(role))),
      ['admin', 'approver'],
    );
  });

  it('offers nothing to a user with no role', () => {
    assert.equal(canResolveApprovals({ id: 'local:nobody', name: 'nobody', roles: [] }), false);
  });
});
