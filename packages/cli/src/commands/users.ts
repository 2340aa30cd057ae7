import type { Command } from 'commander';
import { printJson, printSecret, table } from '../output.ts';
import { identityDir, withIdentity } from './agents.ts';
import { recordedChange } from './identity-record.ts';

/** `corral users list|passwd NAME`: the local logins of the console (the admin `corral up` creates). */
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
}
