import { verify, type KeyObject } from 'node:crypto';
import { AuditError } from '../errors.ts';
import { checkpointSigningInput, type SignedCheckpoint } from './checkpoint.ts';
import { keyIdOf } from './key.ts';

/**
 * Checks a parsed checkpoint's signature under the trusted public key.
 * A checkpoint naming another key id, or whose signature does not verify, is
 * forged (or re-signed by someone else) — the same answer either way.
 *
 * @throws AuditError AUDIT_CHECKPOINT_FORGED.
 */
export function verifyCheckpointSignature(publicKey: KeyObject, checkpoint: SignedCheckpoint): void {
  const ok = checkpoint.keyId === keyIdOf(publicKey) && verify(null, checkpointSigningInput(checkpoint), publicKey, Buffer.from(checkpoint.signature, 'base64'));
  if (!ok) throw new AuditError('AUDIT_CHECKPOINT_FORGED', `checkpoint at size ${checkpoint.size} does not carry a valid signature of the trusted key`);
}
