// What an approver reads of the script a run runs, beside its path and sha256:
// the file's first bytes as text. An approval of `python3 build.py` bound to
// build.py's content is of what that content does, and an approver far from
// the node has no other way to read it. The node that binds the file (it read
// and hashed it: packages/node's file-operand.ts) sends the preview of those
// same bytes, when the Corral gateway asks for it (SCRIPT_PREVIEW_CAP) or as it
// asks a human itself (corral.run.authorize); the digest covers the sha256,
// never the preview, which is for reading. It is the node's word, as the run
// itself is: checked for its shape and size here, shown as untrusted text.

/** The capability a node declares when its system.run.prepare answers `scriptPreview` on request (`scriptPreview: true` in its params). */
export const SCRIPT_PREVIEW_CAP = 'corral.script-preview';

/** The most of a script shown: its first 64 KiB, enough for any script a person reads before approving it. */
export const SCRIPT_PREVIEW_BYTES = 64 * 1024;

/**
 * A bound script as approvers are shown it: its size in bytes, whether more
 * than SCRIPT_PREVIEW_BYTES of it were left out, and its first
 * SCRIPT_PREVIEW_BYTES as text — absent when they are not UTF-8 text (a NUL,
 * or bytes that are no UTF-8), which no approver could read as a script.
 */
export interface ScriptPreview {
  bytes: number;
  truncated: boolean;
  text?: string;
}

/**
 * A node's preview as approvers are to be shown it, or undefined for anything
 * not of ScriptPreview's shape: `bytes` a whole number, `truncated` a boolean
 * that says the text is not all of it, `text` (optional) a string of at most
 * SCRIPT_PREVIEW_BYTES characters, its lone surrogates made U+FFFD. A
 * malformed preview is left out, never refused: the run is bound by its
 * sha256 whatever the node says it holds.
 */
export function scriptPreviewOf(given: unknown): ScriptPreview | undefined {
  if (given === null || typeof given !== 'object' || Array.isArray(given)) return undefined;
  const { bytes, truncated, text } = given as Record<string, unknown>;
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0 || typeof truncated !== 'boolean') return undefined;
  if (text !== undefined && (typeof text !== 'string' || text.length > SCRIPT_PREVIEW_BYTES)) return undefined;
  return { bytes, truncated, ...(text !== undefined ? { text: text.toWellFormed() } : {}) };
}
