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

/** Creates the admin login if there is none; the password is returned only when it was created now. */
export async function ensureAdmin(identity: Identity): Promise<{ username: string; password?: string }> {
  if (identity.localUsers.list().some((u) => u.username === ADMIN_USERNAME)) return { username: ADMIN_USERNAME };
  const password = newPassword();
  await identity.localUsers.create(ADMIN_USERNAME, password, ['admin']);
  return { username: ADMIN_USERNAME, password };
}
