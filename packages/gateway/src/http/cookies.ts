// The console's cookies: the session's and the OIDC login's binding, their
// names and whether they are Secure. Behind the operator's TLS-terminating
// proxy the gateway itself speaks plain HTTP, so the request cannot say
// whether the browser used https: an https `publicUrl` does. Then every
// cookie is Secure, and the session's is `__Host-corral_session`, which a
// browser takes only when Secure, for Path=/ and without a Domain: no other
// host of the domain (a sibling subdomain) and no plain-http page can set
// or overwrite it. The binding cookie's path is narrower, so its prefix is
// `__Secure-`. A change of publicUrl takes a restart, which ends every session
// anyway (they are kept in memory): no session lives on under the old name.
import type { IncomingMessage } from 'node:http';
import { OIDC_COOKIE } from './oidc-sign-in.ts';
import { SESSION_COOKIE } from './sessions.ts';

export class ConsoleCookies {
  /** The session cookie's name: `corral_session`, or `__Host-corral_session` when Secure. */
  readonly session: string;
  /** The OIDC binding cookie's name: `corral_oidc`, or `__Secure-corral_oidc` when Secure. */
  readonly oidc: string;
  readonly #secure: boolean;

  /** `secure`: the console is reached over https (an https publicUrl). */
  constructor({ secure = false }: { secure?: boolean } = {}) {
    this.#secure = secure;
    this.session = secure ? `__Host-${SESSION_COOKIE}` : SESSION_COOKIE;
    this.oidc = secure ? `__Secure-${OIDC_COOKIE}` : OIDC_COOKIE;
  }

  /** A Set-Cookie value, HttpOnly; `maxAgeS` 0 clears it. `Secure` when the console is reached over https, or this request arrived over TLS. */
  set(request: IncomingMessage, name: string, value: string, maxAgeS: number, sameSite: 'Strict' | 'Lax' = 'Strict', path = '/'): string {
    const secure = this.#secure || (request.socket as { encrypted?: boolean }).encrypted === true ? '; Secure' : '';
    return `${name}=${value}; HttpOnly; SameSite=${sameSite}; Path=${path}; Max-Age=${maxAgeS}${secure}`;
  }
}
