// What each Corral role may do through the HTTP API. `admin` may do
// everything; a caller with the gateway token acts as an admin.
import type { CorralRole } from '@corral/identity';

export const PERMISSIONS = [
  'status.read',
  'activity.read',
  'approvals.read',
  'approvals.resolve',
  'audit.read',
  'agents.read',
  'agents.write',
  'nodes.read',
  'nodes.write',
  'policies.read',
  'policies.write',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const GRANTS: Record<CorralRole, readonly Permission[]> = {
  admin: PERMISSIONS,
  approver: ['status.read', 'activity.read', 'approvals.read', 'approvals.resolve', 'agents.read', 'nodes.read'],
  auditor: ['status.read', 'activity.read', 'audit.read', 'policies.read'],
  viewer: ['status.read', 'activity.read'],
};

export function rolesGrant(roles: readonly CorralRole[], permission: Permission): boolean {
  return roles.some((role) => GRANTS[role]?.includes(permission));
}
