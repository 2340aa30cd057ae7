// The whole log checked the way `corral audit verify` checks it: hash chain,
// Merkle tree and every signed checkpoint.
import { api } from '../../api/client.ts';
import { useLoad } from '../../hooks/use-load.ts';
import { formatTime, visible } from '../../format.ts';

export function VerifyBadge() {
  const check = useLoad(() => api.auditVerify(), []);
  const result = check.data;
  let text = 'verifying…';
  let tone = 'none';
  if (check.error) {
    text = `could not verify: ${visible(check.error.message)}`;
    tone = 'deny';
  } else if (result && !check.loading) {
    text = result.ok ? `log verified: ${result.records} records, ${result.checkpoints} checkpoints` : `log damaged at record ${result.firstBad ?? '?'}: ${visible(result.damage ?? result.message)}`;
    tone = result.ok ? 'allow' : 'deny';
  }
  return (
    <span className="verify">
      <span className={`badge badge-${tone}`} role="status" aria-live="polite" title={result ? `checked ${formatTime(result.verifiedAtMs)} in ${result.durationMs} ms` : undefined}>
        {text}
      </span>{' '}
      <button type="button" onClick={check.reload} disabled={check.loading}>
        Verify again
      </button>
    </span>
  );
}
