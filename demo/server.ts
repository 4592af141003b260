import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Statistics the demo server keeps per token. */
export interface DemoStats {
  ok: number;
  limited: number;
}

/**
 * A tiny fixed-window API on loopback: `limit` requests per `windowMs` per Authorization
 * token, answering `X-RateLimit-Limit/-Remaining/-Reset` (unix seconds) and `Date`, and 429
 * with `Retry-After` past the limit. Enough to watch the limiter pace real sockets.
 */
export async function startDemoServer(
  limit: number,
  windowMs: number,
): Promise<{ url: string; stats: Map<string, DemoStats>; close(): Promise<void> }> {
  const windows = new Map<string, { window: number; count: number }>();
  const stats = new Map<string, DemoStats>();
  const server: Server = createServer((req, res) => {
    const token = req.headers.authorization ?? 'anonymous';
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    const w = windows.get(token);
    const state = w && w.window === window ? w : { window, count: 0 };
    state.count++;
    windows.set(token, state);
    const resetAt = (window + 1) * windowMs;
    const s = stats.get(token) ?? { ok: 0, limited: 0 };
    stats.set(token, s);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      date: new Date(now).toUTCString(),
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(0, limit - state.count)),
      'x-ratelimit-reset': String(Math.ceil(resetAt / 1000)),
    };
    // Answer after a little work, as a real API would.
    setTimeout(() => {
      if (state.count > limit) {
        s.limited++;
        res.writeHead(429, { ...headers, 'retry-after': String(Math.ceil((resetAt - Date.now()) / 1000)) });
        res.end(JSON.stringify({ error: 'rate limited' }));
        return;
      }
      s.ok++;
      res.writeHead(200, headers);
      res.end(JSON.stringify({ path: req.url, n: state.count }));
    }, 15);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
