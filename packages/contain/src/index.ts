export { ContainError, formatIssue } from './errors.ts';
export type { ContainErrorCode, PolicyIssue } from './errors.ts';
export { ContainerPolicySchema, containerPolicyJsonSchema, PROCESS_DEFAULTS, RUNTIME_PRESETS } from './policy/schema.ts';
export type { ContainerPolicy, ContainerPolicyInput } from './policy/schema.ts';
export { loadPolicyFile, parsePolicyText, validatePolicy } from './policy/load.ts';
export type { LoadedPolicy } from './policy/load.ts';
export { REFUSED_SYSCALLS, SECCOMP_RULES, seccompProgram } from './linux/seccomp.ts';
export type { SeccompArch, SeccompResult, SeccompRule } from './linux/seccomp.ts';
