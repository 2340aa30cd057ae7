// One throwaway PostgreSQL cluster per test file (scripts/testing/postgres.ts):
// started before the file's tests, stopped after them with every state
// directory and proxy the tests took from it. If the cluster cannot start, the
// tests fail; they never skip.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { startPostgres, type TestPostgres } from '../../../scripts/testing/postgres.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

/** A log's place in the cluster: a state directory and a database of its own. */
export interface FreshLog {
  stateDir: string;
  postgresUrl: string;
  /** `<name>_<pid>_<n>`, n counting from 1 in each file. */
  database: string;
}

export interface PostgresForTests {
  /** The running cluster; it starts in the file's before hook, so read this inside a test or hook. */
  readonly cluster: TestPostgres;
  /** A new state directory and a new database for one log. */
  fresh(): FreshLog;
  /** A new state directory, removed after the file's tests. */
  stateDir(): string;
  /** A proxy in front of the cluster, counting every connection made to it (see tcp-proxy.ts), closed after the file's tests. */
  proxy(): Promise<TcpProxy>;
}

/** Registers this file's before/after hooks for a cluster; `name` names its databases and state directories. */
export function usePostgres(name: string): PostgresForTests {
  let cluster: TestPostgres | undefined;
  let n = 0;
  const dirs: string[] = [];
  const proxies: TcpProxy[] = [];
  before(async () => {
    cluster = await startPostgres();
  });
  after(async () => {
    for (const p of proxies) await p.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    cluster?.stop();
  });
  const started = (): TestPostgres => {
    if (!cluster) throw new Error('usePostgres: the cluster starts in the before hook; read it inside a test or hook');
    return cluster;
  };
  const stateDir = () => {
    const dir = mkdtempSync(join(tmpdir(), `corral-audit-pg-${name}-`));
    dirs.push(dir);
    return dir;
  };
  return {
    get cluster() {
      return started();
    },
    fresh() {
      const database = `${name}_${process.pid}_${++n}`;
      return { stateDir: stateDir(), postgresUrl: started().createDatabase(database), database };
    },
    stateDir,
    async proxy() {
      const proxy = await startTcpProxy(started().port);
      proxies.push(proxy);
      return proxy;
    },
  };
}
