#!/usr/bin/env node
// `corral <noun> <verb>`: human output by default, --json for machines.
import { Command, CommanderError } from 'commander';
import { EXIT } from './exit-codes.ts';
import { CliFailure } from './output.ts';
import { registerRun } from './commands/run.ts';
import { registerDoctor } from './commands/doctor.ts';
import { registerAgents } from './commands/agents.ts';
import { registerTokens } from './commands/tokens.ts';
import { registerIdentity } from './commands/identity.ts';
import { registerPolicy } from './commands/policy.ts';
import { registerAudit } from './commands/audit.ts';
import { registerGateway } from './commands/gateway.ts';
import { registerNodes } from './commands/nodes.ts';
import { registerApprovals } from './commands/approvals.ts';
import { registerNode } from './commands/node.ts';
import { registerUp } from './commands/up.ts';
import { registerUsers } from './commands/users.ts';

const program = new Command('corral')
  .description('Run AI agents inside a company: identity, policy, containment, approval, proof.')
  .option('--state-dir <dir>', 'state directory (default: $CORRAL_STATE_DIR or ~/.corral)')
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

// Each command family registers itself here; keep one line per family.
for (const register of [registerRun, registerDoctor, registerAgents, registerTokens, registerIdentity, registerPolicy, registerAudit, registerGateway, registerNodes, registerApprovals, registerNode, registerUp, registerUsers]) register(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = exitCodeFor(error);
}

function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    // Commander already printed the message (or help/version, which exit 0).
    return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (error instanceof CliFailure) {
    process.stderr.write(`corral: ${error.message}\n`);
    return error.exitCode;
  }
  const coded = error as { code?: unknown; message?: unknown };
  if (typeof coded?.code === 'string' && typeof coded.message === 'string') {
    // A package's coded error: its message is written for users.
    process.stderr.write(`corral: ${coded.message} [${coded.code}]\n`);
    return EXIT.failed;
  }
  process.stderr.write(`corral: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
  return 70;
}
