// The root the stored interior nodes give for a prefix of the log. Its own
// module so that opening a log to append (audit-log.ts) does not load the
// verifier and proof readers beside it in reader.ts.
import { sha256Hasher } from '../merkle/hasher.ts';
import { rootAt } from '../merkle/prover.ts';
import type { AuditStore } from '../store/store.ts';

/** The Merkle root of the first `size` records, from stored nodes. */
export async function storedRootAt(store: AuditStore, size: number): Promise<string> {
  return size === 0 ? sha256Hasher.emptyRoot() : rootAt(sha256Hasher, (ids) => store.nodes(ids), size);
}
