// @corral/gateway: Corral's control plane, speaking the OpenClaw gateway protocol.
export { GatewayError } from './errors.ts';
export type { GatewayErrorCode, WireError } from './errors.ts';
export { GatewayServer, GATEWAY_VERSION, PROTOCOL_VERSION } from './server/server.ts';
export type { GatewayLogEntry, GatewayServerOptions, MethodContext, MethodSpec } from './server/server.ts';
export type { Connection, Peer } from './server/connection.ts';
export { GatewayClient, connectParams } from './client/client.ts';
export type { GatewayClientOptions } from './client/client.ts';
export { CLOSE, HANDSHAKE_TIMEOUT_MS, MAX_BUFFERED_BYTES, MAX_PAYLOAD_BYTES, MAX_PREAUTH_PAYLOAD_BYTES, TICK_INTERVAL_MS } from './protocol/limits.ts';
export { OPERATOR_SCOPES, grantScopes, hasScope } from './protocol/scopes.ts';
export type { OperatorScope, Role } from './protocol/scopes.ts';
export { checkConnectParams, isHelloOk, parseClientFrame, parseServerFrame } from './protocol/frames.ts';
export type { ConnectParams, HelloOk } from './protocol/frames.ts';
