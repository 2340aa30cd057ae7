// The console's built files, when there are any (`npm start` builds them
// first, and only when their sources changed). Without a build, `corral up`
// serves the HTTP API alone; a build older than its sources (a page changed,
// React or Vite upgraded) is made again first, never served stale.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

type ConsoleBuild = Pick<typeof import('@corral/console'), 'buildConsole' | 'consoleDir' | 'consoleIsFresh'>;

/** The folder of the console to serve, built again when stale; undefined when there is no build. Throws @corral/console's CONSOLE_BUILD_*. */
export async function findConsole(build?: ConsoleBuild): Promise<string | undefined> {
  const { buildConsole, consoleDir, consoleIsFresh } = build ?? (await import('@corral/console'));
  const dir = consoleDir();
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  return consoleIsFresh() ? dir : buildConsole();
}
