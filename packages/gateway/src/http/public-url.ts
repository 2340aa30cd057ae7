// Where people reach the gateway when it sits behind the operator's own
// TLS-terminating reverse proxy (nginx, a load balancer): its public URL,
// configured, never read from a request (a Host or X-Forwarded-Proto header
// is whatever the client or a proxy wrote). It decides whether the console's
// cookies are Secure, and which Host and Origin besides loopback names the
// gateway answers (server/addressed.ts).
import { GatewayError } from '../errors.ts';
import { isLoopbackName, type PublicAddress } from '../server/addressed.ts';

/** Where the console's single sign-on comes back to, under the public URL (docs/http-api.md). */
export const OIDC_CALLBACK_PATH = '/api/auth/oidc/callback';

export interface PublicUrl extends PublicAddress {
  /** `https://corral.example.com`, with a port only when it is not the scheme's own. */
  readonly origin: string;
  /** The Host values that name it: `corral.example.com`, and `corral.example.com:443` (the default port spelled out). */
  readonly hosts: readonly string[];
  /** An https URL: the console's cookies are Secure, and the session's is `__Host-` prefixed. */
  readonly secure: boolean;
}

const invalid = (text: string, rule: string) => new GatewayError('GATEWAY_PUBLIC_URL_INVALID', `publicUrl ${JSON.stringify(text)} ${rule}`);

/**
 * Reads `publicUrl`: an absolute `https://` URL of a host and optional port
 * (`http://` only for a loopback host, e.g. an SSH tunnel), with no user or
 * password, path, query or fragment — the console is served at the root of
 * its own host, and its session cookie is the host's. Throws
 * GATEWAY_PUBLIC_URL_INVALID naming the rule broken and what to give instead.
 */
export function parsePublicUrl(text: string): PublicUrl {
  if (typeof text !== 'string' || text.length === 0 || text.length > 2048) throw new GatewayError('GATEWAY_PUBLIC_URL_INVALID', 'publicUrl must be a URL such as https://corral.example.com');
  // The URL parser drops tabs and line feeds anywhere and spaces at the ends: what it would read is not what was written.
  if (/[\s\p{Cc}]/u.test(text)) throw invalid(text, 'must not hold spaces or control characters');
  const url = URL.parse(text);
  if (url === null) throw invalid(text, 'is not an absolute URL: give it as https://HOST[:PORT]');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(text, 'must be an https:// URL');
  if (url.username !== '' || url.password !== '') throw invalid(text, 'must not hold a user name or password');
  if (text.includes('?') || text.includes('#')) throw invalid(text, 'must not have a query or fragment: give it as https://HOST[:PORT]');
  if (url.pathname !== '/') throw invalid(text, 'must not have a path: the console is served at the root of its host (give it as https://HOST[:PORT], and have the proxy forward / to the gateway)');
  if (url.hostname === '') throw invalid(text, 'must name a host');
  if (url.protocol === 'http:' && !isLoopbackName(url.hostname)) {
    throw invalid(text, 'must be https:// — plain http is taken only for a loopback host (localhost, 127.0.0.1, [::1]); terminate TLS at the proxy');
  }
  const defaultPort = url.protocol === 'https:' ? '443' : '80';
  const hosts = url.port === '' ? [url.host, `${url.hostname}:${defaultPort}`] : [url.host];
  return { origin: url.origin, hosts, secure: url.protocol === 'https:' };
}

/**
 * The console's OIDC redirectUri must be its callback at the public URL: the
 * issuer sends the browser there, and the session cookie is set there. Throws
 * GATEWAY_PUBLIC_URL_INVALID naming the callback to register.
 */
export function checkRedirectAtPublicUrl(publicUrl: PublicUrl, redirectUri: string): void {
  const redirect = URL.parse(redirectUri);
  if (redirect !== null && redirect.origin === publicUrl.origin && redirect.pathname === OIDC_CALLBACK_PATH) return;
  throw new GatewayError(
    'GATEWAY_PUBLIC_URL_INVALID',
    `the console's OIDC redirectUri ${JSON.stringify(redirectUri)} is not its callback at publicUrl ${publicUrl.origin}: register ${publicUrl.origin}${OIDC_CALLBACK_PATH} with the issuer and set it as redirectUri`,
  );
}
