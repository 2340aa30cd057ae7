// Client-side routes on plain paths (/approvals, /audit/41…): the gateway
// answers index.html for any path that is not a file, so a reload lands here.
import { useEffect, useState } from 'react';

export function currentPath(): string {
  return window.location.pathname;
}

export function navigate(path: string): void {
  if (path === window.location.pathname + window.location.search) return;
  window.history.pushState(null, '', path);
  window.dispatchEvent(new PopStateEvent('popstate'));
}

export function usePath(): string {
  const [path, setPath] = useState(currentPath);
  useEffect(() => {
    const update = () => setPath(currentPath());
    window.addEventListener('popstate', update);
    return () => window.removeEventListener('popstate', update);
  }, []);
  return path;
}
