import type { PolicyIssue, Replay, TestRun, Validation } from '../../api/types.ts';
import { issueText, shortHash, visible } from '../../format.ts';

/** What one of the page's checks answered. */
export type Result = { kind: 'validate'; value: Validation } | { kind: 'test'; value: TestRun } | { kind: 'replay'; value: Replay } | { kind: 'activated'; hash: string };

function Issues({ issues }: { issues: PolicyIssue[] }) {
  if (issues.length === 0) return null;
  return (
    <ul className="issues">
      {issues.map((issue, i) => (
        <li key={i} className="mono">
          {visible(issueText(issue))}
        </li>
      ))}
    </ul>
  );
}

/** What Validate, Test, Replay or Activate found, announced to screen readers. */
export function CheckResults({ result }: { result: Result }) {
  return (
    <div className="results" role="status" aria-live="polite">
      {result.kind === 'validate' && (
        <>
          <p className={result.value.ok ? 'ok' : 'error'}>{result.value.ok ? 'The candidate is valid.' : `${result.value.issues.length} problem(s):`}</p>
          <Issues issues={result.value.issues} />
        </>
      )}
      {result.kind === 'test' && (
        <>
          <p className={result.value.ok ? 'ok' : 'error'}>
            {result.value.results.filter((r) => r.pass).length} of {result.value.results.length} cases pass.
          </p>
          <Issues issues={result.value.issues} />
          <table className="grid">
            <thead>
              <tr>
                <th scope="col">Case</th>
                <th scope="col">Expected</th>
                <th scope="col">Actual</th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {result.value.results.map((r) => (
                <tr key={r.name}>
                  <td>{visible(r.name)}</td>
                  <td>{visible(r.expected)}</td>
                  <td>{visible(r.actual)}</td>
                  <td className={r.pass ? 'ok' : 'error'}>{r.pass ? 'pass' : 'FAIL'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
      {result.kind === 'replay' && (
        <>
          <p>
            Replayed {result.value.replayed} recorded decisions: {result.value.changed.length === 0 ? 'none would change.' : `${result.value.changed.length} would change.`}
          </p>
          {result.value.changed.length > 0 && (
            <table className="grid">
              <thead>
                <tr>
                  <th scope="col">Seq</th>
                  <th scope="col">Principal</th>
                  <th scope="col">Action</th>
                  <th scope="col">Was</th>
                  <th scope="col">Would be</th>
                </tr>
              </thead>
              <tbody>
                {result.value.changed.map((c) => (
                  <tr key={c.seq}>
                    <td className="num">{c.seq}</td>
                    <td className="mono">{visible(c.principal)}</td>
                    <td className="mono">{visible(c.action)}</td>
                    <td>{visible(c.was)}</td>
                    <td>{visible(c.now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      {result.kind === 'activated' && (
        <p className="ok">
          Activated. The active set is now <span className="mono">{shortHash(result.hash)}</span>.
        </p>
      )}
    </div>
  );
}
