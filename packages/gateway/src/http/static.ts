// The web console's static files. A path that names a file inside the
// console directory is that file; any other path answers index.html, so the
// console's own routes survive a reload. Nothing outside the directory is
// ever served (`..`, encoded separators and symbolic links that lead out are refused).
import { readFileSync, realpathSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { GatewayError } from '../errors.ts';
import { SECURITY_HEADERS } from './respond.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.svg', '.txt', '.map']);

interface Cached {
  mtimeMs: number;
  body: Buffer;
  gzip: Buffer | undefined;
}

export class ConsoleFiles {
  readonly #root: string;
  readonly #cache = new Map<string, Cached>();

  /** Throws GATEWAY_CONFIG_INVALID when the directory or its index.html is missing. */
  constructor(dir: string) {
    try {
      this.#root = realpathSync(dir);
      if (!statSync(join(this.#root, 'index.html')).isFile()) throw new GatewayError('GATEWAY_CONFIG_INVALID', 'index.html is not a file');
    } catch (error) {
      throw new GatewayError('GATEWAY_CONFIG_INVALID', `the console directory ${dir} has no index.html`, { cause: error });
    }
  }

  serve(request: IncomingMessage, response: ServerResponse, pathname: string): void {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return;
    }
    const file = this.#resolve(pathname) ?? join(this.#root, 'index.html');
    const cached = this.#load(file);
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    const acceptsGzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    const body = acceptsGzip && cached.gzip ? cached.gzip : cached.body;
    // Vite names built assets by content hash: they never change under one name.
    const immutable = file.startsWith(join(this.#root, 'assets') + sep);
    response.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': type,
      'content-length': String(body.length),
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      vary: 'accept-encoding',
      ...(body === cached.gzip ? { 'content-encoding': 'gzip' } : {}),
    });
    response.end(request.method === 'HEAD' ? undefined : body);
  }

  /** The real path of the file the URL path names inside the root, or undefined. */
  #resolve(pathname: string): string | undefined {
    let decoded: string;
    try {
      decoded = decodeURIComponent(pathname);
    } catch {
      return undefined;
    }
    if (decoded.includes('\0') || decoded.includes('\\') || decoded.split('/').some((s) => s === '..')) return undefined;
    const candidate = join(this.#root, decoded);
    try {
      const real = realpathSync(candidate);
      if (!real.startsWith(this.#root + sep) || !statSync(real).isFile()) return undefined;
      return real;
    } catch {
      return undefined;
    }
  }

  #load(file: string): Cached {
    const mtimeMs = statSync(file).mtimeMs;
    const hit = this.#cache.get(file);
    if (hit && hit.mtimeMs === mtimeMs) return hit;
    const body = readFileSync(file);
    const cached: Cached = { mtimeMs, body, gzip: COMPRESSIBLE.has(extname(file)) && body.length > 1024 ? gzipSync(body) : undefined };
    this.#cache.set(file, cached);
    return cached;
  }
}
