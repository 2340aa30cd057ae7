// A TCP port on loopback that was free a moment ago, for tests and benches
// that must name a port before the server that will use it starts (a redirect
// URI, a command line). Another process could take it in between; on a test
// machine that race is rare enough to accept.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port on loopback'))));
    });
  });
}
