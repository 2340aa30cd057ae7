// A "gateway" on loopback that challenges every connection and answers its
// connect with one wire error: what a hostile or full gateway (or control
// plane) says, for tests of how a node or the CLI takes it.
import { WebSocketServer } from 'ws';

export interface RefusingGateway {
  url: string;
  /** How many connections it was asked for. */
  readonly attempts: number;
  close(): Promise<void>;
}

export async function refusingGateway(error: Record<string, unknown>): Promise<RefusingGateway> {
  let attempts = 0;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  wss.on('connection', (socket) => {
    attempts += 1;
    socket.send(JSON.stringify({ type: 'event', event: 'connect.challenge', payload: { nonce: 'n', ts: Date.now() } }));
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as { id?: string };
      socket.send(JSON.stringify({ type: 'res', id: frame.id, ok: false, error }));
    });
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    get attempts() {
      return attempts;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}
