// Single sign-on in headless Chromium: the sign-in page offers the configured
// OpenID Connect provider (a real oidc-provider on loopback), the browser
// signs in there and comes back signed in with the roles its groups map to.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { freePort } from '../../../scripts/testing/free-port.ts';
import { accountsWithGroups, publicClient, startTestIssuer, type TestIssuer } from '../../../scripts/testing/oidc-issuer.ts';
import { createPayment, launchChromium, settled, startStack, type Stack } from './stack.ts';

describe('single sign-on in Chromium', () => {
  let stack: Stack;
  let issuer: TestIssuer;
  let browser: Browser;

  before(async () => {
    const port = await freePort();
    const redirectUri = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    // bob approves payments (group finance-approvers); carol is in marketing, which maps to no role.
    // mallory approves too, under an address the issuer verified that reads as bob's: bоb@example.com, with a Cyrillic о.
    const accounts = accountsWithGroups({ bob: ['finance-approvers'], carol: ['marketing'] });
    const mallory = { email: 'b\u043Eb@example.com', email_verified: true, name: 'mallory', groups: ['finance-approvers'] };
    issuer = await startTestIssuer({ clients: [publicClient('corral-console', redirectUri)], accounts: (sub) => (sub === 'mallory' ? mallory : accounts(sub)) });
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

  it("names an approver whose verified address holds a Cyrillic о by issuer and subject, so a second approver does not read it as bob's (regression: the card read 1 of 2 — bob@example.com)", async () => {
    const paying = settled(createPayment(stack, { amount: 2_500_000, currency: 'EUR', payee: 'Quorum Supplier AG' }));
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    const pages = [page];
    try {
      await signInAtIssuer(page, 'mallory');
      await page.getByRole('link', { name: 'Approvals' }).click();
      const card = page.locator('article[data-approval]', { hasText: 'Quorum Supplier AG' });
      await card.getByRole('button', { name: 'Approve once' }).click();
      await card.locator('.quorum', { hasText: /^1 of 2$/ }).waitFor();
      // bob, in a browser of his own (newPage makes a context of its own: no session at the issuer).
      const second = await browser.newPage();
      second.setDefaultTimeout(15_000);
      pages.push(second);
      await signInAtIssuer(second, 'bob');
      await second.getByRole('link', { name: 'Approvals' }).click();
      const seen = second.locator('article[data-approval]', { hasText: 'Quorum Supplier AG' });
      await seen.locator('.quorum', { hasText: /^1 of 2$/ }).waitFor();
      const shown = await seen.innerText();
      assert.match(shown, /oidc:http:\/\/127\.0\.0\.1:\d+\S*#mallory/);
      assert.doesNotMatch(shown, /b\u043Eb@example\.com/);
      await seen.getByRole('button', { name: 'Deny…' }).click();
      await seen.getByLabel('Reason for denying').fill('not bob');
      await seen.getByRole('button', { name: 'Deny', exact: true }).click();
      assert.equal(await paying, false);
    } finally {
      for (const p of pages) await p.close();
    }
  });
});
