// Screenshots of every console page for the README, from a real gateway and
// node with a little activity on them, in headless Chromium:
//
//   node packages/console/scripts/screenshots.ts [OUT_DIR]   (default docs/screenshots)
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NodeHost } from '@corral/node';
import type { Page } from 'playwright-core';
import { createPayment, launchChromium, runOnNode, startStack, type Stack } from '../test/stack.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const outDir = resolve(process.argv[2] ?? join(ROOT, 'docs', 'screenshots'));

/** Activity worth looking at: allowed, denied, approved and pending commands and payments, agents, a node asking to pair. */
async function seed(stack: Stack): Promise<NodeHost> {
  const identity = stack.gateway.identity;
  identity.agents.create({ name: 'report-writer', process: 'monthly-report', owner: 'controller@example.com', scopes: ['records:read'] });
  identity.agents.suspend('report-writer');
  await runOnNode(stack, ['echo', 'invoice-0001 summarised']);
  await runOnNode(stack, ['rm', '-rf', '/srv/invoices']).catch(() => {});
  await createPayment(stack, { amount: 25_000, currency: 'EUR', payee: 'Office Supplies Ltd' });
  const printed = runOnNode(stack, ['printf', 'invoice-0002 paid']);
  await stack.gateway.invoker.resolveApprovalWhenFree(await waitForPending(stack, (a) => a.argv?.[0] === 'printf'), 'allow-once', 'local:alice');
  await printed;
  // Left pending with one of its two approvals: the inbox shows "1 of 2".
  void createPayment(stack, { amount: 2_500_000, currency: 'EUR', payee: 'Big Supplier AG' }, 600_000).catch(() => {});
  await stack.gateway.invoker.resolveApprovalWhenFree(await waitForPending(stack, (a) => a.command === 'payment.create'), 'allow-once', 'local:alice');
  void runOnNode(stack, ['printf', 'invoice-0003 paid'], 600_000).catch(() => {});
  await waitForPending(stack, (a) => a.argv?.[0] === 'printf');
  // A second machine asking to be paired.
  const stranger = new NodeHost({ gateway: stack.gateway.url, token: stack.token, stateDir: join(stack.stateDir, '..', 'node-2'), name: 'build-runner-2', maxBackoffMs: 200 });
  void stranger.start().catch(() => {});
  return stranger;
}

async function waitForPending(stack: Stack, match: (action: { argv?: string[]; command?: string }) => boolean): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = stack.gateway.approvals.list({ status: 'pending' }).find((a) => match(a.action as { argv?: string[]; command?: string }));
    if (found) return found.id;
    if (Date.now() > deadline) throw new Error('the approval did not appear');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function shoot(page: Page, name: string, fullPage = false): Promise<void> {
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage });
  process.stdout.write(`${join(outDir, `${name}.png`)}\n`);
}

const stack = await startStack();
const browser = await launchChromium();
let stranger: NodeHost | undefined;
try {
  mkdirSync(outDir, { recursive: true });
  stranger = await seed(stack);
  const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
  page.setDefaultTimeout(15_000);
  await page.goto(`${stack.url}/`);
  await page.getByLabel('Username').fill(stack.admin.username);
  await shoot(page, 'signin');
  await page.getByLabel('Password').fill(stack.admin.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();

  await page.getByRole('link', { name: 'Live activity' }).click();
  await page.getByRole('status').filter({ hasText: 'live' }).waitFor();
  await page.locator('tr', { hasText: 'invoice-0002' }).first().waitFor();
  await shoot(page, 'activity');

  await page.getByRole('link', { name: 'Approvals' }).click();
  await page.locator('.quorum', { hasText: '1 of 2' }).waitFor();
  await page.locator('article[data-approval]').nth(1).waitFor();
  await shoot(page, 'approvals', true);

  await page.getByRole('link', { name: 'Audit' }).click();
  await page.getByRole('status').filter({ hasText: /^log verified/ }).waitFor();
  const row = page.locator('tbody tr', { hasText: 'invoice-0002 paid' }).first();
  await row.getByRole('button', { name: /^Open record/ }).click();
  await page.getByText('proof verified', { exact: true }).waitFor();
  await shoot(page, 'audit');

  await page.getByRole('link', { name: 'Agents and nodes' }).click();
  await page.getByRole('rowheader', { name: 'invoice-bot' }).waitFor();
  await page.getByRole('heading', { name: 'Pairing requests' }).waitFor();
  await shoot(page, 'agents');

  await page.getByRole('link', { name: 'Policies' }).click();
  await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: 'run.cedar' }).click();
  const editor = page.getByRole('textbox', { name: /Candidate/ });
  await editor.waitFor();
  await editor.fill((await editor.inputValue()).replace('@approval("required")\n@reason("printing', '@reason("printing'));
  await page.getByRole('button', { name: 'Replay' }).click();
  await page.getByText(/^Replayed \d+ recorded decisions/).waitFor();
  await shoot(page, 'policies');
} finally {
  await browser.close();
  await stranger?.close();
  await stack.close();
}
// Commands left waiting for approval hold the operator's requests open; nothing else is left to do.
process.exit(0);
