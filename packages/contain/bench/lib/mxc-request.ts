// Translates a Corral sandbox plan into the closest MXC v1 `ContainerRequest`
// (bubblewrap backend), for the benchmarks that measure Corral against MXC.
import type { ContainerRequest } from '@microsoft/mxc-sdk/v1';
import { within, type SandboxPlan } from '../../src/policy/plan.ts';

/**
 * Folders MXC's bubblewrap backend binds read-only by itself (seen in the bwrap
 * argv it builds): a Corral runtime preset path below one of these needs no grant.
 */
export const MXC_DEFAULT_READONLY = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr/bin', '/usr/sbin', '/usr/lib', '/usr/lib32', '/usr/lib64', '/usr/libexec', '/usr/share', '/etc'];

/**
 * The MXC request for running `argv` under `plan`: the plan's read-write,
 * read-only and denied paths (preset paths MXC already binds left out), egress
 * denied, or — when the plan grants egress — denied but for `networkProxy`
 * (MXC has no domain policy of its own: a proxy has to decide), no ingress,
 * UI disabled, the plan's exact environment, working directory and timeout.
 */
export function mxcRequestFor(plan: SandboxPlan, argv: readonly string[], networkProxy?: string): ContainerRequest {
  const readwritePaths: string[] = [];
  const readonlyPaths: string[] = [];
  const deniedPaths: string[] = [];
  for (const m of plan.mounts) {
    if (m.kind === 'rw') readwritePaths.push(m.path);
    else if (m.kind === 'ro' && !MXC_DEFAULT_READONLY.some((d) => within(m.path, d))) readonlyPaths.push(m.path);
    else if (m.kind === 'deny') deniedPaths.push(m.path);
  }
  return {
    command: argv.map(shellQuote).join(' '),
    containment: { type: 'bubblewrap' },
    filesystem: { readwritePaths, readonlyPaths, deniedPaths },
    network: {
      egress: { default: 'deny' },
      ingress: { default: 'deny', hostLoopback: 'deny' },
      ...(networkProxy ? { runtimeConfig: { networkProxy } } : {}),
    },
    ui: { disable: true, clipboard: 'none', allowInputInjection: false },
    environment: { ...plan.env },
    inheritDefaultEnvironment: false,
    workingDirectory: plan.cwd,
    timeoutMs: plan.limits.timeoutMs.value,
  };
}

/** MXC takes one command line (its bubblewrap backend runs it with `sh -c`): quote each word for sh. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
