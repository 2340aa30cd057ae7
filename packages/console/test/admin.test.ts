// The console's admin pages in headless Chromium against a real gateway:
// the kill switch, node pairing and revocation, policy validation, replay and
// activation, a hand edit of the policy directory the gateway refused, a set
// in force left unrecorded, an approval nobody answers, and what each role
// is shown.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NodeHost } from '@corral/node';
import type { Browser, Page, Route } from 'playwright-core';
import { approvalCard, launchChromium, rejectPairing, runOnNode, signedInTab, signIn, startStack, unpairedNode, type Stack } from './stack.ts';

/** Short, so that a test can watch an approval expire. */
const APPROVAL_TTL_MS = 4_000;

describe('the console for admins, approvers and auditors', () => {
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  let stranger: NodeHost;
  let strangerConnected: Promise<void>;
  const password = 'a long enough password';

  before(async () => {
    stack = await startStack({ approvalTtlMs: APPROVAL_TTL_MS });
    stack.gateway.identity.agents.create({ name: 'invoice-intake', process: 'invoice-intake', owner: 'finance@example.com', scopes: ['records:read'] });
    await stack.gateway.identity.localUsers.create('alice', password, ['approver']);
    await stack.gateway.identity.localUsers.create('audra', password, ['auditor']);
    stranger = unpairedNode(stack, 'stranger', 'build-runner-2');
    strangerConnected = stranger.start();
    strangerConnected.catch(() => {});
    browser = await launchChromium();
    page = await signedInTab(browser, stack);
  });
  after(async () => {
    await browser?.close();
    await stranger?.close();
    await stack?.close();
  });

  describe('agents and nodes', () => {
    it('suspends an agent with the reason given (the kill switch), then resumes it', async () => {
      await page.getByRole('link', { name: 'Agents and nodes' }).click();
      const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'invoice-intake' }) });
      await row.getByRole('button', { name: 'Suspend…' }).click();
      await row.getByLabel('Reason').fill('invoices paid twice');
      await row.getByRole('button', { name: 'Suspend invoice-intake' }).click();
      await row.locator('.status', { hasText: 'suspended' }).waitFor();
      assert.equal(stack.gateway.identity.agents.get('invoice-intake').status, 'suspended');
      await row.getByRole('button', { name: 'Resume' }).click();
      await row.locator('.status', { hasText: 'active' }).waitFor();
      assert.equal(stack.gateway.identity.agents.get('invoice-intake').status, 'active');
    });

    it('keeps the suspend form and its reason when the gateway refuses, so Suspend can be pressed again (regression: the form closed and the reason was gone while the agent ran on)', async () => {
      const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'invoice-intake' }) });
      await page.route('**/api/agents/*/suspend', (route: Route) => route.fulfill({ status: 503, contentType: 'application/json', headers: { 'retry-after': '1' }, body: JSON.stringify({ error: 'unavailable', message: 'the gateway is busy: try again shortly', retryAfterS: 1 }) }));
      try {
        await row.getByRole('button', { name: 'Suspend…' }).click();
        await row.getByLabel('Reason').fill('invoices paid twice');
        await row.getByRole('button', { name: 'Suspend invoice-intake' }).click();
        await page.getByRole('alert').filter({ hasText: 'the gateway is busy' }).waitFor();
        assert.equal(await row.getByLabel('Reason').inputValue(), 'invoices paid twice');
      } finally {
        await page.unrouteAll();
      }
      await row.getByRole('button', { name: 'Suspend invoice-intake' }).click();
      await row.locator('.status', { hasText: 'suspended' }).waitFor();
      assert.equal(stack.gateway.identity.agents.get('invoice-intake').status, 'suspended');
      await row.getByRole('button', { name: 'Resume' }).click();
      await row.locator('.status', { hasText: 'active' }).waitFor();
    });

    it('approves a node waiting to pair, shown with the commands approving it grants, which then connects', async () => {
      const request = page.locator('tr', { has: page.getByRole('rowheader', { name: 'build-runner-2' }) }).filter({ has: page.getByRole('button', { name: 'Approve' }) });
      await request.getByText(/system\.run\b.*system\.which/).waitFor();
      await request.getByRole('button', { name: 'Approve' }).click();
      await strangerConnected;
      assert.equal(stack.gateway.identity.nodes.get(stranger.device.deviceId).status, 'paired');
    });

    it('shows the agents a paired node may ask the control plane for, once an operator names them', async () => {
      const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'build-runner-2' }) }).filter({ has: page.getByRole('button', { name: /^Revoke build-runner-2/ }) });
      await row.getByRole('cell', { name: '-', exact: true }).waitFor();
      stack.gateway.identity.nodes.setAgents(stranger.device.deviceId, stack.gateway.identity.agents.idsOf(['invoice-intake']));
      // The page fetches node lists every 5 s.
      await row.getByRole('cell', { name: 'invoice-intake', exact: true }).waitFor();
    });

    it('rejects a node waiting to pair, which is then refused', async () => {
      const unwanted = unpairedNode(stack, 'unwanted', 'unknown-laptop');
      void unwanted.start().catch(() => {});
      try {
        const request = page.locator('tr', { has: page.getByRole('rowheader', { name: 'unknown-laptop' }) }).filter({ has: page.getByRole('button', { name: 'Reject' }) });
        // The page fetches node lists every 5 s; the request shows up on one of them.
        await request.waitFor();
        await rejectPairing(request);
        assert.equal(stack.gateway.identity.nodes.get(unwanted.device.deviceId).status, 'revoked');
      } finally {
        await unwanted.close();
      }
    });

    it('revokes a paired node', async () => {
      await page.getByRole('button', { name: 'Revoke build-runner-2' }).click();
      await page.locator('tr', { has: page.getByRole('rowheader', { name: 'build-runner-2' }) }).locator('.status', { hasText: 'revoked' }).waitFor();
      assert.equal(stack.gateway.identity.nodes.get(stranger.device.deviceId).status, 'revoked');
    });
  });

  describe('approvals', () => {
    it('shows an approval nobody answered as expired, without the buttons, and the command does not run', async () => {
      const running = runOnNode(stack, ['printf', 'too late'], APPROVAL_TTL_MS + 5_000).then(
        () => 'ran',
        (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code,
      );
      await page.getByRole('link', { name: 'Approvals' }).click();
      const card = approvalCard(page, "printf 'too late'");
      await card.getByRole('button', { name: 'Approve once' }).waitFor();
      await card.locator('.status', { hasText: 'expired' }).waitFor();
      assert.equal(await card.getByRole('button').count(), 0);
      // Refused either way: denied as expired, or (waiting right up to the expiry) still pending.
      assert.ok(['SYSTEM_RUN_DENIED', 'APPROVAL_PENDING'].includes(String(await running)), 'the command did not run');
      assert.equal(stack.gateway.approvals.get((await card.getAttribute('data-approval'))!).status, 'expired');
    });
  });

  describe('audit explorer', () => {
    it('pages through more records than one page holds, older and back to newer', async () => {
      // 30 allowed commands: a decision and a result each, past the page of 50.
      for (let i = 0; i < 3; i++) await Promise.all(Array.from({ length: 10 }, (_, j) => runOnNode(stack, ['echo', `page-${i * 10 + j}`])));
      await page.getByRole('link', { name: 'Audit' }).click();
      const first = page.locator('tbody tr').first();
      await first.waitFor();
      const newest = Number(await first.getAttribute('data-seq'));
      assert.equal(await page.locator('tbody tr').count(), 50);
      await page.getByRole('button', { name: 'Older' }).click();
      await page.locator(`tbody tr[data-seq="${newest - 50}"]`).waitFor();
      assert.ok(Number(await page.locator('tbody tr').first().getAttribute('data-seq')) < newest - 49);
      await page.getByRole('button', { name: 'Newer' }).click();
      await page.locator(`tbody tr[data-seq="${newest}"]`).waitFor();
    });
  });

  describe('policies', () => {
    const withoutEcho = (text: string) => text.replace(/@id\("echo-allowed"\)[\s\S]*?Command::"echo"\);/, '');

    it('shows where an invalid candidate is wrong, and refuses to activate it', async () => {
      await page.getByRole('link', { name: 'Policies' }).click();
      await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: 'run.cedar' }).click();
      const editor = page.getByRole('textbox', { name: 'Candidate run.cedar' });
      await editor.fill(`${await editor.inputValue()}\npermit (principal, action, resource`);
      await page.getByRole('button', { name: 'Validate' }).click();
      await page.getByRole('status').filter({ hasText: /problem/ }).locator('li', { hasText: 'run.cedar' }).first().waitFor();
      const before = await fetchPolicyHash(stack);
      await page.getByRole('button', { name: 'Activate' }).click();
      await page.getByRole('alert').first().waitFor();
      assert.equal(await fetchPolicyHash(stack), before);
      await page.getByRole('button', { name: 'Discard changes' }).click();
    });

    it('spells out under the editor each line whose characters draw nothing or reorder it, so a permit cannot pass for a comment (regression: a bidi override reached the reader raw)', async () => {
      const editor = page.getByRole('textbox', { name: 'Candidate run.cedar' });
      const text = await editor.inputValue();
      const line = text.split('\n').length + 1;
      await editor.fill(`${text}\n// harmless \u202E\u2066permit (principal, action, resource);\u2069`);
      const note = page.locator('.hidden-characters');
      await note.locator('li', { hasText: `${line}: // harmless \\u202E\\u2066permit (principal, action, resource);\\u2069` }).waitFor();
      assert.equal(await note.locator('li').count(), 1);
      assert.match((await editor.getAttribute('aria-describedby')) ?? '', /\S/);
      await page.getByRole('button', { name: 'Discard changes' }).click();
      await note.waitFor({ state: 'detached' });
    });

    it('runs the active set\'s test cases against the candidate', async () => {
      await page.getByRole('button', { name: 'Test' }).click();
      const summary = page.getByRole('status').filter({ hasText: /cases pass/ });
      await summary.waitFor();
      const [, passed, total] = /(\d+) of (\d+) cases pass/.exec(await summary.innerText()) ?? [];
      assert.ok(Number(total) > 0 && passed === total, `${passed} of ${total}`);
    });

    it('replays recorded decisions under the candidate and shows which would change', async () => {
      await runOnNode(stack, ['echo', 'recorded']);
      const editor = page.getByRole('textbox', { name: 'Candidate run.cedar' });
      await editor.fill(withoutEcho(await editor.inputValue()));
      await page.getByRole('button', { name: 'Replay' }).click();
      const changed = page.locator('.results tbody tr', { hasText: 'allow' });
      await changed.first().waitFor();
      assert.deepEqual(await changed.first().locator('td').allInnerTexts().then((cells) => cells.slice(3)), ['allow', 'deny']);
    });

    it('activates the candidate over the set it was edited from; the gateway then decides by it', async () => {
      await page.getByRole('button', { name: 'Activate' }).click();
      await page.getByText(/^Activated\./).waitFor();
      await assert.rejects(runOnNode(stack, ['echo', 'after activation']), (e: { wire?: { details?: { code?: string } } }) => e.wire?.details?.code === 'SYSTEM_RUN_DENIED');
    });

    describe('when an admin edited the policy directory by hand into a set that does not validate', () => {
      const broken = () => join(stack.stateDir, 'policies', 'broken.cedar');
      const refused = () => page.getByRole('alert', { name: 'An edit of the policy directory was refused' });

      it('says on loading the page that the edit was refused, with each issue by file and line and no path, what decides meanwhile and what to do', async () => {
        const before = await fetchPolicyHash(stack);
        writeFileSync(broken(), 'permit (principal, action, resource\n');
        await page.goto(`${stack.url}/policies`);
        await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: 'run.cedar' }).click();
        await refused().locator('li', { hasText: /^broken\.cedar:\d+/ }).first().waitFor();
        const text = await refused().innerText();
        assert.match(text, /POLICY_SET_INVALID/);
        assert.match(text, /goes on deciding with the set in use/);
        assert.match(text, /fix the files/i);
        assert.match(text, /activate/i);
        assert.ok(!text.includes(stack.stateDir), 'the alert names no path on the gateway host');
        // The editor holds the set in use, not the refused files.
        await page.getByRole('textbox', { name: 'Candidate run.cedar' }).waitFor();
        assert.equal(await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: /broken\.cedar/ }).count(), 0);
        assert.equal(await fetchPolicyHash(stack), before);
      });

      it('is gone once a valid set is activated from the editor, which replaces the refused files', async () => {
        await refused().waitFor();
        const editor = page.getByRole('textbox', { name: 'Candidate run.cedar' });
        await editor.fill(`${await editor.inputValue()}\n// activated over a refused hand edit\n`);
        await page.getByRole('button', { name: 'Activate' }).click();
        await page.getByText(/^Activated\./).waitFor();
        await refused().waitFor({ state: 'detached' });
        assert.equal(existsSync(broken()), false);
      });
    });

    describe('when the set in force was activated but neither recorded in the audit log nor put back', () => {
      const denying = () => page.getByRole('alert', { name: /^Every request is denied/ });

      it('says every request is denied until a set is activated and recorded, and offers to activate the set as it stands, which ends it', async () => {
        // The gateway's own tests bring that state about (policy-activation-unrecorded.test.ts, by making the
        // audit log refuse the record and holding the activation lock); here the gateway's real answer carries
        // the flag it then sets, and the activation that follows is the real one.
        const unrecorded = async (route: Route) => {
          if (route.request().method() !== 'GET') return route.fallback();
          const response = await route.fetch();
          await route.fulfill({ response, json: { ...((await response.json()) as object), unrecorded: true } });
        };
        await page.route('**/api/policies', unrecorded);
        try {
          await page.goto(`${stack.url}/policies`);
          await denying().waitFor();
          const text = await denying().innerText();
          assert.match(text, /could not record/);
          assert.match(text, /activate/i);
        } finally {
          await page.unroute('**/api/policies', unrecorded);
        }
        await page.getByRole('button', { name: 'Activate' }).click();
        await page.getByText(/^Activated\./).waitFor();
        await denying().waitFor({ state: 'detached' });
      });

      it('shows it as soon as an activation answers that it could be neither recorded nor undone, loading the status again', async () => {
        // The gateway's answers in that state (policy-activation-unrecorded.test.ts), given in its place.
        let answered = false;
        const activation = async (route: Route) => {
          answered = true;
          await route.fulfill({ status: 500, json: { error: 'internal_error', code: 'POLICY_NOT_LOADED', message: 'the activation could not be recorded in the audit log, and the set it replaced could not be put back' } });
        };
        const status = async (route: Route) => {
          if (route.request().method() !== 'GET' || !answered) return route.fallback();
          const response = await route.fetch();
          await route.fulfill({ response, json: { ...((await response.json()) as object), unrecorded: true } });
        };
        await page.route('**/api/policies/activate', activation);
        await page.route('**/api/policies', status);
        try {
          await page.goto(`${stack.url}/policies`);
          await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: 'run.cedar' }).click();
          const editor = page.getByRole('textbox', { name: 'Candidate run.cedar' });
          await editor.fill(`${await editor.inputValue()}\n// never recorded\n`);
          await page.getByRole('button', { name: 'Activate' }).click();
          await page.getByRole('alert').filter({ hasText: 'POLICY_NOT_LOADED' }).waitFor();
          await denying().waitFor();
        } finally {
          await page.unroute('**/api/policies/activate', activation);
          await page.unroute('**/api/policies', status);
        }
        await page.getByRole('button', { name: 'Discard changes' }).click();
      });
    });
  });

  describe('roles', () => {
    it('shows an auditor activity, the audit log and policies, read-only', async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(page, stack, 'audra', password);
      assert.deepEqual(await page.getByRole('navigation', { name: 'Console' }).getByRole('link').allTextContents(), ['Live activity', 'Audit', 'Policies']);
      await page.getByRole('link', { name: 'Policies' }).click();
      await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: 'run.cedar' }).click();
      const editor = page.getByRole('textbox', { name: 'run.cedar' });
      await editor.waitFor();
      assert.equal(await editor.getAttribute('readonly'), '');
      assert.equal(await page.getByRole('button', { name: 'Activate' }).count(), 0);
    });

    it('shows an approver activity, approvals, agents and nodes, without the kill switch', async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(page, stack, 'alice', password);
      assert.deepEqual(await page.getByRole('navigation', { name: 'Console' }).getByRole('link').allTextContents(), ['Live activity', 'Approvals', 'Agents and nodes']);
      await page.getByRole('link', { name: 'Agents and nodes' }).click();
      await page.getByRole('rowheader', { name: 'invoice-intake' }).waitFor();
      assert.equal(await page.getByRole('button', { name: /Suspend/ }).count(), 0);
    });
  });
});

/** The active policy set's hash, through the HTTP API with the gateway token. */
async function fetchPolicyHash(stack: Stack): Promise<string> {
  const response = await fetch(`${stack.url}/api/policies`, { headers: { authorization: `Bearer ${stack.token}` } });
  return ((await response.json()) as { hash: string }).hash;
}
