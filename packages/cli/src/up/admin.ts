// The console's first login: a local user `admin` with a strong random
// password. Only its scrypt hash is stored (identity.db); the password itself
// is handed back once, for `corral up` to print once, and kept nowhere.
import { randomBytes } from 'node:crypto';
import type { Identity } from '@corral/identity';

export const ADMIN_USERNAME = 'admin';

/** 24 characters of base64url: 144 random bits. */
export function newPassword(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * Creates the admin login when no login can administer Corral: none named
 * admin, and none other holding the admin role (an administrator who removed
 * admin for named logins does not get it back). The password is returned
 * only when it was created now.
 */
export async function ensureAdmin(identity: Identity): Promise<{ username: string; password?: string }> {
  const kept = administrator(identity);
  if (kept) return { username: kept };
  const password = newPassword();
  await identity.localUsers.create(ADMIN_USERNAME, password, ['admin']);
  return { username: ADMIN_USERNAME, password };
}

/** The login corral up keeps as the console's administrator: admin, else another holding the admin role; undefined when none. */
export function administrator(identity: Identity): string | undefined {
  const users = identity.localUsers.list().filter((u) => u.reserved !== true);
  return (users.find((u) => u.username === ADMIN_USERNAME) ?? users.find((u) => u.roles.includes('admin')))?.username;
}
