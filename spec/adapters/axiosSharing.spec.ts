import { describe, expect, it } from '@jest/globals';
import axios, { type AxiosAdapter, type InternalAxiosRequestConfig } from 'axios';
import { firstValueFrom } from 'rxjs';
import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { rateLimitedRequest } from '../../lib/adapters/axios.js';

/** What the server saw of one request, answered as its body. */
interface Seen {
  readonly user: string | null;
  readonly body: string | null;
}

/**
 * An axios instance whose transport answers, after 20 ms, with who the request was sent as and
 * the body it carried; `sent` counts what reached it.
 */
function api(defaults: Parameters<typeof axios.create>[0] = {}) {
  const sent: Seen[] = [];
  const adapter: AxiosAdapter = (config: InternalAxiosRequestConfig) =>
    new Promise((resolve) => {
      const seen: Seen = {
        user: (config.headers.get('authorization') as string | undefined) ?? null,
        body: typeof config.data === 'string' ? config.data : null,
      };
      sent.push(seen);
      setTimeout(() => resolve({ status: 200, statusText: 'OK', headers: {}, data: seen, config }), 20);
    });
  const instance = axios.create({ ...defaults, adapter });
  return { instance, sent };
}

const limiterWithCache = (): Limiter =>
  createLimiter({
    provider: providers.generic(),
    key: `app-${Math.random()}`,
    coldStartConcurrency: 10,
    cache: { ttlMs: 60_000 },
  });

describe('axios rateLimitedRequest: who a request is sent as is read when it is sent', () => {
  it('an observable made as Alice and subscribed after the instance switched to Bob is not cached as Alice’s', async () => {
    const { instance } = api({ baseURL: 'https://api.example.com', headers: { Authorization: 'Bearer alice' } });
    const limiter = limiterWithCache();
    // Made while Alice is signed in; sent after the app switched the instance to Bob.
    const me$ = rateLimitedRequest<Seen>(limiter, instance, { url: '/me' });
    instance.defaults.headers['Authorization'] = 'Bearer bob';
    expect((await firstValueFrom(me$)).data.user).toBe('Bearer bob');
    instance.defaults.headers['Authorization'] = 'Bearer alice';
    const alice = await firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/me' }));
    expect(alice.data.user).toBe('Bearer alice');
  });

  it('a polling observable resubscribed after a switch of user gets the new user’s body', async () => {
    const { instance } = api({ baseURL: 'https://api.example.com', headers: { Authorization: 'Bearer alice' } });
    const limiter = limiterWithCache();
    const me$ = rateLimitedRequest<Seen>(limiter, instance, { url: '/me' });
    expect((await firstValueFrom(me$)).data.user).toBe('Bearer alice');
    instance.defaults.headers['Authorization'] = 'Bearer bob';
    expect((await firstValueFrom(me$)).data.user).toBe('Bearer bob');
  });
});
