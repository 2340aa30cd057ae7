// The active policy set, and a candidate edited beside it: validate it, run
// the test cases, replay recorded decisions to see what would change, then
// activate it over the exact set it was edited from (baseHash). A hand edit
// of the policy directory the gateway refused, and a set in force left
// unrecorded (every request denied), are shown above it.
import { useEffect, useState } from 'react';
import { ApiError, api } from '../../api/client.ts';
import type { PolicyFile, User } from '../../api/types.ts';
import { ErrorNote } from '../../common/ErrorNote.tsx';
import { isAdmin } from '../../common/roles.ts';
import { shortHash, visible } from '../../format.ts';
import { useLoad } from '../../hooks/use-load.ts';
import { CheckResults, type Result } from './CheckResults.tsx';
import { HiddenCharacters } from './HiddenCharacters.tsx';
import { RefusedEditAlert, UnrecordedAlert } from './SetAlerts.tsx';

export function Policies({ user }: { user: User }) {
  const active = useLoad(() => api.policies(), []);
  const [candidate, setCandidate] = useState<PolicyFile[]>([]);
  const [selected, setSelected] = useState('');
  const [result, setResult] = useState<Result>();
  const [error, setError] = useState<Error>();
  const [busy, setBusy] = useState(false);
  const admin = isAdmin(user);

  // Another set in force replaces the candidate; the same set loaded again (its status refreshed) keeps the edits.
  const activeHash = active.data?.hash;
  useEffect(() => {
    if (active.data) setCandidate(active.data.files.map((f) => ({ ...f })));
  }, [activeHash]);

  const changed = active.data !== undefined && candidate.some((f, i) => f.text !== active.data?.files[i]?.text);
  const file = candidate.find((f) => f.name === selected) ?? candidate[0];

  async function check(run: () => Promise<Result>) {
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      setResult(await run());
    } catch (failure) {
      if (failure instanceof ApiError && failure.status === 409) setError(new Error('The active policies changed since this page loaded them. Reload, then apply your edit again.'));
      else setError(failure as Error);
    } finally {
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="policies-title">
      <div className="page-head">
        <h1 id="policies-title">Policies</h1>
        {active.data && (
          <span className="muted">
            active set <span className="mono">{shortHash(active.data.hash)}</span>
          </span>
        )}
      </div>
      <ErrorNote error={active.error} />
      {active.data?.unrecorded && <UnrecordedAlert hash={active.data.hash} admin={admin} />}
      {active.data?.refusedEdit && <RefusedEditAlert refused={active.data.refusedEdit} admin={admin} />}
      {active.data && (
        <div className="policy-editor">
          <nav aria-label="Policy files" className="file-list">
            <ul>
              {candidate.map((f, i) => (
                <li key={f.name}>
                  <button type="button" aria-current={f.name === file?.name ? 'true' : undefined} onClick={() => setSelected(f.name)}>
                    {visible(f.name)}
                    {f.text !== active.data?.files[i]?.text ? ' •' : ''}
                  </button>
                </li>
              ))}
            </ul>
          </nav>
          <div className="editor">
            {file && (
              <label>
                {/* Named by whoever wrote the policy directory. */}
                {admin ? `Candidate ${visible(file.name)}` : visible(file.name)}
                <textarea
                  spellCheck={false}
                  readOnly={!admin}
                  aria-describedby="policy-hidden-characters"
                  value={file.text}
                  rows={Math.min(30, Math.max(10, file.text.split('\n').length + 1))}
                  onChange={(e) => {
                    const text = e.target.value;
                    setCandidate((files) => files.map((f) => (f.name === file.name ? { ...f, text } : f)));
                    setResult(undefined);
                  }}
                />
              </label>
            )}
            {file && <HiddenCharacters id="policy-hidden-characters" text={file.text} />}
            {admin && (
              <div className="actions">
                <button type="button" disabled={busy} onClick={() => void check(async () => ({ kind: 'validate', value: await api.validatePolicies(candidate) }))}>
                  Validate
                </button>
                <button type="button" disabled={busy} onClick={() => void check(async () => ({ kind: 'test', value: await api.testPolicies(candidate) }))}>
                  Test
                </button>
                <button type="button" disabled={busy} onClick={() => void check(async () => ({ kind: 'replay', value: await api.replayPolicies(candidate) }))}>
                  Replay
                </button>
                <button
                  type="button"
                  className="primary"
                  // A set left unrecorded ends when it is activated again as it stands.
                  disabled={busy || !(changed || active.data.unrecorded)}
                  onClick={() =>
                    void check(async () => {
                      try {
                        const activated = await api.activatePolicies(candidate, active.data?.hash ?? '');
                        active.reload();
                        return { kind: 'activated', hash: activated.hash };
                      } catch (failure) {
                        // A failed activation can leave the set in force unrecorded, which the status then says; after a conflict the page keeps the edit until reloaded.
                        if (!(failure instanceof ApiError && failure.status === 409)) active.reload();
                        throw failure;
                      }
                    })
                  }
                >
                  Activate
                </button>
                <button type="button" disabled={busy || !changed} onClick={() => active.data && setCandidate(active.data.files.map((f) => ({ ...f })))}>
                  Discard changes
                </button>
              </div>
            )}
            <ErrorNote error={error} />
            {result && <CheckResults result={result} />}
          </div>
        </div>
      )}
    </section>
  );
}
