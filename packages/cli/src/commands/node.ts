import type { Command } from 'commander';
import { dirname, resolve } from 'node:path';
import { hideCommandLineSecrets } from '../command-line-secrets.ts';
import { EXIT } from '../exit-codes.ts';
import { CliFailure, printable } from '../output.ts';
import { dirOf } from './agents.ts';
import { hiddenState, privateFolder } from '../state-dir.ts';
import type { NodeHostOptions, NodeStatus } from '@corral/node';


/** `corral node run --gateway ws://HOST:PORT --token T [--name NAME]`: serve this machine's commands, contained. */
export function registerNode(program: Command): void {
  const node = program.command('node').description("this machine as a node: serves a gateway's commands through local policy and the sandbox");
  node
    .command('run')
    .description('connect to a gateway (Corral or OpenClaw) and serve system.run, system.which and execApprovals')
    .requiredOption('--gateway <url>', 'the gateway, ws://HOST:PORT')
    .option('--token <token>', 'the gateway token (default: $CORRAL_GATEWAY_TOKEN); once the gateway has paired this node, it reconnects without one, with the device token the gateway gave it')
    .option('--name <name>', 'the name operators see', process.env.HOSTNAME ?? 'corral-node')
    .option('--control-plane <url>', 'a Corral gateway, ws://HOST:PORT, that decides every system.run arriving from another gateway; unreachable means deny')
    .option('--control-plane-token <token>', "the control plane's token (default: $CORRAL_CONTROL_PLANE_TOKEN), never sent to --gateway; once the control plane has paired this node, it reconnects without one")
    .option('--policy <file>', 'container policy (YAML or JSON) every command runs under (default: shell runtime, no network)')
    .option('--agent-map <upstream=corral...>', "with --control-plane: the Corral agent each upstream OpenClaw agent runs as (e.g. main=invoice-bot); commands from other agents are denied")
    .option('--agent-policy <corral=file...>', "the container policy one Corral agent's commands run under, instead of --policy")
    .option('--json', 'JSON lines: {"node", "gateway"} once it starts, then {"state", "detail"?, "retryInMs"?, "target"?} as its connections change')
    .action(async (opts: { gateway: string; token?: string; name: string; policy?: string; controlPlane?: string; controlPlaneToken?: string; agentMap?: string[]; agentPolicy?: string[]; json?: boolean }, command: Command) => {
      hideCommandLineSecrets([
        { option: '--token', value: opts.token, variable: 'CORRAL_GATEWAY_TOKEN' },
        { option: '--control-plane-token', value: opts.controlPlaneToken, variable: 'CORRAL_CONTROL_PLANE_TOKEN' },
      ]);
      const token = opts.token ?? (process.env.CORRAL_GATEWAY_TOKEN || undefined);
      // Each gateway gets only its own token: the one --gateway takes would let that gateway (upstream OpenClaw) into the control plane.
      const controlPlaneToken = opts.controlPlaneToken ?? (process.env.CORRAL_CONTROL_PLANE_TOKEN || undefined);
      for (const [flag, url] of [['--gateway', opts.gateway], ['--control-plane', opts.controlPlane]] as const) {
        const problem = url === undefined ? undefined : gatewayAddressProblem(flag, url);
        if (problem) throw new CliFailure(problem, EXIT.usage);
      }
      // A URL is printed and logged as given: a secret in it would be too. Tokens have options (and variables) of their own.
      for (const [flag, url] of [['--gateway', opts.gateway], ['--control-plane', opts.controlPlane]] as const) {
        if (url !== undefined && /^wss?:\/\/[^/?#]*@/.test(url)) throw new CliFailure(`${flag} must not hold a user name or password (user@ in the URL): it would be printed and logged; give the token with ${flag === '--gateway' ? '--token or CORRAL_GATEWAY_TOKEN' : '--control-plane-token or CORRAL_CONTROL_PLANE_TOKEN'}`, EXIT.usage);
      }
      // The node asks a control plane only about another gateway's commands: naming its own gateway would govern nothing.
      if (opts.controlPlane !== undefined && sameUrl(opts.controlPlane, opts.gateway)) throw new CliFailure('--control-plane names the gateway this node serves, which decides its commands itself: leave --control-plane out, or name the Corral gateway that governs this other one', EXIT.usage);
      if (opts.agentMap && !opts.controlPlane) throw new CliFailure('--agent-map needs --control-plane: it names who the Corral control plane decides for', EXIT.usage);
      const { loadPolicyFile } = await import('@corral/contain');
      // Read as corral run reads one: a regular file of at most 1 MiB of UTF-8 (a FIFO was waited on for good, /dev/zero read until memory ran out).
      const readPolicy = async (path: string): Promise<{ policy: unknown; baseDir: string; source: string }> => {
        const file = resolve(path);
        try {
          const { policy, baseDir, source } = await loadPolicyFile(file, dirname(file));
          return { policy, baseDir, source };
        } catch (error) {
          throw new CliFailure((error as Error).message, EXIT.usage);
        }
      };
      const containerPolicies: Record<string, { policy: unknown; baseDir: string; source: string }> = {};
      if (opts.policy) containerPolicies['*'] = await readPolicy(opts.policy);
      for (const entry of opts.agentPolicy ?? []) {
        const eq = entry.indexOf('=');
        if (eq < 1 || eq === entry.length - 1) throw new CliFailure(`--agent-policy ${entry}: expected corralAgent=FILE`, EXIT.usage);
        containerPolicies[entry.slice(0, eq)] = await readPolicy(entry.slice(eq + 1));
      }
      const { NodeError, NodeHost, parseAgentMap } = await import('@corral/node');
      let agents;
      try {
        agents = parseAgentMap(opts.agentMap ?? []);
      } catch (error) {
        if (error instanceof NodeError) throw new CliFailure(`${error.message} [${error.code}]`, EXIT.usage);
        throw error;
      }
      const dir = dirOf(command);
      // Another user's is the host's problem, exit 3, as a state directory another node holds (the node refuses it too, as if its key were damaged).
      await privateFolder(dir);
      let lastControlPlaneNews: string | undefined;
      let lastGatewayState: string | undefined;
      const options: NodeHostOptions = {
        gateway: opts.gateway,
        ...(token ? { token } : {}),
        name: opts.name,
        stateDir: dir,
        // No sandbox sees the state directory but its process workspaces, as under corral up.
        hiddenState: hiddenState(dir),
        ...(Object.keys(containerPolicies).length > 0 ? { containerPolicies } : {}),
        ...(opts.controlPlane ? { controlPlane: { url: opts.controlPlane, ...(controlPlaneToken ? { token: controlPlaneToken } : {}), agents } } : {}),
        onStatus: (s) => {
          const retry = s.retryInMs !== undefined ? `; retrying in ${(s.retryInMs / 1000).toFixed(1)} s` : '';
          // A detail may be the gateway's own words (its refusal code): never raw to the terminal.
          const say = (line: string) => process.stdout.write(`${printable(line)}\n`);
          if (s.target === 'control-plane') {
            // Asked again at the next command after a wait: the same news once, not once per command.
            const news = `${s.state} ${s.detail ?? ''}`;
            if (news === lastControlPlaneNews) return;
            lastControlPlaneNews = news;
          }
          // Every status, `stopped` too (the gateway's code): the error document of the command's failure follows it.
          if (opts.json) return void process.stdout.write(`${JSON.stringify(statusJson(s))}\n`);
          const previous = lastGatewayState;
          if (s.target !== 'control-plane') lastGatewayState = s.state;
          if (s.target === 'control-plane') {
            const cp = `control plane ${opts.controlPlane}`;
            if (s.state === 'connected') say(`${cp} connected`);
            else if (s.state === 'pending-pairing') say(`${cp}: waiting for an operator to pair node ${s.detail} there (corral nodes pair); every command is denied until then`);
            else if (s.state === 'refused' && s.detail === PAIRING_PENDING_FULL) say(`${cp} has as many nodes waiting to be paired as it keeps and asked this one to try again later (${s.detail}): it asks again at the next command, and every command is denied until it is paired there`);
            else if (s.state === 'refused') say(`${cp} refused this node (${s.detail}): every command is denied${s.detail?.startsWith('AUTH_') ? '; check --control-plane-token (or CORRAL_CONTROL_PLANE_TOKEN)' : ''}`);
            else say(`${cp} ${s.state === 'unreachable' ? 'unreachable' : 'disconnected'} (${s.detail}): every command is denied until it answers again`);
          } else if (s.state === 'pending-pairing') {
            // Said once while it waits, with how to pair it: each retry (every few seconds) would repeat a 64-digit id.
            if (previous !== 'pending-pairing') say(`waiting for an operator to pair node ${s.detail}: on the gateway's host, corral nodes pending lists its request and corral nodes pair REQUEST pairs it; it keeps asking until then`);
          } else if (s.state === 'unreachable') say(`gateway ${opts.gateway} unreachable (${s.detail})${retry}`);
          else if (s.state === 'refused' && s.detail === PAIRING_PENDING_FULL) say(`the gateway has as many nodes waiting to be paired as it keeps and asked this one to try again later (${s.detail})${retry}`);
          else if (s.state === 'refused') say(`refused for now (${s.detail})${retry}`);
          else if (s.state === 'stopped') return; // reported below, as the command's failure
          else say(`${s.state}${s.detail ? ` (${s.detail})` : ''}${retry}`);
        },
      };
      let host: InstanceType<typeof NodeHost>;
      try {
        host = new NodeHost(options);
      } catch (error) {
        // The only start-up option it can find missing is a token: say which option gives it.
        if (!(error instanceof NodeError) || error.code !== 'NODE_CONFIG_INVALID') throw error;
        const flag = error.message.startsWith('a control plane token') ? '--control-plane-token or CORRAL_CONTROL_PLANE_TOKEN' : '--token or CORRAL_GATEWAY_TOKEN';
        throw new CliFailure(`${error.message}; give it with ${flag}`, EXIT.usage, error.code);
      }
      if (opts.json) process.stdout.write(`${JSON.stringify({ node: host.device.deviceId, gateway: opts.gateway })}\n`);
      else process.stdout.write(`node ${host.device.deviceId} connecting to ${opts.gateway}\n`);
      void host.start().catch(() => {}); // a refusal for good settles `stopped` too
      // Runs until a signal, or until the gateway refuses this node in a way retrying cannot fix (wrong token, revoked pairing…).
      let refused: { code: string; message: string } | undefined;
      await new Promise<void>((done) => {
        process.once('SIGINT', () => done());
        process.once('SIGTERM', () => done());
        host.stopped.then(done, (error: { code: string; message: string }) => {
          refused = error;
          done();
        });
      });
      await host.close();
      // The code as its own field: printed after the message, and under --json the error document's code.
      if (refused) throw new CliFailure(refused.message, EXIT.failed, refused.code);
    });
}

/**
 * What is wrong with a gateway address given to `flag`, which takes ws:// or
 * wss://. The console's http:// URL, the one `corral up` prints, is the same
 * server: what to give instead is said (never for a URL holding user@, which
 * is not echoed).
 */
function gatewayAddressProblem(flag: string, url: string): string | undefined {
  if (/^wss?:\/\/[^/]+/.test(url)) return undefined;
  const web = /^http(s?):\/\/([^/?#@]+)\/?$/.exec(url);
  if (web) return `${flag} takes the gateway's WebSocket address: ws${web[1]}://${web[2]}, not ${web[0]}`;
  return `${flag} must be ws://HOST:PORT`;
}

/** A status as one line of `node run --json`: its fields that are set, no others. */
function statusJson(s: NodeStatus): Record<string, unknown> {
  return { state: s.state, ...(s.detail !== undefined ? { detail: s.detail } : {}), ...(s.retryInMs !== undefined ? { retryInMs: s.retryInMs } : {}), ...(s.target !== undefined ? { target: s.target } : {}) };
}

/** The gateway's refusal of a new node while as many wait to be paired as it keeps: retried, as it asks. */
const PAIRING_PENDING_FULL = 'PAIRING_PENDING_FULL';

/** Whether two gateway URLs name the same address (as URLs: case of the scheme and host, a trailing slash). */
function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}
