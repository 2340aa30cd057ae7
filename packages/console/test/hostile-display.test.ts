// What an approver or auditor is shown when the text is chosen against them,
// and what other tabs of the console do when one signs out, in headless
// Chromium against a real gateway.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { GatewayClient } from '@corral/gateway';
import { createDeviceIdentity } from '@corral/identity';
import type { NodeHost } from '@corral/node';
import type { Browser, BrowserContext, Locator, Page, Route } from 'playwright-core';
import { approvalCard, approvalsTab, createPayment, deny, inContext, launchChromium, newTab, rejectPairing, runOnNode, settled, signedInTab, signIn, startStack, unpairedNode, type Stack } from './stack.ts';

describe('the console against hostile text and stale tabs', () => {
  let stack: Stack;
  let browser: Browser;
  /** An auditor: no page of theirs asks the gateway anything by itself (an approver's navigation polls the approval count). */
  const auditor = { username: 'audra', password: 'audra reads the audit log' };

  before(async () => {
    stack = await startStack();
    await stack.gateway.identity.localUsers.create(auditor.username, auditor.password, ['auditor']);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  /** Two nodes that go on asking to pair: another `runner-1`, and a `runnеr-1` spelled with a Cyrillic е; `suffix` keeps their state directories apart from another test's. */
  function namesakesAskToPair(suffix: string): { twin: NodeHost; lookAlike: NodeHost } {
    const twin = unpairedNode(stack, `twin${suffix}`, 'runner-1');
    const lookAlike = unpairedNode(stack, `look-alike${suffix}`, 'runn\u0435r-1');
    void twin.start().catch(() => {});
    void lookAlike.start().catch(() => {});
    return { twin, lookAlike };
  }

  describe('an approval whose text reads as something it is not', () => {
    /** Asks for a run of `argv` and a payment of €4,200.00 to `payee`, and waits for both approval cards, each found by text it shows. */
    async function askForBoth(page: Page, argv: string[], payee: string, shown: { command: string; payment: string }) {
      const running = settled(runOnNode(stack, argv));
      const paying = settled(createPayment(stack, { amount: 420_000, currency: 'EUR', payee }));
      const command = approvalCard(page, shown.command);
      const payment = approvalCard(page, shown.payment);
      await command.waitFor();
      await payment.waitFor();
      return { command, payment, running, paying };
    }

    /** Denies both cards `askForBoth` waited for, giving `reason`, and asserts that neither the run nor the payment went ahead. */
    async function denyBoth(asked: Awaited<ReturnType<typeof askForBoth>>, reason: string): Promise<void> {
      for (const card of [asked.command, asked.payment]) await deny(card, reason);
      assert.equal(await asked.running, false);
      assert.equal(await asked.paying, false);
    }

    /** Where on screen, left to right, the `1` and the `2` of the first ' 1 2 ' in `element`'s text are drawn. */
    const digitsAt = (element: Locator) =>
      element.evaluate((root) => {
        const walker = root.ownerDocument.createTreeWalker(root, 4 /* NodeFilter.SHOW_TEXT */);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          const at = node.textContent!.indexOf(' 1 2 ');
          if (at < 0) continue;
          const left = (offset: number) => {
            const range = root.ownerDocument.createRange();
            range.setStart(node, offset);
            range.setEnd(node, offset + 1);
            return range.getBoundingClientRect().left;
          };
          return { one: left(at + 1), two: left(at + 3) };
        }
        throw new Error('no " 1 2 " in the text');
      });

    it('names the Cyrillic а in a URL argument and the Cyrillic АСМЕ of a payee, with their code points (regression: the card read exactly as example.com and ACME GmbH)', () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const asked = await askForBoth(page, ['printf', 'https://ex\u0430mple.com/pay'], '\u0410\u0421\u041C\u0415 GmbH', { command: 'mple.com/pay', payment: 'GmbH' });
        const { command, payment } = asked;
        const commandNote = await command.locator('.look-alikes').innerText();
        assert.match(commandNote, /argument 2/);
        assert.match(commandNote, /U\+0430 Cyrillic/);
        const paymentNote = await payment.locator('.look-alikes').innerText();
        assert.match(paymentNote, /payee/);
        for (const code of ['0410', '0421', '041C', '0415']) assert.match(paymentNote, new RegExp(`U\\+${code} Cyrillic`));
        await denyBoth(asked, 'look-alike text');
      }));

    it('names the spaces a payee and an argument hold at either end or in a row, which the page does not draw (regression: "ACME  GmbH " read as ACME GmbH)', () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const asked = await askForBoth(page, ['printf', 'trailing-space '], 'Double  Space Supplier ', { command: 'trailing-space', payment: 'Space Supplier' });
        const { command, payment } = asked;
        assert.match(await command.locator('.look-alikes').innerText(), /argument 2: a space at the end/);
        const paymentNote = await payment.locator('.look-alikes').innerText();
        assert.match(paymentNote, /payee: a space at the end, 2 spaces in a row/);
        await denyBoth(asked, 'spaced text');
      }));

    it('keeps four of the thousands of combining marks stacked on one letter of an argument, says how many it removed, in the card and in live activity (regression: all of them reached the page, where a font stacks them over the rows and the Approve button around)', () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', `zalgo-x${'\u0316'.repeat(3000)}-tail`]));
        const card = approvalCard(page, 'zalgo-x');
        await card.waitFor();
        const stacked = /\p{M}{5}/u;
        const title = await card.getByRole('heading').innerText();
        assert.ok(title.includes(`zalgo-x${'\u0316'.repeat(4)}[2996 combining marks removed]-tail`), `the title reads ${title.length} characters: ${title.slice(0, 80)}`);
        assert.doesNotMatch(await page.locator('main').innerText(), stacked);
        await page.getByRole('link', { name: 'Live activity' }).click();
        const live = page.locator('tbody tr', { hasText: 'zalgo-x' }).first();
        await live.waitFor();
        assert.match(await live.innerText(), /\[\d+ combining marks removed\]/); // the gateway cuts a summary short first
        assert.doesNotMatch(await page.locator('main').innerText(), stacked);
        await page.getByRole('link', { name: 'Approvals' }).click();
        await deny(card, 'stacked marks');
        assert.equal(await running, false);
      }));

    it('draws a command line and a payee holding Hebrew letters in the order they are stored, in the card and in live activity (regression: between two Hebrew letters, printf א 1 2 ב read as printf ב 2 1 א, its arguments in the wrong order)', () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', '\u05D0', '1', '2', '\u05D1', 'bidi-order']));
        const card = approvalCard(page, 'bidi-order');
        await card.waitFor();
        const title = await digitsAt(card.getByRole('heading'));
        assert.ok(title.one < title.two, `the card's title draws 2 at ${title.two}, left of 1 at ${title.one}`);
        const paying = settled(createPayment(stack, { amount: 420_000, currency: 'EUR', payee: 'Bidi \u05D0 1 2 \u05D1 Payee' }));
        const payment = approvalCard(page, 'Payee');
        const payee = await digitsAt(payment.locator('dt:text-is("Payee") + dd'));
        assert.ok(payee.one < payee.two, `the payee draws 2 at ${payee.two}, left of 1 at ${payee.one}`);
        await page.getByRole('link', { name: 'Live activity' }).click();
        const summary = page.locator('tbody tr', { hasText: 'bidi-order' }).first().locator('td.summary');
        await summary.waitFor();
        const listed = await digitsAt(summary);
        assert.ok(listed.one < listed.two, `live activity draws 2 at ${listed.two}, left of 1 at ${listed.one}`);
        await page.getByRole('link', { name: 'Approvals' }).click();
        for (const shown of [card, payment]) await deny(shown, 'reordered');
        assert.equal(await running, false);
        assert.equal(await paying, false);
      }));

    it("spells out a combining mark that opens an argument, so it draws over none of the quote, list number or colon the card writes before it (regression: an enclosing circle as an argument hid the note's colon and drew over the command line's quote)", () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', '\u20DD', '\u0338=x', 'stray-mark']));
        const card = approvalCard(page, 'stray-mark');
        await card.waitFor();
        assert.equal(await card.getByRole('heading').innerText(), "printf $'\\u20DD' $'\\u0338=x' stray-mark");
        // A mark shown on its own sits on a dotted circle (U+25CC), as in the note's list of characters.
        assert.doesNotMatch(await card.innerText(), /(?<![\p{L}\p{N}\p{M}\u25CC])\p{M}/u);
        await deny(card, 'stray mark');
        assert.equal(await running, false);
      }));

    it('adds no note to an approval that is ASCII throughout, each space showing', () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', 'https://example.com/pay']));
        const card = approvalCard(page, 'example.com/pay');
        await card.waitFor();
        assert.equal(await card.locator('.look-alikes').count(), 0);
        await deny(card, 'not now');
        assert.equal(await running, false);
      }));
  });

  describe('a node asking to pair', () => {
    it('says when another node already has its name, and names a Cyrillic letter in a look-alike name (regression: a second runner-1 read as the runner-1 already paired)', async () => {
      const { twin, lookAlike } = namesakesAskToPair('');
      const context = await browser.newContext();
      try {
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Agents and nodes' }).click();
        // A pairing request's row, not the node's row in the list of nodes.
        const request = (node: NodeHost) => page.locator('tr', { hasText: node.device.deviceId.slice(0, 16) }).filter({ has: page.getByRole('button', { name: 'Reject' }) });
        const twinRow = request(twin);
        const lookAlikeRow = request(lookAlike);
        await twinRow.waitFor();
        await lookAlikeRow.waitFor();
        const paired = stack.node.device.deviceId.slice(0, 16);
        assert.match(await twinRow.locator('.look-alikes').innerText(), new RegExp(`another node is named runner-1 \\(${paired}`));
        assert.match(await lookAlikeRow.locator('.look-alikes').innerText(), /U\+0435 Cyrillic/);
        for (const row of [twinRow, lookAlikeRow]) await rejectPairing(row);
      } finally {
        await context.close();
        await twin.close();
        await lookAlike.close();
      }
    });
  });

  describe('pairing requests that move under the pointer', () => {
    it('ignores a click on Approve when the request under the pointer has just slid there, as the one above it went (regression: the click paired a node the admin never read)', async () => {
      const above = unpairedNode(stack, 'slide-above', 'slide-above');
      const below = unpairedNode(stack, 'slide-below', 'slide-below');
      const context = await browser.newContext();
      try {
        void above.start().catch(() => {});
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Agents and nodes' }).click();
        const request = (name: string) => page.locator('tr', { has: page.getByRole('rowheader', { name }) }).filter({ has: page.getByRole('button', { name: 'Reject' }) });
        await request('slide-above').waitFor();
        void below.start().catch(() => {});
        await request('slide-below').waitFor();
        const approve = request('slide-above').getByRole('button', { name: 'Approve' });
        await approve.click({ trial: true });
        const box = (await approve.boundingBox())!;
        // Another admin (here the gateway itself) rejects the request above; the next refresh slides the one below under the pointer.
        stack.gateway.identity.nodes.decline(above.device.deviceId);
        await request('slide-above').waitFor({ state: 'detached' });
        await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(stack.gateway.identity.nodes.find(below.device.deviceId)?.status, 'pending');
        await rejectPairing(request('slide-below'));
      } finally {
        await context.close();
        await above.close();
        await below.close();
      }
    });
  });

  describe('a console window that comes to the front under the pointer', () => {
    /** Brings `page`'s window to the front as when a window over it closes (here it is minimized and restored), and waits until the page is told. */
    async function comesToFront(context: BrowserContext, page: Page): Promise<void> {
      const cdp = await context.newCDPSession(page);
      // Playwright tells every page it has the focus; without that, Chromium reports the window's own.
      await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: false });
      const { windowId } = await cdp.send('Browser.getWindowForTarget');
      await page.evaluate(() => (globalThis as unknown as EventTarget).addEventListener('focus', () => ((globalThis as { cameToFront?: boolean }).cameToFront = true)));
      await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState: 'minimized' } });
      await cdp.send('Browser.setWindowBounds', { windowId, bounds: { windowState: 'normal' } });
      await page.waitForFunction(() => (globalThis as { cameToFront?: boolean }).cameToFront === true);
    }

    /** Clicks the middle of `box` (where a button was) without waiting for it to be enabled, as a click that lands there does, and gives the gateway a moment. */
    async function clickWhere(page: Page, box: { x: number; y: number; width: number; height: number }): Promise<void> {
      await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }

    it("ignores a click on Approve once that comes as its window comes to the front, then takes one a moment later (regression: another site's window over the console, closed on the first click of a double click, handed the second click to Approve)", () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', 'under-the-window']));
        const card = approvalCard(page, 'under-the-window');
        const approve = card.getByRole('button', { name: 'Approve once' });
        await approve.click({ trial: true });
        const id = (await card.getAttribute('data-approval'))!;
        const box = (await approve.boundingBox())!;
        await comesToFront(context, page);
        await clickWhere(page, box);
        assert.equal(stack.gateway.approvals.get(id).status, 'pending');
        await approve.click();
        assert.equal(await running, true);
      }));

    it('ignores a click on Resume that comes as its window comes to the front, which would lift the kill switch (regression: the agent ran again)', () =>
      inContext(browser, async (context) => {
        const agents = stack.gateway.identity.agents;
        agents.create({ name: 'window-bot', process: 'window-tests', owner: 'bob@example.com', scopes: [] });
        agents.suspend('window-bot');
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Agents and nodes' }).click();
        const resume = page.locator('tr', { has: page.getByRole('rowheader', { name: 'window-bot' }) }).getByRole('button', { name: 'Resume' });
        await resume.click({ trial: true });
        const box = (await resume.boundingBox())!;
        await comesToFront(context, page);
        await clickWhere(page, box);
        assert.equal(agents.get('window-bot').status, 'suspended');
        await resume.click();
        await page.locator('tr', { has: page.getByRole('rowheader', { name: 'window-bot' }) }).locator('.status', { hasText: 'active' }).waitFor();
      }));
  });

  describe('rows that change what they say under the pointer', () => {
    /** What the page is asked to keep (these tests are type-checked without the DOM's types). */
    type Watched = {
      disabledOnceShown?: Promise<boolean>;
      timesDisabled?: number;
      MutationObserver: new (callback: () => void) => { observe(target: unknown, options: object): void; disconnect(): void };
    };

    /** Watches the page for the moment the row or card holding `button` first says `text`; disabledOnceShown() says whether `button` was then disabled. */
    async function watchFor(button: Locator, text: string): Promise<void> {
      await button.evaluate((element, shown) => {
        const row = element.closest('tr, article')!;
        (globalThis as unknown as Watched).disabledOnceShown = new Promise<boolean>((resolve) => {
          const watch = new (globalThis as unknown as Watched).MutationObserver(() => {
            if (!row.textContent!.includes(shown)) return;
            watch.disconnect();
            resolve((element as unknown as { disabled: boolean }).disabled);
          });
          watch.observe(element.ownerDocument.body, { subtree: true, childList: true, characterData: true });
        });
      }, text);
    }
    const disabledOnceShown = (page: Page) => page.evaluate(() => (globalThis as unknown as Watched).disabledOnceShown!);

    /** Clicks the middle of `button` where it is now, without waiting for it to be enabled, as a click that lands there does, and gives the gateway a moment. */
    async function clickOn(page: Page, button: Locator): Promise<void> {
      const box = (await button.boundingBox())!;
      await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
      await new Promise((resolve) => setTimeout(resolve, 300));
    }

    it("ignores a click on Approve that lands as its pairing request says something else, its node asking again under another name and a longer platform that widen the row (regression: the request was the same one, so Approve did not wait again, and the click paired a node by what its row said a moment before)", async () => {
      const device = createDeviceIdentity();
      // Each time, the gateway records what the node declares and refuses it until it is paired.
      const ask = (client: { displayName: string; platform: string }) =>
        GatewayClient.connect({ url: stack.gateway.url, token: stack.token, role: 'node', device, client, commands: ['system.run'] }).then(
          (connected) => connected.close(),
          () => undefined,
        );
      await ask({ displayName: 'shifting-node', platform: 'linux' });
      await inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Agents and nodes' }).click();
        const request = page.locator('tr', { hasText: device.deviceId.slice(0, 16) }).filter({ has: page.getByRole('button', { name: 'Reject' }) });
        const approve = request.getByRole('button', { name: 'Approve' });
        await approve.click({ trial: true });
        const platform = 'linux-x86_64-glibc-2.41-preempt-rt-build';
        await watchFor(approve, platform);
        await ask({ displayName: 'shifting-node-renamed', platform });
        assert.equal(await disabledOnceShown(page), true, 'Approve was enabled the moment its row said something else');
        await clickOn(page, approve);
        assert.equal(stack.gateway.identity.nodes.find(device.deviceId)?.status, 'pending');
        await rejectPairing(request);
      });
    });

    it("ignores a click on Approve once that lands as another approver's approval fills in the card's quorum (regression: the card was the same one, so its buttons did not wait again)", () =>
      inContext(browser, async (context) => {
        const page = await approvalsTab(context, stack);
        const running = settled(runOnNode(stack, ['tee', 'quorum-fills-in']));
        const card = approvalCard(page, 'quorum-fills-in');
        const approve = card.getByRole('button', { name: 'Approve once' });
        await approve.click({ trial: true });
        const id = (await card.getAttribute('data-approval'))!;
        await watchFor(approve, 'token:carol');
        stack.gateway.approvals.resolve(id, 'allow-once', 'token:carol');
        assert.equal(await disabledOnceShown(page), true, 'Approve once was enabled the moment its card said something else');
        await clickOn(page, approve);
        assert.deepEqual(stack.gateway.approvals.get(id).approvers, ['token:carol']);
        await deny(card, 'quorum test');
        assert.equal(await running, false);
      }));

    it('keeps Approve usable while the page fetches the same requests again and again, the node asking to pair again every moment (were each refresh to start the wait, Approve would be taken away under the pointer every 5 s)', async () => {
      const waiting = unpairedNode(stack, 'steady', 'steady-node');
      void waiting.start().catch(() => {});
      try {
        await inContext(browser, async (context) => {
          const page = await signedInTab(context, stack);
          await page.getByRole('link', { name: 'Agents and nodes' }).click();
          const rows = page.locator('tr', { has: page.getByRole('rowheader', { name: 'steady-node' }) });
          const request = rows.filter({ has: page.getByRole('button', { name: 'Reject' }) });
          const lastSeen = rows.filter({ hasNot: page.getByRole('button', { name: 'Reject' }) }).locator('td').nth(7);
          const approve = request.getByRole('button', { name: 'Approve' });
          await approve.click({ trial: true });
          const seenBefore = await lastSeen.innerText();
          await approve.evaluate((element) => {
            const watched = globalThis as unknown as Watched;
            watched.timesDisabled = 0;
            new watched.MutationObserver(() => void ((element as unknown as { disabled: boolean }).disabled && watched.timesDisabled!++)).observe(element, { attributes: true });
          });
          for (let polls = 0; polls < 2; polls++) await page.waitForResponse((response) => new URL(response.url()).pathname === '/api/nodes/pending');
          await new Promise((resolve) => setTimeout(resolve, 300));
          assert.notEqual(await lastSeen.innerText(), seenBefore, 'the node was not seen again: the test shows nothing');
          assert.equal(await page.evaluate(() => (globalThis as unknown as Watched).timesDisabled), 0);
          assert.equal(await approve.isEnabled(), true);
          await rejectPairing(request);
        });
      } finally {
        await waiting.close();
      }
    });
  });

  describe("names others chose that the console shows beside its own words: the signed-in user's and a policy file's", () => {
    /** Each as written, then as the page must show it: the right-to-left override draws what follows it backwards ("moc.elpmaxe@bob" as bob@example.com, "txt.cedar" as radec.txt), and the control characters draw nothing. */
    const USER = { written: 'eve\u202Emoc.elpmaxe@bob\u0007', shown: 'eve\\u202Emoc.elpmaxe@bob\\u0007' };
    const FILE = { written: 'grants\u0007\u202Etxt.cedar', shown: 'grants\\u0007\\u202Etxt.cedar' };

    it("spells out the bidi override and control character in the signed-in user's name in the header (regression: eve\\u202Emoc.elpmaxe@bob read as evebob@example.com)", () =>
      inContext(browser, async (context) => {
        const page = await newTab(context);
        // Stands for a name an identity issuer chose: each answer about the session names the user so.
        await page.route('**/api/session', async (route: Route) => {
          if (route.request().method() === 'DELETE') return route.fallback();
          const response = await route.fetch();
          const body = (await response.json()) as { user?: { name: string } };
          await route.fulfill({ response, json: body.user ? { ...body, user: { ...body.user, name: USER.written } } : body });
        });
        await signIn(page, stack, stack.admin.username, stack.admin.password);
        assert.equal(await page.locator('.who').innerText(), `${USER.shown} (admin)`);
        assert.doesNotMatch(await page.locator('body').innerText(), /[\u202E\u0007]/);
      }));

    it("spells out the bidi override and control character in a policy file's name, in the list of files and over the editor (regression: grants\\u0007\\u202Etxt.cedar read as grantsradec.txt, a text file)", () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        // Stands for a file of that name in the policy directory: the set's files as the gateway lists them, one added.
        await page.route('**/api/policies', async (route: Route) => {
          if (route.request().method() !== 'GET') return route.fallback();
          const response = await route.fetch();
          const body = (await response.json()) as { files: Array<{ name: string; text: string }> };
          await route.fulfill({ response, json: { ...body, files: [...body.files, { name: FILE.written, text: '// nothing here\n' }] } });
        });
        await page.getByRole('link', { name: 'Policies' }).click();
        await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: FILE.shown, exact: true }).click();
        assert.equal(await page.getByRole('textbox', { name: `Candidate ${FILE.shown}`, exact: true }).inputValue(), '// nothing here\n');
        assert.doesNotMatch(await page.locator('body').innerText(), /[\u202E\u0007]/);
      }));
  });

  describe("names and values the gateway passes on from elsewhere: the single sign-on provider's name, a node's address, what the audit log holds", () => {
    it("spells out the bidi override and control character in the single sign-on provider's name on the sign-in page (regression: Acme\\u202ENIGOL read as AcmeLOGIN, the override drawing the rest of the button backwards)", () =>
      inContext(browser, async (context) => {
        const page = await newTab(context);
        // Stands for the name given to the gateway's provider (its oidc.name setting), which the gateway answers as it was given.
        await page.route('**/api/auth/providers', (route: Route) => route.fulfill({ json: { local: true, oidc: { name: 'Acme\u202ENIGOL\u0007' } } }));
        await page.goto(`${stack.url}/`);
        await page.getByRole('link', { name: 'Sign in with SSO (Acme\\u202ENIGOL\\u0007)', exact: true }).waitFor();
        assert.doesNotMatch(await page.locator('body').innerText(), /[\u202E\u0007]/);
      }));

    it("spells out the bidi override in a node's address, in the list of nodes and in a request to pair (regression: each was drawn as it came)", () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        // Stand for an address the gateway lists for a node, drawn as text: the nodes as the gateway lists them, the first one's address
        // replaced, and a node asking to pair from such an address added to those asking.
        await page.route('**/api/nodes', async (route: Route) => {
          const response = await route.fetch();
          const body = (await response.json()) as { nodes: Array<Record<string, unknown>> };
          await route.fulfill({ response, json: { nodes: body.nodes.map((n, i) => (i === 0 ? { ...n, remoteIp: '10.0.0.1\u202E9.9' } : n)) } });
        });
        await page.route('**/api/nodes/pending', async (route: Route) => {
          const response = await route.fetch();
          const body = (await response.json()) as { requests: unknown[] };
          const asking = { requestId: 'address-shown', nodeId: 'f'.repeat(64), displayName: 'asks-from-afar', platform: 'linux', commands: ['system.run'], approvedCommands: [], paired: false, remoteIp: '10.0.0.2\u202E8.8', ts: Date.now() };
          await route.fulfill({ response, json: { requests: [...body.requests, asking] } });
        });
        await page.getByRole('link', { name: 'Agents and nodes' }).click();
        await page.getByRole('cell', { name: '10.0.0.1\\u202E9.9', exact: true }).waitFor();
        await page.getByRole('row', { name: /asks-from-afar/ }).getByRole('cell', { name: '10.0.0.2\\u202E8.8', exact: true }).waitFor();
        assert.doesNotMatch(await page.locator('body').innerText(), /\u202E/);
      }));

    it("spells out the bidi override in a record's outcome in the audit log, and in the signed checkpoint shown with the record (regression: each was drawn as it came)", () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        await runOnNode(stack, ['echo', 'outcome-shown']);
        // Stand for what the log holds: its page as the gateway answers it, the outcome of that run's records replaced, and the record's proof with another checkpoint.
        await page.route((url) => url.pathname === '/api/audit', async (route: Route) => {
          const response = await route.fetch();
          const body = (await response.json()) as { records: Array<{ summary?: string }> };
          await route.fulfill({ response, json: { ...body, records: body.records.map((r) => (r.summary?.includes('outcome-shown') ? { ...r, outcome: { status: 'success\u202Eliaf' } } : r)) } });
        });
        await page.route((url) => /^\/api\/audit\/\d+$/.test(url.pathname), async (route: Route) => {
          const response = await route.fetch();
          const body = (await response.json()) as { proof: Record<string, unknown> };
          await route.fulfill({ response, json: { ...body, proof: { ...body.proof, checkpoint: 'corral.example\u202Egro\n42\n' } } });
        });
        await page.getByRole('link', { name: 'Audit', exact: true }).click();
        const logged = page.locator('tbody tr', { hasText: 'outcome-shown' }).first();
        await logged.getByRole('cell', { name: 'success\\u202Eliaf', exact: true }).waitFor();
        await logged.getByRole('button', { name: /^Open record/ }).click();
        assert.equal(await page.locator('section.detail pre.json').last().innerText(), 'corral.example\\u202Egro\n42\n');
        assert.doesNotMatch(await page.locator('body').innerText(), /\u202E/);
      }));

    it('spells out the bidi override in what a replay says a recorded decision was and would be (regression: each was drawn as it came)', () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        // Stands for a replay of a log whose records say so.
        await page.route('**/api/policies/replay', (route: Route) => route.fulfill({ json: { replayed: 1, changed: [{ seq: 7, principal: 'Human::"operator"', action: 'Action::"system.run"', was: 'allow\u202Eyned', now: 'deny\u0007' }] } }));
        await page.getByRole('link', { name: 'Policies' }).click();
        await page.getByRole('button', { name: 'Replay' }).click();
        const row = page.getByRole('row', { name: /^7 / });
        await row.getByRole('cell', { name: 'allow\\u202Eyned', exact: true }).waitFor();
        await row.getByRole('cell', { name: 'deny\\u0007', exact: true }).waitFor();
        assert.doesNotMatch(await page.locator('body').innerText(), /[\u202E\u0007]/);
      }));
  });

  describe('a page of another site that opens the console', () => {
    it("keeps no hold on the console's window, so it cannot later send that window to a page of its own (regression: it could, and a look-alike sign-in page took the place of the console the approver had open)", () =>
      inContext(browser, async (context) => {
        const elsewhere = createServer((_request, response) => void response.writeHead(200, { 'content-type': 'text/html' }).end('<title>elsewhere</title>'));
        await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
        try {
          // Another origin: another port of this host.
          const other = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
          const page = await newTab(context);
          await page.goto(other);
          const [consoleTab] = await Promise.all([context.waitForEvent('page'), page.evaluate((url) => void ((globalThis as { opened?: unknown }).opened = (globalThis as unknown as { open: (url: string) => unknown }).open(url)), `${stack.url}/approvals`)]);
          await consoleTab.getByLabel('Username').waitFor();
          const held = await page.evaluate((url) => {
            const opened = (globalThis as unknown as { opened: { closed: boolean; location: string } }).opened;
            if (!opened.closed) opened.location = url;
            return !opened.closed;
          }, `${other}/sign-in`);
          await new Promise((resolve) => setTimeout(resolve, 500));
          assert.equal(new URL(consoleTab.url()).origin, stack.url);
          assert.equal(held, false);
        } finally {
          elsewhere.close();
        }
      }));
  });

  describe('text an agent or node chose, on the pages that are not the approvals inbox', () => {
    it('names the Cyrillic а of a command argument in live activity, in the audit log and in the record opened from it (regression: only the approval card named it; elsewhere https://exаmple.com read as example.com)', () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', 'https://ex\u0430mple.com/activity']));
        await page.getByRole('link', { name: 'Live activity' }).click();
        const live = page.locator('tbody tr', { hasText: 'mple.com/activity' }).first();
        await live.waitFor();
        assert.match(await live.locator('.look-alikes').first().innerText(), /U\+0430 Cyrillic/);

        await page.getByRole('link', { name: 'Audit', exact: true }).click();
        const logged = page.locator('tbody tr', { hasText: 'mple.com/activity' }).first();
        await logged.waitFor();
        assert.match(await logged.locator('.look-alikes').first().innerText(), /U\+0430 Cyrillic/);
        await logged.getByRole('button', { name: /^Open record/ }).click();
        const record = page.locator('section.detail');
        await record.locator('pre.json', { hasText: 'mple.com/activity' }).waitFor();
        assert.match(await record.locator('.look-alikes').innerText(), /mple\.com\/activity.*U\+0430 Cyrillic/);

        await page.getByRole('link', { name: 'Approvals' }).click();
        const card = approvalCard(page, 'mple.com/activity');
        await deny(card, 'look-alike host');
        assert.equal(await running, false);
      }));

    it("raises no note on a record all in ASCII, the arrow before its outcome being the gateway's own (regression: every row with an outcome said 'Check: → U+2192 Common')", () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        const ran = await runOnNode(stack, ['echo', 'plain-ascii-row']);
        assert.equal((ran.payload as { exitCode?: number }).exitCode, 0);
        await page.getByRole('link', { name: 'Live activity' }).click();
        // The run's result record: its summary ends with the outcome after the arrow.
        const row = page.locator('tbody tr', { hasText: 'node.invoke command system.run \u2192 success' }).first();
        await row.waitFor();
        assert.equal(await row.locator('.look-alikes').count(), 0);
      }));

    it('keeps a row holding a long unbroken argument within the page, its summary wrapped to the end (regression: the table ran off the right edge, the end of the command out of sight)', () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Live activity' }).click();
        const long = `https://example.com/${'a'.repeat(200)}/tail-end`;
        await runOnNode(stack, ['echo', long]);
        const row = page.locator('tbody tr', { hasText: 'tail-end' }).first();
        await row.waitFor();
        for (const cell of await row.locator('td').all()) {
          const box = (await cell.boundingBox())!;
          assert.ok(box.x + box.width <= 1280, `a cell ends at ${box.x + box.width}, past the page's 1280`);
        }
      }, { viewport: { width: 1280, height: 800 } }));

    it("keeps the record opened from the audit log within the page when a long unbroken argument holds a Cyrillic letter, the note naming it wrapped too (regression: the note's line ran thousands of pixels past the page's right edge)", () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        await runOnNode(stack, ['echo', `https://ex\u0430mple.com/${'w'.repeat(600)}/record-wraps`]);
        await page.getByRole('link', { name: 'Audit', exact: true }).click();
        const logged = page.locator('tbody tr', { hasText: 'wwwwwwww' }).first();
        await logged.getByRole('button', { name: /^Open record/ }).click();
        await page.locator('section.detail .look-alikes', { hasText: 'record-wraps' }).waitFor();
        const width = await page.evaluate('document.documentElement.scrollWidth');
        assert.ok((width as number) <= 1280, `the page is ${width} pixels wide, past the window's 1280`);
      }, { viewport: { width: 1280, height: 800 } }));

    it('adds no note to a row of live activity that is ASCII throughout', () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Live activity' }).click();
        await runOnNode(stack, ['echo', 'plain-ascii-text']);
        const rows = page.locator('tbody tr', { hasText: 'plain-ascii-text' });
        await rows.first().waitFor();
        assert.equal(await rows.locator('.look-alikes').count(), 0);
      }));

    it("names in the list of nodes another node of the same name and a Cyrillic letter in a name, and Revoke names the node's id (regression: only the pairing request said so; the list showed two runner-1 rows, each Revoke labelled alike)", async () => {
      const { twin, lookAlike } = namesakesAskToPair('-listed');
      const context = await browser.newContext();
      try {
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Agents and nodes' }).click();
        const list = page.locator('table', { has: page.getByRole('columnheader', { name: 'Last seen' }) });
        // A node's own row, by the full id its id cell holds (the start of an id also shows in the notes of its namesakes' rows).
        const listed = (id: string) => list.locator('tbody tr').filter({ has: page.locator(`td[title="${id}"]`) });
        await listed(twin.device.deviceId).waitFor();
        await listed(lookAlike.device.deviceId).waitFor();
        const paired = listed(stack.node.device.deviceId);
        assert.match(await paired.locator('.look-alikes').innerText(), new RegExp(`another node is named runner-1 \\(${twin.device.deviceId.slice(0, 16)}`));
        assert.match(await listed(lookAlike.device.deviceId).locator('.look-alikes').innerText(), /U\+0435 Cyrillic/);
        assert.equal(await paired.getByRole('button', { name: `Revoke runner-1 (${stack.node.device.deviceId.slice(0, 16)})` }).count(), 1);
        const requests = page.locator('tr').filter({ has: page.getByRole('button', { name: 'Reject' }) });
        for (const node of [twin, lookAlike]) {
          const row = requests.filter({ hasText: node.device.deviceId.slice(0, 16) });
          await rejectPairing(row);
        }
      } finally {
        await context.close();
        await twin.close();
        await lookAlike.close();
      }
    });

    it("names the Cyrillic а in an agent's owner (regression: аlice@example.com read as alice@example.com)", async () => {
      stack.gateway.identity.agents.create({ name: 'look-alike-owner', process: 'invoice-intake', owner: '\u0430lice@example.com', scopes: ['records:read'] });
      await inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Agents and nodes' }).click();
        const row = page.locator('tr', { has: page.getByRole('rowheader', { name: 'look-alike-owner' }) });
        await row.waitFor();
        assert.match(await row.locator('.look-alikes').innerText(), /U\+0430 Cyrillic/);
        const plain = page.locator('tr', { has: page.getByRole('rowheader', { name: 'invoice-bot' }) });
        assert.equal(await plain.locator('.look-alikes').count(), 0);
      });
    });
  });

  describe('a policy file under review', () => {
    it('names under the editor a line whose identifier is spelled with a Cyrillic і, so a forbid that can never match does not pass for one that does (regression: Agent::"іnvoice-bot" read as the agent it misses)', () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        await page.getByRole('link', { name: 'Policies' }).click();
        await page.getByRole('navigation', { name: 'Policy files' }).getByRole('button', { name: 'run.cedar' }).click();
        const editor = page.getByRole('textbox', { name: 'Candidate run.cedar' });
        const text = await editor.inputValue();
        const line = text.split('\n').length + 1;
        await editor.fill(`${text}\nforbid (principal == Agent::"\u0456nvoice-bot", action, resource);`);
        const note = page.locator('.hidden-characters');
        const named = note.locator('li', { hasText: `${line}: forbid` });
        await named.waitFor();
        assert.match(await named.innerText(), /U\+0456 Cyrillic/);
        assert.equal(await note.locator('li').count(), 1);
        await page.getByRole('button', { name: 'Discard changes' }).click();
        await note.waitFor({ state: 'detached' });
      }));
  });

  describe('what the gateway answers when an action fails', () => {
    /** A pending approval card, whose Approve once goes to `answer` instead of the gateway. */
    async function cardWhoseApproveGets(page: Page, text: string, answer: (route: Route) => Promise<void>) {
      await page.getByRole('link', { name: 'Approvals' }).click();
      const card = approvalCard(page, text);
      await card.waitFor();
      await page.route('**/api/approvals/*/approve', answer);
      await card.getByRole('button', { name: 'Approve once' }).click();
      return card;
    }

    async function denyAndUnroute(page: Page, card: ReturnType<Page['locator']>) {
      await page.unrouteAll();
      await deny(card, 'test over');
    }

    it("spells out the characters of a refusal's message that draw nothing or reorder the line (regression: a U+202E in it reversed what the approver read)", () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', 'refusal-with-override']));
        const refusal = JSON.stringify({ error: 'conflict', message: 'the approval was \u202Edevloser', code: 'GATEWAY_APPROVAL_RESOLVED', issues: [{ file: 'run\u202E.cedar', message: 'x\u200By' }] });
        const card = await cardWhoseApproveGets(page, 'refusal-with-override', (route) => route.fulfill({ status: 409, contentType: 'application/json', body: refusal }));
        const alert = card.getByRole('alert');
        await alert.waitFor();
        const text = await alert.innerText();
        assert.match(text, /the approval was \\u202Edevloser \(GATEWAY_APPROVAL_RESOLVED\)/);
        assert.match(text, /run\\u202E\.cedar x\\u200By/);
        assert.doesNotMatch(text, /[\u202A-\u202E\u2066-\u2069\u200B]/);
        await denyAndUnroute(page, card);
        assert.equal(await running, false);
      }));

    it('says the gateway could not be reached when a request got no answer (regression: it said "Failed to fetch")', () =>
      inContext(browser, async (context) => {
        const page = await signedInTab(context, stack);
        const running = settled(runOnNode(stack, ['printf', 'approve-without-answer']));
        const card = await cardWhoseApproveGets(page, 'approve-without-answer', (route) => route.abort('connectionrefused'));
        const alert = card.getByRole('alert');
        await alert.waitFor();
        assert.equal(await alert.innerText(), 'the gateway could not be reached (whether it got the request is not known: load the page again to see)');
        await denyAndUnroute(page, card);
        assert.equal(await running, false);
      }));
  });

  describe('a browser whose clock is wrong', () => {
    it("counts an approval's time left by the gateway's clock, so a clock two hours ahead neither shows it expired nor takes its buttons away (regression: every request read expired and could not be approved)", () =>
      inContext(browser, async (context) => {
        await context.clock.install({ time: Date.now() + 2 * 3600_000 });
        const page = await approvalsTab(context, stack);
        const running = runOnNode(stack, ['printf', 'clock-ahead']);
        running.catch(() => {}); // awaited below; a run the test never approves must not end it with an unhandled rejection
        const card = approvalCard(page, 'clock-ahead');
        await card.waitFor();
        assert.match(await card.locator('.countdown').innerText(), /^1[45]m \d\ds$/);
        await card.getByRole('button', { name: 'Approve once' }).click();
        assert.equal((await running).payload.stdout, 'clock-ahead');
      }));
  });

  describe('a console left unattended', () => {
    it('signs out after an hour without use, though its pages go on asking the gateway, and says why (regression: the approvals count it polls every 10 s counted as use, so an unattended console stayed signed in for 12 hours)', () =>
      inContext(browser, async (context) => {
        await context.clock.install();
        const page = await approvalsTab(context, stack);
        await page.getByRole('heading', { name: 'Approvals' }).waitFor();
        await context.clock.fastForward('01:00:30');
        await page.getByLabel('Username').waitFor();
        assert.match(await page.locator('.signin').innerText(), /signed out after an hour without use/i);
        await page.reload();
        await page.getByLabel('Username').waitFor();
        assert.equal(await page.getByRole('navigation', { name: 'Console' }).count(), 0);
      }));

    it('does not count a pointer moving over the page as use (a browser may report one as the page moves under a still pointer)', () =>
      inContext(browser, async (context) => {
        await context.clock.install();
        const page = await signedInTab(context, stack);
        await context.clock.fastForward('40:00');
        await page.mouse.move(200, 300);
        await page.mouse.move(220, 320);
        await context.clock.fastForward('21:00');
        await page.getByLabel('Username').waitFor();
      }));

    it('stays signed in while someone uses it, in this tab or another of the console', () =>
      inContext(browser, async (context) => {
        await context.clock.install();
        const page = await signedInTab(context, stack);
        const other = await newTab(context);
        await other.goto(`${stack.url}/activity`);
        await other.getByRole('navigation', { name: 'Console' }).waitFor();
        // One tab's use reaches the other through localStorage, from one renderer to another a moment later: the
        // clock moves on only once it has (under load, an hour passed first, and the other tab signed out).
        const sharedWith = async (from: typeof page, to: typeof page) => {
          const written = await from.evaluate(() => localStorage.getItem('corral.last-use'));
          await to.waitForFunction((value) => localStorage.getItem('corral.last-use') === value, written);
        };
        await context.clock.fastForward('40:00');
        await page.keyboard.press('Shift');
        await sharedWith(page, other);
        await context.clock.fastForward('40:00');
        await other.mouse.click(5, 300);
        await sharedWith(other, page);
        await context.clock.fastForward('40:00');
        for (const tab of [page, other]) {
          await tab.getByRole('navigation', { name: 'Console' }).waitFor();
          assert.equal(await tab.getByLabel('Username').count(), 0);
        }
      }));
  });

  describe('signing out in one tab', () => {
    it('signs out every other tab of the console at once, the audit log it showed gone (regression: an auditor\'s tab on the audit explorer, which asks nothing more, went on showing the log to whoever sat down next)', () =>
      inContext(browser, async (context) => {
        const left = await signedInTab(context, stack, auditor);
        await left.getByRole('link', { name: 'Audit' }).click();
        await left.locator('tbody tr').first().waitFor();
        const other = await newTab(context);
        await other.goto(`${stack.url}/activity`);
        await other.getByRole('button', { name: 'Sign out' }).click();
        await other.getByLabel('Username').waitFor();
        await left.getByLabel('Username').waitFor();
        assert.equal(await left.locator('tbody tr').count(), 0);
      }));

    it('shows who a tab acts as once another tab signs in as someone else (regression: it still named the first user while every request went as the second)', () =>
      inContext(browser, async (context) => {
        const left = await signedInTab(context, stack, auditor);
        await left.getByRole('link', { name: 'Audit' }).click();
        const other = await newTab(context);
        await other.goto(`${stack.url}/`);
        await other.getByRole('button', { name: 'Sign out' }).click();
        await signIn(other, stack, stack.admin.username, stack.admin.password);
        await left.locator('.who', { hasText: /^admin\b/ }).waitFor();
        assert.doesNotMatch(await left.locator('.who').innerText(), /audra/);
      }));
  });
});
