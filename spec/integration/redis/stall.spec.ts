/**
 * A Redis store whose process, not Redis, was slow: its event loop held up (a long GC, a burst
 * of CPU work) past `timeoutMs` while Redis answered in time. A process that declares Redis
 * away spends its local share on top of what the others, still on Redis, spend: it must do so
 * only when Redis really did not answer.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { type Redis } from 'ioredis';
import { defer, lastValueFrom, of } from 'rxjs';

import {
  createLimiter,
  providers,
  rateLimit,
  responseLike,
  type Limiter,
  type LimiterEvent,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { REDIS, processClient } from '../../helpers/redis.js';

let clients: Redis[] = [];
let limiters: Limiter[] = [];

afterEach(async () => {
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
  limiters = [];
  clients = [];
});

const secret = 'rx-ratelimit-test-secret';

const client = (port: number) => processClient(port, clients);

function limiterOn(c: Redis, o: { timeoutMs: number; retryMs: number }) {
  const events: Array<{ type: LimiterEvent['type']; at: number }> = [];
  const limiter = createLimiter({
    provider: providers.procore({ hints: { hourly: { limit: 40, windowMs: 2000 } } }),
    key: `token-stall-${Date.now()}-${Math.random()}`,
    store: redisStore({ client: c, secret, prefix: `rxrl-stall-${process.pid}-${Date.now()}:`, ...o }),
  });
  limiters.push(limiter);
  limiter.events$.subscribe((e) => events.push({ type: e.type, at: Date.now() }));
  return { limiter, events };
}

/** One GET through the limiter, answered at once with a 200 that tells nothing. */
const get = (limiter: Limiter) =>
  lastValueFrom(defer(() => of(responseLike(200, {}))).pipe(rateLimit(limiter, { method: 'GET', url: '/x' })));

function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // The process is busy: no timer, no socket is read.
  }
}

describe('redis store: slow calls that are not Redis being away', () => {
  it('a process busy past timeoutMs while Redis answered in time does not declare Redis away', async () => {
    const c = client(REDIS.port);
    const { limiter, events } = limiterOn(c, { timeoutMs: 200, retryMs: 500 });
    // Connected and the scripts loaded; on a loaded machine the first calls may take longer
    // than the timeout: go on once a call has been answered through Redis.
    for (let tries = 0; ; tries++) {
      await get(limiter);
      const phases = events.filter((e) => e.type === 'store-unavailable' || e.type === 'store-recovered');
      if (phases.at(-1)?.type !== 'store-unavailable') break;
      if (tries > 20) throw new Error('Redis did not answer within the timeout in 20 tries');
      await new Promise((r) => setTimeout(r, 600));
    }
    events.length = 0;
    // The next admission call is written to the socket, then the process is busy for five
    // times the timeout: Redis's answer waits on the socket while the timer expires.
    const acquire = (c as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)['rxrlAcquire'];
    if (!acquire) throw new Error('the store did not define its admission command on the client');
    let stalled = false;
    Object.assign(c, {
      rxrlAcquire: (...args: unknown[]) => {
        const answer = acquire.apply(c, args);
        if (!stalled) {
          stalled = true;
          busy(1000);
        }
        return answer;
      },
    });
    const res = await get(limiter);
    expect(stalled).toBe(true);
    expect(res.status).toBe(200);
    expect(events.map((e) => e.type)).not.toContain('store-unavailable');
  });
});
