/** The closed set of reasons the contain package refuses or fails. */
export type ContainErrorCode =
  /** The policy file could not be read (missing, unreadable, not text). */
  | 'CONTAIN_POLICY_UNREADABLE'
  /** The policy parsed but broke the schema; `issues` lists every problem. */
  | 'CONTAIN_POLICY_INVALID'
  /** A granted path does not exist or cannot be resolved on this host, or a policy path leads through a symlink a sandbox could have planted (a denied path's symlink loop too); or a denied file, or a file in a denied folder, has other names (hard links) its mask would not cover. */
  | 'CONTAIN_PATH_UNRESOLVABLE'
  /** A path the plan grants is gone, or leads elsewhere through a symlink made since it was planned: the sandbox was not started (plan again). */
  | 'CONTAIN_PATH_CHANGED'
  /**
   * The policy asks for a protection this host cannot enforce (and did not say `onUnenforceable: warn`): a limit,
   * a sandbox too large for bubblewrap, a denied path whose stand-in cannot be made, a denied folder too large or
   * unreadable to be checked for hard links, a denied path that cannot be resolved where the sandbox could clear
   * what stops it (a file where a folder should be) and make it; `issues` lists a plan's.
   */
  | 'CONTAIN_UNENFORCEABLE'
  /** A tool the backend needs (bubblewrap, a C compiler for its forwarder) is missing. */
  | 'CONTAIN_BACKEND_UNAVAILABLE'
  /** The sandbox could not be started. */
  | 'CONTAIN_SPAWN_FAILED'
  /** The command line given to run is unusable (empty argv, …). */
  | 'CONTAIN_BAD_COMMAND'
  /** The runner was used after close(). */
  | 'CONTAIN_CLOSED'
  /** keepWarm was asked for more warm sandboxes than a runner keeps (per plan, or plans in all). */
  | 'CONTAIN_WARM_LIMIT'
  /** The egress proxy could not be set up or could not open a channel (bad option, socket path too long, listen failed). */
  | 'CONTAIN_PROXY_FAILED'
  /** A value given as an IP address is not one. */
  | 'CONTAIN_BAD_ADDRESS'
  /** A seccomp BPF program could not be assembled (a bad label, jump or operand: a bug in Corral, never the user's input). */
  | 'CONTAIN_SECCOMP_INVALID';

/** One problem in a policy document, located for a human. */
export interface PolicyIssue {
  /** The policy file, or '<inline>' for a policy given as an object. */
  file: string;
  /** 1-based line in the file, when the document has one for this field. */
  line?: number;
  /** 1-based column on that line, when the YAML library knows where the field or the problem starts. */
  column?: number;
  /** The field path in dotted form, e.g. `filesystem.readwrite[0]`. */
  field: string;
  /** What was wrong and what is allowed. */
  message: string;
}

export class ContainError extends Error {
  override readonly name = 'ContainError';
  readonly code: ContainErrorCode;
  readonly issues: readonly PolicyIssue[];

  constructor(code: ContainErrorCode, message: string, options: { cause?: unknown; issues?: PolicyIssue[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

/** Formats an issue the way compilers do: `file:line: field: message`. */
export function formatIssue(issue: PolicyIssue): string {
  const where = issue.line === undefined ? issue.file : issue.column === undefined ? `${issue.file}:${issue.line}` : `${issue.file}:${issue.line}:${issue.column}`;
  return `${where}: ${issue.field || '(top level)'}: ${issue.message}`;
}
