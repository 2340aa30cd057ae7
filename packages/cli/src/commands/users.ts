import type { Command } from 'commander';
import type { CorralRole, LocalUser } from '@corral/identity';
import { EXIT } from '../exit-codes.ts';
import { CliFailure, printable, printJson, printSecret, table } from '../output.ts';
import { dirOf, identityDir, withIdentity } from './agents.ts';
import { recordedChange, recordIdentityEvent } from './identity-record.ts';

/** What to do about a login name already taken. */
const TAKEN = 'corral users list shows it; choose another name';

/**
 * `corral users list|add NAME|email NAME|roles NAME|passwd NAME|rename NAME NEW-NAME|remove NAME`:
 * the local logins of the console (the admin `corral up` creates, and those
 * an admin adds), with their roles and the email address four eyes knows
 * each by.
 */
export function registerUsers(program: Command): void {
  const users = program.command('users').description("the console's local logins (single sign-on users are managed by the identity provider)");
  users
    .command('list')
    .description('local logins, their roles and email addresses')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const list = await withIdentity(command, (identity) => identity.localUsers.list());
      if (opts.json) return printJson({ users: list });
      if (list.length === 0) return void process.stdout.write('no local logins: corral up makes the admin one\n');
      process.stdout.write(table(['USER', 'ROLES', 'EMAIL', 'SINCE'], list.map((u) => [u.username, u.roles.join(','), u.email ?? '-', u.createdAt])));
      for (const u of list.filter((u) => u.reserved)) {
        process.stderr.write(`corral: the login ${u.username} cannot sign in: its name is reserved for the gateway token; give it another with: corral users rename ${u.username} NEW-NAME\n`);
      }
    });
  users
    .command('add')
    .description('add a local login with a new random password, printed once; --email gives the address it is known by, so it may not allow the requests of agents that address owns')
    .argument('<username>')
    .requiredOption('--role <role...>', 'its roles: admin, approver, auditor, viewer')
    .option('--email <address>', "the person's email address, matched against agents' owners (four eyes)")
    .option('--json', 'print the login and {"password"}')
    .action(async (username: string, opts: { role: CorralRole[]; email?: string; json?: boolean }, command: Command) => {
      const { newPassword } = await import('../up/admin.ts');
      const password = newPassword();
      // The new login can sign in: a log that cannot record it stops it.
      const user = await recordedChange(
        identityDir(command),
        () => withIdentity(command, (identity) => identity.localUsers.create(username, password, opts.role, opts.email === undefined ? {} : { email: opts.email }), { taken: TAKEN }),
        (made) => ({ action: 'user.create', resource: { kind: 'user', id: made.id }, details: { roles: made.roles, email: made.email ?? null } }),
      );
      if (opts.json) return printSecret('the new password', `${JSON.stringify({ ...user, password }, null, 2)}\n`);
      const known = user.email === undefined ? `, no email address: four eyes knows it as the owner of no agent until it is given one with corral users email ${user.username} ADDRESS` : `, email ${user.email}`;
      printSecret('the new password', `added the login ${user.username} (${user.roles.join(',')}${known})\npassword for ${user.username}: ${password}\nKeep it: it is shown only this once and stored only as a hash.\n`);
    });
  users
    .command('email')
    .description("give a local login the email address it is known by (four eyes: it may not allow the requests of agents that address owns), change it, or take it away with --clear; a session it holds ends")
    .argument('<username>')
    .argument('[address]')
    .option('--clear', 'take its address away')
    .option('--json', 'print the login')
    .action(async (username: string, address: string | undefined, opts: { clear?: boolean; json?: boolean }, command: Command) => {
      if ((address === undefined) === (opts.clear !== true)) throw new CliFailure('give either an address or --clear', EXIT.usage);
      // A changed or cleared address may let its login allow what it could not: a log that cannot record it stops it.
      const { user, previous } = await recordedChange(
        identityDir(command),
        () =>
          withIdentity(command, (identity) => {
            const previous = identity.localUsers.get(username).email;
            return { user: identity.localUsers.setEmail(username, address ?? null), previous };
          }),
        (changed) => ({ action: 'user.email.set', resource: { kind: 'user', id: changed.user.id }, details: { email: changed.user.email ?? null, previous: changed.previous ?? null } }),
      );
      if (opts.json) return printJson(user);
      process.stdout.write(`${described(user, previous)}; a session it held has ended\n`);
    });
  users
    .command('roles')
    .description('give a local login other roles (they replace those it holds); a session it holds ends. The only login that can sign in holding admin keeps it: give another login admin first')
    .argument('<username>')
    .requiredOption('--role <role...>', 'its roles: admin, approver, auditor, viewer')
    .option('--json', 'print the login')
    .action(async (username: string, opts: { role: string[]; json?: boolean }, command: Command) => {
      // Roles given may let the login do more: a log that cannot record the change stops it.
      const { user, previous } = await recordedChange(
        identityDir(command),
        () =>
          withIdentity(command, (identity) => {
            const previous = identity.localUsers.get(username).roles;
            // setRoles refuses an unknown role, and taking admin from the last login that can sign in holding it (IDENTITY_LAST_ADMIN).
            return { user: identity.localUsers.setRoles(username, opts.role as CorralRole[]), previous };
          }),
        (changed) => ({ action: 'user.roles.set', resource: { kind: 'user', id: changed.user.id }, details: { roles: changed.user.roles, previous: changed.previous } }),
      );
      if (opts.json) return printJson(user);
      process.stdout.write(`the login ${user.username} now has the roles ${user.roles.join(',')} (it had ${previous.join(',')}); a session it held has ended\n`);
    });
  users
    .command('passwd')
    .description('give a local login a new random password, printed once (the old one stops working at once)')
    .argument('<username>')
    .option('--json', 'print {"username", "password"}')
    .action(async (username: string, opts: { json?: boolean }, command: Command) => {
      const { newPassword } = await import('../up/admin.ts');
      const password = newPassword();
      await recordedChange(
        identityDir(command),
        () => withIdentity(command, (identity) => identity.localUsers.setPassword(username, password)),
        () => ({ action: 'user.password.set', resource: { kind: 'user', id: `local:${username}` } }),
      );
      if (opts.json) return printSecret('the new password', `${JSON.stringify({ username, password }, null, 2)}\n`);
      printSecret('the new password', `new password for ${username}: ${password}\nKeep it: it is shown only this once and stored only as a hash.\n`);
    });
  users
    .command('rename')
    .description('give a login made before its name was reserved (operator) a name of its own, keeping its password and roles; a session it holds ends')
    .argument('<username>')
    .argument('<new-name>')
    .option('--json', 'print the renamed login')
    .action(async (username: string, newName: string, opts: { json?: boolean }, command: Command) => {
      // The new name can sign in: a log that cannot record the rename stops it.
      const user = await recordedChange(
        identityDir(command),
        () => withIdentity(command, (identity) => identity.localUsers.rename(username, newName), { taken: TAKEN }),
        (renamed) => ({ action: 'user.rename', resource: { kind: 'user', id: `local:${username}` }, details: { to: renamed.id, roles: renamed.roles } }),
      );
      if (opts.json) return printJson(user);
      process.stdout.write(`the login ${username} is now ${user.username} (same password and roles: ${user.roles.join(',')})\n`);
    });
  users
    .command('remove')
    .description('remove a local login; a session it holds ends at its next request. The only login that can sign in holding admin stays: give another login admin first')
    .argument('<username>')
    .option('--json', 'print the removed login')
    .action(async (username: string, opts: { json?: boolean }, command: Command) => {
      // Refused for the last login that can sign in holding admin (IDENTITY_LAST_ADMIN).
      const user = await withIdentity(command, (identity) => identity.localUsers.remove(username));
      // Removal takes access away: it stands even when the log cannot record it (a warning says so).
      await recordIdentityEvent(dirOf(command), { action: 'user.remove', resource: { kind: 'user', id: user.id }, details: { roles: user.roles } });
      if (opts.json) return printJson(user);
      process.stdout.write(`removed the login ${user.username}; a session it held has ended\n`);
    });
}

/** What `corral users email` did to `user`, whose address was `previous` (as the store held it: printed made printable). */
function described(user: LocalUser, previous: string | undefined): string {
  const had = previous === undefined ? undefined : printable(previous);
  if (user.email === undefined) return had === undefined ? `the login ${user.username} had no email address, and has none` : `the login ${user.username} no longer has the email address ${had}`;
  return had === undefined ? `the login ${user.username} now has the email address ${user.email}` : `the login ${user.username} now has the email address ${user.email} (it had ${had})`;
}
