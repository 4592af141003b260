/**
 * The five competitors, each driving one scenario's workload from `streams` concurrent streams.
 * Each is configured as its own README recommends for the provider's documented limits (given
 * in compressed time), and retries a 429 with the wait the provider's doc describes
 * (`competitorRetryMs`): the same 429 handling for all, so that only the pacing differs.
 */
import axios, { type AxiosAdapter, type AxiosError, type AxiosInstance } from 'axios';
import axiosRateLimit from 'axios-rate-limit';
import axiosRetry from 'axios-retry';
import Bottleneck from 'bottleneck';
import PQueue from 'p-queue';
import { catchError, EMPTY, from, mergeMap, tap } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';
import { createLimiter, rateLimit, type Limiter } from '../lib/index.js';
import { competitorRetryMs, MAX_RETRIES, REDIS, type BenchRequest, type Scenario } from './scenarios.js';

export const COMPETITORS = ['rx-ratelimit', 'bottleneck', 'p-queue', 'axios-rate-limit', 'pcoFetch'] as const;
/**
 * rx-ratelimit again with another configuration, only in scenarios that define one
 * (`Scenario.rxBurstProvider`: TEOS with `pacing: 'burst'`). A second row, not a competitor.
 */
export const VARIANTS = ['rx-ratelimit-burst'] as const;
export type CompetitorId = (typeof COMPETITORS)[number] | (typeof VARIANTS)[number];

/** rx-ratelimit's provider profile for a run: the scenario's, or its burst variant's. */
function rxProviderOf(sc: Scenario, burst: boolean) {
  const variant = burst ? sc.rxBurstProvider : undefined;
  if (burst && !variant) throw new Error(`scenario ${sc.id} has no burst variant`);
  return variant ? variant() : sc.rxProvider();
}

/** What a competitor's run is given. */
export interface ClientContext {
  readonly sc: Scenario;
  /** The requests this process sends (all of them unless the scenario has several processes). */
  readonly indices: readonly number[];
  /** Which process this is (0-based). */
  readonly part: number;
  /** Unique per run: names the run's Redis keys. */
  readonly runId: string;
  /** Base URL of the provider on the simulator. */
  readonly base: string;
  /** Records how request `i` ended: its final HTTP status, or `null` and an error name. */
  settle(i: number, status: number | null, error?: string): void;
  /** axios's HTTP adapter, wrapped to log each attempt like `fetch` is. */
  readonly axiosAdapter: AxiosAdapter;
}

export type Competitor = (ctx: ClientContext) => Promise<void>;

/**
 * Loads and exercises a competitor's library once, outside the timed run (a throwaway limiter,
 * one request to a route the simulator does not count), as a long-running service would have.
 */
export type WarmUp = (ctx: ClientContext, url: string) => Promise<void>;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** Runs `fn(i)` for every request of `indices` from `streams` concurrent loops, like `mergeMap(fn, streams)`. */
async function streams(
  indices: readonly number[],
  concurrency: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const loop = async () => {
    while (next < indices.length) await fn(indices[next++] ?? 0);
  };
  await Promise.all(range(Math.min(concurrency, indices.length)).map(loop));
}

// ---- several processes, one token (the `processes` scenario) -------------------------------

/** Redis key prefix of rx-ratelimit's store for one run (deleted by the bench after the run). */
export const rxRedisPrefix = (runId: string) => `rxrl-bench-${runId}:`;
/** bottleneck's Group `id` for one run (its keys start with `b_<id>`). */
export const bottleneckId = (runId: string) => `rxrl-bench-${runId}`;
/**
 * bottleneck's heartbeat in Clustering mode (its default is 5 s, the local datastore's 250 ms):
 * the reservoir is refreshed only when a Redis script runs, so with a 5 s heartbeat a 2 s
 * window would be refreshed up to 5 s late. Its README asks for refresh intervals that are
 * multiples of 5,000 ms when clustering; the provider's real windows are, our compressed ones
 * are not, so bottleneck gets the local datastore's heartbeat (an option it reads, not in its
 * README or types).
 */
export const BOTTLENECK_HEARTBEAT_MS = 250;
/** bottleneck README: "set an `expiration` on every job" when clustering. */
const BOTTLENECK_EXPIRATION_MS = 30_000;

/** What each process uses of the token's limit when processes share nothing: its 1/P. */
const shareOfLimit = (sc: Scenario, limit: number) => Math.floor(limit / (sc.processes ?? 1));

/** Set up by the warm-up in the `processes` scenario: a service's limiter and connections. */
let prepared: { rx?: Map<string, Limiter>; group?: Bottleneck.Group } = {};

async function redisClient() {
  const { Redis } = await import('ioredis');
  const client = new Redis(REDIS);
  await client.ping();
  return { Redis, client };
}

function fetchInit(ctx: ClientContext, r: BenchRequest): RequestInit {
  const headers: Record<string, string> = ctx.sc.provider === 'pipedrive' ? {} : { authorization: `Bearer ${r.token}` };
  return { method: r.method, headers };
}

const urlOf = (ctx: ClientContext, r: BenchRequest) => `${ctx.base}${r.path}`;
const retryable = (sc: Scenario, r: BenchRequest) => r.method !== 'POST' || sc.retryPosts;
const nameOf = (e: unknown) => (e instanceof Error ? e.name : typeof e);

/** A non-2xx answer, thrown so that promise-based limiters see the job fail. */
class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly headers: Headers,
  ) {
    super(`HTTP ${status}`);
  }
}

async function send(ctx: ClientContext, r: BenchRequest): Promise<Response> {
  const res = await fetch(urlOf(ctx, r), fetchInit(ctx, r));
  await res.arrayBuffer();
  return res;
}

// ---- rx-ratelimit: `rateLimit` on `fromFetch`, one limiter per token -------------------------

const rxRunner =
  (burst: boolean): Competitor =>
  async (ctx) => {
    const { sc } = ctx;
    const limiters =
      prepared.rx ??
      new Map<string, Limiter>(sc.tokens.map((t) => [t, createLimiter({ provider: rxProviderOf(sc, burst), key: t })]));
    await new Promise<void>((resolve) => {
      from(ctx.indices)
        .pipe(
          mergeMap((i) => {
            const r = sc.request(i);
            const limiter = limiters.get(r.token);
            if (!limiter) throw new Error(`no limiter for ${r.token}`);
            return fromFetch(urlOf(ctx, r), fetchInit(ctx, r)).pipe(
              rateLimit(limiter, { method: r.method, url: r.infoUrl }, { retryNonIdempotent: sc.retryPosts }),
              mergeMap(async (res) => {
                await res.arrayBuffer();
                return res.status;
              }),
              tap({ next: (status) => ctx.settle(i, status), error: (e: unknown) => ctx.settle(i, null, nameOf(e)) }),
              catchError(() => EMPTY),
            );
          }, sc.streams),
        )
        .subscribe({ complete: resolve });
    });
  };

// ---- bottleneck: reservoir refreshed every window, retries from the `failed` event -----------

/**
 * README: "minTime and maxConcurrent are enough for the majority of use cases [...] If your use
 * case requires executing requests in bursts or every time a quota resets, look into Reservoir
 * Intervals". Fixed windows reset: reservoir + refresh amount/interval, plus maxConcurrent "for
 * safety" (the number of streams, all processes', so it never binds: in Clustering it is
 * cluster-wide). A rolling window (TEOS, whose doc asks to spread calls evenly) never resets:
 * minTime = W / L.
 */
function bottleneckOptions(sc: Scenario): Bottleneck.ConstructorOptions {
  const maxConcurrent = sc.streams * (sc.processes ?? 1);
  return sc.windowKind === 'rolling'
    ? { minTime: Math.ceil(sc.windowMs / sc.limit), maxConcurrent }
    : {
        reservoir: sc.limit,
        reservoirRefreshAmount: sc.limit,
        reservoirRefreshInterval: sc.windowMs,
        maxConcurrent,
      };
}

/**
 * bottleneck's README, "Clustering": the same options plus `datastore: 'ioredis'`, the
 * `clientOptions` and one `id` shared by every process ("limiters with the same id [...] will be
 * sharing the same datastore").
 */
async function bottleneckClustering(ctx: ClientContext): Promise<Bottleneck.ConstructorOptions> {
  const { Redis } = await import('ioredis');
  const clustering = {
    id: bottleneckId(ctx.runId),
    datastore: 'ioredis',
    clientOptions: REDIS,
    Redis,
    heartbeatInterval: BOTTLENECK_HEARTBEAT_MS,
  };
  return { ...bottleneckOptions(ctx.sc), ...clustering };
}

export const bottleneck: Competitor = async (ctx) => {
  const { sc } = ctx;
  const options = bottleneckOptions(sc);
  // README, "Retries": return the wait in ms from the `failed` listener.
  const onFailed = (error: unknown, info: Bottleneck.EventInfoRetryable): number | undefined => {
    if (!(error instanceof HttpStatusError) || error.status !== 429 || info.retryCount >= MAX_RETRIES) return undefined;
    const method = (info.args[0] as BenchRequest | undefined)?.method;
    if (method === 'POST' && !sc.retryPosts) return undefined;
    return competitorRetryMs(sc.provider, (n) => error.headers.get(n), info.retryCount + 1);
  };
  // README, "Group": one limiter per key (token), created on first use. Several processes: the
  // Group made by the warm-up (Clustering: `datastore: 'ioredis'`, the shared `id`).
  const group = prepared.group ?? new Bottleneck.Group(options);
  group.on('created', (limiter) => {
    limiter.on('failed', onFailed);
  });
  const task = async (r: BenchRequest): Promise<number> => {
    const res = await send(ctx, r);
    if (res.status >= 400) throw new HttpStatusError(res.status, res.headers);
    return res.status;
  };
  const job = sc.processes ? { expiration: BOTTLENECK_EXPIRATION_MS } : {};
  await streams(ctx.indices, sc.streams, async (i) => {
    const r = sc.request(i);
    try {
      ctx.settle(i, await group.key(r.token).schedule(job, task, r));
    } catch (e) {
      ctx.settle(i, e instanceof HttpStatusError ? e.status : null, nameOf(e));
    }
  });
};

// ---- p-queue: intervalCap per interval, strict (sliding) mode; retry re-enters the queue -------

export const pQueue: Competitor = async (ctx) => {
  const { sc } = ctx;
  // README: intervalCap/interval for the limit; `strict: true` "when interacting with APIs that
  // enforce strict rate limits and will throttle or block you".
  const queues = new Map(
    sc.tokens.map((t) => [
      t,
      new PQueue({ intervalCap: shareOfLimit(sc, sc.limit), interval: sc.windowMs, strict: true }),
    ]),
  );
  await streams(ctx.indices, sc.streams, async (i) => {
    const r = sc.request(i);
    const queue = queues.get(r.token);
    if (!queue) throw new Error(`no queue for ${r.token}`);
    try {
      for (let retries = 0; ; retries++) {
        const res = await queue.add(() => send(ctx, r));
        if (res.status === 429 && retries < MAX_RETRIES && retryable(sc, r)) {
          // The retry waits, then queues again: every attempt counts against intervalCap.
          await sleep(competitorRetryMs(sc.provider, (n) => res.headers.get(n), retries + 1));
          continue;
        }
        ctx.settle(i, res.status);
        return;
      }
    } catch (e) {
      ctx.settle(i, null, nameOf(e));
    }
  });
};

// ---- axios-rate-limit + axios-retry on the same instance --------------------------------------

function axiosHeader(error: AxiosError, name: string): string | undefined {
  const v: unknown = error.response?.headers[name.toLowerCase()];
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

export const axiosRateLimitRetry: Competitor = async (ctx) => {
  const { sc } = ctx;
  const clients = new Map<string, AxiosInstance>(
    sc.tokens.map((t) => {
      // axios-rate-limit README: `limits`, one entry per documented window.
      const http = axiosRateLimit(axios.create({ adapter: ctx.axiosAdapter }), {
        limits: [
          { maxRequests: shareOfLimit(sc, sc.limit), duration: sc.windowMs },
          ...(sc.extraWindows ?? []).map((w) => ({ maxRequests: shareOfLimit(sc, w.limit), duration: w.windowMs })),
        ],
      });
      // axios-rate-limit's "retrying failed requests" use case: axios-retry on the same instance,
      // so retries go through the rate limiter. retryCondition: 429; retryDelay: the doc's wait.
      axiosRetry(http, {
        retries: MAX_RETRIES,
        retryCondition: (e) =>
          e.response?.status === 429 && (e.config?.method?.toUpperCase() !== 'POST' || sc.retryPosts),
        retryDelay: (retryCount, e) => competitorRetryMs(sc.provider, (n) => axiosHeader(e, n), retryCount),
      });
      return [t, http];
    }),
  );
  await streams(ctx.indices, sc.streams, async (i) => {
    const r = sc.request(i);
    const http = clients.get(r.token);
    if (!http) throw new Error(`no client for ${r.token}`);
    try {
      const res = await http.request({
        url: urlOf(ctx, r),
        method: r.method,
        headers: fetchInit(ctx, r).headers as Record<string, string>,
        responseType: 'text',
      });
      ctx.settle(i, res.status);
    } catch (e) {
      const status = axios.isAxiosError(e) ? (e.response?.status ?? null) : null;
      ctx.settle(i, status, nameOf(e));
    }
  });
};

// ---- the Planning Center doc's pcoFetch, transcribed --------------------------------------

/**
 * The doc reads `X-PCO-API-Request-Rate-Limit`, `-Count` and `Retry-After`. On the other
 * providers the same loop reads their equivalents: limit and (limit − remaining) from their
 * counters (TEOS's limit header is a period, so its documented 100), and for "Retry-After" the
 * wait their doc gives, in whole seconds.
 */
function pcoView(sc: Scenario, response: Response): { limit: number; count: number; retryAfter: number } {
  const h = (n: string) => response.headers.get(n);
  const int = (v: string | null) => parseInt(v ?? '', 10);
  const retryAfter = Number.isNaN(int(h('Retry-After')))
    ? Math.ceil(competitorRetryMs(sc.provider, h, 1) / 1000)
    : int(h('Retry-After'));
  const fromRemaining = (limit: number, remaining: string | null) => ({
    limit,
    count: limit - int(remaining),
    retryAfter,
  });
  switch (sc.provider) {
    case 'planningCenter':
      return {
        limit: int(h('X-PCO-API-Request-Rate-Limit')),
        count: int(h('X-PCO-API-Request-Rate-Count')),
        retryAfter: int(h('Retry-After')),
      };
    case 'procore':
      return fromRemaining(int(h('X-Rate-Limit-Limit')), h('X-Rate-Limit-Remaining'));
    case 'pipedrive':
      return fromRemaining(int(h('x-ratelimit-limit')), h('x-ratelimit-remaining'));
    case 'fieldwire':
      return fromRemaining(int(h('ratelimit-limit-minute')), h('ratelimit-remaining-minute'));
    case 'teos':
      return fromRemaining(sc.limit, h('X-Rate-Limit-Remaining'));
    case 'github':
      return fromRemaining(int(h('x-ratelimit-limit')), h('x-ratelimit-remaining'));
    case 'hubspot':
      return fromRemaining(int(h('X-HubSpot-RateLimit-Max')), h('X-HubSpot-RateLimit-Remaining'));
    case 'atlassian':
      return fromRemaining(int(h('X-RateLimit-Limit')), h('X-RateLimit-Remaining'));
    case 'shopify': {
      // `used/limit`: the count is what is used.
      const [used, limit] = (h('X-Shopify-Shop-Api-Call-Limit') ?? '').split('/');
      return { limit: int(limit ?? null), count: int(used ?? null), retryAfter };
    }
  }
}

export const pcoFetchLoop: Competitor = async (ctx) => {
  const { sc } = ctx;
  // The doc's `1000` ms slow-down is for a 20-second period ("adjust ... to suit your needs"):
  // the same fraction of our 2-second windows.
  const SLOW_DOWN_MS = (1000 * sc.windowMs) / 20_000;
  const console = { warn: (_: string) => undefined, log: (_: string) => undefined };

  // ---- from the doc (planning-center-rate-limits.txt), unchanged but for types, the header
  // reads (pcoView) and the slow-down constant ----
  const MAX_RETRIES = 5;
  async function pcoFetch(url: string, options: RequestInit = {}, retries = 0): Promise<Response> {
    const response = await fetch(url, options);
    await response.arrayBuffer(); // (the caller would read the body; read here to free the socket)

    // Read the current rate limit state from the response headers.
    const { limit, count, retryAfter } = pcoView(sc, response);

    if (response.status === 429) {
      if (retries >= MAX_RETRIES) {
        throw new Error('Rate limit: max retries exceeded');
      }

      // Wait for the amount of time the API tells us to, then retry.
      const delay = (retryAfter || 1) * 1000;
      console.warn(`Rate limited. Retrying after ${delay}ms...`);
      await new Promise((resolve) => setTimeout(resolve, delay));
      return pcoFetch(url, options, retries + 1);
    }

    // Optionally, proactively slow down when approaching the limit.
    // Adjust the threshold (0.8) and delay (1000ms) to suit your needs.
    if (count >= limit * 0.8) {
      console.log(`Approaching rate limit (${count}/${limit}). Slowing down.`);
      await new Promise((resolve) => setTimeout(resolve, SLOW_DOWN_MS));
    }

    return response;
  }
  // ---- end of the doc's code ----

  await streams(ctx.indices, sc.streams, async (i) => {
    const r = sc.request(i);
    try {
      const res = await pcoFetch(urlOf(ctx, r), fetchInit(ctx, r));
      ctx.settle(i, res.status);
    } catch (e) {
      ctx.settle(i, null, nameOf(e));
    }
  });
};

/**
 * The `processes` scenario's warm-up for rx-ratelimit and bottleneck: what a service does at
 * start-up. rx-ratelimit: a Redis client and the limiter on the Redis store. bottleneck: process
 * 0 clears the datastore (a limiter with the shared id and `clearDatastore: true`, disconnected
 * at once) before the others start; each process makes its Group (its Redis connections). The
 * Group's limiter for the token is created at the first request, as in the single-process runs,
 * so that its refresh interval starts with the run.
 */
async function warmUpShared(ctx: ClientContext, competitor: 'rx-ratelimit' | 'bottleneck'): Promise<void> {
  const { sc } = ctx;
  if (competitor === 'rx-ratelimit') {
    const { redisStore } = await import('../lib/stores/redis/index.js');
    const { client } = await redisClient();
    const store = redisStore({ client, secret: 'rx-ratelimit-bench-secret', prefix: rxRedisPrefix(ctx.runId) });
    prepared = {
      rx: new Map(sc.tokens.map((t) => [t, createLimiter({ provider: sc.rxProvider(), key: t, store })])),
    };
    return;
  }
  const options = await bottleneckClustering(ctx);
  if (ctx.part === 0) {
    const token = sc.tokens[0] ?? '';
    // README: "The `clearDatastore` option instructs a new limiter to wipe any previous
    // Bottleneck data (for that `id`)"; a Group's limiter for a key has the id `${id}-${key}`.
    const clearing = new Bottleneck({ ...options, id: `${options.id ?? ''}-${token}`, clearDatastore: true });
    await clearing.ready();
    await clearing.disconnect();
  }
  const group = new Bottleneck.Group(options);
  const warm = group.key('warm-up');
  await warm.ready();
  prepared = { group };
}

const rxWarmUp =
  (burst: boolean): WarmUp =>
  async (ctx, url) => {
    if (ctx.sc.processes) await warmUpShared(ctx, 'rx-ratelimit');
    const limiter = createLimiter({ provider: rxProviderOf(ctx.sc, burst), key: 'warm-up' });
    await new Promise<void>((resolve) => {
      fromFetch(url)
        .pipe(
          rateLimit(limiter, { method: 'GET', url: '/warm-up' }),
          mergeMap((res) => res.arrayBuffer()),
        )
        .subscribe({ complete: resolve, error: () => resolve() });
    });
  };

export const WARM_UPS: Readonly<Record<CompetitorId, WarmUp>> = {
  'rx-ratelimit': rxWarmUp(false),
  'rx-ratelimit-burst': rxWarmUp(true),
  bottleneck: async (ctx, url) => {
    if (ctx.sc.processes) await warmUpShared(ctx, 'bottleneck');
    const limiter = new Bottleneck({ reservoir: ctx.sc.limit, maxConcurrent: ctx.sc.streams });
    await limiter.schedule(async () => (await fetch(url)).arrayBuffer());
    await limiter.disconnect();
  },
  'p-queue': async (ctx, url) => {
    const queue = new PQueue({ intervalCap: ctx.sc.limit, interval: ctx.sc.windowMs, strict: true });
    await queue.add(async () => (await fetch(url)).arrayBuffer());
  },
  'axios-rate-limit': async (ctx, url) => {
    const http = axiosRateLimit(axios.create({ adapter: ctx.axiosAdapter }), {
      limits: [{ maxRequests: ctx.sc.limit, duration: ctx.sc.windowMs }],
    });
    axiosRetry(http, { retries: 0 });
    await http.get(url, { validateStatus: () => true });
  },
  pcoFetch: async (_, url) => {
    await (await fetch(url)).arrayBuffer();
  },
};

export const RUNNERS: Readonly<Record<CompetitorId, Competitor>> = {
  'rx-ratelimit': rxRunner(false),
  'rx-ratelimit-burst': rxRunner(true),
  bottleneck,
  'p-queue': pQueue,
  'axios-rate-limit': axiosRateLimitRetry,
  pcoFetch: pcoFetchLoop,
};

/** How each competitor is set up, for the report. */
export const SETUPS: Readonly<Record<CompetitorId, string>> = {
  'rx-ratelimit':
    '`fromFetch(url).pipe(rateLimit(limiter, { method, url }))` in `mergeMap(…, streams)`; one `createLimiter({ provider: providers.x({ hints }), key: token })` per token; defaults otherwise (retries 429s itself, up to 5).',
  'rx-ratelimit-burst':
    "as rx-ratelimit, with the scenario's burst variant of the profile (TEOS: `providers.teos({ hints: { minute: { windowMs, pacing: 'burst' } } })`); run only where a scenario has one, as a second rx-ratelimit row.",
  bottleneck:
    '`new Bottleneck.Group({ reservoir: L, reservoirRefreshAmount: L, reservoirRefreshInterval: W, maxConcurrent: streams })` for windows that reset, `{ minTime: W / L, maxConcurrent: streams }` for TEOS\'s rolling window (README: reservoirs "every time a quota resets", minTime for an even rate); `group.key(token).schedule(…)`; `on("failed")` returns the doc\'s wait for a 429, up to 5 retries (README "Retries"; bottleneck runs a retry without taking from the reservoir again).',
  'p-queue':
    "`new PQueue({ intervalCap: L, interval: W, strict: true })` per token; a 429 waits the doc's time, then is queued again (so every attempt counts), up to 5 retries.",
  'axios-rate-limit':
    '`axiosRateLimit(axios.create(), { limits: [{ maxRequests: L, duration: W }, …] })` per token + `axiosRetry(http, { retries: 5, retryCondition: 429, retryDelay: the doc\'s wait })` (axios-rate-limit\'s "retrying failed requests" use case).',
  pcoFetch:
    "the Planning Center doc's `pcoFetch` (retry after `Retry-After`, up to 5; sleep when count ≥ 80 % of limit), called from each stream in turn; on other providers it reads their equivalent headers.",
};
