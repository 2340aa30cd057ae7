// Plays a browser at a real OpenID Connect provider (oidc-provider's
// development login and consent pages) for the sign-in tests: keeps cookies,
// follows redirects, signs in as `user` (any password), consents, and stops at
// the first redirect `isCallback` recognises, returning that URL.
import assert from 'node:assert/strict';

export async function signInAtIssuer(url: string, user: string, isCallback: (target: string) => boolean): Promise<string> {
  const cookies = new Map<string, string>();
  let next = url;
  let init: RequestInit = {};
  for (let step = 0; step < 20; step++) {
    const res = await fetch(next, { ...init, redirect: 'manual', headers: { ...(init.headers as Record<string, string>), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    const location = res.headers.get('location');
    if (location) {
      const target = new URL(location, next).toString();
      if (isCallback(target)) return target;
      next = target;
      init = {};
      continue;
    }
    const html = await res.text();
    assert.equal(res.status, 200, html.slice(0, 500));
    const action = /action="([^"]+)"/.exec(html)?.[1];
    assert.ok(action, `a form on the issuer's page: ${html.slice(0, 200)}`);
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    next = new URL(action, next).toString();
    init = { method: 'POST', body: new URLSearchParams(prompt === 'login' ? { prompt, login: user, password: 'any' } : { prompt: prompt ?? 'consent' }), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  assert.fail('the sign-in did not finish in 20 steps');
}
