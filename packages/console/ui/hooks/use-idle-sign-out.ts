// Signs an unattended console out. The gateway ends a session left an hour
// without use, but the console's own polls (the pending-approvals count every
// 10 s, the lists of approvals and nodes) are requests too and restart that
// clock, so a console left open on an unlocked screen stayed signed in for the
// session's whole 12 hours. Use here is a person's: a key, a click, a touch
// or the wheel, in any tab of the console (their time is shared
// through this origin's localStorage, so an idle tab does not sign out one in use).
import { useEffect } from 'react';

/** The gateway's idle expiry of a console session (docs/http-api.md). */
export const IDLE_MS = 60 * 60_000;
/** How often the hook looks at the time since the last use. */
const CHECK_MS = 15_000;
/** How often a tab in use writes so for the others, at most. */
const SHARE_MS = 5_000;
const LAST_USE_ITEM = 'corral.last-use';
/** A person's use. Not the pointer's moves: a browser may report one when the page moves under a still pointer (live activity adding rows). */
const USES = ['keydown', 'pointerdown', 'wheel', 'touchstart'] as const;

function sharedLastUse(): number {
  try {
    const value = Number(localStorage.getItem(LAST_USE_ITEM));
    return Number.isFinite(value) ? value : 0;
  } catch {
    return 0;
  }
}

/** Calls `onIdle` once nobody has used any tab of the console for `idleMs`; signing in counts as use. */
export function useIdleSignOut(onIdle: () => void, idleMs = IDLE_MS): void {
  useEffect(() => {
    let last = 0;
    let shared = 0;
    let ended = false;
    const used = () => {
      last = Date.now();
      if (last - shared < SHARE_MS) return;
      shared = last;
      try {
        localStorage.setItem(LAST_USE_ITEM, String(last));
      } catch {
        // storage refused: this tab's own use still counts for it
      }
    };
    used();
    for (const use of USES) window.addEventListener(use, used, { capture: true, passive: true });
    const timer = setInterval(() => {
      // A clock set back (or another tab's from the future) counts as use now, never as an hour gone.
      const since = Date.now() - Math.max(last, Math.min(sharedLastUse(), Date.now()));
      if (ended || since < idleMs) return;
      ended = true;
      onIdle();
    }, CHECK_MS);
    return () => {
      clearInterval(timer);
      for (const use of USES) window.removeEventListener(use, used, { capture: true });
    };
  }, [onIdle, idleMs]);
}
