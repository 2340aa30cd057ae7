import type { Command } from 'commander';
import { dirname, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';
import { dirOf } from './agents.ts';

/** `corral node run --gateway ws://HOST:PORT --token T [--name NAME]`: serve this machine's commands, contained. */
export function registerNode(program: Command): void {
  const node = program.command('node').description("this machine as a node: serves a gateway's commands through local policy and the sandbox");
  node
    .command('run')
    .description('connect to a gateway (Corral or OpenClaw) and serve system.run, system.which and execApprovals')
    .requiredOption('--gateway <url>', 'the gateway, ws://HOST:PORT')
    .option('--token <token>', 'the gateway token (default: $CORRAL_GATEWAY_TOKEN)')
    .option('--name <name>', 'the name operators see', process.env.HOSTNAME ?? 'corral-node')
    .option('--control-plane <url>', 'a Corral gateway, ws://HOST:PORT, that decides every system.run arriving from another gateway (same token); unreachable means deny')
    .option('--policy <file>', 'container policy (JSON) every command runs under (default: shell runtime, no network)')
    .action(async (opts: { gateway: string; token?: string; name: string; policy?: string; controlPlane?: string }, command: Command) => {
      const token = opts.token ?? process.env.CORRAL_GATEWAY_TOKEN;
      if (!token) throw new CliFailure('a gateway token is needed: --token or CORRAL_GATEWAY_TOKEN', EXIT.usage);
      if (!/^wss?:\/\/[^/]+/.test(opts.gateway)) throw new CliFailure('--gateway must be ws://HOST:PORT', EXIT.usage);
      if (opts.controlPlane !== undefined && !/^wss?:\/\/[^/]+/.test(opts.controlPlane)) throw new CliFailure('--control-plane must be ws://HOST:PORT', EXIT.usage);
      let containerPolicies: Record<string, { policy: unknown; baseDir: string }> | undefined;
      if (opts.policy) {
        const file = resolve(opts.policy);
        try {
          containerPolicies = { '*': { policy: JSON.parse(readFileSync(file, 'utf8')), baseDir: dirname(file) } };
        } catch {
          throw new CliFailure(`cannot read the container policy ${file} as JSON`, EXIT.usage);
        }
      }
      const { NodeHost } = await import('@corral/node');
      const host = new NodeHost({
        gateway: opts.gateway,
        token,
        name: opts.name,
        stateDir: dirOf(command),
        ...(containerPolicies ? { containerPolicies } : {}),
        ...(opts.controlPlane ? { controlPlane: { url: opts.controlPlane, token } } : {}),
        onStatus: (s) => {
          if (s.state === 'pending-pairing') process.stdout.write(`waiting for an operator to pair node ${s.detail}\n`);
          else process.stdout.write(`${s.state}${s.detail ? ` (${s.detail})` : ''}\n`);
        },
      });
      process.stdout.write(`node ${host.device.deviceId} connecting to ${opts.gateway}\n`);
      void host.start();
      await new Promise<void>((done) => {
        process.once('SIGINT', () => done());
        process.once('SIGTERM', () => done());
      });
      await host.close();
    });
}
