/**
 * A pause (a 429 with Retry-After) or a block (a 403 block page) that Redis loses (restarted
 * empty, the key evicted, a write that failed while it was away) is written back by the limiter
 * that obeys it: another process is not granted inside it, and a pool on the shared store keeps
 * that limiter (its replacement would be granted inside it) until it is over.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  createLimiterPool,
  defineProvider,
  responseLike,
  type Limiter,
  type Permit,
} from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { closedAfterEach, freePort, REDIS } from '../../helpers/redis.js';
import { tempRedis, until, type TempRedis } from './fork.js';

const secret = 'rx-ratelimit-test-secret';
const token = 'restart-tenant-token';
const { clients, limiters, tickets } = closedAfterEach();

let server: TempRedis | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

/** 10 per 10 s; a 429 tells its Retry-After (seconds), a 403 is the provider's block. */
const provider = defineProvider({
  name: 'restart',
  buckets: [{ name: 'main', limit: 10, windowMs: 10_000 }],
  read: (res) => {
    const retry = res.header('retry-after');
    return {
      outcome: res.status === 429 ? 'limited' : res.status === 403 ? 'blocked' : 'ok',
      buckets: [],
      ...(res.status === 429 && retry !== undefined ? { retryAfter: { delayMs: Number(retry) * 1000 } } : {}),
    };
  },
});

/**
 * A client of its own, as another process has (a reconnect every 50 ms). Calls fail at once
 * while Redis is down (no offline queue, which would send them once it is back).
 */
function client(port: number, queued = false): Redis {
  const c = new Redis({
    port,
    host: '127.0.0.1',
    enableOfflineQueue: queued,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** A store of its own: what another process of the credential has. */
const store = (port: number, prefix: string) => redisStore({ client: client(port), secret, prefix, timeoutMs: 500 });

/** A limiter of its own process, its client connected (a call before would fail, as Redis away). */
async function limiter(port: number, prefix: string, options: { blockCooldownMs?: number } = {}): Promise<Limiter> {
  const l = createLimiter({ provider, key: token, store: store(port, prefix), ...options });
  limiters.push(l);
  await connected();
  return l;
}

/** When `l` is granted (Date.now()), or the error it was refused with. */
function grantedAt(l: Limiter): Promise<{ at: number; permit: Permit } | Error> {
  return new Promise((resolve) =>
    tickets.push(
      l.acquire(
        { method: 'GET', url: '/x' },
        { granted: (permit) => resolve({ at: Date.now(), permit }), rejected: (e) => resolve(e as Error) },
      ),
    ),
  );
}

/** Sends one request through `l`, answered with `status` and `headers`. */
async function send(l: Limiter, status: number, headers: Record<string, string> = {}): Promise<void> {
  const got = await grantedAt(l);
  if (got instanceof Error) throw got;
  got.permit.observe(responseLike(status, headers));
  got.permit.release();
}

/** The end of `l`'s pause, on the wall clock. */
function pauseEnd(l: Limiter): number {
  const until = l.snapshot.pausedUntil;
  if (until === null) throw new Error('not paused');
  return Date.now() + (until - l.now());
}

/**
 * Waits (at most `timeoutMs`) until Redis holds the credential's pause (`until`) or block
 * (`block`): written back by the limiter that obeys it (on the old code, never: the test goes on
 * and shows what the next process does then).
 */
async function holds(port: number, prefix: string, field: 'until' | 'block', timeoutMs = 10_000): Promise<void> {
  const probe = client(port);
  await connected();
  const k = redisKeys(prefix, 'restart', token, secret);
  await until(async () => (await probe.hget(k.pause, field).catch(() => null)) !== null, timeoutMs).catch(
    () => undefined,
  );
}

async function restarted(): Promise<TempRedis> {
  const port = await freePort();
  server = tempRedis(port);
  await server.start();
  return server;
}

/** Every client connected (a call before fails, as Redis away would). */
const connected = () => until(() => clients.every((c) => c.status === 'ready'), 10_000);

describe('a pause Redis lost is written back by the limiter that obeys it', () => {
  it('a Redis restarted empty during a 429 pause: another process is not granted until the pause ends', async () => {
    const redis = await restarted();
    const prefix = `rxrl-restart-pause-${process.pid}-${Date.now()}:`;
    const a = await limiter(redis.port, prefix);
    await send(a, 200);
    await send(a, 429, { 'retry-after': '8' });
    const end = pauseEnd(a);
    await holds(redis.port, prefix, 'until');
    // Restarted without persistence: the pause is gone from Redis, A still obeys it.
    await redis.stop();
    await redis.start();
    await holds(redis.port, prefix, 'until', end - Date.now() - 2000);
    // A process started now is not sent inside the pause.
    const b = await limiter(redis.port, prefix);
    const got = await grantedAt(b);
    expect(got).not.toBeInstanceOf(Error);
    if (got instanceof Error) return;
    expect(got.at).toBeGreaterThanOrEqual(end - 50);
    got.permit.release();
  }, 30_000);

  it('a PAUSE that failed while Redis was away is written back once it answers: another process waits it out', async () => {
    const redis = await restarted();
    const prefix = `rxrl-outage-pause-${process.pid}-${Date.now()}:`;
    const a = await limiter(redis.port, prefix);
    const got = await grantedAt(a);
    if (got instanceof Error) throw got;
    // Redis goes away before the 429 is read: the pause is not written.
    await redis.stop();
    await until(() => clients.every((c) => c.status !== 'ready'), 10_000);
    got.permit.observe(responseLike(429, { 'retry-after': '8' }));
    got.permit.release();
    const end = pauseEnd(a);
    await redis.start();
    await holds(redis.port, prefix, 'until', end - Date.now() - 2000);
    const b = await limiter(redis.port, prefix);
    const gotB = await grantedAt(b);
    expect(gotB).not.toBeInstanceOf(Error);
    if (gotB instanceof Error) return;
    expect(gotB.at).toBeGreaterThanOrEqual(end - 50);
    gotB.permit.release();
  }, 30_000);

  it('a Redis restarted empty during a block: another process is refused with BlockedError, nothing sent', async () => {
    const redis = await restarted();
    const prefix = `rxrl-restart-block-${process.pid}-${Date.now()}:`;
    const a = await limiter(redis.port, prefix);
    await send(a, 403);
    expect(a.isBlocked).toBe(true);
    await holds(redis.port, prefix, 'block');
    await redis.stop();
    await redis.start();
    await holds(redis.port, prefix, 'block');
    const b = await limiter(redis.port, prefix);
    const got = await grantedAt(b);
    expect(got).toBeInstanceOf(Error);
    expect((got as Error).name).toBe('BlockedError');
  }, 30_000);
});

describe('a pool on a shared store keeps a limiter whose pause or block is in force', () => {
  const pool = (prefix: string, options: { blockCooldownMs?: number } = {}) =>
    createLimiterPool({ provider, store: store(REDIS.port, prefix), idleMs: 100, ...options });

  it('a paused limiter is not evicted: with the pause key lost, the tenant is not granted inside it; after it, its replacement is', async () => {
    const prefix = `rxrl-pool-pause-${process.pid}-${Date.now()}:`;
    const p = pool(prefix);
    await connected();
    try {
      await send(p.get(token), 200);
      await send(p.get(token), 429, { 'retry-after': '3' });
      const end = pauseEnd(p.get(token));
      // Idle many times `idleMs`; then Redis loses the pause (maxmemory, by hand).
      await new Promise((r) => setTimeout(r, 800));
      await client(REDIS.port, true).del(redisKeys(prefix, 'restart', token, secret).pause);
      expect(p.has(token)).toBe(true);
      const got = await grantedAt(p.get(token));
      expect(got).not.toBeInstanceOf(Error);
      if (got instanceof Error) return;
      expect(got.at).toBeGreaterThanOrEqual(end - 50);
      got.permit.release();
      // Over: evicted once idle, and the tenant's next limiter is granted.
      await until(() => !p.has(token), 10_000);
      const next = await grantedAt(p.get(token));
      expect(next).not.toBeInstanceOf(Error);
      if (!(next instanceof Error)) next.permit.release();
    } finally {
      await p.close();
    }
  }, 30_000);

  it('a blocked limiter is not evicted: with the block key lost, the tenant is refused; after the cool-down, its replacement is granted', async () => {
    const prefix = `rxrl-pool-block-${process.pid}-${Date.now()}:`;
    const p = pool(prefix, { blockCooldownMs: 3000 });
    await connected();
    try {
      await send(p.get(token), 403);
      expect(p.get(token).isBlocked).toBe(true);
      await new Promise((r) => setTimeout(r, 800));
      await client(REDIS.port, true).del(redisKeys(prefix, 'restart', token, secret).pause);
      expect(p.has(token)).toBe(true);
      const got = await grantedAt(p.get(token));
      expect(got).toBeInstanceOf(Error);
      expect((got as Error).name).toBe('BlockedError');
      // Written back: another process meets it too.
      await holds(REDIS.port, prefix, 'block');
      const other = await limiter(REDIS.port, prefix, { blockCooldownMs: 3000 });
      const gotOther = await grantedAt(other);
      expect((gotOther as Error).name).toBe('BlockedError');
      await until(() => !p.has(token), 10_000);
      const next = await grantedAt(p.get(token));
      expect(next).not.toBeInstanceOf(Error);
      if (!(next instanceof Error)) next.permit.release();
    } finally {
      await p.close();
    }
  }, 30_000);
});
