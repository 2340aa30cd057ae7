// Which Corral agent a command from another gateway runs as. Upstream
// OpenClaw names the requesting agent in `system.run` (`agentId`, and the
// session key `agent:<agentId>:<rest>`); the node's operator maps each
// upstream agent id to a Corral agent identity. An agent the map does not
// name gets nothing: the decision is never made for some default principal.
import { NodeError } from './errors.ts';

/** Upstream agent id → Corral agent name. */
export type AgentMap = Readonly<Record<string, string>>;

const UPSTREAM_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CORRAL_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * Parses `upstreamId=corralAgent` entries (the `--agent-map` flag, repeated
 * or comma-separated). Throws NODE_CONFIG_INVALID naming the bad entry.
 */
export function parseAgentMap(entries: readonly string[]): AgentMap {
  const map: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const entry of entries.flatMap((e) => e.split(',')).map((e) => e.trim()).filter((e) => e !== '')) {
    const eq = entry.indexOf('=');
    const upstream = entry.slice(0, eq);
    const corral = entry.slice(eq + 1);
    if (eq < 1 || !UPSTREAM_ID.test(upstream)) throw new NodeError('NODE_CONFIG_INVALID', `--agent-map ${JSON.stringify(entry.slice(0, 80))}: expected upstreamAgentId=corralAgent`);
    if (!CORRAL_NAME.test(corral)) throw new NodeError('NODE_CONFIG_INVALID', `--agent-map ${upstream}: ${JSON.stringify(corral.slice(0, 80))} is not a Corral agent name (lowercase letters, digits, dashes)`);
    if (upstream in map && map[upstream] !== corral) throw new NodeError('NODE_CONFIG_INVALID', `--agent-map ${upstream} is mapped twice`);
    map[upstream] = corral;
  }
  return Object.freeze(map);
}

/**
 * The upstream agent a `system.run` comes from, from its `agentId` and its
 * `sessionKey` (`agent:<agentId>:…`). When both are present they must name
 * the same agent. Returns undefined when neither names one (an operator's own
 * invoke). Throws NODE_RUN_DENIED when they disagree or are malformed.
 */
export function requestingAgent(params: { agentId?: unknown; sessionKey?: unknown }): string | undefined {
  const fromId = params.agentId === undefined || params.agentId === null || params.agentId === '' ? undefined : params.agentId;
  if (fromId !== undefined && (typeof fromId !== 'string' || !UPSTREAM_ID.test(fromId))) throw new NodeError('NODE_RUN_DENIED', 'agentId is malformed');
  let fromSession: string | undefined;
  if (typeof params.sessionKey === 'string' && params.sessionKey.startsWith('agent:')) {
    fromSession = params.sessionKey.split(':')[1] ?? '';
    if (!UPSTREAM_ID.test(fromSession)) throw new NodeError('NODE_RUN_DENIED', 'sessionKey names a malformed agent');
  } else if (params.sessionKey !== undefined && params.sessionKey !== null && typeof params.sessionKey !== 'string') {
    throw new NodeError('NODE_RUN_DENIED', 'sessionKey is malformed');
  }
  if (fromId !== undefined && fromSession !== undefined && fromId.toLowerCase() !== fromSession.toLowerCase()) throw new NodeError('NODE_RUN_DENIED', 'agentId and sessionKey name different agents');
  return (fromId as string | undefined) ?? fromSession;
}

/** The Corral agent for an upstream agent id; throws NODE_RUN_DENIED when the map does not name it. */
export function corralAgentFor(map: AgentMap, upstream: string): string {
  const corral = Object.hasOwn(map, upstream) ? map[upstream] : undefined;
  if (corral === undefined) throw new NodeError('NODE_RUN_DENIED', `upstream agent ${upstream} is not mapped to a Corral agent`);
  return corral;
}
