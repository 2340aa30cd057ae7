// Screenshots of every console page for the README, from a real gateway and
// node with a little activity on them, in headless Chromium:
//
//   node packages/console/scripts/screenshots.ts [OUT_DIR]   (default docs/screenshots)
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { NodeHost } from '@corral/node';
import type { Page } from 'playwright-core';
import { launchChromium, runOnNode, startStack, type Stack } from '../test/stack.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const outDir = resolve(process.argv[2] ?? join(ROOT, 'docs', 'screenshots'));

/** Activity worth looking at: allowed, denied, approved and pending commands, an agent, a node asking to pair. */
async function seed(stack: Stack): Promise<NodeHost> {
  const identity = stack.gateway.identity;
  identity.agents.create({ name: 'invoice-intake', process: 'invoice-intake', owner: 'finance@example.com', scopes: ['records:read', 'payments:create'] });
  identity.agents.create({ name: 'report-writer', process: 'monthly-report', owner: 'controller@example.com', scopes: ['records:read'] });
  identity.agents.suspend('report-writer');
  await runOnNode(stack, ['echo', 'invoice-0001 summarised']);
  await runOnNode(stack, ['rm', '-rf', '/srv/invoices']).catch(() => {});
  const printed = runOnNode(stack, ['printf', 'invoice-0002 paid']);
  const once = await waitForPending(stack, 'printf');
  stack.gateway.invoker.resolveApproval(once, 'allow-once', 'local:alice');
  await printed;
  // Left pending with one of its two approvals: the inbox shows "1 of 2".
  void runOnNode(stack, ['tee', '/srv/invoices/outbox/payment-4711.txt'], 600_000).catch(() => {});
  const two = await waitForPending(stack, 'tee');
  stack.gateway.invoker.resolveApproval(two, 'allow-once', 'local:alice');
  void runOnNode(stack, ['printf', 'invoice-0003 paid'], 600_000).catch(() => {});
  await waitForPending(stack, 'printf');
  // A second machine asking to be paired.
  const stranger = new NodeHost({ gateway: stack.gateway.url, token: stack.token, stateDir: join(stack.stateDir, '..', 'node-2'), name: 'build-runner-2', maxBackoffMs: 200 });
  void stranger.start().catch(() => {});
  return stranger;
}

async function waitForPending(stack: Stack, program: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = stack.gateway.approvals.list({ status: 'pending' }).find((a) => (a.action.argv as string[] | undefined)?.[0] === program);
    if (found) return found.id;
    if (Date.now() > deadline) throw new Error(`no approval for ${program} appeared`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function shoot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(outDir, `${name}.png`) });
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
  await shoot(page, 'approvals');

  await page.getByRole('link', { name: 'Audit' }).click();
  await page.getByRole('status').filter({ hasText: /^log verified/ }).waitFor();
  const row = page.locator('tbody tr', { hasText: 'invoice-0002 paid' }).first();
  await row.getByRole('button', { name: /^Open record/ }).click();
  await page.getByText('proof verified', { exact: true }).waitFor();
  await shoot(page, 'audit');

  await page.getByRole('link', { name: 'Agents and nodes' }).click();
  await page.getByRole('cell', { name: 'invoice-intake' }).or(page.getByRole('rowheader', { name: 'invoice-intake' })).first().waitFor();
  await page.getByRole('heading', { name: 'Pairing requests' }).waitFor();
  await shoot(page, 'agents');

  await page.getByRole('link', { name: 'Policies' }).click();
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
