// What the route groups share: the gateway's parts and the console's sign-in state.
import type { AuditEventInput, AuditLog } from '@corral/audit';
import type { Identity } from '@corral/identity';
import type { ApprovalStore } from '../approvals/store.ts';
import type { NodeInvoker } from '../exec/invoke.ts';
import type { NodeInventory } from '../nodes/inventory.ts';
import type { GatewayLogEntry, GatewayServer } from '../server/server.ts';
import type { ClientAddresses } from './client-address.ts';
import type { ConsoleCookies } from './cookies.ts';
import type { AuditFeed } from './feed.ts';
import type { OidcSignIn } from './oidc-sign-in.ts';
import type { PolicyControl } from './policy-control.ts';
import type { PublicUrl } from './public-url.ts';
import type { Sessions } from './sessions.ts';
import type { SignInThrottle } from './throttle.ts';

export interface ApiContext {
  token: string;
  stateDir: string;
  identity: Identity;
  server: GatewayServer;
  inventory: NodeInventory;
  invoker: NodeInvoker;
  approvals: ApprovalStore;
  /** Undefined when the gateway keeps no audit log. */
  audit: AuditLog | undefined;
  /** Appends to the audit log and tells the feed; does nothing without a log. */
  record: (event: AuditEventInput) => Promise<void>;
  feed: AuditFeed;
  /** Undefined when the gateway was given a decision function instead of a policy directory. */
  policies: PolicyControl | undefined;
  sessions: Sessions;
  /** The console's cookie names and whether they are Secure. */
  cookies: ConsoleCookies;
  /** Where people reach the gateway through the operator's reverse proxy, when configured: its Host is answered besides loopback names. */
  publicUrl: PublicUrl | undefined;
  /** Who sent a request: its socket's peer, or the client a trusted proxy forwards for (client-address.ts). */
  clientAddresses: ClientAddresses;
  throttle: SignInThrottle;
  oidc: OidcSignIn | undefined;
  now: () => number;
  /** Logs a refused or failed request within the HTTP API's budget (ThrottledLog): its code, never a token or key. */
  log: (entry: GatewayLogEntry) => void;
}
