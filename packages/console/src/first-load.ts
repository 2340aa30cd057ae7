// What a browser downloads to show the console's first page: the module
// scripts and module preloads index.html names (Vite lists every chunk the
// entry imports statically as a modulepreload), and the stylesheets, each
// measured raw and gzip-compressed at zlib's default level, as a server would send it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

export interface LoadedFile {
  path: string;
  kind: 'js' | 'css';
  bytes: number;
  gzipBytes: number;
}

export interface FirstLoad {
  files: LoadedFile[];
  jsBytes: number;
  jsGzipBytes: number;
  cssGzipBytes: number;
}

const ATTRIBUTE = (name: string) => new RegExp(`\\b${name}\\s*=\\s*"([^"]*)"`, 'i');

/** The first load of the build in `dir` (its index.html and the files it names). */
export function measureFirstLoad(dir: string): FirstLoad {
  const html = readFileSync(join(dir, 'index.html'), 'utf8');
  const named: Array<{ path: string; kind: 'js' | 'css' }> = [];
  for (const tag of html.match(/<(script|link)\b[^>]*>/gi) ?? []) {
    const isScript = /^<script/i.test(tag);
    const rel = ATTRIBUTE('rel').exec(tag)?.[1]?.toLowerCase();
    const url = (isScript ? ATTRIBUTE('src') : ATTRIBUTE('href')).exec(tag)?.[1];
    if (!url || /^[a-z]+:/i.test(url)) continue; // data: icons and the like are not downloads
    if (isScript || rel === 'modulepreload') named.push({ path: url, kind: 'js' });
    else if (rel === 'stylesheet') named.push({ path: url, kind: 'css' });
  }
  const files = [...new Map(named.map((f) => [f.path, f])).values()].map((f) => {
    const body = readFileSync(join(dir, f.path.replace(/^\//, '')));
    return { ...f, bytes: body.length, gzipBytes: gzipSync(body).length };
  });
  const sum = (kind: 'js' | 'css', key: 'bytes' | 'gzipBytes') => files.filter((f) => f.kind === kind).reduce((s, f) => s + f[key], 0);
  return { files, jsBytes: sum('js', 'bytes'), jsGzipBytes: sum('js', 'gzipBytes'), cssGzipBytes: sum('css', 'gzipBytes') };
}
