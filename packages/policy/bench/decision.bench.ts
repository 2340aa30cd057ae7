// Decision latency through Corral's decision point at 10, 100 and 1,000
// policies with realistic entities, beside a naive cedar-wasm call that is
// handed the whole (pre-parsed) policy set, in the same run, interleaved.
// The naive call gets only the entities the request touches (principal,
// resource, their ancestors, the actions): handing it every entity costs far
// more (measured once, below) and would flatter Corral. Corral is then also
// measured alone, without the naive call's garbage between its samples.
// Every request is checked: both must agree.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { distribution, ms, report, sampleInterleaved } from '../../../bench/lib/stats.ts';
import { DecisionPoint, loadPolicies } from '../src/index.ts';

/** A deterministic pseudo-random sequence, so every run measures the same sets. */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

interface World {
  texts: string[];
  entities: unknown[];
  requests: { principal: { type: string; id: string }; action: string; resource: { type: string; id: string }; context: Record<string, unknown> }[];
}

/** A company with `size` policies: one process per ~8 policies, 3 agents each, their records, hosts and commands, plus global guardrails. */
function world(size: number): World {
  const random = rng(size * 7919);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const processes = Math.max(1, Math.floor(size / 8));
  const texts: string[] = [
    '@id("no-ssh") forbid(principal, action in Action::"file.access", resource) when { resource.path like "*/.ssh/*" };',
    '@id("no-inactive") forbid(principal is Agent, action, resource) when { principal.status != "active" };',
    '@id("restricted-tools") forbid(principal is Agent, action == Action::"tool.call", resource) when { context.classification == "restricted" };',
    '@id("approvers") permit(principal is Human, action == Action::"approval.decide", resource) when { principal.roles.contains("approver") };',
  ];
  const entities: unknown[] = [
    { uid: { type: 'Corral', id: 'corral' }, attrs: {}, parents: [] },
    { uid: { type: 'Human', id: 'carol@example.com' }, attrs: { email: 'carol@example.com', roles: ['approver'] }, parents: [] },
    { uid: { type: 'Tool', id: 'summarise' }, attrs: { name: 'summarise', server: 'docs' }, parents: [] },
  ];
  const requests: World['requests'] = [];
  for (let p = 0; texts.length < size; p++) {
    const proc = `proc-${p % processes}`;
    const n = p % processes;
    const kind = Math.floor(p / processes) % 8;
    const limit = 10_000 * (1 + (n % 50));
    switch (kind) {
      case 0: texts.push(`@id("${proc}-read-${p}") permit(principal in Group::"${proc}", action in [Action::"record.read", Action::"record.summarise"], resource in Collection::"${proc}-records");`); break;
      case 1: texts.push(`@id("${proc}-pay-${p}") permit(principal in Group::"${proc}", action == Action::"payment.create", resource in Collection::"${proc}-payments") when { context has amount && context.amount <= ${limit} };`); break;
      case 2: texts.push(`@id("${proc}-pay-ask-${p}") @approval("required") permit(principal in Group::"${proc}", action == Action::"payment.create", resource in Collection::"${proc}-payments") when { context has amount && context.amount > ${limit} && context.amount <= ${limit * 10} };`); break;
      case 3: texts.push(`@id("${proc}-pay-two-${p}") @approval("required") @quorum("2") permit(principal in Group::"${proc}", action == Action::"payment.create", resource in Collection::"${proc}-payments") when { context has amount && context.amount > ${limit * 10} };`); break;
      case 4: texts.push(`@id("${proc}-net-${p}") permit(principal in Group::"${proc}", action == Action::"network.connect", resource == Host::"api-${n}.example.com") when { resource.port == 443 };`); break;
      case 5: texts.push(`@id("${proc}-git-${p}") permit(principal in Group::"${proc}", action == Action::"system.run", resource) when { resource.name == "/usr/bin/git" && context.time.hour >= 6 && context.time.hour < 22 };`); break;
      case 6: texts.push(`@id("${proc}-files-${p}") permit(principal in Group::"${proc}", action == Action::"file.read", resource) when { resource.path like "/srv/${proc}/*" && resource.classification != "restricted" };`); break;
      default: texts.push(`@id("${proc}-tool-${p}") permit(principal == Agent::"${proc}-bot-0", action == Action::"tool.call", resource == Tool::"summarise") unless { context.classification == "confidential" };`); break;
    }
  }
  for (let n = 0; n < processes; n++) {
    const proc = `proc-${n}`;
    entities.push({ uid: { type: 'Group', id: proc }, attrs: { name: proc }, parents: [] });
    entities.push({ uid: { type: 'Collection', id: `${proc}-records` }, attrs: {}, parents: [] }, { uid: { type: 'Collection', id: `${proc}-payments` }, attrs: {}, parents: [] });
    entities.push({ uid: { type: 'Record', id: `${proc}-inv` }, attrs: { kind: 'invoice', classification: 'confidential' }, parents: [{ type: 'Collection', id: `${proc}-records` }] });
    entities.push({ uid: { type: 'Record', id: `${proc}-pay` }, attrs: { kind: 'payment', classification: 'internal' }, parents: [{ type: 'Collection', id: `${proc}-payments` }] });
    entities.push({ uid: { type: 'Host', id: `api-${n}.example.com` }, attrs: { name: `api-${n}.example.com`, port: 443 }, parents: [] });
    entities.push({ uid: { type: 'Node', id: `node-${n}` }, attrs: { platform: 'linux', paired: true }, parents: [] });
    entities.push({ uid: { type: 'Command', id: `node-${n}:/usr/bin/git` }, attrs: { name: '/usr/bin/git' }, parents: [{ type: 'Node', id: `node-${n}` }] });
    entities.push({ uid: { type: 'File', id: `/srv/${proc}/in.pdf` }, attrs: { path: `/srv/${proc}/in.pdf`, classification: 'internal' }, parents: [{ type: 'Node', id: `node-${n}` }] });
    entities.push({ uid: { type: 'File', id: `/home/${proc}/.ssh/id_ed25519` }, attrs: { path: `/home/${proc}/.ssh/id_ed25519`, classification: 'restricted' }, parents: [{ type: 'Node', id: `node-${n}` }] });
    for (let b = 0; b < 3; b++) {
      entities.push({ uid: { type: 'Agent', id: `${proc}-bot-${b}` }, attrs: { owner: `owner-${n}@example.com`, process: proc, status: b === 2 ? 'suspended' : 'active', scopes: ['records:read'] }, parents: [{ type: 'Group', id: proc }] });
    }
  }
  const time = { epoch: 1_790_000_000, hour: 10, weekday: 3 };
  const approval = { state: 'none', approvers: 0 };
  for (let i = 0; i < 200; i++) {
    const n = Math.floor(random() * processes);
    const proc = `proc-${n}`;
    const agent = { type: 'Agent', id: `${proc}-bot-${pick([0, 0, 1, 2])}` };
    const base = { classification: 'internal', time, approval };
    requests.push(pick([
      { principal: agent, action: 'record.read', resource: { type: 'Record', id: `${proc}-inv` }, context: base },
      { principal: agent, action: 'payment.create', resource: { type: 'Record', id: `${proc}-pay` }, context: { ...base, amount: Math.floor(random() * 2_000_000) } },
      { principal: agent, action: 'network.connect', resource: { type: 'Host', id: `api-${n}.example.com` }, context: base },
      { principal: agent, action: 'system.run', resource: { type: 'Command', id: `node-${n}:/usr/bin/git` }, context: base },
      { principal: agent, action: 'file.read', resource: { type: 'File', id: pick([`/srv/${proc}/in.pdf`, `/home/${proc}/.ssh/id_ed25519`]) }, context: base },
      { principal: agent, action: 'tool.call', resource: { type: 'Tool', id: 'summarise' }, context: { ...base, classification: pick(['internal', 'restricted', 'confidential']) } },
      { principal: { type: 'Human', id: 'carol@example.com' }, action: 'approval.decide', resource: { type: 'Corral', id: 'corral' }, context: base },
    ]));
  }
  return { texts, entities, requests };
}

const figures: Record<string, unknown> = {};
const lines: string[] = [];
for (const size of [10, 100, 1000]) {
  const w = world(size);
  const set = loadPolicies([{ file: `bench-${size}.cedar`, text: w.texts.join('\n') }]);
  const pdp = new DecisionPoint();
  pdp.load(set);
  pdp.setEntities(w.entities);
  const naiveId = `bench-naive-${size}`;
  const staticPolicies: Record<string, string> = {};
  for (const p of set.policies) staticPolicies[p.id] = p.text;
  const pre = cedar.preparsePolicySet(naiveId, { staticPolicies });
  if (pre.type !== 'success') throw new Error('cedar-wasm refused the bench set');
  const all = pdp.entities.json as readonly { uid: { type: string; id: string } }[];
  const byKey = new Map(all.map((e) => [`${e.uid.type}::${JSON.stringify(e.uid.id)}`, e]));
  const actions = all.filter((e) => e.uid.type === 'Action');
  /** The entities one request touches, as a careful caller of cedar-wasm would pass them. */
  const touched = w.requests.map((r) => {
    const keys = new Set<string>();
    for (const uid of [r.principal, r.resource]) {
      const key = `${uid.type}::${JSON.stringify(uid.id)}`;
      keys.add(key);
      for (const a of pdp.entities.ancestors(key)) keys.add(a);
    }
    return [...actions, ...[...keys].map((k) => byKey.get(k)).filter((e) => e !== undefined)];
  });

  let disagreements = 0;
  let evaluated = 0;
  let compiled = 0;
  let i = 0;
  let j = 0;
  const runs = size === 1000 ? 1500 : 3000;
  const samples = await sampleInterleaved(
    {
      corral: async () => {
        const r = w.requests[i++ % w.requests.length]!;
        const d = pdp.decide(r);
        evaluated += d.evaluated;
        if (d.engine === 'compiled') compiled++;
      },
      naive: async () => {
        const k = j++ % w.requests.length;
        const r = w.requests[k]!;
        const a = cedar.statefulIsAuthorized({ principal: r.principal, action: { type: 'Action', id: r.action }, resource: r.resource, context: r.context as never, preparsedPolicySetId: naiveId, entities: touched[k] as never });
        if (a.type !== 'success') throw new Error('cedar-wasm failed');
      },
    },
    runs,
    200,
  );
  let everyEntityMs = 0;
  for (const [k, r] of w.requests.entries()) {
    const d = pdp.decide(r);
    const t0 = performance.now();
    const a = cedar.statefulIsAuthorized({ principal: r.principal, action: { type: 'Action', id: r.action }, resource: r.resource, context: r.context as never, preparsedPolicySetId: naiveId, entities: (k < 20 ? all : touched[k]) as never });
    if (k < 20) everyEntityMs += performance.now() - t0;
    if (a.type !== 'success') throw new Error('cedar-wasm failed');
    const cedarSays = a.response.decision === 'allow' ? 'permit' : 'no';
    const corralSays = d.decision === 'deny' ? 'no' : 'permit';
    if (cedarSays !== corralSays) disagreements++;
  }
  const corral = distribution(samples.corral!);
  const naive = distribution(samples.naive!);
  const calls = runs + 200;
  let m = 0;
  const alone = distribution(
    (await sampleInterleaved({ corral: async () => pdp.decide(w.requests[m++ % w.requests.length]!) }, 20_000, 2_000)).corral!,
  );
  // Control: the same interleaving with a pure-JavaScript busy loop as long as
  // the naive call's p50 in its place. If Corral slows down as much here, the
  // interleaved figure measures what the machine does after a long burst
  // (scheduling, caches), not the decision itself.
  let c = 0;
  const burst = naive.p50;
  const control = distribution(
    (
      await sampleInterleaved(
        {
          corral: async () => pdp.decide(w.requests[c++ % w.requests.length]!),
          busy: async () => {
            const t0 = performance.now();
            while (performance.now() - t0 < burst);
          },
        },
        Math.min(runs, 1000),
        50,
      )
    ).corral!,
  );
  figures[`policies_${size}`] = {
    corral_ms: corral,
    corral_alone_ms: alone,
    corral_after_js_busy_loop_ms: control,
    naive_cedar_wasm_ms: naive,
    naive_with_every_entity_mean_ms: everyEntityMs / 20,
    speedup_p50: naive.p50 / corral.p50,
    mean_policies_evaluated: evaluated / calls,
    compiled_share: compiled / calls,
    disagreements,
    entities: w.entities.length,
  };
  lines.push(
    `${String(size).padStart(5)} policies, ${w.entities.length} entities: corral p50 ${ms(corral.p50)} p99 ${ms(corral.p99)} (alone: p50 ${ms(alone.p50)} p99 ${ms(alone.p99)}; after a JS busy loop as long as the naive call: p50 ${ms(control.p50)} p99 ${ms(control.p99)}) | naive cedar-wasm p50 ${ms(naive.p50)} p99 ${ms(naive.p99)} (every entity: mean ${ms(everyEntityMs / 20)}) | ${(naive.p50 / corral.p50).toFixed(0)}x at p50, ${(evaluated / calls).toFixed(1)} policies evaluated per decision, ${(100 * compiled / calls).toFixed(0)}% compiled, ${disagreements} disagreements`,
  );
}
// The 1,000-policy set plus one policy the compiler does not cover (an
// extension function) as wide as a policy gets: every decision meets it, and
// only it goes to cedar-wasm, with the entities it can reach. Each decision
// is checked against cedar-wasm on the whole set with every entity.
{
  const w = world(1000);
  const wide = '@id("wide-etc-guard") forbid (principal, action, resource) when { context has cwd && ip("127.0.0.1").isLoopback() && context.cwd like "/etc/*" };';
  const requests = w.requests.map((r, k) => ({ ...r, context: { ...r.context, cwd: k % 4 === 0 ? '/etc/ssh' : '/srv/work' } }));
  const set = loadPolicies([{ file: 'bench-wide.cedar', text: [...w.texts, wide].join('\n') }]);
  const pdp = new DecisionPoint();
  pdp.load(set);
  pdp.setEntities(w.entities);
  const staticPolicies: Record<string, string> = {};
  for (const p of set.policies) staticPolicies[p.id] = p.text;
  if (cedar.preparsePolicySet('bench-wide', { staticPolicies }).type !== 'success') throw new Error('cedar-wasm refused the bench set');
  let disagreements = 0;
  let viaCedar = 0;
  for (const r of requests) {
    const d = pdp.decide(r);
    if (d.engine === 'cedar') viaCedar++;
    const a = cedar.statefulIsAuthorized({ principal: r.principal, action: { type: 'Action', id: r.action }, resource: r.resource, context: r.context as never, preparsedPolicySetId: 'bench-wide', entities: pdp.entities.json as never });
    if (a.type !== 'success') throw new Error('cedar-wasm failed');
    if ((a.response.decision === 'allow') !== (d.decision !== 'deny')) disagreements++;
  }
  let k = 0;
  const decided = distribution((await sampleInterleaved({ corral: async () => pdp.decide(requests[k++ % requests.length]!) }, 5_000, 500)).corral!);
  figures.policies_1000_one_uncompiled_wide = { corral_ms: decided, cedar_share: viaCedar / requests.length, disagreements, entities: w.entities.length };
  lines.push(`1,000 policies + 1 uncompiled wide forbid (an extension function), ${w.entities.length} entities: corral p50 ${ms(decided.p50)} p99 ${ms(decided.p99)}, ${(100 * viaCedar / requests.length).toFixed(0)}% of decisions partly through cedar-wasm, ${disagreements} disagreements with cedar-wasm on the whole set`);
}
report('policy-decision', figures, lines);
