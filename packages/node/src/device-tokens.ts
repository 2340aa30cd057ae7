// The device tokens gateways gave this node in hello-ok (`auth.deviceToken`),
// one per gateway URL, kept beside its device key (mode 0600). With one, the
// node reconnects without the shared gateway token — which also lets an
// operator connect as an operator — so a paired node's machine need not keep
// that token at all.
import { join } from 'node:path';
import { readStateFile, replaceFile } from './whole-files.ts';

export const DEVICE_TOKENS_FILE = 'gateway-device-tokens.json';
/** A gateway's token is at most this long (the Corral gateway's are 43 characters). */
const MAX_TOKEN_LENGTH = 200;
/** Gateways remembered; the file is rewritten whole, so it stays small. */
const MAX_GATEWAYS = 32;

export class DeviceTokens {
  readonly #path: string;

  constructor(stateDir: string) {
    this.#path = join(stateDir, DEVICE_TOKENS_FILE);
  }

  /** The token the gateway at `url` gave this node, if any (an unreadable file counts as none: the shared token then serves). */
  get(url: string): string | undefined {
    const token = this.#read()[url];
    return typeof token === 'string' && token !== '' && token.length <= MAX_TOKEN_LENGTH ? token : undefined;
  }

  /** Keeps `token` for the gateway at `url` (undefined: forgets it), by a write and a rename, so a reader never sees half a file. */
  set(url: string, token: string | undefined): void {
    const tokens = this.#read();
    if (tokens[url] === token) return;
    delete tokens[url];
    if (token !== undefined && token.length <= MAX_TOKEN_LENGTH) tokens[url] = token;
    const kept = Object.fromEntries(Object.entries(tokens).slice(-MAX_GATEWAYS));
    replaceFile(this.#path, `${JSON.stringify(kept)}\n`);
  }

  #read(): Record<string, unknown> {
    try {
      const parsed = JSON.parse(readStateFile(this.#path, 'NODE_CONFIG_INVALID')) as unknown;
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? Object.assign(Object.create(null) as Record<string, unknown>, parsed) : {};
    } catch {
      return {};
    }
  }
}
