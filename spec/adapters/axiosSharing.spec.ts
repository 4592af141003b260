import { describe, expect, it } from '@jest/globals';
import { HttpService } from '@nestjs/axios';
import axios, { AxiosError, type AxiosAdapter, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';
import { firstValueFrom } from 'rxjs';
import { createLimiter, createLimiterPool, providers, type Limiter } from '../../lib/index.js';
import { rateLimitedRequest } from '../../lib/adapters/axios.js';
import { rateLimitedHttp } from '../../lib/adapters/nestjs.js';
import { tenantHttp } from '../../lib/adapters/nestjsHttp.js';

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
        // A header set to `false` or `null` is not sent.
        user: (config.headers.get('authorization') as string | false | null | undefined) || null,
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

describe('axios: a header a call unsets or overrides is read as axios sends it', () => {
  const me = (limiter: Limiter, instance: AxiosInstance, headers?: Record<string, unknown>) =>
    firstValueFrom(
      rateLimitedRequest<Seen>(limiter, instance, { url: '/me', ...(headers ? { headers: headers as never } : {}) }),
    ).then((r) => r.data.user);

  it.each([
    ['null', null],
    ['false', false],
  ])(
    'a call that unsets the default Authorization (%s) is not handed the signed-in answer, nor hands its own',
    async (_, unset) => {
      const { instance, sent } = api({
        baseURL: 'https://api.example.com',
        headers: { Authorization: 'Bearer alice' },
      });
      const limiter = limiterWithCache();
      // Anonymous first, signed in joining; then the other way round (the cache included).
      expect(await Promise.all([me(limiter, instance, { Authorization: unset }), me(limiter, instance)])).toEqual([
        null,
        'Bearer alice',
      ]);
      expect(await Promise.all([me(limiter, instance), me(limiter, instance, { Authorization: unset })])).toEqual([
        'Bearer alice',
        null,
      ]);
      expect(sent.map((s) => s.user)).toEqual([null, 'Bearer alice']);
    },
  );

  it('a call that sets the Authorization in another case is sent and answered as that user', async () => {
    const { instance } = api({ baseURL: 'https://api.example.com', headers: { Authorization: 'Bearer alice' } });
    const limiter = limiterWithCache();
    expect(await Promise.all([me(limiter, instance, { authorization: 'Bearer bob' }), me(limiter, instance)])).toEqual([
      'Bearer bob',
      'Bearer alice',
    ]);
    // The same user named either way is one request.
    expect(await me(limiter, instance, { AUTHORIZATION: 'Bearer bob' })).toBe('Bearer bob');
  });

  it('a call that gives the default header `undefined` is sent on its own', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com', headers: { Authorization: 'Bearer alice' } });
    const limiter = limiterWithCache();
    await Promise.all([me(limiter, instance, { Authorization: undefined }), me(limiter, instance)]);
    expect(sent).toHaveLength(2);
  });
});

describe('axios: headers given as a Headers, a Map, a list of pairs or raw text are read as axios sends them', () => {
  const as = (user: string) => ({
    Headers: new Headers({ Authorization: user }),
    Map: new Map([['Authorization', user]]),
    'list of pairs': [['Authorization', user]],
    'raw text': `Authorization: ${user}`,
  });
  it.each(['Headers', 'Map', 'list of pairs', 'raw text'] as const)(
    '%s: each user gets their own answer, at once and from the cache',
    async (kind) => {
      const { instance, sent } = api({ baseURL: 'https://api.example.com' });
      const limiter = limiterWithCache();
      const me = (user: string) =>
        firstValueFrom(
          rateLimitedRequest<Seen>(limiter, instance, { url: '/me', headers: as(user)[kind] as never }),
        ).then((r) => r.data.user);
      expect(await Promise.all([me('Bearer alice'), me('Bearer bob')])).toEqual(['Bearer alice', 'Bearer bob']);
      expect(await me('Bearer mallory')).toBe('Bearer mallory');
      expect(sent.map((x) => x.user)).toEqual(['Bearer alice', 'Bearer bob', 'Bearer mallory']);
    },
  );

  it('NestJS rateLimitedHttp: a Headers per call is no shared identity either', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    const http = rateLimitedHttp(new HttpService(instance), limiterWithCache());
    const me = (user: string) =>
      firstValueFrom(http.get<Seen>('/me', { headers: new Headers({ Authorization: user }) as never })).then(
        (r) => r.data.user,
      );
    expect(await Promise.all([me('Bearer alice'), me('Bearer bob')])).toEqual(['Bearer alice', 'Bearer bob']);
    expect(sent).toHaveLength(2);
  });

  it('NestJS tenantHttp: the tenant is read from a Map or a list of pairs, whatever the case of the name', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    const pool = createLimiterPool({ provider: providers.generic() });
    const tenants = tenantHttp(new HttpService(instance), pool);
    await firstValueFrom(tenants.get('/me', { headers: new Map([['Authorization', 'Bearer alice']]) as never }));
    await firstValueFrom(tenants.get('/me', { headers: [['AUTHORIZATION', 'Bearer bob']] as never }));
    // A name given twice with two values is refused (spec/adapters/nestjsHttp.spec.ts).
    expect(sent.map((x) => x.user)).toEqual(['Bearer alice', 'Bearer bob']);
    // The pool key is the token, without the scheme, as pool.get(token) takes it.
    expect([pool.has('alice'), pool.has('bob'), pool.size]).toEqual([true, true, 2]);
    await pool.close();
  });

  it('identical GETs with the same Headers still share', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    const limiter = limiterWithCache();
    const me = () =>
      firstValueFrom(
        rateLimitedRequest<Seen>(limiter, instance, {
          url: '/me',
          headers: new Headers({ Authorization: 'Bearer alice' }) as never,
        }),
      );
    await Promise.all([me(), me()]);
    expect(sent).toHaveLength(1);
  });
});

describe('axios: a header whose value is an object (axios sends its String) is part of who a request is sent as', () => {
  // Each stands for a credential held in an object: axios sends `String(value)`.
  const kinds = {
    'String object': (user: string) => new String(user),
    Buffer: (user: string) => Buffer.from(user),
    'token object with toString': (user: string) => ({ toString: () => user }),
  };

  it.each(Object.keys(kinds) as Array<keyof typeof kinds>)(
    '%s per call: each user gets their own answer, at once and from the cache',
    async (kind) => {
      const { instance, sent } = api({ baseURL: 'https://api.example.com' });
      const limiter = limiterWithCache();
      const me = (user: string) =>
        firstValueFrom(
          rateLimitedRequest<Seen>(limiter, instance, {
            url: '/me',
            headers: { Authorization: kinds[kind](user) as never },
          }),
        ).then((r) => r.data.user);
      expect(await Promise.all([me('Bearer alice'), me('Bearer bob')])).toEqual(['Bearer alice', 'Bearer bob']);
      expect(await me('Bearer mallory')).toBe('Bearer mallory');
      expect(sent.map((x) => x.user)).toEqual(['Bearer alice', 'Bearer bob', 'Bearer mallory']);
    },
  );

  it('a token object in the instance’s common defaults that switches user: no user gets the other’s answer', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    let user = 'Bearer alice';
    instance.defaults.headers.common['Authorization'] = { toString: () => user } as never;
    const limiter = limiterWithCache();
    const me = () =>
      firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/me' })).then((r) => r.data.user);
    const alice = me();
    // Alice's GET is on the wire when the app signs Bob in on the same instance.
    await new Promise((r) => setTimeout(r, 5));
    user = 'Bearer bob';
    expect(await Promise.all([alice, me()])).toEqual(['Bearer alice', 'Bearer bob']);
    expect(sent.map((x) => x.user)).toEqual(['Bearer alice', 'Bearer bob']);
  });

  it('NestJS rateLimitedHttp: a String object per call is no shared identity either', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    const http = rateLimitedHttp(new HttpService(instance), limiterWithCache());
    const me = (user: string) =>
      firstValueFrom(http.get<Seen>('/me', { headers: { Authorization: new String(user) as never } })).then(
        (r) => r.data.user,
      );
    expect(await Promise.all([me('Bearer alice'), me('Bearer bob')])).toEqual(['Bearer alice', 'Bearer bob']);
    expect(sent).toHaveLength(2);
  });

  it('the buckets of defaults are still read as buckets: identical GETs with common and get defaults share', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    instance.defaults.headers.common['Authorization'] = 'Bearer alice';
    instance.defaults.headers.get['Accept'] = 'application/json';
    const limiter = limiterWithCache();
    const me = () => firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/me' }));
    await Promise.all([me(), me()]);
    expect(sent).toHaveLength(1);
  });
});

/** Two GETs of one URL at once, with bodies `a` and `b`, through `get`. */
async function twoSearches(get: (data: string) => Promise<Seen>, sent: Seen[]) {
  const bodies = await Promise.all([get('{"q":"a"}'), get('{"q":"b"}')]);
  return { bodies: bodies.map((b) => b.body), sent: sent.length };
}

describe('a GET with a body is not shared with a GET with another body', () => {
  it('axios rateLimitedRequest', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    const limiter = limiterWithCache();
    const get = async (data: string) =>
      (await firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/search', data }))).data;
    expect(await twoSearches(get, sent)).toEqual({ bodies: ['{"q":"a"}', '{"q":"b"}'], sent: 2 });
    // Nor served from the cache to a later GET with another body.
    expect((await get('{"q":"c"}')).body).toBe('{"q":"c"}');
  });

  it('NestJS rateLimitedHttp', async () => {
    const { instance, sent } = api();
    const http = rateLimitedHttp(new HttpService(instance as AxiosInstance), limiterWithCache());
    const get = async (data: string) =>
      (await firstValueFrom(http.request<Seen>({ method: 'GET', url: 'https://api.example.com/search', data }))).data;
    expect(await twoSearches(get, sent)).toEqual({ bodies: ['{"q":"a"}', '{"q":"b"}'], sent: 2 });
  });

  it('GETs without a body still share', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    const limiter = limiterWithCache();
    const get = () => firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/search' }));
    await Promise.all([get(), get()]);
    expect(sent).toHaveLength(1);
  });
});

describe('axios options that decide who a request is sent as, or what comes back, separate GETs', () => {
  /** A transport that answers which client certificate (agent) the request went out with. */
  function tlsApi() {
    const sent: string[] = [];
    const adapter: AxiosAdapter = (config: InternalAxiosRequestConfig) =>
      new Promise((resolve) => {
        const cert = (config.httpsAgent as { cert?: string } | undefined)?.cert ?? 'none';
        sent.push(cert);
        setTimeout(() => resolve({ status: 200, statusText: 'OK', headers: {}, data: { cert }, config }), 20);
      });
    return { adapter, sent };
  }
  // Stand-ins for `new https.Agent({ cert, key })`: one client certificate per tenant.
  const agentOf = (cert: string) => Object.assign(Object.create({ kind: 'agent' }) as object, { cert });

  it('axios rateLimitedRequest: one instance per tenant, each with its own client certificate', async () => {
    const { adapter, sent } = tlsApi();
    const limiter = limiterWithCache();
    const tenants = ['tenant-a', 'tenant-b'].map((cert) =>
      axios.create({ baseURL: 'https://api.example.com', adapter, httpsAgent: agentOf(cert) }),
    );
    const got = await Promise.all(
      tenants.map(
        async (api) => (await firstValueFrom(rateLimitedRequest<{ cert: string }>(limiter, api, { url: '/me' }))).data,
      ),
    );
    expect(got.map((g) => g.cert)).toEqual(['tenant-a', 'tenant-b']);
    expect(sent).toHaveLength(2);
  });

  it('NestJS rateLimitedHttp: the agent given per call', async () => {
    const { adapter, sent } = tlsApi();
    const http = rateLimitedHttp(new HttpService(axios.create({ adapter })), limiterWithCache());
    const get = async (cert: string) =>
      (await firstValueFrom(http.get<{ cert: string }>('https://api.example.com/me', { httpsAgent: agentOf(cert) })))
        .data.cert;
    expect(await Promise.all([get('tenant-a'), get('tenant-b')])).toEqual(['tenant-a', 'tenant-b']);
    // Nor from the cache, one after the other.
    expect(await get('tenant-c')).toBe('tenant-c');
    expect(sent).toHaveLength(3);
  });

  it('a transformResponse of its own gets its own answer', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com' });
    const limiter = limiterWithCache();
    const [plain, upper] = await Promise.all([
      firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/me' })),
      firstValueFrom(
        rateLimitedRequest<string>(limiter, instance, {
          url: '/me',
          transformResponse: [(data: unknown) => JSON.stringify(data).toUpperCase()],
        }),
      ),
    ]);
    expect(sent).toHaveLength(2);
    expect(typeof plain.data).toBe('object');
    expect(typeof upper.data).toBe('string');
  });

  it('identical calls through one instance still share, and the same plain options count as the same', async () => {
    const { instance, sent } = api({ baseURL: 'https://api.example.com', timeout: 5000 });
    const limiter = limiterWithCache();
    const get = () =>
      firstValueFrom(
        rateLimitedRequest<Seen>(limiter, instance, { url: '/me', proxy: { host: 'proxy.local', port: 3128 } }),
      );
    await Promise.all([get(), get()]);
    expect(sent).toHaveLength(1);
  });
});

describe('axios: an answer that sets a cookie is not handed to the GETs that joined it', () => {
  it('each of three identical GETs at once gets a session of its own', async () => {
    let n = 0;
    const adapter: AxiosAdapter = (config: InternalAxiosRequestConfig) =>
      new Promise((resolve) => {
        const sid = `sid=${++n}`;
        setTimeout(
          () => resolve({ status: 200, statusText: 'OK', headers: { 'set-cookie': [sid] }, data: {}, config }),
          20,
        );
      });
    const instance = axios.create({ baseURL: 'https://api.example.com', adapter });
    const limiter = limiterWithCache();
    const cookies = await Promise.all(
      [0, 1, 2].map(
        async () =>
          (await firstValueFrom(rateLimitedRequest(limiter, instance, { url: '/session' }))).headers['set-cookie'],
      ),
    );
    expect(n).toBe(3);
    expect(cookies.flat().sort()).toEqual(['sid=1', 'sid=2', 'sid=3']);
  });

  it('nor is an error whose response sets one: each joined GET is sent on its own', async () => {
    let n = 0;
    const adapter: AxiosAdapter = (config: InternalAxiosRequestConfig) =>
      new Promise((_resolve, reject) => {
        const sid = `sid=${++n}`;
        const response = { status: 404, statusText: '', headers: { 'set-cookie': [sid] }, data: {}, config };
        setTimeout(() => reject(new AxiosError('Not Found', AxiosError.ERR_BAD_REQUEST, config, {}, response)), 20);
      });
    const instance = axios.create({ baseURL: 'https://api.example.com', adapter });
    const limiter = limiterWithCache();
    const cookies = await Promise.all(
      [0, 1, 2].map((): Promise<unknown> =>
        firstValueFrom(rateLimitedRequest(limiter, instance, { url: '/session' })).catch(
          (e: AxiosError) => e.response?.headers['set-cookie'],
        ),
      ),
    );
    expect(n).toBe(3);
    expect((cookies as string[][]).flat().sort()).toEqual(['sid=1', 'sid=2', 'sid=3']);
  });
});

describe('axios: what a caller changes of its shared answer reaches no other caller', () => {
  it('its config and the config’s headers are its own, and the cache’s are untouched', async () => {
    const { instance } = api({ baseURL: 'https://api.example.com' });
    const limiter = limiterWithCache();
    const [a, b] = await Promise.all(
      [0, 1].map(() => firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/me' }))),
    );
    if (a === undefined || b === undefined) throw new Error('two answers expected');
    expect(a.config).not.toBe(b.config);
    a.config.headers.set('X-Tampered', '1');
    a.config.timeout = 1;
    expect(b.config.headers.get('X-Tampered')).toBeUndefined();
    expect(b.config.timeout).not.toBe(1);
    const cached = await firstValueFrom(rateLimitedRequest<Seen>(limiter, instance, { url: '/me' }));
    expect(cached.config.headers.get('X-Tampered')).toBeUndefined();
    expect(cached.config.timeout).not.toBe(1);
  });
});
