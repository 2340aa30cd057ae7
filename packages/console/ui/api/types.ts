// The shapes of docs/http-api.md, as the console reads them. The gateway is
// trusted to send these; the console still renders every field as text.

export type Role = 'admin' | 'approver' | 'auditor' | 'viewer';

export interface User {
  id: string;
  name: string;
  roles: Role[];
}

export interface Session {
  user: User;
  csrf: string;
}

export interface Providers {
  local: boolean;
  oidc: { name: string } | null;
}

export type Effect = 'allow' | 'deny' | 'ask';

export interface Actor {
  kind: string;
  id: string;
  name?: string;
  onBehalfOf?: { kind: string; id: string };
}

/** One audit record summarised for people. */
export interface ActivityEvent {
  seq: number;
  time: string;
  actor: Actor;
  action: string;
  resource: { kind: string; id: string };
  effect: Effect | null;
  policies: string[];
  approval: string | null;
  node: string | null;
  outcome: { status: string; exitCode?: number } | null;
  summary: string;
}

export interface Page<T> {
  items: T[];
  nextBefore: number | null;
}

export type ApprovalStatus = 'pending' | 'allowed' | 'denied' | 'expired' | 'used';

/** What the approver must see; every field optional because older gateways send fewer. */
export interface ApprovalAction {
  principal?: string;
  node?: string;
  nodeId?: string;
  command?: string;
  argv?: string[];
  cwd?: string;
  env?: string[] | Record<string, unknown>;
  commands?: unknown[];
  cedarAction?: string;
  /** A named command's checked params (`payment.create`: amount in cents, currency, payee). */
  params?: Record<string, unknown>;
  /** The Cedar context, where the gateway sends it apart from the params. */
  context?: Record<string, unknown>;
  policies?: string[];
  reason?: string;
  /** For a run: whether allowing it always makes a standing grant (false for one that runs code its argv does not show, unless it is a script bound by content); absent from older gateways. */
  allowAlways?: boolean;
  [key: string]: unknown;
}

export interface Approval {
  id: string;
  digest: string;
  status: ApprovalStatus;
  decision: 'allow-once' | 'allow-always' | 'deny' | null;
  quorum: number;
  approvers: string[];
  createdAtMs: number;
  expiresAtMs: number;
  resolvedAtMs: number | null;
  action: ApprovalAction;
  /** Why, as the approver whose decision settled it wrote it (null while pending, or when none was given): untrusted text, shown through visible(). */
  reason: string | null;
  /** The standing grant it made when allowed always: in the policy set (`made`), `withdrawn`, or none (null); absent from older gateways. */
  standingGrant?: 'made' | 'withdrawn' | null;
}

/**
 * What became of the standing grant of an approval withdrawn: its file taken
 * out of the policy set (`revoked`; `code` when the audit log refused the
 * revocation's record), or left in it (`failed`, `code` saying why), where it
 * counts for no decision until `corral approvals revoke ID` removes it.
 */
export interface GrantWithdrawal {
  id: string;
  status: 'revoked' | 'failed';
  code?: string;
}

/** An approval as a withdrawal answers it: denied, with what became of its grant when it had one (older gateways leave `grant` out). */
export interface WithdrawnApproval extends Approval {
  grant?: GrantWithdrawal;
}

/** The answer to revoking the standing grant (`approval-ID`) of an approval allowed always. */
export interface GrantRevoked {
  id: string;
  grant: string;
  outcome: 'revoked';
}

export interface AuditPage {
  records: ActivityEvent[];
  nextBefore: number | null;
  size: number;
}

export interface InclusionProof {
  leafIndex: number;
  treeSize: number;
  rootHash: string;
  path: string[];
  checkpoint: unknown;
  verified: boolean;
}

export interface AuditRecordDetail {
  record: Record<string, unknown>;
  proof: InclusionProof;
}

export interface AuditVerification {
  ok: boolean;
  records: number;
  checkpoints: number;
  firstBad: number | null;
  damage: string | null;
  message: string;
  verifiedAtMs: number;
  durationMs: number;
}

export interface Agent {
  id: string;
  name: string;
  process: string;
  owner: string;
  status: string;
  scopes: string[];
  profile?: string;
  createdAt: string;
  running: number;
}

export interface NodeEntry {
  nodeId: string;
  displayName: string;
  /** Another name it gives itself since it was paired: its word alone, never used to find it. */
  claimedDisplayName?: string;
  platform: string;
  /** `paired`, `pending` or `revoked`. */
  status?: string;
  connected: boolean;
  paired: boolean;
  commands: string[];
  /** Commands it declared that wait for an operator. */
  requestedCommands: string[];
  /** The agents it may ask the control plane for, serving another gateway (OpenClaw's). */
  agents: string[];
  remoteIp?: string;
  lastSeenMs: number | null;
}

/** A node asking to be paired, or a paired node asking for more commands (`paired`). */
export interface PairingRequest {
  requestId: string;
  nodeId: string;
  displayName: string;
  platform: string;
  /** The commands approving it grants. */
  commands: string[];
  /** What a paired node may be sent now. */
  approvedCommands: string[];
  paired: boolean;
  remoteIp: string | null;
  ts: number;
}

export interface PolicyFile {
  name: string;
  text: string;
}

export interface PolicyIssue {
  file: string;
  line?: number;
  column?: number;
  message: string;
}

/** A hand edit of the policy directory the gateway did not adopt: it goes on deciding with `PolicySet.hash`'s set (none: every request is denied). */
export interface RefusedEdit {
  /** Why, a POLICY_* code: POLICY_SET_INVALID, POLICY_ENTITIES_INVALID, POLICY_UNREADABLE. */
  code: string;
  /** The hash of the files refused; absent when they could not be read. */
  hash?: string;
  /** The gateway's sentence: what was refused and what is decided meanwhile. */
  message: string;
  /** Each issue by file (relative to the directory), line and column; empty when the files could not be read. */
  issues: PolicyIssue[];
}

export interface PolicySet {
  hash: string;
  files: PolicyFile[];
  schema: string;
  /** Present while the policy directory holds a hand edit that was refused. */
  refusedEdit?: RefusedEdit;
  /** The set in force was activated but neither recorded in the audit log nor put back: every request is denied until a set is activated and recorded. */
  unrecorded?: true;
}

export interface Validation {
  ok: boolean;
  issues: PolicyIssue[];
}

export interface TestRun extends Validation {
  results: Array<{ name: string; expected: string; actual: string; pass: boolean }>;
}

export interface Replay {
  replayed: number;
  changed: Array<{ seq: number; action: string; principal: string; was: string; now: string }>;
}

export interface Status {
  version: string;
  gateway: { url: string };
  nodes: { connected: number; paired: number; pending: number };
  agents: { active: number; suspended: number };
  approvals: { pending: number };
  audit: { size: number; checkpoint: { treeSize: number; rootHash: string; time: string } | null };
}

export interface ActivityFilter {
  agent?: string;
  node?: string;
  effect?: Effect | '';
}
