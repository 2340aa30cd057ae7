// Which pages and actions each role sees, as docs/http-api.md grants them.
// The gateway enforces these; the console only hides what would be refused.
import type { Role, User } from '../api/types.ts';

export type PageName = 'activity' | 'approvals' | 'audit' | 'agents' | 'policies';

const READERS: Record<PageName, readonly Role[]> = {
  activity: ['admin', 'approver', 'auditor', 'viewer'],
  approvals: ['admin', 'approver'],
  audit: ['admin', 'auditor'],
  agents: ['admin', 'approver'],
  policies: ['admin', 'auditor'],
};

export function canRead(user: User, page: PageName): boolean {
  return user.roles.some((role) => READERS[page].includes(role));
}

export function isAdmin(user: User): boolean {
  return user.roles.includes('admin');
}

/** Who may answer approvals (approve, deny, withdraw, revoke a standing grant): the gateway's approvals.resolve. */
export function canResolveApprovals(user: User): boolean {
  return user.roles.some((role) => role === 'admin' || role === 'approver');
}
