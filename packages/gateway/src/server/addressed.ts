// Which requests and WebSocket upgrades the gateway answers, by where they
// say they come from and were sent to.

const LOOPBACK_NAMES = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|\[::ffff:127(\.\d{1,3}){3}\])(:\d{1,5})?$/i;

/**
 * Where people reach the gateway through the operator's reverse proxy (its
 * `publicUrl`): the origin pages of the console there have, and the Host
 * values that name it, lower case.
 */
export interface PublicAddress {
  readonly origin: string;
  readonly hosts: readonly string[];
}

/** True for a loopback address as a socket reports it (127.0.0.0/8, ::1, or 127.x mapped into IPv6). */
export function isLoopbackAddress(address: string | undefined): boolean {
  return address !== undefined && (address === '::1' || /^(::ffff:)?127\./i.test(address));
}

/** True for a loopback host as a URL or a Host header names it (`localhost`, `127.0.0.1`, `[::1]`), with or without a port. */
export function isLoopbackName(host: string): boolean {
  return LOOPBACK_NAMES.test(host);
}

/**
 * A request that reached the gateway over loopback must be addressed to a
 * loopback name, or to the public name of `publicAddress` (a reverse proxy on
 * this host that passes the Host it was sent): a page on another site whose
 * name was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name as
 * Host and is refused — also when the gateway listens on every interface.
 * `localAddress` is the address of the gateway's end of the connection.
 */
export function hostAllowed(localAddress: string | undefined, host: string | undefined, publicAddress?: PublicAddress): boolean {
  if (!isLoopbackAddress(localAddress)) return true;
  if (typeof host !== 'string') return false;
  return LOOPBACK_NAMES.test(host) || (publicAddress?.hosts.includes(host.toLowerCase()) ?? false);
}

/**
 * A browser opening a WebSocket says which page asked (`Origin`); nodes,
 * the CLI and upstream's programs send none. Only a page of the gateway's
 * own origin may connect: the host and port the upgrade was sent to, or the
 * public origin of `publicAddress`; an upgrade sent to the public name, only
 * from exactly that origin (not its `http:` twin, which anyone on the network
 * path can serve). Any other would have a web page the user opened talk to
 * the gateway (cross-site WebSocket hijacking), spending its connection
 * slots and log.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, publicAddress?: PublicAddress): boolean {
  if (origin === undefined) return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" (a sandboxed frame, a file), or not a URL
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (publicAddress !== undefined && url.origin === publicAddress.origin) return true;
  if (typeof host !== 'string') return false;
  if (publicAddress?.hosts.includes(host.toLowerCase())) return false;
  return url.host.toLowerCase() === host.toLowerCase();
}
