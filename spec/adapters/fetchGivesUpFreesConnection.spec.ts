import { afterEach, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLimiter, providers, rawCauseOf, type Limiter, type RateLimitError } from '../../lib/index.js';
import { rateLimitedFetch } from '../../lib/adapters/fetch.js';

let server: Server | undefined;
const limiters: Limiter[] = [];
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
  await Promise.all(limiters.splice(0).map((l) => l.close()));
});

/**
 * A server that answers with `status` and `headers`, writes the start of a body and stalls; it
 * counts the connections still open.
 */
async function stalling(status: number, headers: Record<string, string>, start: string) {
  let open = 0;
  server = createServer((_req, res) => {
    res.writeHead(status, headers);
    res.write(start);
  });
  server.on('connection', (socket) => {
    open++;
    socket.on('close', () => open--);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/x`, open: () => open };
}

async function eventually(check: () => boolean, ms: number): Promise<void> {
  for (const end = Date.now() + ms; !check() && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
}

describe('rateLimitedFetch: a call that ends with our error frees the answer’s connection', () => {
  it.each([
    ['RetryLimitError', 0, 429, { 'retry-after': '0' }, '{"a":', 'generic'],
    ['QuotaExhaustedError', 1, 429, { 'retry-after': '100' }, 'slow', 'generic'],
    [
      'BlockedError',
      0,
      403,
      { 'content-type': 'text/html' },
      '<html>This error is produced by Cloudflare',
      'pipedrive',
    ],
  ] as const)(
    '%s: the stalled body is cancelled, the socket closes',
    async (name, maxRetries, status, headers, start, which) => {
      const api = await stalling(status, headers, start);
      const provider = which === 'pipedrive' ? providers.pipedrive({ plan: 'advanced' }) : providers.generic();
      const limiter = createLimiter({ provider, key: `gives-up-${name}`, maxWaitMs: 1000 });
      limiters.push(limiter);
      const error = await rateLimitedFetch(limiter, { maxRetries, bodyTimeoutMs: 200 })(api.url).catch(
        (e: unknown) => e,
      );
      expect((error as Error).name).toBe(name);
      // Left to the collector, it stayed open for good (Node's fetch holds it while the body is unread).
      await eventually(() => api.open() === 0, 15_000);
      expect(api.open()).toBe(0);
    },
  );

  it('an answer whose body came whole stays readable through rawCauseOf (a block page)', async () => {
    server = createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'text/html' });
      res.end('<html>This error is produced by Cloudflare</html>');
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/deals`;
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'gives-up-readable' });
    limiters.push(limiter);
    const error = await rateLimitedFetch(limiter)(url).catch((e: unknown) => e);
    expect((error as Error).name).toBe('BlockedError');
    expect(await (rawCauseOf(error as RateLimitError) as Response).text()).toContain('produced by Cloudflare');
  });
});
