// @corral/node: the per-machine node host.
export { corralAgentFor, parseAgentMap, requestingAgent } from './agent-map.ts';
export type { AgentMap } from './agent-map.ts';
export { NodeError } from './errors.ts';
export type { NodeErrorCode } from './errors.ts';
export { DEFAULT_CONTAINER_POLICY, DEVICE_FILE, NODE_COMMANDS, NodeHost, OUTPUT_CAP, RECEIPT_KEY_FILE, loadOrCreateDevice } from './host.ts';
export type { NodeHostOptions, NodeStatus } from './host.ts';
export { DEFAULT_LOCAL_POLICY, LOCAL_POLICY_FILE, LocalPolicy, allowlistSubjects, isTighter, localAllows, parseLocalPolicy, policyHash } from './local-policy.ts';
export type { Ask, LocalPolicyFile, Security } from './local-policy.ts';
export { lockStateDir, removeIfSame } from './state-lock.ts';
