import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Progress } from './progress.ts';

function stream(isTTY: boolean): { write(text: string): boolean; isTTY: boolean; text: () => string } {
  let out = '';
  return { isTTY, write: (t: string) => ((out += t), true), text: () => out };
}

describe('Progress', () => {
  describe('on a terminal', () => {
    it('shows a spinner while a step runs, then a tick with its note', async () => {
      const out = stream(true);
      const result = await new Progress(out).step('gateway', () => new Promise<string>((r) => setTimeout(() => r('ws://x'), 120)), (url) => url);
      assert.equal(result, 'ws://x');
      assert.match(out.text(), /⠋ gateway/);
      assert.match(out.text(), /\r\x1b\[2K\x1b\[32m✔\x1b\[0m gateway \(ws:\/\/x\)\n$/);
    });

    it('names every step running side by side on one spinner line, and ticks each as it ends', async () => {
      const out = stream(true);
      const progress = new Progress(out);
      let finishFirst!: () => void;
      const first = progress.step('gateway', () => new Promise<void>((r) => (finishFirst = r)));
      const second = progress.step('sandbox runner', () => new Promise<void>((r) => setTimeout(r, 100)));
      await second;
      finishFirst();
      await first;
      assert.match(out.text(), /⠙ gateway · sandbox runner/);
      // Once the runner is done, the spinner names the gateway alone.
      assert.match(out.text(), /✔\x1b\[0m sandbox runner\n\r\x1b\[2K\S+ gateway\r/);
      assert.match(out.text(), /✔\x1b\[0m gateway\n$/);
    });

    it('marks a failed step with a cross and rethrows its error', async () => {
      const out = stream(true);
      await assert.rejects(new Progress(out).step('port', () => Promise.reject(Object.assign(new Error('in use'), { code: 'X' }))), { code: 'X' });
      assert.match(out.text(), /✖\x1b\[0m port\n$/);
    });
  });

  describe('when stderr is not a terminal', () => {
    it('writes one plain line per step, with no escape codes', async () => {
      const out = stream(false);
      const progress = new Progress(out);
      await progress.step('state directory', () => undefined);
      await assert.rejects(progress.step('gateway', () => Promise.reject(new Error('no'))));
      progress.note('stopped');
      assert.match(out.text(), /^corral: ok: state directory in \d+ ms\ncorral: failed: gateway\ncorral: stopped\n$/);
    });
  });
});
