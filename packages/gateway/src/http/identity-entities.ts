// The entities the identity store adds to a policy set's own (its
// entities.json): every agent, as `Agent::"<name>"` with its owner, process,
// status and scopes, a member of `Group::"<process>"`; every human who signed
// in, as `Human::"<email>"` (`oidc:<issuer>#<subject>` for one with no email)
// with their roles; every paired node, as `Node::"<device id>"` with the
// platform it declared (`context.node` of a node command). A gateway decides with them, and
// `corral policy explain|test|replay` with the same, so that a policy naming an
// agent's process (`principal in Group::"invoice-intake"`) applies to every
// agent made for that process, and a forbid on it to none less, without each
// being listed in entities.json as well.
import { createHash } from 'node:crypto';
import type { Identity } from '@corral/identity';

interface EntityRef {
  type: string;
  id: string;
}

/** An entity in Cedar's JSON form, as the identity store gives it. */
export interface IdentityEntity {
  uid: EntityRef;
  attrs: Record<string, unknown>;
  parents: EntityRef[];
}

/** The identity store's entities, and a digest of them that differs when they do. */
export interface IdentityEntities {
  digest: string;
  list: readonly IdentityEntity[];
}

/** Every agent of `identity` (in its process's group, which is listed too), every human who signed in and every paired node. Throws what reading identity.db throws. */
export function identityEntities(identity: Identity): IdentityEntity[] {
  const byKey = new Map<string, IdentityEntity>();
  const put = (e: IdentityEntity) => byKey.set(refKey(e.uid), e);
  for (const a of identity.agents.list()) {
    put({ uid: { type: 'Group', id: a.process }, attrs: {}, parents: [] });
    put({ uid: { type: 'Agent', id: a.name }, attrs: { owner: a.owner, process: a.process, status: a.status, scopes: a.scopes }, parents: [{ type: 'Group', id: a.process }] });
  }
  // Two issuers' people with one email are one Human to policy: the later listed stands. One with no email is named as the console names them,
  // never by the bare subject, which an issuer's user could choose to be "operator" and take that principal's roles.
  for (const h of identity.humans.list()) put({ uid: { type: 'Human', id: h.email ?? `oidc:${h.issuer}#${h.subject}` }, attrs: { email: h.email ?? '', roles: h.roles }, parents: [] });
  // Only a paired node is sent commands; its platform is its own word, given when it asked to be paired.
  for (const n of identity.nodes.list()) if (n.status === 'paired') put({ uid: { type: 'Node', id: n.deviceId }, attrs: { platform: n.platform, paired: true }, parents: [] });
  return [...byKey.values()];
}

/**
 * Follows `identity`'s entities: each call gives them as they are now, read
 * again only when the store changed (Identity.changeMark), and the same
 * object while they are the same (a sign-in that changes no role changes
 * nothing). Throws what reading identity.db throws.
 */
export function watchIdentityEntities(identity: Identity): () => IdentityEntities {
  let mark: string | undefined;
  let last: IdentityEntities | undefined;
  return () => {
    const now = identity.changeMark();
    if (last !== undefined && now === mark) return last;
    const list = identityEntities(identity);
    const digest = createHash('sha256').update(JSON.stringify(list)).digest('hex');
    mark = now;
    if (last?.digest !== digest) last = { digest, list };
    return last;
  };
}

/**
 * A set's entities (`set`, as its entities.json lists them) with `added` (the
 * identity store's) composed in: an agent, human or node both hold takes
 * its attributes from the store (what the store says of its status, owner,
 * roles and platform is what holds) and is in the groups entities.json puts
 * it in as well (an agent in its process's too); a group both hold is entities.json's (its name, the
 * groups above it); the rest of `added` follows, in its order. The set's
 * entities keep their places, so a refusal's `entities[i]` below the set's
 * count points into entities.json. An entity whose uid, attributes or
 * parents are not of Cedar's form is left as it is, for the decision point
 * to refuse.
 */
export function withIdentityEntities(set: readonly unknown[], added: readonly IdentityEntity[]): unknown[] {
  const store = new Map(added.map((e) => [refKey(e.uid), e]));
  const used = new Set<string>();
  const composed = set.map((e) => {
    const key = uidKey(e);
    const own = key === undefined ? undefined : store.get(key);
    if (own === undefined) return e;
    used.add(key!);
    const { attrs, parents } = e as { attrs?: unknown; parents?: unknown };
    if (own.uid.type === 'Group' || !isRecord(attrs) || !Array.isArray(parents)) return e;
    const listed = new Set(parents.map(refOf).map((p) => (p === undefined ? '' : refKey(p))));
    return { ...(e as object), attrs: { ...attrs, ...own.attrs }, parents: [...parents, ...own.parents.filter((p) => !listed.has(refKey(p)))] };
  });
  return [...composed, ...added.filter((e) => !used.has(refKey(e.uid)))];
}

/** An entity's uid as a key, in either of Cedar's spellings (`{type, id}` or `{"__entity": {type, id}}`), or undefined. */
function uidKey(entity: unknown): string | undefined {
  const uid = refOf((entity as { uid?: unknown } | null)?.uid);
  return uid === undefined ? undefined : refKey(uid);
}

function refOf(raw: unknown): EntityRef | undefined {
  const inner = isRecord(raw) && isRecord(raw.__entity) ? raw.__entity : raw;
  if (!isRecord(inner) || typeof inner.type !== 'string' || typeof inner.id !== 'string') return undefined;
  return { type: inner.type, id: inner.id };
}

function refKey(ref: EntityRef): string {
  return `${ref.type}::${JSON.stringify(ref.id)}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
