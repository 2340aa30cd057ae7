import type { Command } from 'commander';
import type { HumanIdentity, HumanRecord } from '@corral/identity';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { EXIT } from '../exit-codes.ts';
import { shownNodeId } from '../node-id.ts';
import { CliFailure, printJson, printable, table } from '../output.ts';
import { stateDir } from '../state-dir.ts';
import { dirOf, durationOption, identityDir, withIdentity } from './agents.ts';
import { recordIdentityEvent } from './identity-record.ts';
import { readOidcSettings } from '../oidc-file.ts';
import { addPairingVerbs } from './nodes.ts';

/** `corral identity …`: the published key set, key rotation, nodes, human sign-in. */
export function registerIdentity(program: Command): void {
  const identity = program.command('identity').description("this install's signing keys, nodes and humans");

  identity
    .command('jwks')
    .description('print the published JSON Web Key Set that verifies agent tokens')
    .option('--json', 'the output is JSON either way')
    .action(async (_opts: unknown, command: Command) => {
      printJson(await withIdentity(command, (id) => id.jwks(), { create: true }));
    });

  identity
    .command('rotate')
    .description('make a new signing key; the previous one keeps verifying through the overlap')
    .option('--overlap <duration>', 'how long the previous key keeps verifying (default: the longest token lifetime); 0 stops it at once, for a key that leaked')
    .option('--json', 'print { kid, keys } as JSON')
    .action(async (opts: { overlap?: string; json?: boolean }, command: Command) => {
      const overlapSeconds = opts.overlap === undefined ? undefined : await durationOption('--overlap', opts.overlap, { zero: true });
      const result = await withIdentity(command, async (id) => {
        const kid = await (overlapSeconds === undefined ? id.rotateKeys() : id.rotateKeys(overlapSeconds * 1000));
        return { kid, keys: id.keys.list() };
      });
      await recordIdentityEvent(dirOf(command), { action: 'identity.key.rotate', resource: { kind: 'signing-key', id: result.kid } });
      if (opts.json) printJson(result);
      else process.stdout.write(`new signing key ${result.kid}\n`);
    });

  identity
    .command('keys')
    .description('list signing keys and their state (active, retiring, retired)')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const keys = await withIdentity(command, (id) => id.keys.list());
      if (opts.json) return printJson(keys);
      if (keys.length === 0) return void process.stdout.write('no signing keys yet: the first token issued, or corral identity jwks, makes one\n');
      // retireAfter is when a retiring key stops verifying, or when a retired one did.
      for (const k of keys) process.stdout.write(`${k.kid}  ${k.state}${k.retireAfter ? ` ${k.state === 'retired' ? 'since' : 'until'} ${k.retireAfter}` : ''}  created ${k.createdAt}\n`);
    });

  const nodes = identity.command('nodes').description('nodes (machines) known by their Ed25519 device key, and their pairing');
  nodes
    .command('list')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const list = await withIdentity(command, (id) => id.nodes.list());
      if (opts.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no nodes\n');
      process.stdout.write(table(['NODE', 'STATUS', 'NAME', 'PLATFORM'], list.map((n) => [shownNodeId(n.deviceId), n.status, n.displayName, n.platform])));
    });
  addPairingVerbs(nodes, (c) => identityDir(c));

  identity
    .command('humans')
    .description('people who signed in, with the Corral roles their groups map to')
    .option('--json', 'print a JSON array')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const list = await withIdentity(command, (id) => id.humans.list());
      if (opts.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no one has signed in\n');
      // The issuer chose the subject and the address: printed so that neither can write to the terminal.
      for (const h of list) process.stdout.write(`${printable(humanName(h))}  ${h.roles.join(',')}  last sign-in ${h.lastLoginAt}\n`);
    });

  identity
    .command('sign-out')
    .description("end a single sign-on person's console sessions now, in every gateway on this state directory within a request (for someone the issuer no longer lets sign in)")
    .argument('<name>', 'their verified address, or oidc:ISSUER#SUBJECT, as corral identity humans shows them')
    .option('--json', 'print the people signed out as JSON')
    .action(async (name: string, opts: { json?: boolean }, command: Command) => {
      const named = await withIdentity(command, (id) => id.humans.signOut(name));
      // It takes access away: it stands even when the log cannot record it (a warning says so).
      for (const h of named) await recordIdentityEvent(dirOf(command), { action: 'human.sign-out', resource: { kind: 'human', id: humanName(h) }, details: { issuer: h.issuer } });
      if (opts.json) return printJson(named);
      for (const h of named) process.stdout.write(`ended every session of ${printable(humanName(h))} begun before now; they can sign in again only through ${printable(h.issuer)}\n`);
    });

  identity
    .command('login')
    .description('sign a person in through the OpenID Connect issuer (authorization code + PKCE, loopback redirect)')
    .option('--config <file>', 'OIDC settings as JSON (default: STATE_DIR/oidc.json)')
    .option('--timeout <duration>', 'how long to wait for the browser', '5m')
    .option('--json', 'print the signed-in person as JSON')
    .action(async (opts: { config?: string; timeout: string; json?: boolean }, command: Command) => {
      const file = opts.config ?? join(stateDir(command.optsWithGlobals().stateDir as string | undefined), 'oidc.json');
      const { OidcClient } = await import('@corral/identity');
      const settings = await readOidcSettings(file, '--config');
      const redirect = URL.parse(settings.redirectUri);
      if (redirect === null || redirect.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(redirect.hostname) || redirect.port === '') {
        throw new CliFailure(`${file}: redirectUri must be a loopback URL with a port, e.g. http://127.0.0.1:8765/callback`, EXIT.usage);
      }
      const timeoutMs = (await durationOption('--timeout', opts.timeout)) * 1000;
      const client = await OidcClient.discover(settings);
      const pending = client.startLogin();
      const callbackUrl = await new Promise<string>((resolve, reject) => {
        const server = createServer((req, res) => {
          const url = new URL(req.url ?? '/', settings.redirectUri);
          if (url.pathname !== redirect.pathname) {
            res.writeHead(404).end();
            return;
          }
          // Any page open in the browser, or any local process, can send a request here: only the
          // callback carrying this login's state ends the wait, so a stray one cannot abort the sign-in.
          if (url.searchParams.get('state') !== pending.state) {
            res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' }).end('Corral: this is not the sign-in Corral is waiting for.\n');
            return;
          }
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('Corral: you can close this window.\n');
          clearTimeout(timer);
          server.close();
          resolve(url.toString());
        });
        const timer = setTimeout(() => {
          server.close();
          reject(new CliFailure('no sign-in arrived before the timeout', EXIT.failed));
        }, timeoutMs);
        server.once('error', (error) => {
          clearTimeout(timer);
          reject(new CliFailure(`cannot listen on ${redirect.host}: ${error.message}`, EXIT.environment));
        });
        server.listen(Number(redirect.port), redirect.hostname.replace(/^\[|\]$/g, ''), () => {
          process.stderr.write(`corral: open this URL in a browser to sign in:\n${pending.url}\n`);
        });
      });
      const human = await client.verifyLogin(callbackUrl, pending);
      const record = await signIn(command, human);
      const who = humanName(record);
      await recordIdentityEvent(dirOf(command), {
        actor: { kind: 'human', id: who },
        action: 'human.login',
        resource: { kind: 'issuer', id: record.issuer },
        details: { roles: record.roles },
      });
      if (opts.json) printJson(record);
      else process.stdout.write(`signed in ${printable(who)} as ${record.roles.join(', ')}\n`);
    });
}

/**
 * Records the sign-in of `human` as the console's does (HumanRegistry.signIn)
 * and answers them as recorded. One that maps no role is refused (exit 1,
 * IDENTITY_OIDC_NO_ROLE); a person who signed in before is recorded as
 * holding no role, which ends their console sessions, and the audit log
 * records that.
 */
async function signIn(command: Command, human: HumanIdentity): Promise<HumanRecord> {
  const { IdentityError } = await import('@corral/identity');
  const signedIn = await withIdentity(
    command,
    (id) => {
      try {
        return { record: id.humans.signIn(human) };
      } catch (error) {
        if (!(error instanceof IdentityError) || error.code !== 'IDENTITY_OIDC_NO_ROLE') throw error;
        return { demoted: id.humans.get(human.issuer, human.subject) };
      }
    },
    { create: true },
  );
  if (signedIn.record !== undefined) return signedIn.record;
  const who = printable(humanName(human));
  const groups = human.groups.length === 0 ? 'no groups' : `groups ${human.groups.map((g) => printable(JSON.stringify(g))).join(', ')}`;
  const refusal = `the sign-in of ${who} is refused: the issuer gives ${groups}, and none maps to a Corral role (roleMap in the OIDC settings)`;
  if (signedIn.demoted === undefined) throw new CliFailure(`${refusal}; an admin at ${printable(human.issuer)} can add them to a group it maps`, EXIT.failed, 'IDENTITY_OIDC_NO_ROLE');
  // It takes access away: it stands even when the log cannot record it (a warning says so).
  await recordIdentityEvent(dirOf(command), {
    actor: { kind: 'human', id: humanName(human) },
    action: 'human.login',
    resource: { kind: 'issuer', id: human.issuer },
    outcome: { status: 'failure', detail: 'IDENTITY_OIDC_NO_ROLE' },
    details: { roles: [] },
  });
  throw new CliFailure(`${refusal}. They signed in before, and are now recorded as holding no role, which ends their console sessions`, EXIT.failed, 'IDENTITY_OIDC_NO_ROLE');
}

/**
 * A person who signed in, named as the gateway names them: by a verified
 * address, else by issuer and subject. The subject alone could be a local
 * username (or read token:…) and be taken for someone else.
 */
function humanName(human: HumanIdentity): string {
  return human.email ?? `oidc:${human.issuer}#${human.subject}`;
}
