import type { Command } from 'commander';
import { CliFailure } from '../output.ts';

export function registerRun(program: Command): void {
  program.command('run').action(() => {
    throw new CliFailure('run is being built', 1);
  });
}
