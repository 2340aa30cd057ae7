// OpenID Connect settings files: `STATE_DIR/oidc.json` for `corral identity
// login`, and `STATE_DIR/console-oidc.json` for the console's single sign-on
// (`corral gateway`, `corral up`). Both hold identity's OidcSettings; the
// client secret may stay out of the file (CORRAL_OIDC_CLIENT_SECRET).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OidcSettings } from '@corral/identity';
import { EXIT } from './exit-codes.ts';
import { fileProblem } from './file-problem.ts';
import { CliFailure } from './output.ts';

export const CONSOLE_OIDC_FILE = 'console-oidc.json';
/** Where the issuer sends the browser back to the console (docs/http-api.md). */
const CONSOLE_CALLBACK_PATH = '/api/auth/oidc/callback';

/**
 * Reads and checks an OIDC settings file. Every mistake is a CliFailure
 * (exit 2) naming the file and the setting; `option` is the flag that names
 * another file, for the advice.
 */
export async function readOidcSettings(file: string, option: string): Promise<OidcSettings> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    const advice = `; write your issuer's settings there (docs/identity-and-policy.md#humans-single-sign-on), or name another file with ${option}`;
    throw new CliFailure(`cannot read OIDC settings from ${file}: ${fileProblem(error)}${missing ? advice : ''}`, EXIT.usage);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text around the mistake, which may be the client secret: say only where it is.
    const at = /\(line \d+ column \d+\)/.exec((error as Error).message)?.[0];
    throw new CliFailure(`${file} is not valid JSON${at ? ` ${at}` : ''}: correct it, or name another file with ${option}`, EXIT.usage);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CliFailure(`${file} must hold a JSON object`, EXIT.usage);
  const settings = parsed as OidcSettings;
  if (settings.clientSecret === undefined && process.env.CORRAL_OIDC_CLIENT_SECRET) settings.clientSecret = process.env.CORRAL_OIDC_CLIENT_SECRET;
  const { IdentityError, checkOidcSettings } = await import('@corral/identity');
  try {
    checkOidcSettings(settings);
  } catch (error) {
    // A setting of the wrong shape: name the file it is in, as bad usage, before reaching the issuer.
    if (error instanceof IdentityError) throw new CliFailure(`${file}: ${error.message}`, EXIT.usage, error.code);
    throw error;
  }
  return settings;
}

/**
 * The console's single sign-on settings: `file`, else
 * `STATE_DIR/console-oidc.json` when it exists (none: local users only).
 * Besides OidcSettings, `name` is what the sign-in button says, and
 * `redirectUri` must be the gateway's callback as the issuer has it registered.
 */
export async function consoleOidcSettings(dir: string, file: string | undefined): Promise<(OidcSettings & { name?: string }) | undefined> {
  const path = file ?? join(dir, CONSOLE_OIDC_FILE);
  if (file === undefined && !existsSync(path)) return undefined;
  const { name, ...settings } = (await readOidcSettings(path, '--oidc')) as OidcSettings & { name?: unknown };
  if (name !== undefined && (typeof name !== 'string' || name.trim() === '' || name.length > 60 || /[\p{Cc}\p{Cf}]/u.test(name))) {
    throw new CliFailure(`${path}: name must be the provider's name as the sign-in page shows it, 1 to 60 characters of text`, EXIT.usage);
  }
  if (URL.parse(settings.redirectUri)?.pathname !== CONSOLE_CALLBACK_PATH) {
    throw new CliFailure(`${path}: redirectUri must be the console's callback, e.g. http://127.0.0.1:18789${CONSOLE_CALLBACK_PATH}, registered with the issuer`, EXIT.usage);
  }
  return { ...settings, ...(name !== undefined ? { name } : {}) };
}
