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
 * What corral up says when no login can administer the console and it makes
 * none: the login admin is kept without the admin role (an admin took it
 * away, or an older Corral let the last other admin be removed after).
 * Giving it back is an admin's decision on the host, not corral up's.
 */
export const NO_ADMINISTRATOR =
  `no login that can sign in holds the admin role, so no one can administer the console: the login ${ADMIN_USERNAME} no longer holds it, and corral up neither makes another nor gives it back. ` +
  `To give it back: corral users roles ${ADMIN_USERNAME} --role admin (and, should its password be lost, corral users passwd ${ADMIN_USERNAME})`;

/**
 * The login that administers the console (see administrator), made now when
 * there is none and no login is named admin (the first start, or admin
 * removed): the password is returned only then. Null when admin is kept
 * without the admin role and no other login that can sign in holds it:
 * corral up neither promotes it nor makes another (NO_ADMINISTRATOR says so).
 */
export async function ensureAdmin(identity: Identity): Promise<{ username: string; password?: string } | null> {
  const kept = administrator(identity);
  if (kept) return { username: kept };
  if (identity.localUsers.list().some((u) => u.username === ADMIN_USERNAME)) return null;
  const password = newPassword();
  await identity.localUsers.create(ADMIN_USERNAME, password, ['admin']);
  return { username: ADMIN_USERNAME, password };
}

/**
 * The login corral up names as the console's administrator: one that can sign
 * in (no reserved name) and holds the admin role, admin before any other;
 * undefined when none does. A login named admin that lost the role is none.
 */
function administrator(identity: Identity): string | undefined {
  const admins = identity.localUsers.list().filter((u) => u.reserved !== true && u.roles.includes('admin'));
  return (admins.find((u) => u.username === ADMIN_USERNAME) ?? admins[0])?.username;
}
