// @corral/console: the web console's build, for the gateway to serve.
export { buildConsole, consoleDir, consoleIsFresh } from './build.ts';
export { ConsoleError } from './errors.ts';
export type { ConsoleErrorCode } from './errors.ts';
