import { afterEach, describe, expect, it } from '@jest/globals';
import axios, { type AxiosInstance } from 'axios';
import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { attachRateLimiter, rateLimitInterceptor } from '../../lib/adapters/axios.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// The options of `attachRateLimiter` and `rateLimitInterceptor`, and their limiter, are checked
// when they are given, as the fetch, Octokit, NestJS and Angular adapters check theirs: one
// TypeError names every bad field. A misspelt name (`maxRetry`) left its setting at the default,
// `retryNonIdempotent: 'yes'` silently did not resend POSTs, and a non-limiter failed each request
// later with `limiter.acquire is not a function`.

/** A key of its own for each limiter: limiters of one provider and key share one limit state. */
let keys = 0;
const made: Limiter[] = [];
let server: TestServer | undefined;

const limiter = (): Limiter => {
  const l = createLimiter({
    provider: providers.generic({ resetUnit: 'unix-seconds' }),
    key: `axios-options-${++keys}`,
    backoffBaseMs: 1,
    random: () => 0,
  });
  made.push(l);
  return l;
};

afterEach(async () => {
  await server?.close();
  server = undefined;
  await Promise.all(made.splice(0).map((l) => l.close()));
});

/** The error `fn` throws; fails the test when it returns. */
function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return error as Error;
  }
  throw new Error('did not throw');
}

/** An instance with no interceptor of ours: nothing was attached. */
const untouched = (client: AxiosInstance, adapter: unknown) => {
  expect(client.defaults.adapter).toBe(adapter);
  expect((client.interceptors.request as unknown as { handlers: unknown[] }).handlers.filter(Boolean)).toHaveLength(0);
};

describe('attachRateLimiter checks its options when attached', () => {
  it.each([
    ["'yes'", 'yes', 'got "yes"'],
    ["'false' (read from the environment)", 'false', 'got "false"'],
    ['1', 1, 'got number'],
  ])('refuses retryNonIdempotent: %s, naming it; nothing is attached', (_kind, value, got) => {
    const client = axios.create();
    const adapter = client.defaults.adapter;
    const error = thrown(() => attachRateLimiter(client, limiter(), { retryNonIdempotent: value as never }));
    expect(error.message).toBe(`attachRateLimiter: option \`retryNonIdempotent\` must be a boolean, ${got}`);
    untouched(client, adapter);
  });

  it('with retryNonIdempotent: true a POST answered 429 is sent again over a socket; false and unset leave it', async () => {
    // 429 to the first POST to each path, 200 to the next.
    const seen = new Set<string>();
    server = await startTestServer((_req, res, record) => {
      res.writeHead(seen.has(record.url) ? 200 : 429, { 'Retry-After': '0' });
      seen.add(record.url);
      res.end('{}');
    });
    const url = server.url;
    let calls = 0;
    const post = async (opts: { retryNonIdempotent?: boolean }) => {
      const client = axios.create({ baseURL: url });
      const detach = attachRateLimiter(client, limiter(), opts);
      try {
        return (await client.post(`/p${++calls}`, 'x', { validateStatus: () => true })).status;
      } finally {
        detach();
      }
    };
    expect(await post({ retryNonIdempotent: true })).toBe(200);
    expect(server.requests).toHaveLength(2);
    expect(await post({ retryNonIdempotent: false })).toBe(429);
    expect(await post({})).toBe(429);
    expect(server.requests).toHaveLength(4);
    // A truthy value that is no boolean is refused, not read as either.
    expect(() =>
      attachRateLimiter(axios.create({ baseURL: url }), limiter(), { retryNonIdempotent: 1 as never }),
    ).toThrow(/`retryNonIdempotent` must be a boolean/);
    expect(server.requests).toHaveLength(4);
  });

  it('refuses a non-limiter when attached, not at the first request; nothing is sent', async () => {
    server = await startTestServer((_req, res) => void res.end('{}'));
    const client = axios.create({ baseURL: server.url });
    const adapter = client.defaults.adapter;
    for (const notOne of [{}, null, undefined, { acquire: () => undefined }]) {
      const error = thrown(() => attachRateLimiter(client, notOne as never));
      expect(error.message).toBe('attachRateLimiter: `limiter` must be a limiter from createLimiter()');
    }
    untouched(client, adapter);
    expect((await client.get('/x')).status).toBe(200);
    expect(server.requests).toHaveLength(1);
  });

  it('refuses a misspelt option name, naming it; every option it documents still goes', () => {
    const client = axios.create();
    const adapter = client.defaults.adapter;
    expect(thrown(() => attachRateLimiter(client, limiter(), { maxRetry: 3 } as never)).message).toBe(
      'attachRateLimiter: unknown option `maxRetry`',
    );
    expect(
      thrown(() => attachRateLimiter(client, limiter(), { retryNonIdempotant: true, priorty: 1 } as never)).message,
    ).toBe('attachRateLimiter: unknown option `retryNonIdempotant`, `priorty`');
    untouched(client, adapter);
    attachRateLimiter(client, limiter(), {
      maxRetries: 2,
      retryNonIdempotent: true,
      statuses: [429, 503],
      priority: 1,
    })();
    // Typed as the interceptor's options, an options object may carry an `instance`: the attached one wins.
    const shared: Parameters<typeof rateLimitInterceptor>[1] = { maxRetries: 1, instance: axios.create() };
    attachRateLimiter(client, limiter(), shared)();
    untouched(client, adapter);
  });

  it('names every bad field in one TypeError', () => {
    const error = thrown(() =>
      attachRateLimiter(
        axios.create(),
        {} as never,
        {
          maxRetries: -1,
          retryNonIdempotent: 'yes',
          maxRetry: 3,
        } as never,
      ),
    );
    expect(error.message).toBe(
      'attachRateLimiter: option `maxRetries` must be a whole number >= 0, got -1; option `retryNonIdempotent` must be a boolean, got "yes"; `limiter` must be a limiter from createLimiter(); unknown option `maxRetry`',
    );
  });

  it('refuses options that are not an object, and an instance that is not axios’s, with its own TypeError', () => {
    expect(thrown(() => attachRateLimiter(axios.create(), limiter(), null as never)).message).toBe(
      'attachRateLimiter: options must be an object, got null',
    );
    expect(thrown(() => attachRateLimiter(axios.create(), limiter(), [] as never)).message).toBe(
      'attachRateLimiter: options must be an object, got an array',
    );
    expect(thrown(() => attachRateLimiter({} as never, limiter())).message).toBe(
      'attachRateLimiter: `instance` must be an axios instance',
    );
  });
});

describe('rateLimitInterceptor checks its options when made', () => {
  it('refuses a retryNonIdempotent that is no boolean, a non-limiter, a misspelt name and a bad instance, naming each', () => {
    expect(thrown(() => rateLimitInterceptor(limiter(), { retryNonIdempotent: 1 as never })).message).toBe(
      'rateLimitInterceptor: option `retryNonIdempotent` must be a boolean, got number',
    );
    expect(thrown(() => rateLimitInterceptor({} as never)).message).toBe(
      'rateLimitInterceptor: `limiter` must be a limiter from createLimiter()',
    );
    expect(thrown(() => rateLimitInterceptor(limiter(), { maxRetry: 3 } as never)).message).toBe(
      'rateLimitInterceptor: unknown option `maxRetry`',
    );
    expect(thrown(() => rateLimitInterceptor(limiter(), { instance: 'api' as never })).message).toBe(
      'rateLimitInterceptor: option `instance` must be an axios instance',
    );
    expect(thrown(() => rateLimitInterceptor(limiter(), null as never)).message).toBe(
      'rateLimitInterceptor: options must be an object, got null',
    );
    // Every option it documents still goes.
    const i = rateLimitInterceptor(limiter(), {
      maxRetries: 0,
      retryNonIdempotent: false,
      statuses: [429],
      priority: -1,
      instance: axios.create(),
    });
    i.dispose();
    rateLimitInterceptor(limiter()).dispose();
  });
});
