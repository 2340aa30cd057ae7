// A TCP proxy between a test's PostgreSQL client and server, to make the
// network fail the ways an operator meets: refuse connections (the server is
// down), go silent (a partition: nothing answers, nothing is refused), or cut
// a connection at one exact message (a COMMIT sent whose answer never comes).
import { createServer, connect, type Socket } from 'node:net';

export type ProxyMode = 'forward' | 'refuse' | 'silent';

export interface TcpProxy {
  port: number;
  /** Connections made to the proxy so far, refused ones included. */
  connections: number;
  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string;
  /**
   * forward: pass bytes both ways. refuse: cut the open connections and close
   * new ones at once. silent: accept new connections and pass nothing more
   * on any connection, either way.
   */
  set(mode: ProxyMode): void;
  /**
   * The next time the client sends bytes holding `marker`, cut that
   * connection: after passing those bytes to the server (`after`: the
   * server acts on them, the client never hears the answer) or instead of
   * passing them (`before`). Resolves when it has cut.
   */
  cutAt(marker: string, when: 'before' | 'after'): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let trap: { marker: Buffer; when: 'before' | 'after'; sprung: () => void } | null = null;
  let mode: ProxyMode = 'forward';
  const proxy: TcpProxy = {
    port: 0,
    connections: 0,
    set(next) {
      mode = next;
      if (mode === 'refuse') for (const s of sockets) s.destroy();
    },
    url(url: string) {
      const u = new URL(url);
      u.host = `127.0.0.1:${proxy.port}`;
      return u.toString();
    },
    cutAt(marker, when) {
      return new Promise((resolve) => {
        trap = { marker: Buffer.from(marker), when, sprung: resolve };
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
  };
  const server = createServer((client) => {
    proxy.connections++;
    track(client);
    if (mode === 'refuse') return void client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    track(upstream);
    const cut = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk: Buffer) => {
      if (mode === 'refuse') return cut();
      if (mode === 'silent') return;
      const t = trap;
      if (t && chunk.includes(t.marker)) {
        trap = null;
        if (t.when === 'after') {
          // The server reads these bytes before it sees the connection end; the client is cut at once.
          client.destroy();
          upstream.end(chunk);
        } else cut();
        t.sprung();
        return;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (mode === 'refuse') return cut();
      if (mode === 'silent') return;
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  proxy.port = typeof address === 'object' && address ? address.port : 0;
  return proxy;
}
