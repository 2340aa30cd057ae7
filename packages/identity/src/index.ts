export { IdentityError, FORGED_TOKEN_CODES } from './errors.ts';
export type { IdentityErrorCode } from './errors.ts';
export { Identity } from './identity.ts';
export type { IdentityOptions } from './identity.ts';
export { AgentRegistry } from './agents.ts';
export type { Agent, AgentStatus, NewAgent } from './agents.ts';
export { KeyRing } from './keys.ts';
export type { PublicJwk, SigningKeyInfo } from './keys.ts';
export { tokenKeyId } from './tokens.ts';
export type { AgentTokenClaims, TokenRefusal, TokenSettings } from './tokens.ts';
export {
  DEVICE_SIGNATURE_SKEW_MS,
  createDeviceIdentity,
  deviceAuthPayloadV2,
  deviceAuthPayloadV3,
  deviceIdFor,
  parsePublicKey,
  signDeviceAuth,
  verifyDeviceProof,
} from './device.ts';
export type { DeviceAuthFields, DeviceIdentity, DeviceProof } from './device.ts';
export { MAX_PENDING_NODES, NodeRegistry, PENDING_NODE_TTL_MS, printable } from './nodes.ts';
export type { NodeConnect, NodeRecord, NodeStatus, SurfaceRequest } from './nodes.ts';
export { CORRAL_ROLES, OidcClient, checkOidcSettings, mapRoles } from './oidc.ts';
export type { CorralRole, HumanIdentity, OidcSettings, PendingLogin } from './oidc.ts';
export { HumanRegistry } from './humans.ts';
export { LocalUsers } from './local-users.ts';
export type { LocalUser } from './local-users.ts';
export type { HumanRecord } from './humans.ts';
export { parseTtl } from './ttl.ts';
export { isBusy } from './busy.ts';
export { turnToWal } from './wal.ts';
export { securePrivateDir } from './state-dir.ts';
