import { existsSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { isAbsolute, join } from 'node:path';

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
 * The variables that name the display: a node takes them from its own
 * environment only, never from a request (the display is the machine's, not
 * the requester's to point elsewhere).
 */
export const DISPLAY_VARIABLES: readonly string[] = ['DISPLAY', 'XAUTHORITY', 'WAYLAND_DISPLAY', 'XDG_RUNTIME_DIR'];

// The variables may be a requester's choice (a node passes a request's own values of what its policy
// passes): they name the display and nothing else. Beside the Wayland socket lie the user's other
// services (the session bus at `bus`, which starts programs on the host), so only wayland-N is taken.
const WAYLAND_SOCKET = /^wayland-\d+$/;
// The auth protocols an X server checks a cookie for; an X authority file holds nothing else.
const X_AUTH_NAMES = new Set(['MIT-MAGIC-COOKIE-1', 'XDM-AUTHORIZATION-1']);
const MAX_XAUTHORITY_BYTES = 1024 * 1024;

/**
 * Finds the display sockets named by the caller's environment: the X11
 * socket of `DISPLAY` (local displays only: `:N`, `:N.S`, `unix:N`) with its
 * `XAUTHORITY` cookie file (an X authority file, nothing else), and the Wayland
 * socket `WAYLAND_DISPLAY` (wayland-N) in `XDG_RUNTIME_DIR` (a folder of this
 * user's that nobody else may use, as the XDG spec has it).
 * Returns a sentence when there is none to grant, or a variable names something else.
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
        const real = realpathSync(cookie);
        if (!isXauthority(real)) return `XAUTHORITY=${cookie} is not an X authority file; only the display's cookie can be granted`;
        grant.paths.push(real);
        grant.env.XAUTHORITY = real;
      }
    }
  }
  const wayland = hostEnv.WAYLAND_DISPLAY;
  const runtimeDir = hostEnv.XDG_RUNTIME_DIR;
  if (wayland && runtimeDir && !wayland.includes('/')) {
    if (!WAYLAND_SOCKET.test(wayland)) return `WAYLAND_DISPLAY=${wayland} is not a Wayland socket name (wayland-N); only the display's socket can be granted`;
    if (!ownedPrivately(runtimeDir)) return `XDG_RUNTIME_DIR=${runtimeDir} is not an absolute path to a folder of this user's that nobody else may use`;
    const socket = join(runtimeDir, wayland);
    if (statOf(socket)?.isSocket()) {
      grant.paths.push(socket);
      grant.env.WAYLAND_DISPLAY = wayland;
      grant.env.XDG_RUNTIME_DIR = runtimeDir;
    }
  }
  if (grant.paths.length === 0) return 'there is no display to grant: neither DISPLAY nor WAYLAND_DISPLAY names a socket on this host';
  return grant;
}

function ownedPrivately(dir: string): boolean {
  const found = isAbsolute(dir) ? statOf(dir) : undefined;
  return found !== undefined && found.isDirectory() && found.uid === process.getuid?.() && (found.mode & 0o077) === 0;
}

/**
 * True when `file` is a regular file that reads whole as Xau's records: each a 16-bit family, then
 * address, display number, auth name and auth data, each a 16-bit big-endian length and its bytes.
 */
function isXauthority(file: string): boolean {
  const found = statOf(file);
  if (!found?.isFile() || found.size === 0 || found.size > MAX_XAUTHORITY_BYTES) return false;
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return false;
  }
  let at = 0;
  const field = (): Buffer | undefined => {
    const end = at + 2 <= bytes.length ? at + 2 + bytes.readUInt16BE(at) : Infinity;
    if (end > bytes.length) return undefined;
    const value = bytes.subarray(at + 2, end);
    at = end;
    return value;
  };
  while (at < bytes.length) {
    at += 2; // the family
    const [address, number, name, data] = [field(), field(), field(), field()];
    if (!address || !number || !data || !name || !X_AUTH_NAMES.has(name.toString('latin1'))) return false;
  }
  return true;
}

function statOf(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
