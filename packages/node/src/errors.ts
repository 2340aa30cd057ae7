/** The closed set of reasons the node refuses or fails. */
export type NodeErrorCode =
  /** The node's device key file cannot be read or made (its state directory), or is damaged. */
  | 'NODE_DEVICE_INVALID'
  /** The local policy file is unreadable or malformed. */
  | 'NODE_POLICY_INVALID'
  /** A remote change would loosen the local policy, or was based on an old version (baseHash). */
  | 'NODE_POLICY_CHANGE_REFUSED'
  /** Remote changes came faster than the node writes them (REMOTE_WRITES_BURST, then one per REMOTE_WRITE_INTERVAL_MS): try again later. */
  | 'NODE_POLICY_CHANGE_BUSY'
  /** The local policy refuses the command. */
  | 'NODE_RUN_DENIED'
  /** Containment is not available here, so nothing runs (never uncontained). */
  | 'NODE_CONTAINMENT_UNAVAILABLE'
  /** A request's params contradict each other (a command text that is not its argv). */
  | 'NODE_REQUEST_INVALID'
  /** Another node process holds the state directory (its lock names its pid): one device key serves one node at a time. */
  | 'NODE_STATE_DIR_UNAVAILABLE'
  /** Start-up options are missing or wrong. */
  | 'NODE_CONFIG_INVALID'
  /**
   * A request failed for a reason of the node's own (a file it cannot use, a
   * fault): the gateway is told only this code, never the error's cause
   * (which names the node's files); the node's log is told the cause. Its
   * message is the node's own words, naming no file ("the node's local policy
   * cannot be read"): the control plane's audit log is told it with a refused run.
   */
  | 'NODE_INTERNAL';

export class NodeError extends Error {
  override readonly name = 'NodeError';
  readonly code: NodeErrorCode;
  constructor(code: NodeErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}
