// The policy's named presets and default limits: plain values, kept apart from the
// schema so that planning and running a policy never load the validator.

export const RUNTIME_PRESETS = ['shell', 'node', 'python'] as const;

/** The limits a policy gets for each resource it leaves unset (applied where the host can enforce them). */
export const PROCESS_DEFAULTS = {
  maxProcesses: 64,
  memoryMB: 512,
  cpus: 1,
  timeoutMs: 60_000,
  maxOutputBytes: 16 * 1024 * 1024,
} as const;
