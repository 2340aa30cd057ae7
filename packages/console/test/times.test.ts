// Which time the console means: every time it shows, on every page, and the
// times its audit search takes, read by an approver whose browser keeps a zone
// far from UTC, in headless Chromium against a real gateway.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { approvalCard, deny, launchChromium, newTab, runOnNode, settled, signIn, startStack, type Stack } from './stack.ts';

/** Five hours behind UTC in November; a time shown in it without its zone reads as one five hours off. */
const ZONE = 'America/New_York';
const SHOWN = /^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) UTC$/;

/** The epoch milliseconds a cell's time stands for, read as the UTC it must say it is. */
function shownAt(text: string): number {
  const match = SHOWN.exec(text.trim());
  assert.ok(match, `"${text}" is not a time in UTC`);
  const [, y, mo, d, h, mi, s] = match.map(Number);
  return Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
}

/** `at` as a datetime-local input takes it, in UTC. */
const inputValue = (at: number) => new Date(at).toISOString().slice(0, 16);

describe('the times the console shows and takes', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  /** When the records the tests look for were made: before and after. */
  let from = 0;
  let to = 0;
  let approving: Promise<boolean>;

  before(async () => {
    from = Date.now() - 1_000;
    stack = await startStack();
    browser = await launchChromium();
    const context = await browser.newContext({ timezoneId: ZONE });
    page = await newTab(context);
    await runOnNode(stack, ['echo', 'zone-check']);
    approving = settled(runOnNode(stack, ['printf', 'zone-approval']));
    await signIn(page, stack, stack.admin.username, stack.admin.password);
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  /** Asserts `cell` shows a time in UTC between the tests' start and now. */
  async function inUtcSinceStart(cell: Locator) {
    to = Date.now() + 1_000;
    const at = shownAt(await cell.innerText());
    assert.ok(at >= Math.floor(from / 1000) * 1000 && at <= to, `${new Date(at).toISOString()} is not between ${new Date(from).toISOString()} and ${new Date(to).toISOString()}`);
  }

  describe('in a browser five hours behind UTC', () => {
    it('writes the time of an event in live activity and in the audit log in UTC, and says so (regression: local time with no zone, 14:00 read as either)', async () => {
      await page.getByRole('link', { name: 'Live activity' }).click();
      const live = page.locator('tbody tr', { hasText: 'zone-check' }).first();
      await live.waitFor();
      await inUtcSinceStart(live.locator('td').nth(1));
      await page.getByRole('link', { name: 'Audit', exact: true }).click();
      const logged = page.locator('tbody tr', { hasText: 'zone-check' }).first();
      await logged.waitFor();
      await inUtcSinceStart(logged.locator('td').nth(1));
    });

    it("writes when an approval was asked for, and when it expires, in UTC (regression: the card's times had no zone)", async () => {
      await page.getByRole('link', { name: 'Approvals' }).click();
      const card = approvalCard(page, 'zone-approval');
      await card.waitFor();
      await inUtcSinceStart(card.locator('dt:text-is("Requested") + dd'));
      const expires = (await card.locator('.countdown').getAttribute('aria-label')) ?? '';
      assert.match(expires, /^expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      await deny(card, 'time zone test');
      assert.equal(await approving, false);
    });

    it('writes when an agent was made and when a node was last seen in UTC (regression: no zone)', async () => {
      await page.getByRole('link', { name: 'Agents and nodes' }).click();
      const agent = page.locator('tr', { has: page.getByRole('rowheader', { name: 'invoice-bot' }) });
      await agent.waitFor();
      await inUtcSinceStart(agent.locator('td').nth(5));
      const nodes = page.locator('table', { has: page.getByRole('columnheader', { name: 'Last seen' }) });
      const node = nodes.locator('tbody tr').filter({ has: page.locator(`td[title="${stack.node.device.deviceId}"]`) });
      await node.waitFor();
      await inUtcSinceStart(node.locator('td').nth(7));
    });

    it("reads the audit search's Since and Until as UTC, as it writes its times (regression: they were read in the browser's zone, five hours off what the table showed)", async () => {
      await page.getByRole('link', { name: 'Audit', exact: true }).click();
      const rows = page.locator('tbody tr', { hasText: 'zone-check' });
      await rows.first().waitFor();
      const search = page.getByRole('search', { name: 'Search the audit log' });
      await search.getByLabel('Search').fill('zone-check');
      // An hour after the record, in UTC: read in New York's zone it was an hour before it plus five, and the record matched.
      await search.getByLabel('Since (UTC)').fill(inputValue(Date.now() + 3_600_000));
      await search.getByRole('button', { name: 'Search' }).click();
      await page.getByRole('status').filter({ hasText: 'No records match.' }).waitFor();
      await search.getByLabel('Since (UTC)').fill(inputValue(from - 60_000));
      await search.getByLabel('Until (UTC)').fill(inputValue(Date.now() + 60_000));
      await search.getByRole('button', { name: 'Search' }).click();
      await rows.first().waitFor();
    });
  });
});
