/**
 * What `corral` exit codes mean. `corral run` passes a contained command's own
 * exit status through unchanged, whatever its number, as timeout(1) and env(1)
 * do; Corral's own outcomes use the codes those launchers use (124–127), the
 * 128+signal convention, and 1–3 as every corral command does. A command may
 * exit with any of them itself: `corral run --json` names whose status it is
 * (the summary's `exitReason`, or an error document for a failure of Corral's).
 */
export const EXIT = {
  ok: 0,
  /** A check failed: a verification found damage, a token is invalid, a policy test failed, a request was refused. */
  failed: 1,
  /** Bad usage or bad input (unknown flag, invalid policy file, a sequence number or id that names nothing, a name to create that is already taken). */
  usage: 2,
  /** The host lacks what is needed (bubblewrap missing, protection unenforceable, no audit log or key, a store that cannot be used, a policy set in force that decides nothing because its activation is not recorded). */
  environment: 3,
  /** Corral refused to start the command (policy or enforcement). */
  refused: 126,
  /** The command was not found inside the sandbox. */
  notFound: 127,
  /** The command ran past its wall-clock timeout and was killed with its whole tree. */
  timeout: 124,
  /** A resource limit (memory, processes, output) was hit and the command was stopped. */
  limit: 125,
  /** A fault of Corral's own, not of the input or the host (sysexits' EX_SOFTWARE): printed with its stack, to be reported. */
  internal: 70,
} as const;
