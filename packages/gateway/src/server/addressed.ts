// Which requests and WebSocket upgrades the gateway answers, by where they
// say they come from and were sent to.

const LOOPBACK_NAMES = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|\[::ffff:127(\.\d{1,3}){3}\])(:\d{1,5})?$/i;

/** True for a loopback address as a socket reports it (127.0.0.0/8, ::1, or 127.x mapped into IPv6). */
export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && (address === '::1' || /^(::ffff:)?127\./i.test(address));
}

/**
 * A request that reached the gateway over loopback must be addressed to a
 * loopback name: a page on another site whose name was made to resolve to
 * 127.0.0.1 (DNS rebinding) sends its own name as Host and is refused —
 * also when the gateway listens on every interface. `localAddress` is the
 * address of the gateway's end of the connection.
 */
export function hostAllowed(localAddress: string | undefined, host: string | undefined): boolean {
  return !isLoopbackAddress(localAddress) || (typeof host === 'string' && LOOPBACK_NAMES.test(host));
}

/**
 * A browser opening a WebSocket says which page asked (`Origin`); nodes,
 * the CLI and upstream's programs send none. Only a page of the gateway's
 * own origin (the host and port the upgrade was sent to) may connect: any
 * other would have a web page the user opened talk to the gateway
 * (cross-site WebSocket hijacking), spending its connection slots and log.
 */
export function originAllowed(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined) return true;
  if (typeof host !== 'string') return false;
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host.toLowerCase() === host.toLowerCase();
  } catch {
    return false; // "null" (a sandboxed frame, a file), or not a URL
  }
}
