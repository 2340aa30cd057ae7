// The approval card of a command that runs code Corral cannot see
// (`python3 -c …`), in headless Chromium against a real gateway: a policy
// asks about python3, an operator runs a one-liner, and the approver is told.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { approvalCard, approvalsTab, deny, inContext, launchChromium, runOnNode, settled, startStack, type Stack } from './stack.ts';

const PYTHON_ASKS = '@id("python-asks")\n@approval("required")\n@reason("running python needs one approver")\npermit (principal == Human::"operator", action == Action::"system.run", resource == Command::"python3");\n';
const REASON = 'python3 runs the code given with -c; Corral cannot see what it does';

/** Adds a policy file to the active set through the HTTP API, with the gateway token. */
async function addPolicy(stack: Stack, name: string, text: string): Promise<void> {
  const headers = { authorization: `Bearer ${stack.token}`, 'content-type': 'application/json' };
  const active = (await (await fetch(`${stack.url}/api/policies`, { headers })).json()) as { hash: string; files: Array<{ name: string; text: string }> };
  const files = [...active.files.map(({ name: n, text: t }) => ({ name: n, text: t })), { name, text }];
  const response = await fetch(`${stack.url}/api/policies/activate`, { method: 'POST', headers, body: JSON.stringify({ files, baseHash: active.hash }) });
  assert.equal(response.status, 200, await response.text());
}

describe('the approval card of a command that runs code Corral cannot see', () => {
  let stack: Stack;
  let browser: Browser;
  before(async () => {
    stack = await startStack();
    await addPolicy(stack, 'python-asks.cedar', PYTHON_ASKS);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  it('says so above the command, in the gateway\'s words, offers no Approve always, and is approved once (python3 -c)', () =>
    inContext(browser, async (context) => {
      const page = await approvalsTab(context, stack);
      const running = settled(runOnNode(stack, ['python3', '-c', 'print("runs-code-card")']));
      const card = approvalCard(page, 'runs-code-card');
      await card.waitFor();
      const note = card.locator('.runs-code');
      assert.match(await note.innerText(), new RegExp(`^Runs code Corral cannot see\\. ${REASON}\\. Read every argument before approving\\. It can be approved once only`));
      // Above the command's details, not after them.
      const [noteTop, detailsTop] = await Promise.all([note.boundingBox(), card.locator('dl.facts').first().boundingBox()]);
      assert.ok(noteTop && detailsTop && noteTop.y < detailsTop.y);
      assert.equal(await card.getByRole('button', { name: 'Approve always' }).count(), 0);
      // The HTTP API the card reads carries the flag as the gateway worked it out.
      const listed = (await (await fetch(`${stack.url}/api/approvals`, { headers: { authorization: `Bearer ${stack.token}` } })).json()) as { approvals: Array<{ id: string; action: { runsCode?: unknown } }> };
      const id = await card.getAttribute('data-approval');
      assert.deepEqual(listed.approvals.find((a) => a.id === id)?.action.runsCode, { program: 'python3', via: '-c', reason: REASON });
      // So does the protocol's (chat approvals), which refuses allow-always for it, naming why; the approval stays pending.
      const overProtocol = (await stack.operator.request('exec.approval.get', { id })) as { request: { runsCode?: unknown } };
      assert.deepEqual(overProtocol.request.runsCode, { program: 'python3', via: '-c', reason: REASON });
      await assert.rejects(stack.operator.request('exec.approval.resolve', { id, decision: 'allow-always', reviewer: { channel: 'chat', accountId: 'acme', senderId: 'alice' } }), (error: { code?: string; wire?: { code?: string; message?: string } }) => {
        assert.equal(error.code, 'GATEWAY_REQUEST_FAILED');
        assert.equal(error.wire?.code, 'INVALID_REQUEST');
        assert.match(error.wire?.message ?? '', /^allow-always is refused for a command that runs code Corral cannot see \(python3 runs the code given with -c/);
        return true;
      });
      assert.equal(stack.gateway.approvals.get(id!).status, 'pending');
      await card.getByRole('button', { name: 'Approve once' }).click();
      await card.waitFor({ state: 'detached' });
      await running;
      const approval = stack.gateway.approvals.get(id!);
      assert.deepEqual([approval.decision, approval.approvers.length], ['allow-once', 1]);
    }));

  it("shows the script a run of one is bound to (python3 build.py): its path, the start of its SHA-256 with the whole in its title, what it holds to read, line by line and spelled out, and the gateway's warning; Approve always is offered, as the gateway allows it, and makes its standing grant (regression: the card showed neither the file nor its content's digest, and an approver far from the node could not read what they approved)", () =>
    inContext(browser, async (context) => {
      // Where the node's sandbox can read it: a script it could not open is refused at prepare, with no approval asked.
      const dir = mkdtempSync(join(stack.work, 'script-card-'));
      const script = join(dir, 'build.py');
      // A tab-indented line holding a right-to-left override, which would draw "evil" backwards unless spelled out, and a Cyrillic а.
      const text = 'print("script-card")\nif True:\n\tprint("\u202Eevil")\n# s\u0430fe\n';
      writeFileSync(script, text);
      const sha256 = createHash('sha256').update(text).digest('hex');
      try {
        const page = await approvalsTab(context, stack);
        const running = settled(runOnNode(stack, ['python3', script]));
        const card = approvalCard(page, 'build.py');
        await card.waitFor();
        const bound = card.locator('dd.script');
        const [first, summary] = (await bound.innerText()).split('\n');
        assert.equal(first, `${script} sha256:${sha256.slice(0, 12)}… — approved for what it holds now; changed, it is asked for again`);
        // Folded until opened; then each line numbered, as the node read it to hash it.
        assert.equal(summary, `Read it: 4 lines, ${Buffer.byteLength(text)} bytes`);
        const lines = bound.locator('details.script-text .line');
        assert.equal(await lines.count(), 0, 'not drawn while folded');
        await bound.locator('details.script-text summary').click();
        await lines.first().waitFor();
        assert.deepEqual(await lines.allTextContents(), ['1print("script-card")\n', '2if True:\n', '3\tprint("\\u202Eevil")\n', '4# s\u0430fe\n']);
        assert.equal(await bound.locator('details.script-text .look-alikes').innerText(), 'Letters beyond ASCII in it, which can pass for others: \u0430 U+0430 Cyrillic');
        assert.equal(await bound.getByText(`sha256:${sha256.slice(0, 12)}…`).getAttribute('title'), `sha256:${sha256}`);
        // The gateway makes a standing grant for it, bound to that content, and says so in the approval the card reads: Approve always is offered (enabled once the new card has stood still).
        const listed = (await (await fetch(`${stack.url}/api/approvals`, { headers: { authorization: `Bearer ${stack.token}` } })).json()) as { approvals: Array<{ id: string; action: { allowAlways?: unknown; runsCode?: { reason: string } } }> };
        const id = await card.getAttribute('data-approval');
        const action = listed.approvals.find((a) => a.id === id)?.action;
        assert.equal(action?.allowAlways, true);
        assert.match(action?.runsCode?.reason ?? '', /^python3 runs the script .*: an approval covers what it holds now$/);
        const note = await card.locator('.runs-code').innerText();
        assert.ok(note.startsWith(`Runs code Corral cannot see. ${action!.runsCode!.reason}`), note);
        assert.ok(note.endsWith('Read every argument before approving. Approving covers the script as it is now only (its SHA-256 below): changed, it is asked for again.'), note);
        await card.getByRole('button', { name: 'Approve always', disabled: false }).waitFor();
        assert.equal(await card.getByText(/^Approve always lets/).innerText(), 'Approve always lets this exact action run again without asking, while the script holds what it holds now.');
        await card.getByRole('button', { name: 'Approve always' }).click();
        await card.waitFor({ state: 'detached' });
        await running;
        const approval = stack.gateway.approvals.get(id!);
        assert.deepEqual([approval.decision, approval.standingGrant], ['allow-always', 'made']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }));

  it('says nothing of the kind on a card whose command shows what it does (printf), which still offers Approve always', () =>
    inContext(browser, async (context) => {
      const page = await approvalsTab(context, stack);
      const running = settled(runOnNode(stack, ['printf', 'plain-card']));
      const card = approvalCard(page, 'plain-card');
      await card.waitFor();
      assert.equal(await card.locator('.runs-code').count(), 0);
      assert.equal(await card.getByRole('button', { name: 'Approve always' }).count(), 1);
      await deny(card, 'not now');
      assert.equal(await running, false);
    }));
});
