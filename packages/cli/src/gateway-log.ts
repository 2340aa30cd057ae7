// The gateway's log as JSON lines (pino): refusals and faults of its
// connections and requests, and of its policy set, each with its code. What
// the gateway hands its log never holds a token, a key or policy text.
// `corral gateway` writes it to stderr; `corral up`, whose stderr shows its
// progress, to a file in the state directory.
import { pino, type DestinationStream, type Level } from 'pino';
import type { GatewayLogLine } from '@corral/gateway';
import { CliFailure } from './output.ts';
import { EXIT } from './exit-codes.ts';

/** How loud each event is: a connection coming and going is routine; a refusal is worth a look; a handler's fault or an unrecorded policy set is not right. */
const LEVELS: Record<GatewayLogLine['event'], Level> = {
  connected: 'info',
  closed: 'info',
  refused: 'warn',
  'protocol-error': 'warn',
  'policy-edit-refused': 'warn',
  'policy-watch-failed': 'warn',
  'traces-export-failed': 'warn',
  'handler-failed': 'error',
  'policy-activation-unrecorded': 'error',
  'policy-edit-unrecorded': 'error',
};

/** The levels `--log-level` takes, quietest last. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `--log-level` checked: a CliFailure (exit 2) naming the levels otherwise. */
export function logLevelOption(text: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  throw new CliFailure(`--log-level must be one of ${LOG_LEVELS.join(', ')}`, EXIT.usage);
}

/** A gateway log writing each line to `destination` (synchronous: nothing is lost when the process ends) from `level` up. */
export function gatewayLog(destination: DestinationStream, level: LogLevel = 'info'): (line: GatewayLogLine) => void {
  const logger = pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return (line) => logger[LEVELS[line.event]]({ ...line }, line.event);
}

/** Where `corral gateway` writes: stderr, a line at a time, so nothing is lost when it stops. */
export function stderrDestination(): DestinationStream {
  return pino.destination({ dest: 2, sync: true });
}

/** A log file, appended to, readable by its owner alone (it names devices and addresses). */
export function fileDestination(path: string): DestinationStream {
  return pino.destination({ dest: path, sync: true, append: true, mode: 0o600 });
}
