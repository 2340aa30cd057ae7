// The `command` label of the metrics about node commands: a command name is
// the caller's to choose, and every distinct label value is a time series
// Prometheus keeps, so only the commands the gateway's own rule table names
// are labels; anything else is `other`.
import { NAMED_COMMANDS, READ_ONLY_COMMANDS, RUN_COMMANDS } from '../exec/rules.ts';

/** Every value the `command` label takes. */
export const COMMAND_LABELS: readonly string[] = [...RUN_COMMANDS, ...NAMED_COMMANDS.keys(), ...READ_ONLY_COMMANDS, 'other'];

const GOVERNED: ReadonlySet<string> = new Set(COMMAND_LABELS);

/** `command` when the gateway has a rule for it, else `other`. */
export function commandLabel(command: string): string {
  return GOVERNED.has(command) ? command : 'other';
}
