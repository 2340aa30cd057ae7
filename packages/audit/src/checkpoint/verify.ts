import { verify, type KeyObject } from 'node:crypto';
import { AuditError } from '../errors.ts';
import { checkpointSigningInput, type SignedCheckpoint } from './checkpoint.ts';
import { keyIdOf } from './key.ts';

/**
 * Checks a checkpoint's signature under the trusted public key.
 * A checkpoint naming another key id, whose signature does not verify, or is
 * not spelled as the signer spells it (canonical base64), is forged (or
 * re-signed by someone else) — the same answer either way.
 *
 * @throws AuditError AUDIT_CHECKPOINT_FORGED.
 */
export function verifyCheckpointSignature(publicKey: KeyObject, checkpoint: SignedCheckpoint): void {
  // Base64 decoding skips what is not base64 and drops the last character's unused bits:
  // without the round trip, other texts (a stored row, an export line) would pass as this signature.
  const signature = Buffer.from(checkpoint.signature, 'base64');
  const ok =
    checkpoint.keyId === keyIdOf(publicKey) && signature.toString('base64') === checkpoint.signature && verify(null, checkpointSigningInput(checkpoint), publicKey, signature);
  if (!ok) throw new AuditError('AUDIT_CHECKPOINT_FORGED', `checkpoint at size ${checkpoint.size} does not carry a valid signature of the trusted key`);
}
