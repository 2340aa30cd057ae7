// The console's shell: who is signed in, the navigation their roles allow,
// and the page for the current path.
import { useCallback, useEffect, useRef, useState } from 'react';
import { api, onSessionChanged, onSignedOut } from './api/client.ts';
import type { User } from './api/types.ts';
import { canRead, type PageName } from './common/roles.ts';
import { visible } from './format.ts';
import { useIdleSignOut } from './hooks/use-idle-sign-out.ts';
import { usePendingCount } from './hooks/use-pending-count.ts';
import { navigate, usePath } from './hooks/use-route.ts';
import { Activity } from './pages/activity/Activity.tsx';
import { AgentsAndNodes } from './pages/agents/AgentsAndNodes.tsx';
import { Approvals } from './pages/approvals/Approvals.tsx';
import { AuditExplorer } from './pages/audit/AuditExplorer.tsx';
import { Policies } from './pages/policies/Policies.tsx';
import { SignIn } from './pages/signin/SignIn.tsx';

const PAGES: Array<{ name: PageName; path: string; title: string }> = [
  { name: 'activity', path: '/activity', title: 'Live activity' },
  { name: 'approvals', path: '/approvals', title: 'Approvals' },
  { name: 'audit', path: '/audit', title: 'Audit' },
  { name: 'agents', path: '/agents', title: 'Agents and nodes' },
  { name: 'policies', path: '/policies', title: 'Policies' },
];

/** `idle`: the console signed itself out after an hour without use, which the sign-in page says. */
type SessionState = { kind: 'checking' } | { kind: 'signed-out'; idle?: boolean } | { kind: 'signed-in'; user: User };

export function App() {
  const [session, setSession] = useState<SessionState>({ kind: 'checking' });
  const path = usePath();

  useEffect(() => {
    let current = true;
    const check = () =>
      api.session().then(
        (s) => current && setSession({ kind: 'signed-in', user: s.user }),
        () => current && setSession({ kind: 'signed-out' }),
      );
    void check();
    // A request still under way when the console signed itself out is refused too: the sign-in page keeps saying why.
    const stopSignedOut = onSignedOut(() => setSession((now) => (now.kind === 'signed-out' ? now : { kind: 'signed-out' })));
    // Another tab signed out or signed someone in: nothing the last user was shown stays on screen, and the console asks again who it acts as.
    const stopChanged = onSessionChanged(() => {
      setSession({ kind: 'checking' });
      void check();
    });
    return () => {
      current = false;
      stopSignedOut();
      stopChanged();
    };
  }, []);

  const signOut = useCallback(() => {
    void api.signOut().finally(() => setSession({ kind: 'signed-out' }));
  }, []);
  // Nothing the user was shown stays on screen while the gateway is told.
  const signOutIdle = useCallback(() => {
    setSession({ kind: 'signed-out', idle: true });
    void api.signOut().catch(() => {});
  }, []);

  if (session.kind === 'checking') return <p className="loading">Loading…</p>;
  if (session.kind === 'signed-out') return <SignIn notice={session.idle ? 'You were signed out after an hour without use.' : undefined} onSignedIn={(user) => setSession({ kind: 'signed-in', user })} />;

  return <Shell user={session.user} path={path} onSignOut={signOut} onIdle={signOutIdle} />;
}

function Shell({ user, path, onSignOut, onIdle }: { user: User; path: string; onSignOut: () => void; onIdle: () => void }) {
  useIdleSignOut(onIdle);
  // After moving to another page, focus goes to the page itself, so a keyboard
  // or screen-reader user starts there rather than back in the navigation.
  const main = useRef<HTMLElement>(null);
  const shown = useRef<PageName | undefined>(undefined);
  const allowed = PAGES.filter((p) => canRead(user, p.name));
  const pending = usePendingCount(canRead(user, 'approvals'));
  const current = allowed.find((p) => path === p.path || path.startsWith(`${p.path}/`)) ?? allowed[0];
  useEffect(() => {
    if (shown.current !== undefined && shown.current !== current?.name) main.current?.focus();
    shown.current = current?.name;
  }, [current?.name]);

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Corral</span>
        <nav aria-label="Console">
          {allowed.map((p) => (
            <a
              key={p.name}
              href={p.path}
              aria-current={current?.name === p.name ? 'page' : undefined}
              onClick={(event) => {
                if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
                event.preventDefault();
                navigate(p.path);
              }}
            >
              {p.title}
              {p.name === 'approvals' && pending > 0 && (
                <>
                  <span className="count" aria-hidden="true">
                    {pending}
                  </span>
                  <span className="visually-hidden">, {pending} pending</span>
                </>
              )}
            </a>
          ))}
        </nav>
        <span className="who">
          {/* The issuer's name for them, or a local user's: not the console's own words. */}
          {visible(user.name)} <span className="muted">({user.roles.join(', ')})</span>
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1} ref={main}>
        {current ? <Page name={current.name} path={path} user={user} /> : <p>Your account has no role that can use the console.</p>}
      </main>
    </>
  );
}

function Page({ name, path, user }: { name: PageName; path: string; user: User }) {
  switch (name) {
    case 'activity':
      return <Activity />;
    case 'approvals':
      return <Approvals user={user} />;
    case 'audit':
      return <AuditExplorer path={path} />;
    case 'agents':
      return <AgentsAndNodes user={user} />;
    case 'policies':
      return <Policies user={user} />;
  }
}
