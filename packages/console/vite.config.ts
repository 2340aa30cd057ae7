// The console's build: the app under ui/, into dist/. No inline scripts or
// styles in the output and no external URLs, so it runs under the gateway's
// `Content-Security-Policy: default-src 'self'`.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = new URL('.', import.meta.url).pathname;

export default defineConfig(({ command }) => {
  // A build is React's production build whatever the shell says: with NODE_ENV=development
  // Vite builds React's development code (warnings, debugging hooks), and the gateway would serve it.
  // Vite reads NODE_ENV again after loading this file, as its own warning advises.
  if (command === 'build') process.env.NODE_ENV = 'production';
  return {
    root: `${here}ui`,
    base: '/',
    plugins: [react()],
    build: {
      outDir: `${here}dist`,
      emptyOutDir: true,
      // Keep every asset a file: an inlined data: module script would need CSP script-src data:.
      assetsInlineLimit: 0,
      modulePreload: { polyfill: false },
      reportCompressedSize: false,
      target: 'es2022',
    },
    server: {
      // `npm run dev -w @corral/console`: the console with hot reload, its API calls sent to a gateway on its default port.
      proxy: { '/api': 'http://127.0.0.1:18789' },
    },
  };
});
