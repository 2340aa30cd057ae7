import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The state directory every command shares: `--state-dir`, else
 * `CORRAL_STATE_DIR`, else `~/.corral`.
 */
export function stateDir(option: string | undefined): string {
  const chosen = option ?? process.env.CORRAL_STATE_DIR;
  return chosen ? resolve(chosen) : join(homedir(), '.corral');
}
