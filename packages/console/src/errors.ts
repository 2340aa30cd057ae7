/** Why the console could not be made ready to serve. */
export type ConsoleErrorCode =
  /** Vite failed to build the console (its message is in `cause`). */
  | 'CONSOLE_BUILD_FAILED'
  /** Another process held the build lock for longer than a build can take. */
  | 'CONSOLE_BUILD_LOCKED';

export class ConsoleError extends Error {
  readonly code: ConsoleErrorCode;

  constructor(code: ConsoleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConsoleError';
    this.code = code;
  }
}
