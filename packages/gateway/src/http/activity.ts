// Live activity: recent decisions newest first, and an event stream of each
// new audit record as this gateway appends it (`Last-Event-ID` resumes).
import { toAuditRecord, type AuditRecord } from '@corral/audit';
import type { ApiContext } from './context.ts';
import { matchesFilter, toEvent } from './event.ts';
import { failure, reply, SECURITY_HEADERS } from './respond.ts';
import type { Route } from './router.ts';
import { intParam, pageBackwards } from './scan.ts';
import { StreamSlots } from './stream-slots.ts';

/** How often an open stream checks that its session is still live (signed out, expired, its user changed or removed). */
const SESSION_CHECK_MS = 1000;
/** A comment line every this many checks keeps proxies from closing a quiet stream. */
const KEEPALIVE_CHECKS = 15;
/** Most missed records a resumed stream catches up on. */
const MAX_RESUME = 1000;
const EFFECTS = new Set(['allow', 'deny', 'ask']);
/**
 * Most bytes a stream may hold unsent. A reader that stops reading (a stalled
 * tab, a client keeping the socket open on purpose) would otherwise have every
 * record since kept in the gateway's memory; past this its stream is closed,
 * and its EventSource reconnects with the last id it got and resumes.
 */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;
/**
 * Streams one holder (a signed-in human, or the gateway token) keeps open: a
 * browser holds at most six connections to one host over HTTP/1.1, so a
 * console's tabs fit; past it the holder's oldest stream ends (StreamSlots).
 */
export const MAX_STREAMS_PER_HUMAN = 8;
/** Streams open in all: past it the oldest stream of whoever holds the most ends. Well under the server's unauthenticated sockets (256), where every HTTP socket counts. */
export const MAX_STREAMS = 128;

function filterOf(api: ApiContext, url: URL): { agent: string[] | null; node: string | null; effect: string | null } | undefined {
  const effect = url.searchParams.get('effect') || null;
  if (effect !== null && !EFFECTS.has(effect)) return undefined;
  const ref = url.searchParams.get('agent') || null;
  const known = ref ? api.identity.agents.find(ref) : undefined;
  return { agent: ref ? (known ? [known.id, known.name] : [ref]) : null, node: url.searchParams.get('node') || null, effect };
}

export function agentNames(api: ApiContext): Map<string, string> {
  return new Map(api.identity.agents.list().map((a) => [a.id, a.name]));
}

export function activityRoutes(api: ApiContext): Route[] {
  const slots = new StreamSlots(MAX_STREAMS_PER_HUMAN, MAX_STREAMS);
  return [
    {
      method: 'GET',
      path: '/api/activity',
      access: 'activity.read',
      handle: async ({ url }) => {
        const filter = filterOf(api, url);
        if (!filter) return failure(400, 'invalid_request', { message: 'effect must be allow, deny or ask' });
        const limit = intParam(url, 'limit', 100, 1, 500);
        if (Number.isNaN(limit)) return failure(400, 'invalid_request', { message: 'limit must be a whole number from 1 to 500' });
        if (!api.audit) return reply(200, { events: [], nextBefore: null });
        const head = await api.audit.store.head();
        const before = intParam(url, 'before', head.size, 0, head.size);
        if (Number.isNaN(before)) return failure(400, 'invalid_request', { message: 'before must be a sequence number in the log' });
        const names = agentNames(api);
        const page = await pageBackwards(api.audit.store, { before, limit }, (record) => {
          const event = toEvent(record, names);
          return matchesFilter(event, filter) ? event : undefined;
        });
        return reply(200, { events: page.items, nextBefore: page.nextBefore });
      },
    },
    {
      method: 'GET',
      path: '/api/activity/stream',
      access: 'activity.read',
      keyInQuery: true,
      handle: async ({ url, request, response, caller }) => {
        const filter = filterOf(api, url);
        if (!filter) return failure(400, 'invalid_request', { message: 'effect must be allow, deny or ask' });
        const headers = { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' };
        // A HEAD gets the stream's headers and nothing to wait for (it would otherwise hold a stream open that can never send).
        if (request.method === 'HEAD') return void response.writeHead(200, headers).end();
        // What the stream takes is let go when its socket closes, however early: a client that left while the log's head
        // was read (a round trip to PostgreSQL) left its listener, timer and slot behind for good.
        let closed = false;
        const releases: Array<() => void> = [];
        response.once('close', () => {
          closed = true;
          for (const release of releases.splice(0)) release();
        });
        const lastId = request.headers['last-event-id'];
        const size = api.audit ? (await api.audit.store.head()).size : 0;
        if (closed) return;
        releases.push(slots.take(caller?.kind === 'session' ? `human:${caller.session.user.id}` : 'token', () => response.destroy()));
        // An id this log never gave (another gateway's, or a log started over) resumes nothing: trusted, it
        // would hold back every record up to it, so the stream would stay silent for as long as the log takes to get there.
        const resumeAfter = typeof lastId === 'string' && /^\d{1,15}$/.test(lastId) && Number(lastId) < size ? Number(lastId) : undefined;
        response.writeHead(200, headers);
        response.write(': corral activity\n\n');
        // Its socket is reset (below) before the response learns of it.
        const gone = (): boolean => response.destroyed || response.socket?.destroyed !== false;
        const write = (text: string): void => {
          if (gone()) return;
          response.write(text);
          // Reset, not closed: a close would leave what the kernel still holds to send, with the end behind it, for a
          // reader that does not read, kept until the kernel gives up on it (minutes), and that reader none the wiser.
          if (response.writableLength > MAX_UNSENT_BYTES) response.socket?.resetAndDestroy();
        };
        let names = agentNames(api);
        let sent = resumeAfter ?? -1;
        // Checked each second and before each record: a session ended within the second (its login changed, signed out) is sent nothing more.
        const ended = (): boolean => caller?.kind === 'session' && !api.sessions.get(caller.token, { use: false });
        const emit = (record: AuditRecord): void => {
          if (record.seq <= sent || gone()) return;
          if (ended()) return void response.end();
          sent = record.seq;
          if (record.event.actor.kind === 'agent' && !names.has(record.event.actor.id)) names = agentNames(api);
          const event = toEvent(record, names);
          if (matchesFilter(event, filter)) write(`event: record\nid: ${record.seq}\ndata: ${JSON.stringify(event)}\n\n`);
        };
        // Listen first and hold live records while the missed ones are read, so none falls in between.
        let backlog: AuditRecord[] | undefined = [];
        const unsubscribe = api.feed.subscribe((record) => (backlog ? backlog.push(record) : emit(record)));
        let checks = 0;
        const check = setInterval(() => {
          if (ended()) return void response.end();
          if (++checks % KEEPALIVE_CHECKS === 0) write(': keepalive\n\n');
        }, SESSION_CHECK_MS);
        check.unref();
        releases.push(() => clearInterval(check), unsubscribe);
        if (resumeAfter !== undefined && api.audit) {
          const head = await api.audit.store.head();
          for await (const rows of api.audit.store.scan(Math.max(resumeAfter + 1, head.size - MAX_RESUME), head.size, 500)) for (const r of rows) emit(toAuditRecord(r));
        }
        const held = backlog;
        backlog = undefined;
        for (const record of held) emit(record);
      },
    },
  ];
}
