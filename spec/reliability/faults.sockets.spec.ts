/**
 * Fault suite over real sockets: connection refused, connection reset and timeouts,
 * through the real adapters. Every request ends exactly once, with its response or the very
 * error object the HTTP client raised; none hangs, none is sent twice.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import axios, { isAxiosError, type AxiosError, type AxiosResponse } from 'axios';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { rateLimitedRequest } from '../../lib/adapters/axios.js';
import { rateLimitedFetch } from '../../lib/adapters/fetch.js';
import { createSimulatorEngine } from '../../lib/testing/index.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length > 0) await closers.pop()?.();
});

/** A port on 127.0.0.1 with nothing listening (bound once, then closed). */
async function deadPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function listen(server: HttpServer | NetServer, sockets: Set<Socket>): Promise<string> {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Accepts connections and reads requests, never answers. */
async function blackHole(): Promise<{ url: string; received: () => number }> {
  let received = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1').match(/^(GET|POST|PUT|DELETE) /gm)?.length ?? 0;
    });
    socket.on('error', () => undefined);
  });
  const url = await listen(server, sockets);
  return { url, received: () => received };
}

/**
 * The simulator's Pipedrive (advanced plan) behind a front that kills the connection of every
 * `every`-th request it receives, without answering: the client sees a reset.
 */
async function resettingSimulator(every: number) {
  const engine = createSimulatorEngine({ pipedrive: { plan: 'advanced' } });
  const received = new Map<string, number>();
  let seq = 0;
  let resets = 0;
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    received.set(url.pathname, (received.get(url.pathname) ?? 0) + 1);
    if (++seq % every === 0) {
      resets++;
      req.socket.destroy();
      return;
    }
    req.resume();
    req.on('end', () => {
      const answer = engine.handle({
        provider: 'pipedrive',
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
      });
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    });
  });
  const url = await listen(server, sockets);
  return {
    url,
    engine,
    resets: () => resets,
    total: () => seq,
    duplicates: () => [...received].filter(([, c]) => c > 1),
  };
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Settles every promise; fails the test (instead of hanging it) if any is still open after `ms`. */
async function settleAll<T>(promises: Array<Promise<T>>, ms: number): Promise<Array<Settled<T>>> {
  const open = Symbol('open');
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<typeof open>((resolve) => {
    timer = setTimeout(() => resolve(open), ms);
  });
  const settled = await Promise.all(
    promises.map((p) =>
      Promise.race([
        p.then(
          (value): Settled<T> => ({ ok: true, value }),
          (error: unknown): Settled<T> => ({ ok: false, error }),
        ),
        deadline,
      ]),
    ),
  );
  clearTimeout(timer);
  expect(settled.filter((s) => s === open)).toHaveLength(0);
  return settled as Array<Settled<T>>;
}

/**
 * An axios request observable as a promise that records how many times each notification
 * came: it must be one value then complete, or one error.
 */
function observe<T>(source: { subscribe: (o: object) => unknown }): Promise<T> & { counts: () => number[] } {
  let next = 0;
  let error = 0;
  let complete = 0;
  const promise = new Promise<T>((resolve, reject) => {
    let value: T;
    source.subscribe({
      next: (v: T) => {
        next++;
        value = v;
      },
      error: (e: unknown) => {
        error++;
        reject(e);
      },
      complete: () => {
        complete++;
        resolve(value);
      },
    });
  });
  return Object.assign(promise, { counts: () => [next, error, complete] });
}

/** A fetch that records every error it throws, to check the adapter passes the same object on. */
function recordingFetch() {
  const thrown: unknown[] = [];
  let calls = 0;
  let live = 0;
  const fetchFn = ((input: Parameters<typeof fetch>[0], init?: RequestInit) => {
    calls++;
    if (init?.signal?.aborted !== true) live++;
    return fetch(input, init).catch((e: unknown) => {
      thrown.push(e);
      throw e;
    });
  }) as typeof fetch;
  // `live`: calls handed over with a signal not yet aborted (only those can reach the server).
  return { fetchFn, thrown, calls: () => calls, live: () => live };
}

/** An axios instance that records every error it raises. */
function recordingAxios() {
  const thrown: unknown[] = [];
  const client = axios.create();
  client.interceptors.response.use(undefined, (e: unknown) => {
    thrown.push(e);
    return Promise.reject(e);
  });
  return { client, thrown };
}

const waits = new WeakMap<Limiter, string[]>();

function limiterFor(key: string, extra: Partial<Parameters<typeof createLimiter>[0]> = {}): Limiter {
  const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key, ...extra });
  const seen: string[] = [];
  waits.set(limiter, seen);
  limiter.events$.subscribe((e) => {
    if (e.type === 'paused' || e.type === 'retry-scheduled' || e.type === 'rate-limited') seen.push(e.type);
  });
  return limiter;
}

/**
 * The waits of the limiter's own (pauses, retries, 429s): a failure must end its request at once.
 * Asserted in events, not in wall time, which a busy 2-core machine stretches (2.6 s seen where
 * 2 s was allowed); the time bound beside it (5 s) only catches a wait no event showed.
 */
const waitsOf = (limiter: Limiter): string[] => waits.get(limiter) ?? [];

function idle(limiter: Limiter) {
  const s = limiter.snapshot;
  return { queued: s.queued, inFlight: s.inFlight };
}

describe('fault: connection refused (real socket, nothing listening)', () => {
  it('fetch: 20 requests each end with the TypeError fetch raised, sent once each', async () => {
    const port = await deadPort();
    const limiter = limiterFor('refused-fetch');
    const rec = recordingFetch();
    const apiFetch = rateLimitedFetch(limiter, { fetch: rec.fetchFn });
    const t0 = Date.now();
    const results = await settleAll(
      Array.from({ length: 20 }, (_, i) => apiFetch(`http://127.0.0.1:${port}/v1/deals/${i}?api_token=t`)),
      5_000,
    );
    const ms = Date.now() - t0;
    // fetch's TypeError comes from Node's realm, not jest's: check the name, and the identity below.
    expect(results.every((r) => !r.ok && (r.error as Error).name === 'TypeError')).toBe(true);
    const errors = results.map((r) => (r.ok ? undefined : r.error));
    // The very objects fetch threw, one per request, none shared.
    expect(errors.every((e) => rec.thrown.includes(e))).toBe(true);
    expect(new Set(errors).size).toBe(20);
    expect(rec.calls()).toBe(20);
    expect(rec.thrown).toHaveLength(20);
    expect(((errors[0] as Error).cause as { code?: string }).code).toBe('ECONNREFUSED');
    expect(idle(limiter)).toEqual({ queued: 0, inFlight: 0 });
    expect(limiter.snapshot.totals).toMatchObject({ sent: 20, responses: 0, rateLimited: 0, rejected: 0 });
    expect(waitsOf(limiter)).toEqual([]);
    expect(ms).toBeLessThan(5_000);
  });

  it('axios: 20 requests each end with the AxiosError axios raised (ECONNREFUSED), sent once each', async () => {
    const port = await deadPort();
    const limiter = limiterFor('refused-axios');
    const { client, thrown } = recordingAxios();
    const t0 = Date.now();
    const runs = Array.from({ length: 20 }, (_, i) =>
      observe<AxiosResponse>(
        rateLimitedRequest(limiter, client, {
          url: `http://127.0.0.1:${port}/v1/deals/${i}`,
          params: { api_token: 't' },
        }),
      ),
    );
    const results = await settleAll(runs, 5_000);
    const ms = Date.now() - t0;
    expect(runs.map((r) => r.counts())).toEqual(Array(20).fill([0, 1, 0]));
    const errors = results.map((r) => (r.ok ? undefined : r.error));
    expect(errors.every((e) => isAxiosError(e) && (e as AxiosError).code === 'ECONNREFUSED')).toBe(true);
    expect(errors.every((e) => thrown.includes(e))).toBe(true);
    expect(new Set(errors).size).toBe(20);
    expect(thrown).toHaveLength(20);
    expect(idle(limiter)).toEqual({ queued: 0, inFlight: 0 });
    expect(limiter.snapshot.totals).toMatchObject({ sent: 20, responses: 0, rateLimited: 0 });
    expect(waitsOf(limiter)).toEqual([]);
    expect(ms).toBeLessThan(5_000);
  });
});

describe('fault: connection reset (simulator behind a front that drops every 4th request)', () => {
  it('fetch: 40 requests, 10 resets: 30 answered 200, 10 end with the TypeError fetch raised; none sent twice', async () => {
    const sim = await resettingSimulator(4);
    const limiter = limiterFor('reset-fetch');
    const rec = recordingFetch();
    const apiFetch = rateLimitedFetch(limiter, { fetch: rec.fetchFn });
    const t0 = Date.now();
    const results = await settleAll(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await apiFetch(`${sim.url}/v1/deals/${i}?api_token=reset-fetch`);
        await res.arrayBuffer();
        return res.status;
      }),
      10_000,
    );
    const ms = Date.now() - t0;
    const ok = results.filter((r) => r.ok);
    const failed = results.flatMap((r) => (r.ok ? [] : [r.error]));
    expect({
      ok: ok.length,
      failed: failed.length,
      resets: sim.resets(),
      received: sim.total(),
      dup: sim.duplicates(),
    }).toEqual({ ok: 30, failed: 10, resets: 10, received: 40, dup: [] });
    expect(sim.engine.statsFor('pipedrive', 'reset-fetch')).toMatchObject({ ok: 30, limited: 0, total: 30 });
    expect(failed.map((e) => ((e as Error).cause as { code?: string }).code)).toEqual(Array(10).fill('UND_ERR_SOCKET'));
    expect(rec.thrown).toHaveLength(10);
    expect(waitsOf(limiter)).toEqual([]);
    expect(ms).toBeLessThan(5_000);
    expect(ok.every((r) => r.ok && r.value === 200)).toBe(true);
    expect(failed.every((e) => (e as Error).name === 'TypeError' && rec.thrown.includes(e))).toBe(true);
    expect(new Set(failed).size).toBe(failed.length);
    expect(idle(limiter)).toEqual({ queued: 0, inFlight: 0 });
  });

  it('axios: 40 requests, 10 resets: 30 answered 200, 10 end with the AxiosError axios raised; none sent twice', async () => {
    const sim = await resettingSimulator(4);
    const limiter = limiterFor('reset-axios');
    const { client, thrown } = recordingAxios();
    const t0 = Date.now();
    const runs = Array.from({ length: 40 }, (_, i) =>
      observe<AxiosResponse>(
        rateLimitedRequest(limiter, client, { url: `${sim.url}/v1/deals/${i}`, params: { api_token: 'reset-axios' } }),
      ),
    );
    const results = await settleAll(runs, 10_000);
    const ms = Date.now() - t0;
    const ok = results.filter((r) => r.ok);
    const failed = results.flatMap((r) => (r.ok ? [] : [r.error]));
    expect({
      ok: ok.length,
      failed: failed.length,
      resets: sim.resets(),
      received: sim.total(),
      dup: sim.duplicates(),
    }).toEqual({ ok: 30, failed: 10, resets: 10, received: 40, dup: [] });
    expect(sim.engine.statsFor('pipedrive', 'reset-axios')).toMatchObject({ ok: 30, limited: 0, total: 30 });
    expect(failed.map((e) => (e as AxiosError).code)).toEqual(Array(10).fill('ECONNRESET'));
    expect(thrown).toHaveLength(10);
    expect(waitsOf(limiter)).toEqual([]);
    expect(ms).toBeLessThan(5_000);
    expect(
      runs.every((r) => {
        const [n, e, c] = r.counts();
        return (n === 1 && c === 1 && e === 0) || (n === 0 && c === 0 && e === 1);
      }),
    ).toBe(true);
    expect(failed.every((e) => isAxiosError(e) && thrown.includes(e))).toBe(true);
    expect(idle(limiter)).toEqual({ queued: 0, inFlight: 0 });
  });
});

describe('fault: timeouts (a server that accepts and never answers)', () => {
  it('fetch with AbortSignal.timeout(300): 20 requests each end with their signal’s TimeoutError', async () => {
    const hole = await blackHole();
    const limiter = limiterFor('timeout-fetch', { coldStartConcurrency: 10 });
    const rec = recordingFetch();
    const apiFetch = rateLimitedFetch(limiter, { fetch: rec.fetchFn });
    const signals = Array.from({ length: 20 }, () => AbortSignal.timeout(300));
    const t0 = Date.now();
    const results = await settleAll(
      signals.map((signal, i) => apiFetch(`${hole.url}/v1/deals/${i}?api_token=t`, { signal })),
      5_000,
    );
    const ms = Date.now() - t0;
    const errors = results.map((r) => (r.ok ? undefined : r.error));
    // 10 sent at once (coldStartConcurrency). A permit given back without an answer frees its room
    // on the limiter's next tick. The 20 timers started at the same millisecond abort in one batch,
    // before that tick, so the queued 10 end without being sent. On a busy machine the process can
    // be descheduled while the 20 signals are created: the later ones then start a few ms later,
    // abort in a later batch, and the tick between the batches hands their requests to fetch with
    // a signal still live (measured under load: 13 reached the server). What the user sees in
    // both cases: each request ends with its own signal's TimeoutError, one handed over with its
    // signal already aborted is rejected by fetch at once, and nothing reaches the server that
    // was not live when handed over.
    expect(hole.received()).toBeGreaterThanOrEqual(10);
    expect(hole.received()).toBeLessThanOrEqual(rec.live());
    expect(rec.live()).toBeLessThanOrEqual(20);
    expect(rec.calls()).toBeGreaterThanOrEqual(10);
    expect(errors.every((e) => (e as Error).name === 'TimeoutError')).toBe(true);
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(waitsOf(limiter)).toEqual([]);
    expect(ms).toBeLessThan(5_000);
    expect(errors.every((e, i) => e === signals[i]?.reason)).toBe(true);
    expect(idle(limiter)).toEqual({ queued: 0, inFlight: 0 });
  });

  it('axios with timeout 300: 10 requests each end with the AxiosError ECONNABORTED axios raised', async () => {
    const hole = await blackHole();
    const limiter = limiterFor('timeout-axios', { coldStartConcurrency: 10 });
    const { client, thrown } = recordingAxios();
    const t0 = Date.now();
    const runs = Array.from({ length: 10 }, (_, i) =>
      observe<AxiosResponse>(
        rateLimitedRequest(limiter, client, {
          url: `${hole.url}/v1/deals/${i}`,
          params: { api_token: 't' },
          timeout: 300,
        }),
      ),
    );
    const results = await settleAll(runs, 5_000);
    const ms = Date.now() - t0;
    const errors = results.map((r) => (r.ok ? undefined : r.error));
    expect({ received: hole.received(), thrown: thrown.length }).toEqual({ received: 10, thrown: 10 });
    expect(errors.map((e) => (e as AxiosError).code)).toEqual(Array(10).fill('ECONNABORTED'));
    expect(waitsOf(limiter)).toEqual([]);
    expect(ms).toBeLessThan(5_000);
    expect(runs.map((r) => r.counts())).toEqual(Array(10).fill([0, 1, 0]));
    expect(errors.every((e) => isAxiosError(e) && thrown.includes(e))).toBe(true);
    expect(idle(limiter)).toEqual({ queued: 0, inFlight: 0 });
  });
});
