// Policies: the active set, and a candidate's validation, test cases,
// replay over the decisions recorded in the audit log, and activation
// (compare-and-swap on the active hash; the active set is kept when the
// candidate does not validate, and put back when the audit log cannot
// record the activation).
import { corralSchema, PolicyError, replayAsync, runCaseTextOffThread, validatePoliciesOffThread } from '@corral/policy';
import { GatewayError } from '../errors.ts';
import { agentNames } from './activity.ts';
import { actingHuman } from './auth.ts';
import type { ApiContext } from './context.ts';
import { candidateEntities, candidateIssues, cedarSources, compileCandidateOffThread, entitiesSource, issueView, MAX_SET_BYTES, parseFiles, RECORDED_POLICY_FILES, type Candidate, type PolicyFile } from './policy-control.ts';
import { standingGrants } from '../approvals/grants.ts';
import { auditHistory } from '../exec/recorded-decisions.ts';
import { failure, reply, type Reply } from './respond.ts';
import type { Route } from './router.ts';

const BODY_LIMIT = MAX_SET_BYTES + 256 * 1024;
const DEFAULT_REPLAY = 10_000;
const MAX_REPLAY = 200_000;

type Issue = ReturnType<typeof issueView>;

/** What `check` gives, or the issues that keep the candidate from validating. */
async function checked<T>(check: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; issues: Issue[] }> {
  try {
    return { ok: true, value: await check() };
  } catch (error) {
    const issues = candidateIssues(error);
    if (!issues) throw error;
    return { ok: false, issues: issues.map(issueView) };
  }
}

/** What an activation answers when it could be neither recorded nor undone. */
const UNRECORDED = 'the activation could not be recorded in the audit log, and the set it replaced could not be put back: the new set stays in the policy directory, unrecorded, and every gateway on this state directory denies every request, also after a restart, until a set is activated and recorded';

const invalid = (issues: Issue[]) => reply(400, { error: 'invalid_policy', ok: false, issues });

export function policyRoutes(api: ApiContext): Route[] {
  const control = () => {
    if (!api.policies) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'this gateway decides with a function, not a policy directory');
    return api.policies;
  };
  /** The identity store's entities, which a candidate's decisions read composed into its entities.json as the set in force does. */
  const added = () => api.policies?.identityEntities();
  // `urgent`: a candidate about to become active is checked before those that only wait to be validated.
  const withCandidate = async (files: PolicyFile[], use: (candidate: Candidate) => Promise<Reply> | Reply, urgent = false): Promise<Reply> => {
    const compiled = await checked(() => compileCandidateOffThread(files, { urgent, added: added() }));
    return compiled.ok ? use(compiled.value) : invalid(compiled.issues);
  };
  return [
    {
      method: 'GET',
      path: '/api/policies',
      access: 'policies.read',
      // A set another process activated is compiled off the gateway's thread (seconds over a large org chart); decisions wait for it meanwhile.
      handle: async () => reply(200, { ...(await control().refreshOffThread()), schema: corralSchema().text }),
    },
    {
      method: 'POST',
      path: '/api/policies/validate',
      access: 'policies.read',
      bodyLimit: BODY_LIMIT,
      handle: async ({ body }) => {
        const files = parseFiles((await body()).files);
        const valid = await checked(async () => validatePoliciesOffThread(cedarSources(files), candidateEntities(files, added())));
        return reply(200, valid.ok ? { ok: true, issues: [] } : { ok: false, issues: valid.issues });
      },
    },
    {
      method: 'POST',
      path: '/api/policies/test',
      access: 'policies.read',
      bodyLimit: BODY_LIMIT,
      handle: async ({ body }) => {
        const input = await body();
        const files = parseFiles(input.files);
        if (input.cases !== undefined && typeof input.cases !== 'string') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'cases must be the text of a cases file');
        const text = (input.cases as string | undefined) ?? files.find((f) => f.name === 'cases.yaml')?.text ?? control().active().files.find((f) => f.name === 'cases.yaml')?.text;
        if (text === undefined) {
          const valid = await checked(async () => validatePoliciesOffThread(cedarSources(files), candidateEntities(files, added())));
          return valid.ok ? failure(400, 'invalid_request', { message: 'no cases: send cases, or keep a cases.yaml in the set' }) : invalid(valid.issues);
        }
        // Read and run on one worker (YAML takes seconds over a large text, a minute over a megabyte of anchors); cases that do not read are reported after the set's own issues.
        const own = entitiesSource(files, added());
        let unreadable: PolicyError | undefined;
        const results = await checked(async () => {
          try {
            return await runCaseTextOffThread(cedarSources(files), text, { ...(own ? { entities: own } : {}), files: files.filter((f) => !f.name.endsWith('.cedar')).map((f) => ({ file: f.name, text: f.text })) });
          } catch (error) {
            if (!(error instanceof PolicyError) || error.code !== 'POLICY_CASES_INVALID') throw error;
            unreadable = error;
            return [];
          }
        });
        if (!results.ok) return invalid(results.issues);
        if (unreadable !== undefined) throw unreadable;
        const rows = results.value.map((r) => ({ name: r.name, expected: r.expected.decision, actual: r.actual.decision, pass: r.passed, reason: r.actual.reason, policies: r.actual.policies }));
        return reply(200, { ok: rows.every((r) => r.pass), issues: [], results: rows });
      },
    },
    {
      method: 'POST',
      path: '/api/policies/replay',
      access: 'policies.read',
      bodyLimit: BODY_LIMIT,
      handle: async ({ body }) => {
        // The request's own fields first: checking a candidate takes seconds of a worker's time.
        const input = await body();
        const files = parseFiles(input.files);
        const limit = input.limit ?? DEFAULT_REPLAY;
        if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_REPLAY) throw new GatewayError('GATEWAY_PARAMS_INVALID', `limit must be a whole number from 1 to ${MAX_REPLAY}`);
        return withCandidate(files, async (candidate) => {
          if (!api.audit) return reply(200, { replayed: 0, changed: [], refused: [] });
          // The candidate's standing grants answer asks as they would once it is in force.
          const report = await replayAsync(candidate.point, auditHistory(api.audit.store, agentNames(api), limit, standingGrants(candidate.files, api.approvals)));
          const name = (p: unknown) => {
            const r = p as { type?: unknown; id?: unknown } | null;
            return `${String(r?.type)}::"${String(r?.id)}"`;
          };
          return reply(200, {
            replayed: report.total,
            changed: report.changed.map((c) => ({ seq: c.ref, at: c.at, action: c.request.action, principal: name(c.request.principal), resource: name(c.request.resource), was: c.before, ...(c.beforeQuorum !== undefined ? { wasQuorum: c.beforeQuorum } : {}), now: c.after.decision, ...(c.after.quorum !== undefined ? { quorum: c.after.quorum } : {}), reason: c.after.reason })),
            refused: report.refused.map((r) => ({ seq: r.ref, code: r.code, message: r.message })),
          });
        });
      },
    },
    {
      method: 'POST',
      path: '/api/policies/activate',
      access: 'policies.write',
      bodyLimit: BODY_LIMIT,
      handle: async ({ body, caller, stillAllowed }) => {
        const set = control();
        const input = await body();
        const files = parseFiles(input.files);
        const baseHash = input.baseHash;
        if (typeof baseHash !== 'string') throw new GatewayError('GATEWAY_PARAMS_INVALID', 'baseHash must name the active hash the candidate was made from');
        return withCandidate(
          files,
          async (candidate) => {
            // Compiling took up to seconds: an admin demoted or signed out meanwhile activates nothing.
            stillAllowed();
            // A set that may allow more is never left deciding unrecorded: the one it replaced goes back, and when it cannot, nothing is decided until a set is activated.
            const outcome = await set.activateRecorded(candidate, baseHash, (replaced) =>
              api.record({ actor: { kind: 'human', id: actingHuman(caller!) }, action: 'policy.activate', resource: { kind: 'policy-set', id: candidate.hash }, details: { previous: replaced.hash, fileCount: candidate.files.length, files: candidate.files.slice(0, RECORDED_POLICY_FILES).map((f) => f.name) } }),
            );
            if (outcome === 'stale') return failure(409, 'conflict', { message: 'the active policy set changed since baseHash' });
            if (outcome === 'unrecorded') return failure(500, 'internal_error', { code: 'POLICY_NOT_LOADED', message: UNRECORDED });
            return reply(200, { hash: candidate.hash });
          },
          true,
        );
      },
    },
  ];
}
