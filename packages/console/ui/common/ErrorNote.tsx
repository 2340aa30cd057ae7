import { ApiError } from '../api/client.ts';
import { issueText, visible } from '../format.ts';

/**
 * A failure as one line people can act on; the gateway's code when it gave
 * one. Its words and issues are shown through visible(): a message may quote
 * what someone else chose (an id, a file name, a line of policy).
 */
export function ErrorNote({ error }: { error: Error | undefined }) {
  if (!error) return null;
  const code = error instanceof ApiError && error.code ? ` (${error.code})` : '';
  const issues = error instanceof ApiError ? error.issues : [];
  return (
    <div className="error" role="alert">
      {visible(error.message)}
      {visible(code)}
      {issues.length > 0 && (
        <ul>
          {issues.map((issue, i) => (
            <li key={i} className="mono">
              {visible(issueText(issue))}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
