import { z } from 'zod';
import { parseEgressRule } from '../net/egress-rule.ts';
import { MAX_POLICY_PATHS, MAX_SANDBOX_LISTENERS, RUNTIME_PRESETS, SANDBOX_PROXY_PORT } from './defaults.ts';

/**
 * The container policy: what a contained command may touch. Default deny in
 * every dimension — an empty policy runs a command that sees no files beyond a
 * private /tmp, /proc and /dev basics, has no network, no display, and the
 * default resource limits below.
 *
 * The shape follows Microsoft MXC's v1 ContainerRequest (filesystem
 * readwrite/readonly/denied, network egress/ingress, ui, timeout, working
 * directory, exact environment) so one policy can target either backend.
 */

/** Control and formatting characters: a line break, a tab, a terminal escape, a zero-width space, a bidi mark. */
export const UNSEEN = /[\p{Cc}\p{Cf}]/u;

// A NUL byte ends a word for the kernel: what the sandbox got would differ from what the policy shows.
const text = z.string().refine((value) => !value.includes('\0'), 'cannot hold a NUL byte');

// Defaults are made afresh for each policy (a function): a default object given as a value is shallow-copied, so the
// arrays inside it would be shared by every policy that took it.
// The bound on a list's length is a check the published JSON Schema does not carry: planning weighs each path against
// the others (16,000 denied paths took 26 s, on the thread), and bubblewrap reads at most 9000 arguments in all, three
// a path, so no sandbox holds more.
/**
 * A path as the policy grants it, character for character: Corral expands `~` and `~/` (the invoking user's home)
 * and nothing else a shell would, so a glob, `~user` or `$VARIABLE` would name a path no one meant, and a deny of
 * it would hide nothing. A control or formatting character (a line break, a zero-width space, a bidi override)
 * makes the path shown differ from the path granted.
 */
const path = text.min(1, 'a path cannot be empty').superRefine((value, ctx) => {
  const refuse = (message: string) => ctx.addIssue({ code: 'custom', message });
  if (UNSEEN.test(value.replaceAll('\0', ''))) refuse('cannot hold a control or invisible character (a line break, a tab, a zero-width space, a bidi mark); write the path as it is on disk');
  if (/[*?]/.test(value)) refuse('globs (* and ?) are not expanded: name each file or folder, or the folder that holds them');
  if (/^~[^/]/.test(value)) refuse("only '~' and '~/' are read as your home ('~user' is not): write the full path");
  if (/\$(?:[A-Za-z_{])/.test(value)) refuse('$VARIABLES are not expanded: write the path itself');
});

const pathList = z
  .array(path)
  .superRefine((paths, ctx) => {
    if (paths.length > MAX_POLICY_PATHS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_POLICY_PATHS} paths, not ${paths.length}: grant the folders that hold them` });
  })
  .default([]);

const variableName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name is letters, digits and _');

const egressRule = z.string().superRefine((value, ctx) => {
  // Refused before the rule is read, whose sentences quote it as written.
  if (UNSEEN.test(value.trim())) {
    ctx.addIssue({ code: 'custom', message: 'cannot hold a control or invisible character; write HOST:PORT' });
    return;
  }
  const parsed = parseEgressRule(value);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

const port = z.int().min(1).max(65535);

/**
 * Ingress the sandbox can publish, each port once: no more ports than its launcher listens on (less the egress
 * proxy's, when egress is granted), no port inside or host port (other than 0, any free one) listed twice, and
 * not the proxy's own port inside when egress is granted, which would lead the host's clients to the sandbox's egress.
 * (A check the published JSON Schema does not carry.)
 */
function publishable(network: { egress: unknown; ingress: { port: number; hostPort: number }[] }, ctx: z.RefinementCtx): void {
  const egress = network.egress !== 'none';
  const room = MAX_SANDBOX_LISTENERS - (egress ? 1 : 0);
  if (network.ingress.length > room) {
    const why = egress ? `, ${MAX_SANDBOX_LISTENERS} less the egress proxy's,` : '';
    ctx.addIssue({ code: 'custom', path: ['ingress'], message: `at most ${room} ports can be published${why} not ${network.ingress.length}` });
    return;
  }
  const ports = new Set<number>();
  const hostPorts = new Set<number>();
  network.ingress.forEach(({ port, hostPort }, i) => {
    if (ports.has(port)) ctx.addIssue({ code: 'custom', path: ['ingress', i, 'port'], message: `port ${port} is published already; list each port once` });
    else if (egress && port === SANDBOX_PROXY_PORT) ctx.addIssue({ code: 'custom', path: ['ingress', i, 'port'], message: `port ${port} is where the sandbox reaches its egress proxy: published, it would lead host clients out through the sandbox's egress; choose another port` });
    if (hostPort !== 0 && hostPorts.has(hostPort)) ctx.addIssue({ code: 'custom', path: ['ingress', i, 'hostPort'], message: `host port ${hostPort} is taken by an earlier entry; list each host port once, or 0 for any free one` });
    ports.add(port);
    hostPorts.add(hostPort);
  });
}

export const ContainerPolicySchema = z
  .strictObject({
    $schema: z.string().optional().describe('Editors may point this at the published JSON Schema.'),
    version: z.literal(1).default(1).describe('Policy format version.'),
    runtime: z
      .array(z.enum(RUNTIME_PRESETS))
      .default([])
      .describe('Named presets granting the read-only system paths a shell, Node or Python needs.'),
    filesystem: z
      .strictObject({
        readwrite: pathList.describe('Paths the command may read and write.'),
        readonly: pathList.describe('Paths the command may read.'),
        denied: pathList.describe('Paths hidden even inside a granted tree; a deny always wins.'),
      })
      .default(() => ({ readwrite: [], readonly: [], denied: [] })),
    network: z
      .strictObject({
        egress: z
          .union([
            z.literal('none'),
            z.strictObject({
              allow: z.array(egressRule).min(1, 'list at least one HOST:PORT, or write egress: none'),
            }),
          ])
          .default('none')
          .describe("'none', or { allow: ['api.example.com:443', '*.corp.example:443', '10.0.0.0/8:5432'] }"),
        ingress: z
          .array(
            z.strictObject({
              port: port.describe('The port the contained server listens on (inside, on its loopback).'),
              hostPort: z.int().min(0).max(65535).default(0).describe('Host loopback port to publish on; 0 picks a free one.'),
            }),
          )
          .default([]),
      })
      .superRefine(publishable)
      .default(() => ({ egress: 'none' as const, ingress: [] })),
    process: z
      .strictObject({
        maxProcesses: z.int().min(1).max(65536).optional(),
        memoryMB: z.int().min(8).max(1_048_576).optional(),
        cpus: z.number().min(0.01).max(1024).optional(),
        timeoutMs: z.int().min(1).max(7 * 24 * 3600 * 1000).optional(),
        maxOutputBytes: z.int().min(0).max(2 ** 40).optional(),
      })
      .default({})
      .describe('Resource limits. A limit written here must be enforced (or the command refused); an omitted one gets its default, applied where the host can.'),
    ui: z
      .strictObject({
        display: z.boolean().default(false).describe("Reach the invoking user's X11/Wayland display."),
        clipboard: z.enum(['none', 'read', 'write', 'all']).default('none'),
        inputInjection: z.boolean().default(false),
      })
      .default({ display: false, clipboard: 'none', inputInjection: false }),
    environment: z
      .strictObject({
        set: z.record(variableName, text).default({}),
        pass: z.array(variableName).default([]),
      })
      .default(() => ({ set: {}, pass: [] })),
    workingDirectory: path.optional(),
    onUnenforceable: z
      .enum(['refuse', 'warn'])
      .default('refuse')
      .describe('What to do when the host cannot enforce a requested protection: refuse to start (default) or warn and go on.'),
  })
  .describe('Corral container policy');

/** A policy as written in a file (every field optional). */
export type ContainerPolicyInput = z.input<typeof ContainerPolicySchema>;
/** A validated policy with every default filled in. */
export type ContainerPolicy = z.output<typeof ContainerPolicySchema>;

/** The JSON Schema published beside the package (schema/container-policy.schema.json). */
export function containerPolicyJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ContainerPolicySchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
  return { $id: 'urn:corral:container-policy:v1', title: 'Corral container policy', ...schema };
}
