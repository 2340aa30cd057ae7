// The form that asks why before a decision that refuses (Deny, Withdraw): a
// reason is required, kept with the approval and in its audit record.
import { useState, type FormEvent } from 'react';

/** The gateway keeps a reason of at most this many characters. */
const MAX_REASON = 500;

/** `verb` names the field ("Reason for denying") and the button; `onSubmit` gets the reason, trimmed. */
export function ReasonForm({ verb, gerund, busy, onSubmit, onCancel }: { verb: string; gerund: string; busy: boolean; onSubmit: (reason: string) => void; onCancel: () => void }) {
  const [reason, setReason] = useState('');
  function submit(event: FormEvent) {
    event.preventDefault();
    onSubmit(reason.trim());
  }
  return (
    <form className="actions" onSubmit={submit}>
      <label>
        Reason for {gerund}
        <input value={reason} onChange={(e) => setReason(e.target.value)} required autoFocus maxLength={MAX_REASON} />
      </label>
      <button type="submit" className="danger" disabled={busy || reason.trim() === ''}>
        {verb}
      </button>
      <button type="button" onClick={onCancel}>
        Cancel
      </button>
    </form>
  );
}
