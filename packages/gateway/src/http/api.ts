// The gateway's HTTP API beside the WebSocket: approvals for tools that do
// not speak the protocol. Every request carries the gateway token as a
// bearer token; failures answer generically (`401 invalid_token`,
// `404 not_found`…), with the coded cause kept for the log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApprovalDecision, ApprovalStore, Approval } from '../approvals/store.ts';
import { GatewayError } from '../errors.ts';
import { sameSecret } from '../server/handshake.ts';

const MAX_BODY = 16 * 1024;

export interface ApiDeps {
  token: string;
  approvals: () => ApprovalStore | undefined;
  resolve: (id: string, decision: ApprovalDecision, approver: string) => Approval;
}

export function approvalsApi(deps: ApiDeps): (request: IncomingMessage, response: ServerResponse) => void {
  return (request, response) => {
    void handle(deps, request, response).catch(() => send(response, 500, { error: 'internal_error' }));
  };
}

async function handle(deps: ApiDeps, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://gateway');
  if (!url.pathname.startsWith('/api/')) return send(response, 426, { error: 'upgrade_required' });
  const auth = request.headers.authorization ?? '';
  const presented = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  if (presented === '' || !sameSecret(presented, deps.token)) return send(response, 401, { error: 'invalid_token' });
  const approvals = deps.approvals();
  if (!approvals) return send(response, 503, { error: 'unavailable' });
  const parts = url.pathname.split('/').filter(Boolean); // api, approvals, id?, verb?
  if (parts[1] !== 'approvals' || parts.length > 4) return send(response, 404, { error: 'not_found' });
  try {
    if (request.method === 'GET' && parts.length === 2) {
      const status = url.searchParams.get('status') ?? 'pending';
      return send(response, 200, { approvals: approvals.list(status === 'all' ? {} : { status: status as Approval['status'] }) });
    }
    if (request.method === 'GET' && parts.length === 3) return send(response, 200, approvals.get(parts[2]!));
    if (request.method === 'POST' && parts.length === 4 && (parts[3] === 'approve' || parts[3] === 'deny')) {
      const body = await readJson(request);
      const approver = typeof body.approver === 'string' ? body.approver : '';
      const decision: ApprovalDecision = parts[3] === 'deny' ? 'deny' : body.decision === 'allow-always' ? 'allow-always' : 'allow-once';
      return send(response, 200, deps.resolve(parts[2]!, decision, approver));
    }
    return send(response, 405, { error: 'method_not_allowed' });
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    const status = error.code === 'GATEWAY_APPROVAL_NOT_FOUND' ? 404 : error.code === 'GATEWAY_PARAMS_INVALID' ? 400 : 409;
    return send(response, status, { error: error.code === 'GATEWAY_APPROVAL_NOT_FOUND' ? 'not_found' : error.code === 'GATEWAY_PARAMS_INVALID' ? 'invalid_request' : 'conflict', code: error.code });
  }
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body is not a JSON object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new GatewayError('GATEWAY_PARAMS_INVALID', 'the body is not a JSON object', { cause: error });
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
}
