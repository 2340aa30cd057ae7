/** The closed set of reasons the policy package refuses or fails. */
export type PolicyErrorCode =
  /** A policy directory, file or cases file could not be read. */
  | 'POLICY_UNREADABLE'
  /** A policy set was refused: Cedar syntax, schema validation, a bad annotation, a duplicate id, or text that is not UTF-8. `issues` lists each, with file and line. */
  | 'POLICY_SET_INVALID'
  /** The Cedar schema itself does not parse. */
  | 'POLICY_SCHEMA_INVALID'
  /** A decision request is malformed or does not fit the schema (unknown action, wrong principal type, bad context). */
  | 'POLICY_REQUEST_INVALID'
  /** Entity data is malformed (not an array, duplicate uid, bad value) or does not fit the schema. */
  | 'POLICY_ENTITIES_INVALID'
  /** A cases file for `policy test` is malformed. */
  | 'POLICY_CASES_INVALID'
  /** The decision point was asked for a decision before any policy set was loaded. */
  | 'POLICY_NOT_LOADED'
  /** cedar-wasm failed on a request Corral had already validated, or a set's check failed, ran out of memory or time on its worker. */
  | 'POLICY_ENGINE_FAILED'
  /** Too many policy sets wait to be checked; try again shortly. */
  | 'POLICY_ENGINE_BUSY';

/** One problem in a policy set, located for a human. */
export interface PolicyIssue {
  /** The file, relative to the policy directory (or '<inline>'). */
  file: string;
  /** 1-based line, when known. */
  line?: number;
  /** 1-based column, when known. */
  column?: number;
  /** The policy the problem belongs to, when known. */
  policyId?: string;
  /** What is wrong, in Cedar's words or Corral's. */
  message: string;
}

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly code: PolicyErrorCode;
  readonly issues: readonly PolicyIssue[];

  constructor(code: PolicyErrorCode, message: string, options: { cause?: unknown; issues?: PolicyIssue[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

/** Formats an issue the way compilers do: `file:line:column: [policy] message`. */
export function formatPolicyIssue(issue: PolicyIssue): string {
  let where = issue.file;
  if (issue.line !== undefined) where += `:${issue.line}`;
  if (issue.line !== undefined && issue.column !== undefined) where += `:${issue.column}`;
  const policy = issue.policyId === undefined ? '' : ` [${issue.policyId}]`;
  return `${where}:${policy} ${issue.message}`;
}
