import { ApiError } from '../api/client.ts';
import { issueText } from '../format.ts';

/** A failure as one line people can act on; the gateway's code when it gave one. */
export function ErrorNote({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const code = error instanceof ApiError && error.code ? ` (${error.code})` : '';
  const issues = error instanceof ApiError ? error.issues : [];
  return (
    <div className="error" role="alert">
      {error.message}
      {code}
      {issues.length > 0 && (
        <ul>
          {issues.map((issue, i) => (
            <li key={i} className="mono">
              {issueText(issue)}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
