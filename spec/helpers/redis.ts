/**
 * Where the tests' Redis is: the server spec/setup/redis.mjs started for this run, or the one
 * REDIS_URL names. Tests that need a server of their own (to kill, slow or cluster) take free
 * ports from `freePort`, so that two runs on one machine never meet.
 */
import { afterEach } from '@jest/globals';
import { Redis } from 'ioredis';
import type { Limiter, Ticket } from '../../lib/index.js';

const url = new URL(process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379');

/** Host and port of the tests' Redis, for `new Redis(REDIS)` and for child processes. */
export const REDIS: { readonly host: string; readonly port: number } = {
  host: url.hostname,
  port: Number(url.port || 6379),
};

export { freePort } from './ports.js';

/**
 * A client configured as the process tests configure theirs (one retry per call, a reconnect
 * every 100 ms; errors surface through the store's calls, not as events), added to `into` so
 * that the test disconnects it afterwards.
 */
export function processClient(port: number, into: Redis[]): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  c.on('error', () => undefined);
  into.push(c);
  return c;
}

/**
 * What a test opens (Redis clients, limiters, tickets), pushed onto these arrays and closed after
 * each test: tickets cancelled, then limiters closed, then clients disconnected.
 */
export function closedAfterEach(): { clients: Redis[]; limiters: Limiter[]; tickets: Ticket[] } {
  const open = { clients: [] as Redis[], limiters: [] as Limiter[], tickets: [] as Ticket[] };
  afterEach(async () => {
    for (const t of open.tickets.splice(0)) t.cancel();
    for (const l of open.limiters.splice(0)) await l.close();
    for (const c of open.clients.splice(0)) c.disconnect();
  });
  return open;
}
