// Policies: the active set, and a candidate's validation, test cases,
// replay over the decisions recorded in the audit log, and activation
// (compare-and-swap on the active hash; the active set is kept when the
// candidate does not validate).
import { corralSchema, parseCases, PolicyError, replayAsync, runCases } from '@corral/policy';
import { GatewayError } from '../errors.ts';
import { agentNames } from './activity.ts';
import { actingHuman } from './auth.ts';
import type { ApiContext } from './context.ts';
import { candidateIssues, compileCandidate, issueView, MAX_SET_BYTES, parseFiles, type Candidate, type PolicyFile } from './policy-control.ts';
import { auditHistory } from './replay-history.ts';
import { failure, reply, type Reply } from './respond.ts';
import type { Route } from './router.ts';

const BODY_LIMIT = MAX_SET_BYTES + 256 * 1024;
const DEFAULT_REPLAY = 10_000;
const MAX_REPLAY = 200_000;

type Issue = ReturnType<typeof issueView>;

/** The candidate, or the issues that keep it from validating. */
function compile(files: PolicyFile[]): Candidate | Issue[] {
  try {
    return compileCandidate(files);
  } catch (error) {
    const issues = candidateIssues(error);
    if (!issues) throw error;
    return issues.map(issueView);
  }
}

function entityKey(e: unknown): string {
  const uid = (e as { uid?: { type?: unknown; id?: unknown } } | null)?.uid;
  return `${String(uid?.type)}::${JSON.stringify(uid?.id)}`;
}

export function policyRoutes(api: ApiContext): Route[] {
  const control = () => {
    if (!api.policies) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'this gateway decides with a function, not a policy directory');
    return api.policies;
  };
  const withCandidate = async (body: () => Promise<Record<string, unknown>>, use: (candidate: Candidate, input: Record<string, unknown>) => Promise<Reply> | Reply): Promise<Reply> => {
    const input = await body();
    const compiled = compile(parseFiles(input.files));
    if (Array.isArray(compiled)) return reply(400, { error: 'invalid_policy', ok: false, issues: compiled });
    return use(compiled, input);
  };
  return [
    {
      method: 'GET',
      path: '/api/policies',
      access: 'policies.read',
      handle: () => reply(200, { ...control().refresh(), schema: corralSchema().text }),
    },
    {
      method: 'POST',
      path: '/api/policies/validate',
      access: 'policies.read',
      bodyLimit: BODY_LIMIT,
      handle: async ({ body }) => {
        const compiled = compile(parseFiles((await body()).files));
        return reply(200, Array.isArray(compiled) ? { ok: false, issues: compiled } : { ok: true, issues: [] });
      },
    },
    {
      method: 'POST',
      path: '/api/policies/test',
      access: 'policies.read',
      bodyLimit: BODY_LIMIT,
      handle: ({ body }) =>
        withCandidate(body, (candidate, input) => {
          if (input.cases !== undefined && typeof input.cases !== 'string') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'cases must be the text of a cases file');
          const text = (input.cases as string | undefined) ?? candidate.files.find((f) => f.name === 'cases.yaml')?.text ?? control().active().files.find((f) => f.name === 'cases.yaml')?.text;
          if (text === undefined) return failure(400, 'invalid_request', { message: 'no cases: send cases, or keep a cases.yaml in the set' });
          const cases = parseCases(text, (file) => {
            const found = candidate.files.find((f) => f.name === file);
            if (!found) throw new PolicyError('POLICY_CASES_INVALID', `the cases name ${file.slice(0, 100)}, which is not in the set`);
            try {
              return JSON.parse(found.text) as unknown;
            } catch (error) {
              throw new PolicyError('POLICY_CASES_INVALID', `${file.slice(0, 100)} is not JSON`, { cause: error });
            }
          });
          const own = candidate.files.find((f) => f.name === 'entities.json');
          const merged = new Map<string, unknown>();
          for (const e of [...(own ? (JSON.parse(own.text) as unknown[]) : []), ...cases.entities]) merged.set(entityKey(e), e);
          candidate.point.setEntities([...merged.values()]);
          const results = runCases(candidate.point, cases.cases).map((r) => ({ name: r.name, expected: r.expected.decision, actual: r.actual.decision, pass: r.passed, reason: r.actual.reason, policies: r.actual.policies }));
          return reply(200, { ok: results.every((r) => r.pass), issues: [], results });
        }),
    },
    {
      method: 'POST',
      path: '/api/policies/replay',
      access: 'policies.read',
      bodyLimit: BODY_LIMIT,
      handle: ({ body }) =>
        withCandidate(body, async (candidate, input) => {
          const limit = input.limit ?? DEFAULT_REPLAY;
          if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_REPLAY) throw new GatewayError('GATEWAY_PARAMS_INVALID', `limit must be a whole number from 1 to ${MAX_REPLAY}`);
          if (!api.audit) return reply(200, { replayed: 0, changed: [], refused: [] });
          const report = await replayAsync(candidate.point, auditHistory(api.audit.store, limit, agentNames(api)));
          const name = (p: unknown) => {
            const r = p as { type?: unknown; id?: unknown } | null;
            return `${String(r?.type)}::"${String(r?.id)}"`;
          };
          return reply(200, {
            replayed: report.total,
            changed: report.changed.map((c) => ({ seq: c.ref, at: c.at, action: c.request.action, principal: name(c.request.principal), resource: name(c.request.resource), was: c.before, now: c.after.decision, reason: c.after.reason })),
            refused: report.refused.map((r) => ({ seq: r.ref, code: r.code, message: r.message })),
          });
        }),
    },
    {
      method: 'POST',
      path: '/api/policies/activate',
      access: 'policies.write',
      bodyLimit: BODY_LIMIT,
      handle: ({ body, caller }) =>
        withCandidate(body, async (candidate, input) => {
          if (typeof input.baseHash !== 'string') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'baseHash must name the active hash the candidate was made from');
          const previous = control().active().hash;
          if (!control().activate(candidate, input.baseHash)) return failure(409, 'conflict', { message: 'the active policy set changed since baseHash' });
          await api.record({ actor: { kind: 'human', id: actingHuman(caller!) }, action: 'policy.activate', resource: { kind: 'policy-set', id: candidate.hash }, details: { previous, files: candidate.files.map((f) => f.name) } });
          return reply(200, { hash: candidate.hash });
        }),
    },
  ];
}
