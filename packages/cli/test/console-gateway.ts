// A `corral gateway` process on a state directory of its own, for tests of
// `corral users` that look at what the console's API makes of a change: the
// CLI on that state, the audit log's records, and sign-in over the API.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before } from 'node:test';
import { Identity } from '@corral/identity';
import { corral, startCorral, tempStateDir, type CorralRun } from './corral.ts';

export interface AuditRecord {
  event: { actor: { kind: string; id: string }; action: string; resource: { kind: string; id: string }; details?: Record<string, unknown> };
}

/** A console session: its cookie and its key (the x-corral-csrf header). */
export interface ConsoleSession {
  cookie: string;
  csrf: string;
}

export interface ConsoleGateway {
  /** The state directory, made before `seed` runs. */
  readonly state: string;
  /** The gateway's HTTP base URL. */
  readonly url: string;
  /** `corral users ARGS` on the state directory. */
  users(...args: string[]): Promise<CorralRun>;
  /** Every record of the state directory's audit log, oldest first (`corral audit tail --json`). */
  audit(): Promise<AuditRecord[]>;
  /** Signs in at the console's API: the answer's status and body, and the session when it opened one. */
  signIn(username: string, password: string): Promise<{ status: number; body: { csrf?: string; message?: string; code?: string; user?: { roles: string[] } }; session: ConsoleSession | undefined }>;
  /** The status `GET /api/session` answers `session` with (200 while it holds, 401 once it ended). */
  sessionStatus(session: ConsoleSession): Promise<number>;
  /**
   * Runs `use` on the state directory's identity store, opened beside the
   * gateway's with the clock `now` (a fixed one makes changes within one
   * millisecond), and closed afterwards.
   */
  store<T>(use: (identity: Identity) => T | Promise<T>, now?: () => number): Promise<T>;
}

/**
 * Registers, in the describe block it is called in, a `corral gateway` started
 * before its tests on a fresh state directory `seed` filled first, stopped
 * (SIGTERM) and removed after them.
 */
export function consoleGateway(seed: (state: string) => unknown): ConsoleGateway {
  let state = '';
  let url = '';
  let gateway: ChildProcess | undefined;
  before(async () => {
    state = tempStateDir();
    await seed(state);
    const started = await startCorral(['gateway', '--port', '0'], /listening on (ws:\/\/\S+)/, { env: { CORRAL_GATEWAY_TOKEN: 'a-token-of-sixteen-or-more', CORRAL_STATE_DIR: state } });
    gateway = started.child;
    url = started.match[1]!.replace(/^ws/, 'http');
  });
  after(async () => {
    if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
      gateway.kill('SIGTERM');
      await once(gateway, 'close');
    }
    rmSync(state, { recursive: true, force: true });
  });
  return {
    get state() {
      return state;
    },
    get url() {
      return url;
    },
    users: (...args) => corral(['--state-dir', state, 'users', ...args]),
    async audit() {
      const shown = await corral(['--state-dir', state, 'audit', 'tail', '-n', '1000', '--json']);
      assert.equal(shown.code, 0, shown.stderr);
      return shown.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditRecord);
    },
    async signIn(username, password) {
      const answer = await fetch(`${url}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
      const body = (await answer.json()) as { csrf?: string; message?: string; code?: string; user?: { roles: string[] } };
      const cookie = answer.headers.getSetCookie()[0]?.split(';')[0];
      return { status: answer.status, body, session: cookie && body.csrf ? { cookie, csrf: body.csrf } : undefined };
    },
    sessionStatus: async (session) => (await fetch(`${url}/api/session`, { headers: { cookie: session.cookie, 'x-corral-csrf': session.csrf } })).status,
    async store(use, now) {
      const identity = Identity.open(state, now ? { now } : {});
      try {
        return await use(identity);
      } finally {
        identity.close();
      }
    },
  };
}

/**
 * Gives the login `from` of `state`'s identity store the name operator, as a
 * Corral from before that name was reserved (the gateway token acts as
 * Human::"operator") left it: made through the store, which refuses the name now.
 */
export function renameToOperator(state: string, from: string): void {
  const db = new DatabaseSync(join(state, 'identity.db'));
  try {
    db.prepare("UPDATE local_users SET username = 'operator' WHERE username = ?").run(from);
  } finally {
    db.close();
  }
}
