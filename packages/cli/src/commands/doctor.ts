import type { Command } from 'commander';
import { EXIT } from '../exit-codes.ts';
import { printJson } from '../output.ts';

/** `corral doctor`: what this host can enforce, in words or --json. */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('show what this host can enforce: namespaces, bubblewrap, seccomp, cgroups, Landlock')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const { hostCapabilities, REFUSED_SYSCALLS } = await import('@corral/contain');
      const caps = hostCapabilities();
      const canContain = caps.bwrap.available && caps.userNamespaces.available && caps.seccomp.available;
      if (opts.json) {
        printJson({ canContain, ...caps, seccompRefuses: REFUSED_SYSCALLS });
      } else {
        const rows: [string, { available: boolean; detail: string }][] = [
          ['bubblewrap', caps.bwrap],
          ['user namespaces', caps.userNamespaces],
          ['seccomp', caps.seccomp],
          ['cgroups', caps.cgroups],
          ['cgroup join', caps.cgroupJoin],
          ['rlimits', caps.rlimits],
          ['Landlock', caps.landlock],
          ['network forwarder', caps.forwarder],
          ['sandbox reaper', caps.reaper],
          ['tmpfs size', caps.tmpfsSize],
        ];
        for (const [name, cap] of rows) process.stdout.write(`${cap.available ? 'ok  ' : 'no  '} ${name.padEnd(17)} ${cap.detail}\n`);
        const limits = (['memory', 'pids', 'cpu'] as const).map((c) => `${c}: ${caps.cgroups.controllers[c] ? 'enforced' : 'NOT enforced'}`).join(', ');
        process.stdout.write(`\nlimits: ${limits}; timeout and output: enforced\n`);
        process.stdout.write(canContain ? 'Corral can contain commands on this host.\n' : 'Corral cannot contain commands on this host: fix the lines marked "no" above.\n');
      }
      if (!canContain) process.exitCode = EXIT.environment;
    });
}
