// A command line is readable by every user of the host (`ps`, /proc/PID/cmdline).
// A secret given there is blanked out of it as soon as corral has read it:
// on Linux, Node's process.title overwrites the memory the kernel reads the
// command line from. It was visible until then, so the user is told to pass
// it in the environment instead, which only they (and root) can read.

export interface CommandLineSecret {
  /** The option that took it (`--token`). */
  option: string;
  /** Its value, when it was given on the command line. */
  value: string | undefined;
  /** The environment variable that takes it instead. */
  variable: string;
}

/** Hides the value of each of `secrets` given from this process's command line, and warns that it was there. */
export function hideCommandLineSecrets(secrets: readonly CommandLineSecret[]): void {
  const given = secrets.filter((s) => s.value !== undefined && s.value !== '');
  if (given.length === 0) return;
  process.title = process.argv.map((arg) => given.reduce((shown, s) => shown.replaceAll(s.value!, '***'), arg)).join(' ');
  for (const { option, variable } of given) process.stderr.write(`corral: warning: ${option} on the command line could be read by every user of this host while corral started; pass it in ${variable} instead\n`);
}
