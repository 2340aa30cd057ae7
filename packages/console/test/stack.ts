// Everything the console's browser tests and screenshots need, all real: a
// Corral gateway serving the built console in a temp state directory, with the
// invoice-intake example's Cedar policies; a local admin; a paired Corral node
// on loopback; an operator client that sends governed commands; the
// invoice-intake agent, which creates payments through a payments node; and
// headless Chromium.
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway, GatewayClient, type GatewayOptions } from '@corral/gateway';
import { createDeviceIdentity } from '@corral/identity';
import { DEFAULT_CONTAINER_POLICY, NodeHost } from '@corral/node';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Locator, type Page } from 'playwright-core';
import { buildConsole } from '../src/index.ts';

const EXAMPLE_POLICIES = join(import.meta.dirname, '..', '..', '..', 'examples', 'invoice-intake', 'cedar');

/** Debian's chromium, which scripts/bootstrap.mjs installs for the test task. */
export const CHROMIUM = '/usr/bin/chromium';

const POLICY = `
@id("echo-allowed")
@reason("operators may echo")
permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"echo");

@id("printf-needs-approval")
@approval("required")
@reason("printing to the invoice printer needs one approver")
permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"printf");

@id("outbox-writes-need-two")
@approval("required")
@quorum("2")
@reason("writing a payment file to the outbox needs two distinct approvers")
permit (principal == Human::"operator", action == Action::"system.run", resource == Command::"tee");
`;

export interface Stack {
  gateway: Gateway;
  node: NodeHost;
  operator: GatewayClient;
  /** The invoice-intake agent (`invoice-bot`), connected with its own identity token. */
  agent: GatewayClient;
  payments: PaymentsNode;
  /** The console's base URL, `http://127.0.0.1:PORT`. */
  url: string;
  /** The gateway token (nodes and tools). */
  token: string;
  admin: { username: string; password: string };
  stateDir: string;
  /** A folder the node's sandboxes may read (the scripts a test has it run). */
  work: string;
  close(): Promise<void>;
}

/** Starts the gateway with the console, a local admin and a paired node; `extra` adds to the gateway's options (a fixed port, OIDC, how long approvals wait). */
export async function startStack(extra: Pick<GatewayOptions, 'port' | 'oidc' | 'approvalTtlMs'> = {}): Promise<Stack> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'corral-console-')));
  const stateDir = join(root, 'state');
  const work = join(root, 'work');
  mkdirSync(work);
  mkdirSync(join(stateDir, 'policies'), { recursive: true });
  writeFileSync(join(stateDir, 'policies', 'run.cedar'), POLICY);
  for (const f of readdirSync(EXAMPLE_POLICIES)) if (f.endsWith('.cedar') || f === 'entities.json' || f === 'cases.yaml') copyFileSync(join(EXAMPLE_POLICIES, f), join(stateDir, 'policies', f));
  const token = randomBytes(24).toString('base64url');
  const gw = await Gateway.start({ stateDir, token, port: 0, ...extra, consoleDir: await buildConsole(), approvalPollMs: 50 });
  const admin = { username: 'admin', password: randomBytes(12).toString('base64url') };
  await gw.identity.localUsers.create(admin.username, admin.password, ['admin']);
  const containerPolicies = { '*': { policy: { ...DEFAULT_CONTAINER_POLICY, filesystem: { readonly: [work] } }, baseDir: root } };
  const node = new NodeHost({ gateway: gw.url, token, stateDir: join(root, 'node'), name: 'runner-1', maxBackoffMs: 200, containerPolicies });
  const connected = node.start();
  const deadline = Date.now() + 10_000;
  while (!gw.identity.nodes.find(node.device.deviceId)) {
    if (Date.now() > deadline) throw new Error('the node never asked to pair');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  gw.identity.nodes.pair(node.device.deviceId, 'console test');
  await connected;
  const operator = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.admin'] });
  const payments = await startPaymentsNode(gw, token);
  gw.identity.agents.create({ name: 'invoice-bot', process: 'invoice-intake', owner: 'alice@example.com', scopes: ['records:read', 'payments:create'] });
  const agent = await GatewayClient.connect({ url: gw.url, token, role: 'operator', scopes: ['operator.write'], agentToken: (await gw.identity.issueToken('invoice-bot')).token });
  return {
    gateway: gw,
    node,
    operator,
    agent,
    payments,
    url: gw.httpUrl,
    token,
    admin,
    stateDir,
    work,
    async close() {
      await agent.close();
      await payments.close();
      await operator.close();
      await node.close();
      await gw.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A node that stands for the company's payment system: it declares `payment.create` and records each payment that reaches it. */
export interface PaymentsNode {
  nodeId: string;
  received: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

async function startPaymentsNode(gateway: Gateway, token: string): Promise<PaymentsNode> {
  const device = createDeviceIdentity();
  const options = { url: gateway.url, token, role: 'node' as const, device, client: { displayName: 'payments' }, commands: ['payment.create'] };
  // The first connection asks to pair (and is refused until paired), as `corral nodes pair` expects.
  await GatewayClient.connect(options).then(
    (client) => client.close(),
    () => undefined,
  );
  gateway.identity.nodes.pair(device.deviceId, 'console test');
  const client = await GatewayClient.connect(options);
  const received: Array<Record<string, unknown>> = [];
  client.on('node.invoke.request', (payload) => {
    const request = payload as { id: string; nodeId: string; paramsJSON?: string | null };
    const params = request.paramsJSON ? (JSON.parse(request.paramsJSON) as Record<string, unknown>) : {};
    received.push(params);
    void client.request('node.invoke.result', { id: request.id, nodeId: request.nodeId, ok: true, payloadJSON: JSON.stringify({ paymentId: `PAY-${received.length}` }) }).catch(() => {});
  });
  return { nodeId: device.deviceId, received, close: () => client.close() };
}

/** `payment.create` as the invoice-intake agent: amount in cents. */
export function createPayment(stack: Stack, params: { amount: number; currency: string; payee: string }, timeoutMs = 20_000): Promise<{ payload: { paymentId: string } }> {
  const request = { nodeId: stack.payments.nodeId, command: 'payment.create', params, timeoutMs, idempotencyKey: randomUUID() };
  return stack.agent.request('node.invoke', request, { timeoutMs: timeoutMs + 5_000 }) as Promise<{ payload: { paymentId: string } }>;
}

export interface RunResult {
  payload: { exitCode: number; stdout: string; success: boolean };
}

/** True once `running` has succeeded, false once it has failed: what a test waiting on a run its approver decides asks. */
export function settled<T>(running: Promise<T>): Promise<boolean> {
  return running.then(
    () => true,
    () => false,
  );
}

/** A governed `system.run` of `argv` on the stack's node, as the operator. */
export function runOnNode(stack: Stack, argv: string[], timeoutMs = 20_000): Promise<RunResult> {
  const params = { nodeId: stack.node.device.deviceId, command: 'system.run', params: { command: argv }, timeoutMs, idempotencyKey: randomUUID() };
  return stack.operator.request('node.invoke', params, { timeoutMs: timeoutMs + 5_000 }) as Promise<RunResult>;
}

/**
 * Headless Chromium. `--no-sandbox` only because the tests run as root in CI,
 * where Chromium refuses to start its own sandbox; never use it for browsing.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
}

/**
 * How long signing in may take: the password's scrypt, the sign-in's redirects and the
 * console's first load, each slowed by whatever else runs. Signing in is what
 * a test starts from, not what it measures: beside another test file on this
 * 2-core host it took past 15 s (every test of the file ran 3–8× slower).
 */
const SIGN_IN_MS = 60_000;

/** Signs in from the sign-in page with the keyboard only (type, Enter), and waits for the console's navigation. */
export async function signIn(page: Page, stack: Stack, username: string, password: string): Promise<void> {
  await page.goto(`${stack.url}/`, { timeout: SIGN_IN_MS });
  await page.getByLabel('Username').fill(username, { timeout: SIGN_IN_MS });
  await page.getByLabel('Password').fill(password);
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('navigation', { name: 'Console' }).waitFor({ timeout: SIGN_IN_MS });
}

/** How long a test waits to see what it looks for on a page, once signed in. */
export const SEEN_MS = 15_000;

/** A new tab (of a browser, or of one of its contexts) that waits up to SEEN_MS for what a test looks for. */
export async function newTab(owner: Browser | BrowserContext): Promise<Page> {
  const page = await owner.newPage();
  page.setDefaultTimeout(SEEN_MS);
  return page;
}

/** A new tab signed in as `user`, the stack's admin unless named. */
export async function signedInTab(owner: Browser | BrowserContext, stack: Stack, user: { username: string; password: string } = stack.admin): Promise<Page> {
  const page = await newTab(owner);
  await signIn(page, stack, user.username, user.password);
  return page;
}

/** A tab of `context` signed in as the stack's admin, on the approvals page. */
export async function approvalsTab(context: BrowserContext, stack: Stack): Promise<Page> {
  const page = await signedInTab(context, stack);
  await page.getByRole('link', { name: 'Approvals' }).click();
  return page;
}

/** Runs `use` in a browser context of its own (its own cookies, storage and clock), closed however `use` ends. */
export async function inContext<T>(browser: Browser, use: (context: BrowserContext) => Promise<T>, options?: BrowserContextOptions): Promise<T> {
  const context = await browser.newContext(options);
  try {
    return await use(context);
  } finally {
    await context.close();
  }
}

/** The approvals page's card of the approval whose text holds `text`. */
export function approvalCard(page: Page, text: string): Locator {
  return page.locator('article[data-approval]', { hasText: text });
}

/** Denies the approval `card` shows from its own form, giving `reason`. */
export async function deny(card: Locator, reason: string): Promise<void> {
  await card.getByRole('button', { name: 'Deny…' }).click();
  await card.getByLabel('Reason for denying').fill(reason);
  await card.getByRole('button', { name: 'Deny', exact: true }).click();
}

/** Rejects the pairing request `row` shows, and waits for the row to leave the page. */
export async function rejectPairing(row: Locator): Promise<void> {
  await row.getByRole('button', { name: 'Reject' }).click();
  await row.waitFor({ state: 'detached' });
}

/** A node named `name`, not yet started, with a state directory `dir` of its own beside the stack's: started, it asks to pair. */
export function unpairedNode(stack: Stack, dir: string, name: string): NodeHost {
  return new NodeHost({ gateway: stack.gateway.url, token: stack.token, stateDir: join(stack.stateDir, '..', dir), name, maxBackoffMs: 200 });
}
