import type { Command } from 'commander';
import { ContainError, loadPolicyFile, planSandbox, Runner, type RunResult } from '@corral/contain';
import { dirname, resolve } from 'node:path';
import { EXIT } from '../exit-codes.ts';
import { CliFailure, printJson } from '../output.ts';

/** `corral run --policy FILE [--json] -- CMD ARGS...`: one command, contained. */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run one command inside a container defined by a policy')
    .requiredOption('-p, --policy <file>', 'container policy (YAML or JSON)')
    .option('--json', "print one summary object on stdout at the end (the command's own output goes to stderr)")
    .argument('<command...>', 'the command and its arguments (put them after --)')
    .passThroughOptions()
    .addHelpText(
      'after',
      `
Exit codes: the command's own (0-123), or
  124 timeout: it ran past process.timeoutMs and its whole tree was killed
  125 a limit (memory, processes, output) stopped it
  126 refused: the host cannot enforce what the policy asks
  127 the command does not exist inside the sandbox
    2 the policy is invalid (file, line and field are printed)
    3 the host cannot contain anything (see 'corral doctor')`,
    )
    .action(async (argv: string[], opts: { policy: string; json?: boolean }) => {
      const file = resolve(opts.policy);
      const plan = await refuseBadPolicy(async () => planSandbox(await loadPolicyFile(file, dirname(file))));
      const runner = await refuseBadPolicy(async () => new Runner());
      try {
        const proc = await refuseBadPolicy(async () =>
          runner.spawn(plan, argv, {
            stdin: process.stdin.isTTY || !opts.json ? 'inherit' : 'ignore',
            stdout: opts.json ? process.stderr : process.stdout,
            stderr: process.stderr,
          }),
        );
        const interrupt = () => proc.kill();
        process.once('SIGINT', interrupt).once('SIGTERM', interrupt);
        const result = await refuseBadPolicy(() => proc.result);
        process.off('SIGINT', interrupt).off('SIGTERM', interrupt);
        for (const warning of result.warnings) process.stderr.write(`corral: warning: ${warning}\n`);
        if (opts.json) printJson(summary(result, argv, file));
        else for (const line of describeRefusals(result)) process.stderr.write(`corral: ${line}\n`);
        process.exitCode = exitCode(result);
      } finally {
        await runner.close();
      }
    });
}

async function refuseBadPolicy<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof ContainError)) throw error;
    const code =
      error.code === 'CONTAIN_POLICY_INVALID' || error.code === 'CONTAIN_POLICY_UNREADABLE' || error.code === 'CONTAIN_PATH_UNRESOLVABLE' || error.code === 'CONTAIN_BAD_COMMAND'
        ? EXIT.usage
        : error.code === 'CONTAIN_UNENFORCEABLE'
          ? EXIT.refused
          : EXIT.environment;
    throw new CliFailure(error.message, code);
  }
}

function exitCode(result: RunResult): number {
  if (result.limitsHit.includes('timeout')) return EXIT.timeout;
  if (result.limitsHit.length > 0) return EXIT.limit;
  if (result.notFound) return EXIT.notFound;
  if (result.exitCode !== null) return result.exitCode;
  return 128 + 9;
}

function describeRefusals(result: RunResult): string[] {
  return result.refused.map((r) => (r.kind === 'network' ? `refused network ${r.host}:${r.port} (${r.reason})` : `stopped: ${r.detail}`));
}

function summary(result: RunResult, argv: string[], policyFile: string): Record<string, unknown> {
  return {
    command: argv,
    policy: { file: policyFile, digest: result.policyDigest },
    exit: result.exitCode,
    signal: result.signal,
    notFound: result.notFound,
    durationMs: Math.round(result.durationMs * 1000) / 1000,
    peakMemoryBytes: result.peakMemoryBytes,
    limitsHit: result.limitsHit,
    refused: result.refused,
    connections: result.connections,
    ingress: result.ingress,
    output: { stdoutBytes: result.stdoutBytes, stderrBytes: result.stderrBytes },
    warnings: result.warnings,
  };
}
