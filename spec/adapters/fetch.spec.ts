import { inspect } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { VirtualTimeScheduler } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  isBlockedError,
  isQuotaExhaustedError,
  isRetryLimitError,
  providers,
  type LimiterEvent,
  type Provider,
  type RequestInfo,
  type ResponseLike,
  rawCauseOf,
  type RateLimitError,
} from '../../lib/index.js';
import { installRateLimitedFetch, rateLimitedFetch, toResponseLike } from '../../lib/adapters/fetch.js';
import { startTestServer } from '../helpers/server.js';

/**
 * A key of its own for each limiter made here: limiters of one provider and key in a process
 * share one limit state, and these stand for independent credentials.
 */
let keys = 0;

const generic = () => providers.generic({ resetUnit: 'unix-seconds' });

describe('toResponseLike (fetch)', () => {
  it('reads headers by any case and joins repeated ones', () => {
    const headers = new Headers({ 'X-RateLimit-Remaining': '4' });
    headers.append('X-Multi', 'a');
    headers.append('x-multi', 'b');
    const res = toResponseLike(new Response(null, { status: 429, headers }));
    expect(res.status).toBe(429);
    expect(res.header('x-ratelimit-remaining')).toBe('4');
    expect(res.header('X-RATELIMIT-REMAINING')).toBe('4');
    expect(res.header('X-Multi')).toBe('a, b');
    expect(res.header('retry-after')).toBeUndefined();
    expect('body' in res).toBe(false);
  });

  it('carries the body it is given and leaves the response unread', () => {
    const response = new Response('{"a":1}', { status: 429, headers: { 'content-type': 'application/json' } });
    expect(toResponseLike(response, { a: 1 }).body).toEqual({ a: 1 });
    expect(response.bodyUsed).toBe(false);
  });
});

type Reply = { status: number; headers?: Record<string, string>; body?: string } | Error;

/** A fetch that answers from a script; records what it was called with. */
function fakeFetch(reply: (req: Request, n: number) => Reply | Promise<Reply>) {
  const calls: Array<{ input: unknown; request: Request; body: string }> = [];
  const responses: Response[] = [];
  const fetchImpl = async (input: globalThis.RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    calls.push({ input, request, body: request.body ? await request.text() : '' });
    const r = await reply(request, calls.length);
    if (r instanceof Error) throw r;
    const response = new Response(r.body ?? null, { status: r.status, headers: r.headers ?? {} });
    responses.push(response);
    return response;
  };
  return { fetch: fetchImpl as typeof fetch, calls, responses };
}

const limited = (retryAfter = '0', body = '{"error":"slow down"}'): Reply => ({
  status: 429,
  headers: { 'Retry-After': retryAfter, 'Content-Type': 'application/json' },
  body,
});
const ok: Reply = { status: 200, headers: { 'Content-Type': 'application/json' }, body: '{"ok":true}' };

/** Records what the provider is given: request infos and responses. */
function recording(base: Provider = generic()) {
  const infos: RequestInfo[] = [];
  const seen: ResponseLike[] = [];
  const provider = defineProvider({
    name: 'recording',
    buckets: (req) => {
      if (!infos.includes(req)) infos.push(req);
      return base.buckets(req);
    },
    read: (res, req) => {
      seen.push(res);
      return res.status === 403 && res.body === '<html>Cloudflare</html>'
        ? { outcome: 'blocked', buckets: [] }
        : base.read(res, req);
    },
  });
  return { provider, infos, seen };
}

const fastLimiter = (provider: Provider = generic(), extra: { maxWaitMs?: number } = {}) =>
  createLimiter({ provider, key: `token-${++keys}`, backoffBaseMs: 1, random: () => 0, ...extra });

async function settle<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p };
  } catch (error) {
    return { ok: false, error };
  }
}
const errorOf = (o: { ok: boolean; error?: unknown }) => (o as { error: unknown }).error;

describe('rateLimitedFetch', () => {
  it('is a drop-in fetch', () => {
    const f: typeof fetch = rateLimitedFetch(fastLimiter());
    expect(typeof f).toBe('function');
  });

  it('retries a 429 on a GET and resolves with the next response', async () => {
    const fake = fakeFetch((_r, n) => (n === 1 ? limited() : ok));
    const limiter = fastLimiter();
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));

    const res = await rateLimitedFetch(limiter, { fetch: fake.fetch })('https://api.example.com/x');

    expect(await res.json()).toEqual({ ok: true });
    expect(fake.calls).toHaveLength(2);
    expect(events.filter((e) => e.type === 'retry-scheduled')).toEqual([expect.objectContaining({ attempt: 2 })]);
    expect(limiter.snapshot).toMatchObject({
      inFlight: 0,
      queued: 0,
      totals: { sent: 2, responses: 2, rateLimited: 1 },
    });
  });

  it('reads a 429 body from a clone (JSON or text) and leaves the response unread', async () => {
    const { provider, seen } = recording();
    const fake = fakeFetch((_r, n) =>
      n === 1
        ? limited('0', '{"throttled_by":"hour"}')
        : { status: 429, headers: { 'Content-Type': 'text/plain' }, body: 'Too many' },
    );
    const apiFetch = rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch });

    const first = await apiFetch('https://api.example.com/deals', { method: 'POST' });
    const second = await apiFetch('https://api.example.com/deals', { method: 'POST' });

    expect(seen.map((r) => r.body)).toEqual([{ throttled_by: 'hour' }, 'Too many']);
    expect(first.status).toBe(429);
    expect(await first.json()).toEqual({ throttled_by: 'hour' });
    expect(await second.text()).toBe('Too many');
  });

  it('reads at most 256 KiB of a 429 body without Content-Length, and gives up the rest to the caller', async () => {
    const { provider, seen } = recording();
    let pulled = 0;
    const chunk = new Uint8Array(64 * 1024).fill(120);
    const body = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (pulled >= 8 * 1024 * 1024) return controller.close();
          pulled += chunk.byteLength;
          controller.enqueue(chunk);
        },
      },
      { highWaterMark: 0 },
    );
    const fetch429 = (async () =>
      new Response(body, { status: 429, headers: { 'content-type': 'text/plain' } })) as typeof fetch;

    const res = await rateLimitedFetch(fastLimiter(provider), { fetch: fetch429 })('https://api.example.com/deals', {
      method: 'POST',
    });

    expect(res.status).toBe(429);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.body).toBeUndefined();
    expect(pulled).toBeLessThanOrEqual(512 * 1024);
  });

  it('checks bodyTimeoutMs', () => {
    expect(() => rateLimitedFetch(fastLimiter(), { bodyTimeoutMs: -1 })).toThrow(/`bodyTimeoutMs`/);
    expect(() => rateLimitedFetch(fastLimiter(), { bodyTimeoutMs: Number.NaN })).toThrow(TypeError);
  });

  it('does not read the body of an ordinary response', async () => {
    const { provider, seen } = recording();
    const fake = fakeFetch(() => ok);
    const res = await rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch })('https://api.example.com/x');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.body).toBeUndefined();
    expect(await res.json()).toEqual({ ok: true });
  });

  it('rejects with RetryLimitError after maxRetries, its cause the last 429 Response', async () => {
    const fake = fakeFetch(() => limited());
    const out = await settle(
      rateLimitedFetch(fastLimiter(), { fetch: fake.fetch, maxRetries: 2 })('https://api.example.com/x'),
    );

    const error = errorOf(out);
    expect(isRetryLimitError(error)).toBe(true);
    expect(isRetryLimitError(error) && error.attempts).toBe(3);
    expect(fake.calls).toHaveLength(3);
    expect(rawCauseOf(error as RateLimitError)).toBe(fake.responses[2]);
  });

  it('resolves a POST 429 as is; retries one with an Idempotency-Key or retryNonIdempotent', async () => {
    const run = async (init: RequestInit, opts: { retryNonIdempotent?: boolean } = {}) => {
      const fake = fakeFetch((_r, n) => (n === 1 ? limited() : ok));
      const res = await rateLimitedFetch(fastLimiter(), { fetch: fake.fetch, ...opts })(
        'https://api.example.com/deals',
        {
          method: 'POST',
          body: '{}',
          ...init,
        },
      );
      return { status: res.status, calls: fake.calls.length };
    };
    expect(await run({})).toEqual({ status: 429, calls: 1 });
    expect(await run({ headers: { 'Idempotency-Key': 'k1' } })).toEqual({ status: 200, calls: 2 });
    expect(await run({ headers: [['idempotency-key', 'k1']] })).toEqual({ status: 200, calls: 2 });
    expect(await run({}, { retryNonIdempotent: true })).toEqual({ status: 200, calls: 2 });
    const stream = new ReadableStream({ start: (c) => c.close() });
    expect(await run({ body: stream, duplex: 'half' } as RequestInit, { retryNonIdempotent: true })).toEqual({
      status: 429,
      calls: 1,
    });
  });

  it('does not send again a body read once (a Node Readable, an async generator), even with retryNonIdempotent', async () => {
    const run = async (body: unknown, method = 'PUT') => {
      const fake = fakeFetch((_r, n) => (n === 1 ? limited() : ok));
      const res = await rateLimitedFetch(fastLimiter(), { fetch: fake.fetch, retryNonIdempotent: true })(
        'https://api.example.com/upload',
        { method, body, duplex: 'half' } as RequestInit,
      );
      return { status: res.status, calls: fake.calls.length };
    };
    const { Readable } = await import('node:stream');
    expect(await run(Readable.from([Buffer.from('file')]))).toEqual({ status: 429, calls: 1 });
    expect(
      await run(
        (async function* () {
          yield new Uint8Array([1, 2, 3]);
        })(),
      ),
    ).toEqual({ status: 429, calls: 1 });
    // Bodies sent whole each time are sent again.
    expect(await run('text')).toEqual({ status: 200, calls: 2 });
    expect(await run(new Uint8Array([1, 2]))).toEqual({ status: 200, calls: 2 });
    expect(await run(new Blob(['b']))).toEqual({ status: 200, calls: 2 });
    expect(await run(new URLSearchParams({ a: '1' }))).toEqual({ status: 200, calls: 2 });
    const form = new FormData();
    form.append('a', '1');
    expect(await run(form)).toEqual({ status: 200, calls: 2 });
  });

  it('gives the limiter the cost of option cost: the same for every call, or per call from a function', async () => {
    const { provider, infos } = recording();
    const fake = fakeFetch(() => ok);
    const limiter = fastLimiter(provider);
    infos.length = 0;
    await rateLimitedFetch(limiter, { fetch: fake.fetch, cost: 3 })('https://api.example.com/a');
    const perCall = rateLimitedFetch(limiter, {
      fetch: fake.fetch,
      cost: ({ method, url }) => (method === 'POST' ? { default: 5 } : url.endsWith('/cheap') ? undefined : 2),
    });
    await perCall('https://api.example.com/b', { method: 'post' });
    await perCall('https://api.example.com/cheap');
    await perCall(new Request('https://api.example.com/c'));
    expect(infos.map((i) => [i.method, i.cost])).toEqual([
      ['GET', 3],
      ['POST', { default: 5 }],
      ['GET', undefined],
      ['GET', 2],
    ]);
  });

  it('a bad cost rejects the call with a TypeError naming cost, nothing sent', async () => {
    const fake = fakeFetch(() => ok);
    for (const cost of [0, { default: Number.NaN }, () => -1]) {
      const call = rateLimitedFetch(fastLimiter(), { fetch: fake.fetch, cost })('https://api.example.com/x');
      await expect(call).rejects.toThrow(TypeError);
      await expect(call).rejects.toThrow(/`cost(\["default"\])?` must be a finite number above 0/);
    }
    expect(fake.calls).toHaveLength(0);
  });

  it('sends a Request input with its method, URL, headers and a fresh body on each attempt', async () => {
    const { provider, infos } = recording();
    const fake = fakeFetch((_r, n) => (n === 1 ? limited() : ok));
    const request = new Request('https://api.example.com/v1/deals?x=1', {
      method: 'PUT',
      headers: { 'Idempotency-Key': 'k9', 'Content-Type': 'application/json' },
      body: '{"title":"x"}',
    });

    const made = fastLimiter(provider);
    infos.length = 0; // made, the limiter read the provider's rules for a plain GET and POST
    const res = await rateLimitedFetch(made, { fetch: fake.fetch, priority: 4 })(request);

    expect(res.status).toBe(200);
    expect(
      fake.calls.map((c) => [c.request.method, c.request.url, c.body, c.request.headers.get('idempotency-key')]),
    ).toEqual([
      ['PUT', 'https://api.example.com/v1/deals?x=1', '{"title":"x"}', 'k9'],
      ['PUT', 'https://api.example.com/v1/deals?x=1', '{"title":"x"}', 'k9'],
    ]);
    expect(fake.calls[0]?.input).not.toBe(request);
    expect(request.bodyUsed).toBe(false);
    expect(infos).toEqual([
      { method: 'PUT', url: 'https://api.example.com/v1/deals?x=1', priority: 4, idempotencyKey: 'k9' },
    ]);
  });

  it('takes the idempotency key from init.headers over the Request’s, as fetch takes headers', async () => {
    const { provider, infos } = recording();
    const fake = fakeFetch(() => ok);
    const request = new Request('https://api.example.com/deals', {
      method: 'POST',
      headers: { 'Idempotency-Key': 'old' },
    });
    const made = fastLimiter(provider);
    infos.length = 0; // made, the limiter read the provider's rules for a plain GET and POST
    await rateLimitedFetch(made, { fetch: fake.fetch })(request, {
      headers: { 'Idempotency-Key': 'new' },
    });
    const before = infos.length;
    const second = fastLimiter(provider);
    infos.length = before;
    await rateLimitedFetch(second, { fetch: fake.fetch })(new URL('https://api.example.com/u'), {
      method: 'delete',
    });
    expect(infos).toEqual([
      { method: 'POST', url: 'https://api.example.com/deals', idempotencyKey: 'new' },
      { method: 'DELETE', url: 'https://api.example.com/u' },
    ]);
  });

  it('rejects a network error as is and returns the permit', async () => {
    const failure = new TypeError('fetch failed');
    const fake = fakeFetch(() => failure);
    const limiter = fastLimiter();
    expect(errorOf(await settle(rateLimitedFetch(limiter, { fetch: fake.fetch })('https://api.example.com/x')))).toBe(
      failure,
    );
    expect(fake.calls).toHaveLength(1);
    expect(limiter.snapshot).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('rejects with BlockedError on a block, and later calls without sending them', async () => {
    const { provider } = recording();
    const fake = fakeFetch(() => ({
      status: 403,
      headers: { 'Content-Type': 'text/html' },
      body: '<html>Cloudflare</html>',
    }));
    const apiFetch = rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch });

    const first = errorOf(await settle(apiFetch('https://api.example.com/x')));
    const second = errorOf(await settle(apiFetch('https://api.example.com/y')));

    expect(isBlockedError(first)).toBe(true);
    expect(rawCauseOf(first as RateLimitError)).toBe(fake.responses[0]);
    expect(isBlockedError(second)).toBe(true);
    expect(fake.calls).toHaveLength(1);
  });

  it('rejects with QuotaExhaustedError when the wait passes maxWaitMs', async () => {
    const fake = fakeFetch(() => limited('60'));
    const out = await settle(
      rateLimitedFetch(fastLimiter(generic(), { maxWaitMs: 1000 }), { fetch: fake.fetch })('https://api.example.com/x'),
    );
    expect(isQuotaExhaustedError(errorOf(out))).toBe(true);
    expect(rawCauseOf(errorOf(out) as RateLimitError)).toBe(fake.responses[0]);
    expect(fake.calls).toHaveLength(1);
  });

  it('an aborted signal rejects with its reason: before the call, while queued, during a retry wait', async () => {
    const reason = new Error('stop');
    let release: (r: Reply) => void = () => undefined;
    const fake = fakeFetch((req, n) => {
      if (req.url.endsWith('/slow') && n === 1) return new Promise<Reply>((r) => (release = r));
      if (req.url.endsWith('/wait')) return limited('5');
      return ok;
    });
    const limiter = fastLimiter();
    const apiFetch = rateLimitedFetch(limiter, { fetch: fake.fetch });

    expect(errorOf(await settle(apiFetch('https://api.example.com/a', { signal: AbortSignal.abort(reason) })))).toBe(
      reason,
    );
    expect(fake.calls).toHaveLength(0);

    const slow = apiFetch('https://api.example.com/slow'); // cold start: the next call waits for it
    const controller = new AbortController();
    const queued = settle(apiFetch('https://api.example.com/b', { signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 5));
    expect(limiter.snapshot.queued).toBe(1);
    controller.abort(reason);
    expect(errorOf(await queued)).toBe(reason);
    release(ok);
    await slow;
    expect(fake.calls.map((c) => new URL(c.request.url).pathname)).toEqual(['/slow']);

    const c2 = new AbortController();
    const waiting = settle(apiFetch('https://api.example.com/wait', { signal: c2.signal }));
    await new Promise((r) => setTimeout(r, 20));
    c2.abort();
    const error = errorOf(await waiting) as Error;
    expect(error.name).toBe('AbortError');
    expect(fake.calls).toHaveLength(2);
  });

  it('a signal aborted by a listener of the limiter while the call is being queued still cancels it', async () => {
    let release: (r: Reply) => void = () => undefined;
    const fake = fakeFetch((req, n) => (n === 1 ? new Promise<Reply>((r) => (release = r)) : ok));
    const limiter = fastLimiter();
    const apiFetch = rateLimitedFetch(limiter, { fetch: fake.fetch });
    const slow = apiFetch('https://api.example.com/slow'); // cold start: the next call waits for it
    const controller = new AbortController();
    // An app that gives up on a call as soon as it has to wait (a UI's "busy, try later").
    const stop = limiter.events$.subscribe((e) => {
      if (e.type === 'queued') controller.abort(new Error('busy'));
    });
    const queued = settle(apiFetch('https://api.example.com/b', { signal: controller.signal }));

    const ended = await Promise.race([queued, new Promise((r) => setTimeout(() => r('still queued'), 200))]);
    expect(ended).not.toBe('still queued');
    expect((errorOf(ended as { ok: boolean }) as Error).message).toBe('busy');
    expect(limiter.snapshot.queued).toBe(0);
    stop.unsubscribe();
    release(ok);
    await slow;
    expect(fake.calls.map((c) => new URL(c.request.url).pathname)).toEqual(['/slow']);
  });

  it('a signal aborted by another grant of the same batch returns the permit at once, not at permitTimeoutMs', async () => {
    const scheduler = new VirtualTimeScheduler();
    const limiter = createLimiter({
      provider: generic(),
      key: `token-${++keys}`,
      scheduler,
      coldStartConcurrency: 10,
      permitTimeoutMs: 60_000,
    });
    const fake = fakeFetch(() => ok);
    const reason = new Error('lost the race');
    const controller = new AbortController();
    // Both wait out one pause and are granted in one batch: the first, granted first, cancels
    // its hedged twin from its handler, after the twin left the queue but before its grant.
    limiter.pause(200);
    limiter.acquire(
      { method: 'GET', url: 'https://api.example.com/a' },
      {
        granted: (permit) => {
          controller.abort(reason);
          permit.release();
        },
        rejected: () => undefined,
      },
    );
    const twin = settle(
      rateLimitedFetch(limiter, { fetch: fake.fetch })('https://api.example.com/b', { signal: controller.signal }),
    );
    expect(limiter.snapshot.queued).toBe(2);

    // To the end of the pause only: the permit timeout, a minute on, must not be what frees it.
    scheduler.maxFrames = 200;
    scheduler.flush();

    expect(errorOf(await twin)).toBe(reason);
    expect(fake.calls).toHaveLength(0);
    expect(limiter.snapshot.inFlight).toBe(0);
    await limiter.close();
  });

  it.each([
    ['past maxRetries', { maxRetries: 0 }, 'GET', {}],
    ['a wait past maxWaitMs', {}, 'GET', { maxWaitMs: 1000 }],
    ['a 429 not retried (a POST)', {}, 'POST', {}],
  ])(
    'a signal aborted while a 429 body is read rejects with its reason, not with what the 429 led to (%s)',
    async (_case, options, method, limits) => {
      const reason = new Error('stop');
      const controller = new AbortController();
      // A 429 whose body sends its first bytes, then nothing until the call is aborted, which
      // errors the body as fetch does.
      const send = async (_input: unknown, init?: RequestInit): Promise<Response> => {
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            c.enqueue(new TextEncoder().encode('slow'));
            init?.signal?.addEventListener('abort', () => c.error(init.signal?.reason));
          },
        });
        return new Response(body, { status: 429, headers: { 'Retry-After': '3', 'Content-Type': 'text/plain' } });
      };
      const limiter = fastLimiter(generic(), limits);
      const call = settle(
        rateLimitedFetch(limiter, { fetch: send as typeof fetch, ...options })('https://api.example.com/x', {
          method,
          signal: controller.signal,
        }),
      );
      await new Promise((r) => setTimeout(r, 10));
      controller.abort(reason);

      expect(errorOf(await call)).toBe(reason);
      // The 429 was still read: the limiter waits it out.
      expect(limiter.snapshot.pausedUntil).not.toBeNull();
      expect(limiter.snapshot.inFlight).toBe(0);
    },
  );

  it.each([
    ['a string', (url: string) => url],
    ['a URL', (url: string) => new URL(url)],
  ])(
    'with the platform fetch, refuses a URL with a user name or password (%s) before it waits, quoting neither them nor the query',
    async (_kind, input) => {
      // The platform's fetch (here a stand-in installed as it) refuses such a URL itself.
      const fake = fakeFetch(() => ok);
      const limiter = fastLimiter();
      const apiFetch = rateLimitedFetch(limiter);
      const original = globalThis.fetch;
      globalThis.fetch = fake.fetch;
      let error: unknown;
      try {
        error = errorOf(await settle(apiFetch(input('https://alice:SECRET-PW@api.example.com/p?api_token=SECRET-Q'))));
      } finally {
        globalThis.fetch = original;
      }

      expect((error as Error).name).toBe('TypeError');
      expect((error as Error).message).toBe(
        'rateLimitedFetch: the URL "https://api.example.com/p" holds a user name or password, which fetch refuses; send them in an `Authorization` header',
      );
      expect((error as Error).cause).toBeUndefined();
      expect(fake.calls).toHaveLength(0);
      expect(limiter.snapshot.totals.sent).toBe(0);
    },
  );

  it("leaves a URL with a user name or password to a fetch of the caller's own (node-fetch sends Basic auth)", async () => {
    const sentTo: string[] = [];
    const own = (async (input: string) => {
      sentTo.push(input);
      return new Response('{}', { status: 200 });
    }) as unknown as typeof fetch;
    const apiFetch = rateLimitedFetch(fastLimiter(), { fetch: own });
    expect((await apiFetch('https://user:pass@api.example.com/p')).status).toBe(200);
    expect(sentTo).toEqual(['https://user:pass@api.example.com/p']);
  });

  it('uses globalThis.fetch, looked up at each call', async () => {
    const original = globalThis.fetch;
    const fake = fakeFetch(() => ok);
    const apiFetch = rateLimitedFetch(fastLimiter());
    globalThis.fetch = fake.fetch;
    try {
      expect((await apiFetch('https://api.example.com/x')).status).toBe(200);
    } finally {
      globalThis.fetch = original;
    }
    expect(fake.calls).toHaveLength(1);
  });

  it('checks its options when created', () => {
    expect(() => rateLimitedFetch(fastLimiter(), { maxRetries: 1.5 })).toThrow(/`maxRetries`.*1\.5/);
    expect(() => rateLimitedFetch(fastLimiter(), { fetch: 'no' as unknown as typeof fetch })).toThrow(/`fetch`/);
    expect(() => rateLimitedFetch(fastLimiter(), { statuses: ['429'] as unknown as number[] })).toThrow(/`statuses`/);
    expect(() => rateLimitedFetch(fastLimiter(), { retryNonIdempotent: 'yes' as unknown as boolean })).toThrow(
      /`retryNonIdempotent` must be a boolean/,
    );
    expect(() => rateLimitedFetch(fastLimiter(), { cost: '3' as unknown as number })).toThrow(/`cost`.*string/);
    expect(() => rateLimitedFetch(fastLimiter(), null as unknown as object)).toThrow(/options must be an object/);
  });
});

describe('rateLimitedFetch and a 200 the provider reads as a rate limit (Shopify GraphQL’s THROTTLED)', () => {
  /**
   * Reads `{ "throttled": true }` in a 2xx body as a rate limit whose wait is in the body,
   * the server saying the request never ran and cost 7; wants 2xx bodies only when `wants`.
   */
  function bodyThrottle(wants = true) {
    const seen: ResponseLike[] = [];
    const infos: RequestInfo[] = [];
    const provider = defineProvider({
      name: 'body-throttle',
      buckets: (req) => {
        infos.push(req);
        return [{ name: 'points' }];
      },
      readsBody: (status) => wants && status >= 200 && status < 300,
      read: (res) => {
        seen.push(res);
        const throttled = (res.body as { throttled?: boolean } | undefined)?.throttled === true;
        return throttled
          ? {
              outcome: 'limited',
              buckets: [],
              retryAfter: { delayMs: 1 },
              retrySource: 'body',
              notProcessed: true,
              retryCost: { points: 7 },
            }
          : { outcome: 'ok', buckets: [] };
      },
    });
    return { provider, seen, infos };
  }
  const throttledReply: Reply = {
    status: 200,
    headers: { 'Content-Type': 'application/json' },
    body: '{"throttled":true}',
  };

  it('reads the body of a 200 when the provider asks, from a clone: the caller gets it unread', async () => {
    const { provider, seen } = bodyThrottle();
    const fake = fakeFetch(() => ok);
    const res = await rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch })('https://api.example.com/x');
    expect(seen.map((r) => r.body)).toEqual([{ ok: true }]);
    expect(res.bodyUsed).toBe(false);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('sends a throttled 200 again, a POST too when the server did not run it, with the cost it told', async () => {
    const { provider, infos } = bodyThrottle();
    const fake = fakeFetch((_r, n) => (n === 1 ? throttledReply : ok));
    const limiter = fastLimiter(provider);
    const res = await rateLimitedFetch(limiter, { fetch: fake.fetch })('https://api.example.com/graphql', {
      method: 'POST',
      body: '{"query":"{ shop { name } }"}',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(fake.calls.map((c) => c.body)).toEqual(['{"query":"{ shop { name } }"}', '{"query":"{ shop { name } }"}']);
    // The second attempt was queued with the cost the throttle told.
    expect(infos.at(-1)).toMatchObject({ method: 'POST', cost: { points: 7 } });
    expect(limiter.snapshot.totals).toMatchObject({ sent: 2, rateLimited: 1 });
  });

  it('past maxRetries rejects with RetryLimitError: status 200, its cause the last Response', async () => {
    const { provider } = bodyThrottle();
    const fake = fakeFetch(() => throttledReply);
    const out = await settle(
      rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch, maxRetries: 1 })('https://api.example.com/x'),
    );
    const error = errorOf(out);
    expect(error).toMatchObject({ name: 'RetryLimitError', attempts: 2, status: 200 });
    expect(rawCauseOf(error as RateLimitError)).toBe(fake.responses[1]);
  });

  it('resolves the throttled 200 as it came when its body cannot be sent again (a ReadableStream)', async () => {
    const { provider } = bodyThrottle();
    const fake = fakeFetch(() => throttledReply);
    const limiter = fastLimiter(provider);
    const apiFetch = rateLimitedFetch(limiter, { fetch: fake.fetch, maxRetries: 3 });
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{}'));
        controller.close();
      },
    });
    const res = await apiFetch('https://api.example.com/x', {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    expect(await res.json()).toEqual({ throttled: true });
    expect(fake.calls).toHaveLength(1);
  });

  it('without the provider asking, a 200 body stays unread and the 200 is what the caller gets', async () => {
    const { provider, seen } = bodyThrottle(false);
    const fake = fakeFetch(() => throttledReply);
    const res = await rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch })('https://api.example.com/x');
    expect(seen.map((r) => r.body)).toEqual([undefined]);
    expect(await res.json()).toEqual({ throttled: true });
    expect(fake.calls).toHaveLength(1);
  });

  it('reads at most 256 KiB of a 200 body: past that the limiter reads headers only, the caller gets it all', async () => {
    const { provider, seen } = bodyThrottle();
    const big = JSON.stringify({ data: 'x'.repeat(300 * 1024) });
    const fake = fakeFetch(() => ({ status: 200, headers: { 'Content-Type': 'application/json' }, body: big }));
    const res = await rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch })('https://api.example.com/x');
    expect(seen.map((r) => r.body)).toEqual([undefined]);
    expect(await res.text()).toBe(big);
  });

  it('a readsBody that throws reads as no', async () => {
    const provider = defineProvider({
      name: 'throwing-reads-body',
      buckets: [{ name: 'default' }],
      readsBody: () => {
        throw new Error('profile bug');
      },
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const fake = fakeFetch(() => ok);
    const res = await rateLimitedFetch(fastLimiter(provider), { fetch: fake.fetch })('https://api.example.com/x');
    expect(await res.json()).toEqual({ ok: true });
  });
});

describe('installRateLimitedFetch', () => {
  it('refuses two keys of one origin (one limiter would pace every call, the other none)', () => {
    const a = fastLimiter();
    const b = fastLimiter();
    expect(() => installRateLimitedFetch({ 'https://api.procore.com': a, 'https://API.procore.com:443/': b })).toThrow(
      /two keys of `limiters` name the origin "https:\/\/api.procore.com"/,
    );
    expect(globalThis.fetch).not.toHaveProperty('name', 'installed');
    // One limiter under two spellings of its origin is no conflict.
    installRateLimitedFetch({ 'https://api.procore.com': a, 'https://API.procore.com:443/': a })();
  });

  it.each([
    ['alone', (_paced: string) => () => undefined],
    // Installed twice: ours for another origin wraps ours, which found the platform's fetch.
    [
      'under another install for another origin',
      (_paced: string) => installRateLimitedFetch({ 'https://other.example.com': fastLimiter() }),
    ],
    // Installed twice for the same origin: the outer one refuses it.
    [
      'under another install for the same origin',
      (paced: string) => installRateLimitedFetch({ [paced]: fastLimiter() }),
    ],
  ])(
    'refuses a URL with a user name or password to a paced origin (%s) before it waits, quoting neither them nor the query',
    async (_kind, installMore) => {
      const server = await startTestServer((_req, res) => void res.end('{}'));
      const limiter = fastLimiter();
      const uninstall = installRateLimitedFetch({ [server.url]: limiter });
      const uninstallMore = installMore(server.url);
      let error: unknown;
      try {
        const withSecrets = `${server.url.replace('http://', 'http://bob:SECRET-PW@')}/v1/x?api_token=SECRET-Q`;
        error = errorOf(await settle(fetch(withSecrets)));
      } finally {
        uninstallMore();
        uninstall();
      }
      await server.close();

      expect((error as Error).name).toBe('TypeError');
      expect((error as Error).message).toBe(
        `installRateLimitedFetch: the URL "${server.url}/v1/x" holds a user name or password, which fetch refuses; send them in an \`Authorization\` header`,
      );
      expect(inspect(error)).not.toContain('SECRET');
      // No permit was taken for a request that was never sent.
      expect(limiter.snapshot.totals.sent).toBe(0);
      expect(server.requests).toHaveLength(0);
    },
  );

  it('refuses a URL with a user name or password when the global fetch it found wraps the platform’s', async () => {
    const server = await startTestServer((_req, res) => void res.end('{}'));
    const platform = globalThis.fetch;
    // A tracing or mocking library's wrapper, installed first.
    globalThis.fetch = ((input: globalThis.RequestInfo | URL, init?: RequestInit) =>
      platform(input, init)) as typeof fetch;
    const limiter = fastLimiter();
    const uninstall = installRateLimitedFetch({ [server.url]: limiter });
    let error: unknown;
    let plain: Response | undefined;
    try {
      error = errorOf(
        await settle(fetch(`${server.url.replace('http://', 'http://bob:SECRET-PW@')}/x?api_token=SECRET-Q`)),
      );
      plain = await fetch(`${server.url}/x`);
    } finally {
      uninstall();
      globalThis.fetch = platform;
    }
    await server.close();

    expect((error as Error).message).toMatch(/^installRateLimitedFetch: the URL ".*\/x" holds a user name or password/);
    expect(inspect(error)).not.toContain('SECRET');
    // The same origin without them is paced and sent.
    expect(plain?.status).toBe(200);
    expect(limiter.snapshot.totals.sent).toBe(1);
    expect(server.requests).toHaveLength(1);
  });

  it('checks its options even with no limiter yet (a config that adds them later)', () => {
    const before = globalThis.fetch;
    expect(() => installRateLimitedFetch({}, { maxRetries: -1 })).toThrow(/^installRateLimitedFetch: .*`maxRetries`/);
    expect(() => installRateLimitedFetch({}, { bodyTimeoutMs: Number.NaN })).toThrow(/`bodyTimeoutMs`/);
    expect(globalThis.fetch).toBe(before);
    installRateLimitedFetch({}, { maxRetries: 2 })();
    expect(globalThis.fetch).toBe(before);
  });
});
