// The scripted model speaks chat completions as OpenAI-compatible clients
// expect: server-sent events with tool-call deltas, or one JSON body.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ScriptedModel } from './scripted-model.ts';

const models: ScriptedModel[] = [];
after(async () => {
  for (const m of models) await m.close();
});

async function post(model: ScriptedModel, body: unknown): Promise<Response> {
  return fetch(`${model.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function events(text: string): unknown[] {
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: ') && block !== 'data: [DONE]')
    .map((block) => JSON.parse(block.slice(6)) as unknown);
}

describe('the scripted model', () => {
  it('streams a tool call whose arguments arrive in pieces, then the next turn’s text, and records what it was sent', async () => {
    const model = await ScriptedModel.start([{ tool: 'exec', arguments: { command: 'echo hi', host: 'node' } }, { say: 'done, and that is all' }]);
    models.push(model);
    const first = await post(model, { model: 'scripted', stream: true, messages: [{ role: 'user', content: 'go' }], tools: [{ type: 'function', function: { name: 'exec' } }] });
    assert.equal(first.headers.get('content-type'), 'text/event-stream');
    const text = await first.text();
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    const chunks = events(text) as Array<{ choices: Array<{ delta: { tool_calls?: Array<{ function: { name?: string; arguments: string } }> }; finish_reason: string | null }> }>;
    const args = chunks.flatMap((c) => c.choices[0]!.delta.tool_calls ?? []).map((t) => t.function.arguments).join('');
    assert.deepEqual(JSON.parse(args), { command: 'echo hi', host: 'node' });
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'tool_calls');

    const second = await post(model, { model: 'scripted', stream: true, messages: [{ role: 'user', content: 'go' }, { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'hi\n' }] }] });
    const said = (events(await second.text()) as Array<{ choices: Array<{ delta: { content?: string }; finish_reason: string | null }> }>).map((c) => c.choices[0]!.delta.content ?? '').join('');
    assert.equal(said, 'done, and that is all');
    assert.deepEqual(model.toolResults(), ['hi\n']);
    assert.deepEqual(model.requests[0]!.tools, ['exec']);
    assert.equal(model.remaining, 0);
  });

  it('answers without streaming when not asked to, and refuses a body that is not JSON', async () => {
    const model = await ScriptedModel.start([{ say: 'plain' }]);
    models.push(model);
    const reply = (await (await post(model, { model: 'scripted', messages: [] })).json()) as { choices: Array<{ message: { content: string }; finish_reason: string }> };
    assert.equal(reply.choices[0]!.message.content, 'plain');
    assert.equal(reply.choices[0]!.finish_reason, 'stop');
    const bad = await fetch(`${model.baseUrl}/chat/completions`, { method: 'POST', body: '{not json' });
    assert.equal(bad.status, 400);
  });
});
