// A real OpenID Connect provider (oidc-provider) on loopback for the sign-in
// tests, with its development login and consent pages (which
// oidc-browser.ts fills in like a person would). Accounts sign in with any
// password; `accounts` gives each one its claims, or refuses it.
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type ClientMetadata } from 'oidc-provider';

export interface TestIssuerOptions {
  clients: ClientMetadata[];
  /** The claims of the account `sub` beyond `sub` itself (`undefined` refuses the sign-in). */
  accounts: (sub: string) => Record<string, unknown> | undefined;
  /** Which claims each scope releases; `profile` names the role-bearing claim. */
  claims?: Record<string, string[]>;
}

export interface TestIssuer {
  issuer: string;
  close(): Promise<void>;
}

/** Accounts named in `groups` sign in with a verified `@example.com` email, their name and their groups. */
export function accountsWithGroups(groups: Record<string, string[]>): TestIssuerOptions['accounts'] {
  return (sub) => (groups[sub] ? { email: `${sub}@example.com`, email_verified: true, name: sub, groups: groups[sub] } : undefined);
}

export async function startTestIssuer(options: TestIssuerOptions): Promise<TestIssuer> {
  // The provider needs its own URL, which needs the port: listen first, attach the provider after.
  let handler: (request: IncomingMessage, response: ServerResponse) => void = (_request, response) => response.end();
  const server = createServer((request, response) => handler(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const provider = new Provider(issuer, {
    clients: options.clients,
    jwks: { keys: [{ ...key, kid: 'test-rs256', alg: 'RS256', use: 'sig' }] },
    claims: options.claims ?? { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
    conformIdTokenClaims: false,
    cookies: { keys: ['corral-test-issuer-cookie-key'] },
    features: { devInteractions: { enabled: true } },
    findAccount: (_ctx: unknown, sub: string) => {
      const claims = options.accounts(sub);
      return claims ? { accountId: sub, claims: () => ({ sub, ...claims }) } : undefined;
    },
  });
  const callback = provider.callback();
  handler = (request, response) => void callback(request, response);
  return {
    issuer,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A public client (code + PKCE, no secret) redirecting to `redirectUri`. */
export function publicClient(clientId: string, redirectUri: string): ClientMetadata {
  return { client_id: clientId, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' };
}
