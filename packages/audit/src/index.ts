// @corral/audit: the tamper-evident audit log.
export { AuditError } from './errors.ts';
export type { AuditErrorCode, EventIssue } from './errors.ts';

export { canonicalize } from './record/canonical.ts';
export type { JsonValue } from './record/canonical.ts';
export { RECORD_VERSION, MAX_EVENT_BYTES, normalizeEvent, canonicalEvent, digestOf } from './record/event.ts';
export type { AuditEvent, AuditEventInput, Actor, Principal, PrincipalKind, Decision, Effect, ContextInput, Outcome, OutcomeStatus } from './record/event.ts';
export { GENESIS_PREV, recordBytes, parseRecord } from './record/envelope.ts';
export { parseTimeBound, TIME_BOUND_FORMAT } from './record/time-bound.ts';
export type { ParsedRecord } from './record/envelope.ts';

export { sha256Hasher, isHash, hashesEqual } from './merkle/hasher.ts';
export type { MerkleHasher } from './merkle/hasher.ts';
export { CompactRange } from './merkle/compact-range.ts';
export { rootFromInclusionProof, verifyInclusion } from './merkle/inclusion.ts';
export { rootsFromConsistencyProof, verifyConsistency } from './merkle/consistency.ts';

export { parseCheckpoint, checkpointSigningInput, checkpointJson, CHECKPOINT_CONTEXT } from './checkpoint/checkpoint.ts';
export type { CheckpointBody, SignedCheckpoint } from './checkpoint/checkpoint.ts';
export { keyIdOf, publicKeyFromPem, publicKeyPem } from './checkpoint/key.ts';
export { verifyCheckpointSignature } from './checkpoint/verify.ts';

export { LogVerifier } from './verify/verifier.ts';
export type { VerifiableRecord, VerifierOptions, VerifyStart } from './verify/verifier.ts';
export type { Damage, DamageKind, VerifyReport } from './verify/report.ts';

export type { AuditStore, LogHead, LogMeta, StoredRecord, ChainRow } from './store/store.ts';
export { SqliteStore } from './store/sqlite.ts';
// PostgresStore is `@corral/audit/postgres`, so that a SQLite log never loads the PostgreSQL driver.
export { postgresWhere } from './store/postgres-where.ts';

export { openAuditLog, AuditLog, CHECKPOINT_DEFAULTS, DB_FILE } from './log/audit-log.ts';
export type { OpenAuditLogOptions } from './log/audit-log.ts';
export { openAuditReader } from './log/open-reader.ts';
export type { AuditReader, OpenAuditReaderOptions } from './log/open-reader.ts';
export { readRecord, toAuditRecord, proveInclusion, proveConsistency, verifyStore } from './log/reader.ts';
export type { VerifyStoreOptions } from './log/reader.ts';
export type { VerifyProgressOptions } from './verify/progress.ts';
export { storedRootAt } from './log/stored-root.ts';
export type { AuditRecord } from './log/audit-record.ts';
export type { InclusionProofResult, ConsistencyProofResult } from './log/reader.ts';

export { exportJsonl, EXPORT_FORMAT } from './export/jsonl.ts';
export type { ExportHeader, ExportRange } from './export/jsonl.ts';
export { toOcsf, toOcsfEvents, OCSF_VERSION } from './export/ocsf.ts';
export type { OcsfInput } from './export/ocsf.ts';

export { loadSigningKey, loadPublicKeyFile, KEY_FILE, PUBLIC_KEY_FILE } from './io/key-file.ts';
export { readWitness, advanceWitness, witnessPath, WITNESS_FILE } from './io/witness-file.ts';
export { verifyExportFile } from './io/export-file.ts';
export { readCheckpointFile } from './io/checkpoint-file.ts';
