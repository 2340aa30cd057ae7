import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';

/** The invoking user's display, as far as the sandbox can be handed it. */
export interface DisplayGrant {
  /** Host sockets and files to bind read-only at the same path inside. */
  paths: string[];
  /** Variables that point the command at them. */
  env: Record<string, string>;
  /** True when an X11 display is included: X11 gives every client the clipboard and input injection (XTEST). */
  x11: boolean;
}

/**
 * Finds the display sockets named by the caller's environment: the X11
 * socket of `DISPLAY` (local displays only: `:N`, `:N.S`, `unix:N`) with its
 * `XAUTHORITY` cookie file, and the Wayland socket of `WAYLAND_DISPLAY`.
 * Returns a sentence when there is none to grant.
 */
export function displayGrant(hostEnv: NodeJS.ProcessEnv): DisplayGrant | string {
  const grant: DisplayGrant = { paths: [], env: {}, x11: false };
  const display = hostEnv.DISPLAY;
  const x11 = display === undefined ? null : /^(?:unix)?:(\d+)(?:\.\d+)?$/.exec(display);
  if (display !== undefined && !x11) return `DISPLAY=${display} is not a local display; only :N displays can be granted`;
  if (x11) {
    const socket = `/tmp/.X11-unix/X${x11[1]}`;
    if (existsSync(socket)) {
      grant.paths.push(socket);
      grant.env.DISPLAY = `:${x11[1]}`;
      grant.x11 = true;
      const cookie = hostEnv.XAUTHORITY;
      if (cookie && existsSync(cookie)) {
        grant.paths.push(realpathSync(cookie));
        grant.env.XAUTHORITY = realpathSync(cookie);
      }
    }
  }
  const wayland = hostEnv.WAYLAND_DISPLAY;
  const runtimeDir = hostEnv.XDG_RUNTIME_DIR;
  if (wayland && runtimeDir && !wayland.includes('/')) {
    const socket = join(runtimeDir, wayland);
    if (existsSync(socket)) {
      grant.paths.push(socket);
      grant.env.WAYLAND_DISPLAY = wayland;
      grant.env.XDG_RUNTIME_DIR = runtimeDir;
    }
  }
  if (grant.paths.length === 0) return 'there is no display to grant: neither DISPLAY nor WAYLAND_DISPLAY names a socket on this host';
  return grant;
}
