// Single sign-on in headless Chromium: the sign-in page offers the configured
// OpenID Connect provider (a real oidc-provider on loopback), the browser
// signs in there and comes back signed in with the roles its groups map to.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Provider from 'oidc-provider';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, startStack, type Stack } from './stack.ts';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** An issuer on loopback whose users are `bob` (group finance-approvers) and `carol` (marketing). */
async function startIssuer(redirectUri: string): Promise<{ issuer: string; server: Server }> {
  let handler: (request: IncomingMessage, response: ServerResponse) => void = (_request, response) => response.end();
  const server = createServer((request, response) => handler(request, response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const groups: Record<string, string[]> = { bob: ['finance-approvers'], carol: ['marketing'] };
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'corral-console', redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' }],
    jwks: { keys: [{ ...key, kid: 'k1', alg: 'RS256', use: 'sig' }] },
    claims: { openid: ['sub'], email: ['email'], profile: ['name', 'groups'] },
    conformIdTokenClaims: false,
    cookies: { keys: ['corral-console-test-cookie-key'] },
    // The provider's own login and consent pages, which the browser fills in like a person would.
    features: { devInteractions: { enabled: true } },
    findAccount: (_ctx: unknown, sub: string) => (groups[sub] ? { accountId: sub, claims: () => ({ sub, email: `${sub}@example.com`, name: sub, groups: groups[sub] }) } : undefined),
  });
  const callback = provider.callback();
  handler = (request, response) => void callback(request, response);
  return { issuer, server };
}

describe('single sign-on in Chromium', () => {
  let stack: Stack;
  let issuer: { issuer: string; server: Server };
  let browser: Browser;

  before(async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    issuer = await startIssuer(redirectUri);
    stack = await startStack({ port, oidc: { name: 'Example SSO', issuer: issuer.issuer, clientId: 'corral-console', redirectUri, roleMap: { approver: ['finance-approvers'] } } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
    await new Promise<void>((resolve) => (issuer ? issuer.server.close(() => resolve()) : resolve()));
  });

  async function signInAtIssuer(page: Page, user: string): Promise<void> {
    await page.goto(`${stack.url}/`);
    await page.getByRole('link', { name: 'Sign in with SSO (Example SSO)' }).click();
    await page.locator('input[name="login"]').fill(user);
    await page.locator('input[name="password"]').fill('any');
    await page.locator('button[type="submit"]').click();
    // The consent page comes once per user and client.
    await page.locator('button[type="submit"]').click();
  }

  it('signs bob in through the provider; his group makes him an approver', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await signInAtIssuer(page, 'bob');
    const nav = page.getByRole('navigation', { name: 'Console' });
    await nav.waitFor();
    assert.equal(new URL(page.url()).origin, stack.url);
    assert.deepEqual(await nav.getByRole('link').allTextContents(), ['Live activity', 'Approvals', 'Agents and nodes']);
    assert.match(await page.locator('.who').innerText(), /bob@example\.com \(approver\)/);
    await page.close();
  });

  it('turns carol away, whose groups map to no Corral role, with a message on the sign-in page', async () => {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    await signInAtIssuer(page, 'carol');
    await page.getByRole('alert').waitFor();
    assert.match(await page.getByRole('alert').innerText(), /none of your groups gives you a role/);
    assert.equal(await page.getByRole('navigation', { name: 'Console' }).count(), 0);
    await page.close();
  });
});
