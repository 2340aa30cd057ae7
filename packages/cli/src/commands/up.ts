import type { Command } from 'commander';
import { isIP } from 'node:net';
import { EXIT } from '../exit-codes.ts';
import { CliFailure } from '../output.ts';
import { CONSOLE_OIDC_FILE, consoleOidcSettings } from '../oidc-file.ts';
import { dirOf } from './agents.ts';
import { beyondLoopbackWarning, collectProxies, portOption, reverseProxyOptions } from './gateway.ts';

/** `corral up [--port 18789] [--bind 127.0.0.1] [--no-console] [--json]`: gateway, node, console and the example process, on this machine. */
export function registerUp(program: Command): void {
  program
    .command('up')
    .description('start Corral on this machine: the gateway and its console, a node for this machine, and on first start an admin login and the invoice-intake example')
    .option('--port <port>', 'port of the gateway, its HTTP API and the console', '18789')
    .option('--bind <address>', 'address to listen on (loopback unless you say otherwise)', '127.0.0.1')
    .option('--no-console', 'serve the HTTP API without the web console')
    .option('--oidc <file>', `single sign-on for the console: OIDC settings as JSON (default: STATE_DIR/${CONSOLE_OIDC_FILE} when it exists)`)
    .option('--public-url <url>', 'where people reach the console through your TLS-terminating reverse proxy, e.g. https://corral.example.com: its Host is answered, its cookies are Secure')
    .option('--trust-proxy <addresses>', 'your reverse proxies, ADDR[,ADDR...] (IP addresses or CIDR blocks): only from these is X-Forwarded-For read for the client address', collectProxies)
    .option('--json', 'print one JSON document when ready: url, node, agent, admin (and one more for OpenClaw)')
    .option('--openclaw', 'also start upstream OpenClaw in a Corral container, its exec tool on a Corral node governed here (needs CORRAL_OPENCLAW_DIR)')
    .option('--model-url <url>', "with --openclaw: an OpenAI-compatible chat-completions endpoint (http://HOST:PORT/v1) for OpenClaw's agents")
    .option('--model <id>', 'with --openclaw: the model id at --model-url')
    .addHelpText(
      'after',
      `
Prints the console's URL on a line of its own once it answers; on the first
start, also the admin password, once (keep it: only its hash is stored).
With --openclaw, then starts OpenClaw contained and prints its URL and how
long its upstream gateway took to be ready.
Progress goes to stderr. Ctrl-C (or SIGTERM) stops everything and seals an
audit checkpoint, exit 0.

Exit codes:
    0 stopped cleanly
    2 bad usage, the console's OIDC settings (--oidc) are wrong, or the
      policies or a container policy in the state directory do not load
    3 the port is in use, the state directory cannot be written, belongs to
      another user or another corral up runs on it, this machine's node was
      unpaired, or OpenClaw (--openclaw) cannot start; once stopped, also
      when the admin password shown on the first start did not reach
      standard output`,
    )
    .action(async (opts: { port: string; bind: string; console: boolean; oidc?: string; publicUrl?: string; trustProxy?: string[]; json?: boolean; openclaw?: boolean; modelUrl?: string; model?: string }, command: Command) => {
      const port = portOption(opts.port);
      if (isIP(opts.bind) === 0) throw new CliFailure('--bind must be an IP address', EXIT.usage);
      const exposed = beyondLoopbackWarning(opts.bind, opts.publicUrl);
      if (exposed !== undefined) process.stderr.write(exposed);
      if ((opts.modelUrl !== undefined || opts.model !== undefined) && !opts.openclaw) throw new CliFailure('--model-url and --model go with --openclaw', EXIT.usage);
      if (opts.modelUrl !== undefined && !(/^https?:\/\/[^/]+/.test(opts.modelUrl) && URL.parse(opts.modelUrl)?.hostname)) throw new CliFailure('--model-url must be an http:// or https:// URL', EXIT.usage);
      const openclaw = opts.openclaw ? { ...(opts.modelUrl ? { modelUrl: opts.modelUrl } : {}), ...(opts.model ? { model: opts.model } : {}) } : undefined;
      // Found before anything starts (exit 3 with how to install it), not after the rest has started.
      if (openclaw) (await import('../up/openclaw.ts')).openclawEntry(undefined);
      const dir = dirOf(command);
      const oidc = await consoleOidcSettings(dir, opts.oidc);
      const { up } = await import('../up/up.ts');
      process.exitCode = await up({ stateDir: dir, port, bind: opts.bind, console: opts.console, json: opts.json === true, ...(oidc ? { oidc } : {}), reverseProxy: reverseProxyOptions(opts), ...(openclaw ? { openclaw } : {}) });
    });
}
