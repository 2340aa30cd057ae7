// The console's built files, when there are any (`npm start` builds them
// first, and only when their sources changed). Without a build, `corral up`
// serves the HTTP API alone.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export async function findConsole(): Promise<string | undefined> {
  const { consoleDir } = await import('@corral/console');
  const dir = consoleDir();
  return existsSync(join(dir, 'index.html')) ? dir : undefined;
}
