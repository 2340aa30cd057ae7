// @corral/contain/runner: what running a policy file needs (load, plan, run) and
// nothing else. The main entry also brings the schema library, the YAML parser
// and the egress proxy's HTTP stack, which cost a one-shot `corral run` more
// than its sandbox does; here they load only when a run needs them.
export { ContainError } from './errors.ts';
export type { ContainErrorCode } from './errors.ts';
export { loadPolicyFile } from './policy/file.ts';
export type { LoadedPolicy, LoadPolicyOptions } from './policy/file.ts';
export { planSandbox, policyDigestOf } from './policy/plan.ts';
export type { SandboxPlan } from './policy/plan.ts';
export { Runner } from './runner.ts';
export type { ContainedProcess, RunOptions, RunResult, RunnerOptions } from './runner.ts';
