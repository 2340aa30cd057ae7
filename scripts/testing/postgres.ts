// A throwaway PostgreSQL cluster for tests and benchmarks: Debian's
// `postgresql` package (binaries under /usr/lib/postgresql/<v>/bin, installed
// by scripts/bootstrap.mjs), a fresh data directory, a free loopback port,
// stopped and removed by stop(). initdb refuses to run as root, so as root the
// cluster runs as the `postgres` OS user. Failing to start throws: tests that
// need PostgreSQL fail loudly rather than skip.
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.ts';

export interface TestPostgres {
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** Creates another database in the cluster and returns its URL. */
  createDatabase(name: string): string;
  /**
   * Restarts the server (fast shutdown: every connection is cut, as when an
   * operator restarts PostgreSQL); same port and data. Asynchronous, so the
   * caller's clients keep running (and failing to connect) meanwhile. With
   * `whileDown`, the server starts again only once it has resolved: a client
   * polling now and then is then sure to find it away.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  stop(): void;
}

/** The bin directory of the newest installed PostgreSQL, or null. */
export function postgresBinDir(): string | null {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : null;
}

export async function startPostgres(options: { fsync?: boolean } = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  if (!bin) throw new Error("PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb. Run 'npm test' (the bootstrap installs Debian's postgresql) or 'apt-get install postgresql'.");
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'corral-pg-'));
  const data = join(dir, 'data');
  let uid = -1;
  let gid = -1;
  if (asRoot) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (ids.status !== 0) throw new Error("running as root but there is no 'postgres' OS user to run PostgreSQL as (install Debian's postgresql package)");
    uid = Number(ids.stdout.trim());
    gid = Number(gids.stdout.trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]) => {
    const argv = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] as const : [join(bin, cmd), args] as const;
    const r = spawnSync(argv[0], argv[1], { encoding: 'utf8', cwd: dir, timeout: 60_000 });
    return r;
  };
  const init = run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-instructions', '--no-sync']);
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL initdb failed (exit ${init.status}): ${init.stderr || init.error?.message}`);
  }
  const port = await freePort();
  const settings = [`-p ${port}`, `-k ${dir}`, "-c listen_addresses=127.0.0.1", `-c fsync=${options.fsync === false ? 'off' : 'on'}`, '-c max_connections=100', '-c shared_buffers=128MB'];
  const startArgs = ['-D', data, '-l', join(dir, 'server.log'), '-o', settings.join(' '), '-w', '-t', '60', 'start'];
  const start = run('pg_ctl', startArgs);
  if (start.status !== 0) {
    const log = existsSync(join(dir, 'server.log')) ? readFileSync(join(dir, 'server.log'), 'utf8').slice(-2000) : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start on 127.0.0.1:${port} (exit ${start.status}): ${start.stderr}\n${log}`);
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return {
    url,
    port,
    createDatabase(name: string) {
      if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name ${name}`);
      const r = spawnSync(join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', `CREATE DATABASE ${name}`], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`cannot create database ${name}: ${r.stderr}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    async restart(whileDown?: () => Promise<void>) {
      const pgCtl = async (verb: 'stop' | 'start') => {
        const args = verb === 'start' ? startArgs : ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop'];
        const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args]] : [join(bin, 'pg_ctl'), args];
        try {
          await promisify(execFile)(cmd, argv, { cwd: dir, timeout: 60_000 });
        } catch (error) {
          throw new Error(`PostgreSQL did not ${verb} on 127.0.0.1:${port}: ${(error as { stderr?: string }).stderr ?? (error as Error).message}`);
        }
      };
      await pgCtl('stop');
      try {
        await whileDown?.();
      } finally {
        await pgCtl('start');
      }
    },
    stop,
  };
}
