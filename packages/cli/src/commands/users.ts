import type { Command } from 'commander';
import { printJson, printSecret, table } from '../output.ts';
import { dirOf, identityDir, withIdentity } from './agents.ts';
import { recordedChange, recordIdentityEvent } from './identity-record.ts';

/** `corral users list|passwd NAME|rename NAME NEW-NAME|remove NAME`: the local logins of the console (the admin `corral up` creates). */
export function registerUsers(program: Command): void {
  const users = program.command('users').description("the console's local logins (single sign-on users are managed by the identity provider)");
  users
    .command('list')
    .description('local logins and their roles')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const list = await withIdentity(command, (identity) => identity.localUsers.list());
      if (opts.json) return printJson({ users: list });
      if (list.length === 0) return void process.stdout.write('no local logins: corral up makes the admin one\n');
      process.stdout.write(table(['USER', 'ROLES', 'SINCE'], list.map((u) => [u.username, u.roles.join(','), u.createdAt])));
      for (const u of list.filter((u) => u.reserved)) {
        process.stderr.write(`corral: the login ${u.username} cannot sign in: its name is reserved for the gateway token; give it another with: corral users rename ${u.username} NEW-NAME\n`);
      }
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
        () => withIdentity(command, (identity) => identity.localUsers.rename(username, newName)),
        (renamed) => ({ action: 'user.rename', resource: { kind: 'user', id: `local:${username}` }, details: { to: renamed.id, roles: renamed.roles } }),
      );
      if (opts.json) return printJson(user);
      process.stdout.write(`the login ${username} is now ${user.username} (same password and roles: ${user.roles.join(',')})\n`);
    });
  users
    .command('remove')
    .description('remove a local login; a session it holds ends at its next request')
    .argument('<username>')
    .option('--json', 'print the removed login')
    .action(async (username: string, opts: { json?: boolean }, command: Command) => {
      const { ADMIN_USERNAME, administrator } = await import('../up/admin.ts');
      const [user, left] = await withIdentity(command, (identity) => [identity.localUsers.remove(username), administrator(identity)] as const);
      // Removal takes access away: it stands even when the log cannot record it (a warning says so).
      await recordIdentityEvent(dirOf(command), { action: 'user.remove', resource: { kind: 'user', id: user.id }, details: { roles: user.roles } });
      if (left === undefined && user.roles.includes('admin')) process.stderr.write(`corral: no login left holds the admin role: corral up makes a login named ${ADMIN_USERNAME} again, with a new password, at its next start\n`);
      if (opts.json) return printJson(user);
      process.stdout.write(`removed the login ${user.username}; a session it held has ended\n`);
    });
}
