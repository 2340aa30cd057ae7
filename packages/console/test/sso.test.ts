// Single sign-on in headless Chromium: the sign-in page offers the configured
// OpenID Connect provider (a real oidc-provider on loopback), the browser
// signs in there and comes back signed in with the roles its groups map to.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../../../scripts/testing/free-port.ts';
import { accountsWithGroups, publicClient, startTestIssuer, type TestIssuer } from '../../../scripts/testing/oidc-issuer.ts';
import { launchChromium, startStack, type Stack } from './stack.ts';

describe('single sign-on in Chromium', () => {
  let stack: Stack;
  let issuer: TestIssuer;
  let browser: Browser;

  before(async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    // bob approves payments (group finance-approvers); carol is in marketing, which maps to no role.
    issuer = await startTestIssuer({ clients: [publicClient('corral-console', redirectUri)], accounts: accountsWithGroups({ bob: ['finance-approvers'], carol: ['marketing'] }) });
    stack = await startStack({ port, oidc: { name: 'Example SSO', issuer: issuer.issuer, clientId: 'corral-console', redirectUri, roleMap: { approver: ['finance-approvers'] } } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
    await issuer?.close();
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
    assert.equal(new URL(page.url()).hash, '', 'the half of the key the gateway sent in the fragment is not left in the address');
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
