/**
 * The names of a credential's keys in Redis: one credential's budget is never another's, and the
 * credential itself never appears in them. Against the tests' Redis (spec/helpers/redis.ts), own
 * key prefix; each limiter has its own client, as separate processes would.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';

import { createLimiter, defineProvider, responseLike, type Limiter, type Permit } from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS } from '../../helpers/redis.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-names-${process.pid}-${Date.now()}:`;

const clients: Redis[] = [];
const limiters: Limiter[] = [];
afterAll(async () => {
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
});

/** A provider `name` with one bucket of `limit` a minute; `x-remaining` tells what is left. */
const perMinute = (name: string, limit: number) =>
  defineProvider({
    name,
    buckets: [{ name: 'main', limit, windowMs: 60_000 }],
    read: (res) => {
      const left = res.header('x-remaining');
      return {
        outcome: 'ok',
        buckets: left === undefined ? [] : [{ name: 'main', limit, remaining: Number(left), reset: { inMs: 60_000 } }],
      };
    },
  });

function limiter(provider: ReturnType<typeof perMinute>, key: string): Limiter {
  const client = new Redis({ port: REDIS.port, host: REDIS.host });
  client.on('error', () => undefined);
  clients.push(client);
  const l = createLimiter({ provider, key, maxWaitMs: 1000, store: redisStore({ client, secret, prefix }) });
  limiters.push(l);
  return l;
}

const ask = (l: Limiter) =>
  new Promise<Permit | Error>((resolve) => {
    l.acquire({ method: 'GET', url: '/x' }, { granted: resolve, rejected: resolve });
  });

describe('redis store: key names', () => {
  it("a provider whose name holds a newline keeps its own budget, not another provider's whose key holds the rest", async () => {
    // Provider "svc\nbilling" with key "tok", and provider "svc" with key "billing\ntok".
    const a = limiter(perMinute('svc\nbilling', 1), 'tok');
    const b = limiter(perMinute('svc', 2), 'billing\ntok');
    const spent = await ask(a);
    if (spent instanceof Error) throw spent;
    spent.observe(responseLike(200, { 'x-remaining': '0' }));
    spent.release();
    await new Promise((r) => setTimeout(r, 100));
    // b has sent nothing: its first request goes at once, not after a's minute.
    const first = await ask(b);
    expect(first instanceof Error ? first.name : 'granted').toBe('granted');
    if (!(first instanceof Error)) first.release();
    // And neither credential appears in a key name.
    const names = await clients[0]?.keys(`${prefix}*`);
    expect(names?.length).toBeGreaterThan(0);
    for (const name of names ?? []) expect(name).not.toMatch(/tok/);
  });

  it("a bucket named after a request path (an e-mail, a share token in it) is hashed in key names; a profile's word is not", async () => {
    const path = '/users/alice.smith@example.com/share/Zm9vYmFyLXNlY3JldC1zaGFyZS10b2tlbg/tasks';
    const provider = defineProvider({
      name: 'per-path',
      buckets: (request) => [
        { name: 'hourly', limit: 100, windowMs: 3_600_000 },
        { name: `GET ${request.url ?? ''}:minute`, limit: 5, windowMs: 60_000 },
      ],
      read: (res, request) => ({
        outcome: 'ok',
        buckets: [{ name: `GET ${request.url ?? ''}:minute`, limit: 5, remaining: Number(res.header('x-remaining')) }],
      }),
    });
    const l = limiter(provider, 'path-token');
    const permit = await new Promise<Permit | Error>((resolve) => {
      l.acquire({ method: 'GET', url: path }, { granted: resolve, rejected: resolve });
    });
    if (permit instanceof Error) throw permit;
    permit.observe(responseLike(200, { 'x-remaining': '4' }));
    permit.release();
    const names = (await clients[0]?.keys(`${prefix}*`)) ?? [];
    const own = names.filter((n) => n.includes(':bucket:') && !n.includes(':bucket:main'));
    expect(own.some((n) => n.endsWith(':bucket:hourly'))).toBe(true);
    expect(own.some((n) => /:bucket:#[0-9a-f]{16}$/.test(n))).toBe(true);
    for (const name of names) expect(name).not.toMatch(/alice|example\.com|Zm9v|\/tasks|path-token/);
    // The bucket's state is the one the limiter reads: the figure written under the hashed name.
    expect(l.snapshot.buckets.find((b) => b.name.endsWith(':minute'))?.remaining).toBe(4);
  });
});
