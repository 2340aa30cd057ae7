// A scripted model for end-to-end tests with no cloud: an HTTP server on
// loopback speaking the OpenAI-compatible chat-completions API (streaming
// over server-sent events, and plain JSON), answering each request with the
// next turn of a script — a tool call (`exec` with a command) or a text
// reply — and recording every request it got, so a test can check what the
// agent sent back (a command's output reaches the model in the next request).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** One answer of the model. */
export type Turn =
  /** Call a tool: `{ tool: 'exec', arguments: { command: 'ls', host: 'node' } }`. */
  | { tool: string; arguments: Record<string, unknown> }
  /** Reply with text and end the turn. */
  | { say: string };

/** A chat-completions request as received: its messages and the tools offered. */
export interface RecordedRequest {
  model: string;
  stream: boolean;
  messages: Array<{ role: string; content?: unknown; tool_call_id?: string; tool_calls?: unknown[] }>;
  tools: string[];
}

const MAX_BODY = 8 * 1024 * 1024;

export class ScriptedModel {
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #turns: Turn[];
  #url = '';

  private constructor(turns: Turn[]) {
    this.#turns = [...turns];
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  /** Starts the server on 127.0.0.1 (a free port) with the script's turns, answered in order. */
  static async start(turns: Turn[]): Promise<ScriptedModel> {
    const model = new ScriptedModel(turns);
    await new Promise<void>((resolve) => model.#server.listen(0, '127.0.0.1', resolve));
    model.#url = `http://127.0.0.1:${(model.#server.address() as { port: number }).port}/v1`;
    return model;
  }

  /** The base URL a provider is configured with: `http://127.0.0.1:PORT/v1`. */
  get baseUrl(): string {
    return this.#url;
  }

  /** Turns not yet used. */
  get remaining(): number {
    return this.#turns.length;
  }

  /** Appends turns to the script. */
  push(...turns: Turn[]): void {
    this.#turns.push(...turns);
  }

  /** The text of every tool result the agent sent back, in order. */
  toolResults(): string[] {
    const seen = new Set<string>();
    const out: string[] = [];
    for (const request of this.requests) {
      for (const m of request.messages) {
        if (m.role !== 'tool' || !m.tool_call_id || seen.has(m.tool_call_id)) continue;
        seen.add(m.tool_call_id);
        out.push(textOf(m.content));
      }
    }
    return out;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/v1/models') return json(res, 200, { object: 'list', data: [{ id: 'scripted', object: 'model', owned_by: 'corral-test' }] });
    if (req.method !== 'POST' || path !== '/v1/chat/completions') return json(res, 404, { error: { message: 'not found', type: 'invalid_request_error' } });
    let body: { model?: unknown; stream?: unknown; messages?: unknown; tools?: unknown };
    try {
      body = JSON.parse(await readBody(req)) as typeof body;
    } catch {
      return json(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
    }
    const recorded: RecordedRequest = {
      model: String(body.model ?? ''),
      stream: body.stream === true,
      messages: Array.isArray(body.messages) ? (body.messages as RecordedRequest['messages']) : [],
      tools: Array.isArray(body.tools) ? (body.tools as Array<{ function?: { name?: string } }>).map((t) => String(t.function?.name ?? '')) : [],
    };
    this.requests.push(recorded);
    const turn = this.#turns.shift() ?? { say: 'The script has no more turns.' };
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const call = 'tool' in turn ? { index: 0, id: `call_${randomUUID().replace(/-/g, '').slice(0, 24)}`, type: 'function', function: { name: turn.tool, arguments: JSON.stringify(turn.arguments) } } : undefined;
    const finish = call ? 'tool_calls' : 'stop';
    const usage = { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 };
    if (!recorded.stream) {
      const message = call ? { role: 'assistant', content: null, tool_calls: [call] } : { role: 'assistant', content: (turn as { say: string }).say };
      return json(res, 200, { id, object: 'chat.completion', created, model: recorded.model, choices: [{ index: 0, message, finish_reason: finish }], usage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const chunk = (delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}): void => {
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: recorded.model, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`);
    };
    if (call) {
      // Arguments arrive in pieces, as real models stream them.
      const args = call.function.arguments;
      const half = Math.floor(args.length / 2);
      chunk({ role: 'assistant', content: null, tool_calls: [{ ...call, function: { name: call.function.name, arguments: args.slice(0, half) } }] }, null);
      chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(half) } }] }, null);
    } else {
      const text = (turn as { say: string }).say;
      chunk({ role: 'assistant', content: '' }, null);
      for (const piece of text.match(/.{1,16}/gs) ?? []) chunk({ content: piece }, null);
    }
    chunk({}, finish, { usage });
    res.end('data: [DONE]\n\n');
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.once('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.once('error', reject);
  });
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === 'string' ? p : typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : '')).join('');
  return '';
}
