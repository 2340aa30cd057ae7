import type { Command } from 'commander';
import type { TracingConfig } from '@corral/gateway';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createOnce } from '@corral/node/whole-files';
import { EXIT } from '../exit-codes.ts';
import { gatewayLog, LOG_LEVELS, logLevelOption, stderrDestination } from '../gateway-log.ts';
import { CliFailure, printJson } from '../output.ts';
import { CONSOLE_OIDC_FILE, consoleOidcSettings } from '../oidc-file.ts';
import { StartProgress } from '../start-progress.ts';
import { privateFolder } from '../state-dir.ts';
import { dirOf } from './agents.ts';

export const GATEWAY_TOKEN_FILE = 'gateway-token';
export const METRICS_TOKEN_FILE = 'metrics-token';

/** `--port` as a number: decimal digits, 0 (any free port) to 65535. Throws a CliFailure (exit 2) naming the option. */
export function portOption(text: string): number {
  const port = Number(text);
  if (!/^\d{1,5}$/.test(text) || port > 65535) throw new CliFailure('--port must be a port number (0-65535)', EXIT.usage);
  return port;
}

/** A secret the gateway is started with: its file in the state directory, the variable that overrides it, what it is called, who holds it. */
interface StateSecret {
  file: string;
  env: string;
  name: string;
  holders: string;
}

const GATEWAY_TOKEN: StateSecret = { file: GATEWAY_TOKEN_FILE, env: 'CORRAL_GATEWAY_TOKEN', name: 'the gateway token', holders: 'nodes and operators' };
const METRICS_TOKEN: StateSecret = { file: METRICS_TOKEN_FILE, env: 'CORRAL_METRICS_TOKEN', name: 'the metrics scrape token', holders: 'scrapers' };

/**
 * `CORRAL_GATEWAY_TOKEN`, else the token in the state directory, generated
 * (mode 0600) on first use. A state directory that cannot hold it is a
 * CliFailure, exit 3, naming the directory and what to do.
 */
export function gatewayToken(dir: string): StateToken {
  return stateSecret(dir, GATEWAY_TOKEN);
}

/**
 * The scrape token, good for the gateway's GET /metrics alone:
 * `CORRAL_METRICS_TOKEN`, else the token in the state directory, generated
 * (mode 0600) on first use; failures as gatewayToken's.
 */
export function metricsToken(dir: string): StateToken {
  return stateSecret(dir, METRICS_TOKEN);
}

/** A token and where it came from: its variable, or its file in the state directory (`created`: the file this call made). */
export interface StateToken {
  token: string;
  source: 'env' | 'file';
  created?: string;
}

/** `secret` from its variable, else from its file in `dir`, made on first use. */
function stateSecret(dir: string, secret: StateSecret): StateToken {
  const fromEnv = process.env[secret.env];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 16) throw new CliFailure(`${secret.env} must be at least 16 characters`, EXIT.usage);
    return { token: fromEnv, source: 'env' };
  }
  const remedy = `choose another with --state-dir or CORRAL_STATE_DIR, or give the token in ${secret.env}`;
  if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() === false) {
    throw new CliFailure(`the state directory ${dir} is not a directory, so ${secret.name} cannot be kept there: ${remedy}`, EXIT.environment);
  }
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // Made once, whole: processes starting at the same moment all read the one token.
    // A secret: one that other users could read, or have written, is refused (readStateFile's checks).
    const path = join(dir, secret.file);
    const { text, created } = createOnce(path, () => `${randomBytes(32).toString('base64url')}\n`, 'NODE_CONFIG_INVALID', true);
    return { token: text.trim(), source: 'file', ...(created ? { created: path } : {}) };
  } catch (error) {
    if ((error as { code?: unknown }).code === 'NODE_CONFIG_INVALID') {
      throw new CliFailure(`${(error as Error).message}: ${secret.name} is not used; make it private (chmod 600, owned by this user), or remove it to have a new one made (${secret.holders} then need the new token), or ${remedy}`, EXIT.environment);
    }
    // The file system's refusal (a read-only disk, a directory of another user's): the host, not the request.
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw error;
    throw new CliFailure(`cannot keep ${secret.name} in the state directory ${dir} (${code}): fix its permissions, or ${remedy}`, EXIT.environment);
  }
}

/** `--trust-proxy`, given once or more, each a comma-separated list: the entries, trimmed. */
export function collectProxies(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((entry) => entry.trim())];
}

/**
 * The warning for a gateway told to listen beyond loopback (`--bind 0.0.0.0`,
 * a LAN address) with no TLS-terminating proxy named (`--public-url`): its
 * gateway token, console passwords and session cookies would cross the
 * network in the clear. Undefined on loopback (127.0.0.0/8, ::1) or behind a
 * named proxy. Said on stderr, with --json too, as the server starts.
 */
export function beyondLoopbackWarning(bind: string, publicUrl: string | undefined): string | undefined {
  const loopback = bind === '::1' || /^127\./.test(bind) || /^::ffff:127\./i.test(bind);
  if (loopback || publicUrl !== undefined) return undefined;
  return `corral: listening on ${bind}, beyond loopback, over plain HTTP: the gateway token, console passwords and session cookies cross the network unencrypted; put a TLS-terminating reverse proxy in front and name it with --public-url (and --trust-proxy), or bind to 127.0.0.1\n`;
}

/** --public-url and --trust-proxy as the gateway's options (corral gateway's and corral up's). */
export function reverseProxyOptions(opts: { publicUrl?: string; trustProxy?: string[] }): { publicUrl?: string; trustedProxies?: string[] } {
  return { ...(opts.publicUrl !== undefined ? { publicUrl: opts.publicUrl } : {}), ...(opts.trustProxy !== undefined ? { trustedProxies: opts.trustProxy } : {}) };
}

/** The gateway's names of its options, as this command spells them. */
const OPTION_NAMES: Record<string, string> = { publicUrl: '--public-url', trustedProxies: '--trust-proxy' };

/**
 * A gateway's refusal of --public-url or --trust-proxy (GATEWAY_PUBLIC_URL_INVALID,
 * GATEWAY_TRUSTED_PROXY_INVALID), or of the OpenTelemetry variables it read
 * (GATEWAY_TRACING_INVALID, naming the variable), as bad usage, exit 2,
 * naming the flag; anything else, undefined.
 */
export function optionRefusal(error: unknown): CliFailure | undefined {
  const code = (error as { code?: unknown }).code;
  if (code !== 'GATEWAY_PUBLIC_URL_INVALID' && code !== 'GATEWAY_TRUSTED_PROXY_INVALID' && code !== 'GATEWAY_TRACING_INVALID') return undefined;
  const message = (error as Error).message.replace(/\b(publicUrl|trustedProxies)\b/g, (name) => OPTION_NAMES[name]!);
  return new CliFailure(message, EXIT.usage, code);
}

/** The traces `read` finds asked for (the gateway's tracingFromEnv), or its refusal as bad usage, exit 2 (optionRefusal). */
export function tracingOption(read: () => TracingConfig | undefined): TracingConfig | undefined {
  try {
    return read();
  } catch (error) {
    throw optionRefusal(error) ?? error;
  }
}

/** Whether the policy directory holds a Cedar file (a set the gateway decides with); a directory not there holds none. */
function holdsPolicies(dir: string): boolean {
  try {
    return readdirSync(dir).some((name) => name.endsWith('.cedar'));
  } catch {
    return false;
  }
}

/**
 * A gateway's refusal of the policies in `policies` (a POLICY_ code) as bad
 * usage, exit 2: the directory, each problem by file and line, and how to go
 * on, ending with `again`, the command to run once they are fixed; anything
 * else, undefined.
 */
export async function policiesRefusal(error: unknown, policies: string, again: string): Promise<CliFailure | undefined> {
  const refused = error as { code?: unknown; message?: unknown; issues?: unknown } | undefined;
  if (typeof refused?.code !== 'string' || !refused.code.startsWith('POLICY_')) return undefined;
  const { formatPolicyIssue } = await import('@corral/policy');
  // An issue the message already is (one problem, where it is) is said once.
  const issues = Array.isArray(refused.issues) ? refused.issues.map(formatPolicyIssue).filter((issue) => issue !== refused.message) : [];
  const lines = [`the policies in ${policies} do not load: ${String(refused.message)}`, ...issues, `fix them (corral policy validate ${policies} names each problem) and run ${again} again`];
  return new CliFailure(lines.join('\n'), EXIT.usage, refused.code);
}

/** `corral gateway [--port --bind --public-url --trust-proxy]`, `corral gateway token` and `corral gateway metrics-token`. */
export function registerGateway(program: Command): void {
  const gateway = program
    .command('gateway')
    .description('run the control plane: the OpenClaw gateway protocol for operators and nodes')
    .option('--port <port>', 'port to listen on', '18789')
    .option('--bind <address>', 'address to listen on (loopback unless you say otherwise)', '127.0.0.1')
    .option('--oidc <file>', `single sign-on for the console: OIDC settings as JSON (default: STATE_DIR/${CONSOLE_OIDC_FILE} when it exists)`)
    .option('--public-url <url>', 'where people reach the console through your TLS-terminating reverse proxy, e.g. https://corral.example.com: its Host is answered, its cookies are Secure')
    .option('--trust-proxy <addresses>', 'your reverse proxies, ADDR[,ADDR...] (IP addresses or CIDR blocks): only from these is X-Forwarded-For read for the client address', collectProxies)
    .option('--json', 'print one JSON document, {"url"}, once it listens')
    .option('--log-level <level>', `the gateway's log on stderr, JSON lines from this level up (${LOG_LEVELS.join(', ')})`, 'info')
    // It runs itself and has a subcommand: main.ts gives --state-dir only to commands without one. Its options come
    // before `token`, so that `gateway token --json` is the token command's.
    .option('--state-dir <dir>', 'state directory (default: $CORRAL_STATE_DIR or ~/.corral)')
    .enablePositionalOptions()
    .action(async (opts: { port: string; bind: string; oidc?: string; publicUrl?: string; trustProxy?: string[]; json?: boolean; logLevel: string }, command: Command) => {
      const port = portOption(opts.port);
      const level = logLevelOption(opts.logLevel);
      if (isIP(opts.bind) === 0) throw new CliFailure('--bind must be an IP address', EXIT.usage);
      const exposed = beyondLoopbackWarning(opts.bind, opts.publicUrl);
      if (exposed !== undefined) process.stderr.write(exposed);
      const dir = dirOf(command);
      // Refused before its token and audit signing key are made there, not once they are, when the identity store opens.
      await privateFolder(dir);
      const { token } = gatewayToken(dir);
      const metrics = metricsToken(dir);
      const oidc = await consoleOidcSettings(dir, opts.oidc);
      const progress = new StartProgress(opts.json ? undefined : process.stderr, 'gateway start');
      const { Gateway, tracingFromEnv } = await progress.step('loading the gateway', () => import('@corral/gateway'));
      // Traces go to a collector when the standard OTEL_* variables say so; one not well formed is refused before anything opens.
      const tracing = tracingOption(() => tracingFromEnv(process.env));
      // Opened here rather than by the gateway, so that a large log is named while it opens; closed here once the gateway is.
      const audit = await progress.step('opening the audit log (audit.db)', async () => (await import('@corral/audit/log')).openAuditLog({ stateDir: dir }));
      const log = gatewayLog(stderrDestination(), level);
      let running;
      try {
        running = await progress.step(`reading identities and the policy set, then listening on ${opts.bind} port ${port}`, () =>
          Gateway.start({ stateDir: dir, token, metricsToken: metrics.token, host: opts.bind, port, audit, ...(oidc ? { oidc } : {}), ...(tracing ? { tracing } : {}), ...reverseProxyOptions(opts), log }),
        );
      } catch (error) {
        await audit.close();
        const refusal = optionRefusal(error) ?? (await policiesRefusal(error, join(dir, 'policies'), 'corral gateway'));
        if (refusal) throw refusal;
        // The listen error's own words, and what to do about the common one.
        const cause = (error as { code?: unknown; cause?: { code?: unknown } }).cause;
        if (cause?.code === 'EADDRINUSE') throw new CliFailure(`${(error as Error).message} — choose another with --port [${(error as { code: string }).code}]`, EXIT.environment);
        throw error;
      }
      const policies = join(dir, 'policies');
      // A first gateway of one's own has none, and would deny every command without a word. Said before the listening
      // line, so that whoever waits for that line (and may stop the gateway at once) has it too.
      if (!opts.json && !holdsPolicies(policies)) process.stderr.write(`corral: no Cedar policies in ${policies}: every governed command is denied until a policy set is put there (it is taken up as it is saved) or activated from the console's Policies page\n`);
      if (opts.json) printJson({ url: running.url });
      else process.stdout.write(`corral gateway listening on ${running.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await running.close();
      await audit.close();
    });
  printsSecret(gateway, 'token', 'print the gateway token (from CORRAL_GATEWAY_TOKEN, else the state directory, generated on first use)', gatewayToken);
  printsSecret(gateway, 'metrics-token', 'print the token Prometheus reads GET /metrics with, and nothing else (from CORRAL_METRICS_TOKEN, else the state directory, generated on first use)', metricsToken);
}

/** `corral gateway NAME [--json]`: prints the secret `read` gives (the token, or {"token", "source"}). */
function printsSecret(gateway: Command, name: string, description: string, read: (dir: string) => StateToken): void {
  gateway
    .command(name)
    .description(description)
    .option('--json', 'print {"token", "source"}')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const dir = dirOf(command);
      await privateFolder(dir);
      const { token, source, created } = read(dir);
      // A mistyped --state-dir makes a token no gateway knows: said, as `CORRAL_GATEWAY_TOKEN="$(corral gateway token)"` would not show it.
      if (created !== undefined) process.stderr.write(`corral: made a new token in ${created}: no gateway has used this state directory yet, and one running on another state directory will not take it\n`);
      if (opts.json) return printJson({ token, source });
      process.stdout.write(`${token}\n`);
    });
}
