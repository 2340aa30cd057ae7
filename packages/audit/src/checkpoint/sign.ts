import { sign, type KeyObject } from 'node:crypto';
import { checkpointSigningInput, type CheckpointBody, type SignedCheckpoint } from './checkpoint.ts';

/** Signs a checkpoint body with the log's Ed25519 private key (RFC 8032). */
export function signCheckpoint(privateKey: KeyObject, body: CheckpointBody): SignedCheckpoint {
  const signature = sign(null, checkpointSigningInput(body), privateKey).toString('base64');
  return { size: body.size, root: body.root, time: body.time, keyId: body.keyId, signature };
}
