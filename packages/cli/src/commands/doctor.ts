import type { Command } from 'commander';
import { CliFailure } from '../output.ts';

export function registerDoctor(program: Command): void {
  program.command('doctor').action(() => {
    throw new CliFailure('doctor is being built', 1);
  });
}
