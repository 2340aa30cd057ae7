// What keeps the policy set in force from being what the editor suggests: a
// hand edit of the policy directory the gateway refused, and a set in force
// whose activation was neither recorded nor put back (every request denied).
// Each says what it means and what ends it, announced as an alert.
import type { PolicyIssue, RefusedEdit } from '../../api/types.ts';
import { issueText, shortHash, visible } from '../../format.ts';

/** A sentence the gateway wrote in lower case, as one the page shows. */
function sentence(text: string): string {
  const shown = visible(text);
  return `${shown.charAt(0).toUpperCase()}${shown.slice(1)}${/[.!?]$/.test(shown) ? '' : '.'}`;
}

/** An issue in a file an admin wrote by hand: any character that draws nothing is spelled out. */
function issueLine(issue: PolicyIssue): string {
  return visible(issueText(issue));
}

/** The hand edit the gateway did not adopt: why, each issue by file and line (the gateway names no path), and how to end it. */
export function RefusedEditAlert({ refused, admin }: { refused: RefusedEdit; admin: boolean }) {
  return (
    <div className="error set-alert" role="alert" aria-labelledby="refused-edit-title">
      <h2 id="refused-edit-title">An edit of the policy directory was refused</h2>
      <p>
        {sentence(refused.message)} <span className="mono">({visible(refused.code)})</span>
      </p>
      {refused.issues.length > 0 && (
        <ul className="issues">
          {refused.issues.map((issue, i) => (
            <li key={i} className="mono">
              {issueLine(issue)}
            </li>
          ))}
        </ul>
      )}
      <p>
        The files shown here are the set in use, not the refused ones. To end this, fix the files in the policy directory and load this page again, or{' '}
        {admin ? 'edit the set here into a valid one and activate it' : 'have an admin activate a valid set from this page'}: activating replaces the directory's files.
      </p>
    </div>
  );
}

/** The set in force was activated but neither recorded in the audit log nor put back: the gateway denies every request until a set is activated and recorded. */
export function UnrecordedAlert({ hash, admin }: { hash: string; admin: boolean }) {
  return (
    <div className="error set-alert" role="alert" aria-labelledby="unrecorded-title">
      <h2 id="unrecorded-title">Every request is denied: the set in force was not recorded</h2>
      <p>
        The set in force (<span className="mono">{shortHash(hash)}</span>) was activated, but the audit log could not record the activation, and the set it replaced could not be put back. This gateway
        decides nothing with it: every request is denied until a set is activated and recorded.
      </p>
      <p>
        {admin
          ? 'Once the audit log takes records again, activate a set: Activate records the set shown here as it stands, or edit it first.'
          : 'Once the audit log takes records again, an admin must activate a set from this page.'}
      </p>
    </div>
  );
}
