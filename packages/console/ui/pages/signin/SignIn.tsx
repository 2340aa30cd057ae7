// Sign-in with a local username and password, and single sign-on when the
// gateway has an OIDC provider configured.
import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, api } from '../../api/client.ts';
import type { Providers, User } from '../../api/types.ts';
import { visible } from '../../format.ts';

const SIGNIN_ERRORS: Record<string, string> = {
  invalid_credentials: 'Wrong username or password.',
  too_many_attempts: 'Too many failed attempts for this username.',
  unreachable: 'The gateway did not answer. Is it running?',
};

/** Why single sign-on sent the browser back without a session (`/?signin_error=…`). */
const SSO_ERRORS: Record<string, string> = {
  no_role: 'Single sign-on worked, but none of your groups gives you a role in Corral. Ask an admin.',
  state: 'The single sign-on answer did not match this browser’s request. Try again.',
  unavailable: 'The single sign-on provider could not be reached. Try again later.',
  failed: 'Single sign-on failed. Try again.',
};

function ssoError(): string {
  const code = new URLSearchParams(window.location.search).get('signin_error');
  if (code === null) return '';
  // Own keys only: `?signin_error=__proto__` must not hand the page an object to render.
  return (Object.hasOwn(SSO_ERRORS, code) ? SSO_ERRORS[code] : SSO_ERRORS.failed) ?? '';
}

function describe(error: unknown): string {
  if (error instanceof ApiError) {
    const known = SIGNIN_ERRORS[error.error];
    if (error.retryAfterS !== undefined) return `${known ?? visible(error.message)} Try again in ${error.retryAfterS} s.`;
    return known ?? visible(error.message);
  }
  return 'The gateway did not answer. Is it running?';
}

/** `notice`: why the console is signed out, when it signed itself out. */
export function SignIn({ notice, onSignedIn }: { notice?: string | undefined; onSignedIn: (user: User) => void }) {
  const [providers, setProviders] = useState<Providers>();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(ssoError);

  useEffect(() => {
    api.providers().then(setProviders, () => setProviders({ local: true, oidc: null }));
    // The error is shown; a reload or the next sign-in should not show it again.
    if (window.location.search.includes('signin_error')) window.history.replaceState(null, '', window.location.pathname);
  }, []);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError('');
    try {
      const session = await api.signIn(username, password);
      setPassword('');
      onSignedIn(session.user);
    } catch (failure) {
      setError(describe(failure));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="signin" id="main">
      <h1>Corral</h1>
      <p className="muted">Sign in to review approvals, activity and the audit log.</p>
      {notice !== undefined && error === '' && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {error !== '' && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {providers?.local !== false && (
        <form onSubmit={submit} aria-label="Sign in">
          <label>
            Username
            <input name="username" autoComplete="username" required value={username} onChange={(e) => setUsername(e.target.value)} autoFocus />
          </label>
          <label>
            Password
            <input name="password" type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          </label>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
        </form>
      )}
      {providers?.oidc && (
        <p>
          <a
            className="button"
            href="/api/auth/oidc/start"
            onClick={(e) => {
              e.preventDefault();
              window.location.assign(api.oidcStartUrl());
            }}
          >
            {/* The name an administrator gave the provider: not the console's own words. */}
            Sign in with SSO ({visible(providers.oidc.name)})
          </a>
        </p>
      )}
    </main>
  );
}
