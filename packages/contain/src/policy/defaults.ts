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

/** Loopback port inside the sandbox where tools find the egress proxy (HTTP_PROXY), when the policy grants egress. */
export const SANDBOX_PROXY_PORT = 3128;

/**
 * The most ports the sandbox's launcher (native/corral-forward.c, MAX_LISTENERS) listens on: the
 * egress proxy's port, when egress is granted, and each ingress port.
 */
export const MAX_SANDBOX_LISTENERS = 64;

/** The most paths one list of a policy's `filesystem` names. */
export const MAX_POLICY_PATHS = 4096;
