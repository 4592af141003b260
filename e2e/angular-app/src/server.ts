/**
 * The app's Node server: static files from dist/browser, /pipedrive/* proxied to the simulator
 * (SIM_URL) as a same-origin proxy, everything else rendered by Angular (SSR).
 */
import {
  AngularNodeAppEngine,
  createNodeRequestHandler,
  isMainModule,
  writeResponseToNodeResponse,
} from '@angular/ssr/node';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const browserDist = resolve(fileURLToPath(new URL('.', import.meta.url)), '../browser');
const simUrl = process.env['SIM_URL'] ?? 'http://127.0.0.1:9';
// Angular's SSR answers only the hosts it is told (a guard against host-header tricks).
const engine = new AngularNodeAppEngine({ allowedHosts: ['localhost'] });
const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.css': 'text/css',
  '.ico': 'image/x-icon',
};

async function proxy(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const upstream = await fetch(simUrl + (req.url ?? '/'), { method: req.method ?? 'GET' });
  const headers: Record<string, string> = {};
  upstream.headers.forEach((value, name) => {
    if (!['content-encoding', 'content-length', 'transfer-encoding', 'connection'].includes(name))
      headers[name] = value;
  });
  const body = Buffer.from(await upstream.arrayBuffer());
  res.writeHead(upstream.status, { ...headers, 'content-length': String(body.length) });
  res.end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  if (path.startsWith('/pipedrive/')) return proxy(req, res);
  const file = normalize(join(browserDist, path));
  if (file.startsWith(browserDist) && path !== '/' && existsSync(file) && statSync(file).isFile()) {
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    createReadStream(file).pipe(res);
    return;
  }
  const response = await engine.handle(req);
  if (response) await writeResponseToNodeResponse(response, res);
  else {
    res.writeHead(404);
    res.end();
  }
}

const handler = (req: IncomingMessage, res: ServerResponse): void => {
  handle(req, res).catch((error: unknown) => {
    console.error(error);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
};

if (isMainModule(import.meta.url)) {
  const port = Number(process.env['PORT'] ?? 4000);
  createServer(handler).listen(port, '127.0.0.1', () => console.log(`listening on http://localhost:${port}`));
}

export const reqHandler = createNodeRequestHandler(handler);
