import type { Command } from 'commander';
import { EXIT } from '../exit-codes.ts';
import { CliFailure, printJson } from '../output.ts';
import { withIdentity } from './agents.ts';

/** `corral tokens verify TOKEN`: exit 0 and the claims when valid; non-zero and the reason when not. */
export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('check agent tokens');
  tokens
    .command('verify')
    .description("verify an agent token against this install's keys, issuer, audience and the agent's live status")
    .argument('<token>', "the token, or '-' to read it from standard input")
    .option('--single-use', 'also refuse the token if it was presented before (and mark it presented)')
    .option('--json', 'print { valid, claims } or { valid, code, reason } as JSON')
    .action(async (raw: string, opts: { singleUse?: boolean; json?: boolean }, command: Command) => {
      const { IdentityError, FORGED_TOKEN_CODES } = await import('@corral/identity');
      const token = raw === '-' ? (await readStdin()).trim() : raw;
      try {
        const claims = await withIdentity(command, (id) => id.verifyToken(token, { singleUse: opts.singleUse ?? false }));
        if (opts.json) printJson({ valid: true, claims });
        else {
          const lines = [`valid token for agent ${claims.agent}`, ...Object.entries(claims).map(([k, v]) => `${k.padEnd(8)} ${k === 'iat' || k === 'nbf' || k === 'exp' ? `${v} (${new Date((v as number) * 1000).toISOString()})` : String(v)}`)];
          process.stdout.write(`${lines.join('\n')}\n`);
        }
      } catch (error) {
        // Only a token code is a verdict on the token: a store that is busy or cannot be read says nothing of it (exit 3).
        if (!(error instanceof IdentityError) || !error.code.startsWith('IDENTITY_TOKEN_')) throw error;
        const kind = FORGED_TOKEN_CODES.has(error.code) ? 'forged' : 'refused';
        if (opts.json) {
          printJson({ valid: false, code: error.code, kind, reason: error.message });
          process.exitCode = EXIT.failed;
          return;
        }
        throw new CliFailure(`invalid token (${kind}): ${error.message} [${error.code}]`, EXIT.failed);
      }
    });
}

async function readStdin(): Promise<string> {
  let text = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    text += chunk as string;
    if (text.length > 65536) break;
  }
  return text;
}
