/**
 * Tokens and `Authorization` headers never appear in what rx-ratelimit creates:
 * `state$`, `snapshot`, `events$`, log lines, errors (message, stack, JSON, inspect, cause
 * chains of ours), and Redis keys, values and messages. Every path that produces output is
 * driven (five providers and generic in virtual time; axios, fetch and NestJS over HTTP; the
 * Redis store), with a distinctive token per test, and everything is scanned for every form of
 * it (see secretScan.ts). Errors made by axios or fetch that pass through (or that are the
 * `cause` of ours) are checked for credentials outside the places their client put them.
 */
import 'reflect-metadata';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { HttpService } from '@nestjs/axios';
import axios from 'axios';
import { asyncScheduler, catchError, EMPTY, from, lastValueFrom, mergeMap, type Observable } from 'rxjs';

import { attachRateLimiter, rateLimitedRequest } from '../../lib/adapters/axios.js';
import { rateLimitedFetch } from '../../lib/adapters/fetch.js';
import { rateLimitedHttp } from '../../lib/adapters/nestjs.js';

import {
  createLimiter,
  dailyQuotaGuard,
  providers,
  rateLimit,
  retryOn429,
  throttleByHeaders,
  type Limiter,
  type Provider,
} from '../../lib/index.js';
import {
  createSimulatorEngine,
  startSimulator,
  virtualProvider,
  type Simulator,
  type SimulatedProvider,
  type SimulatorOptions,
  type SimulatorResponse,
} from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { hammer, makeToken, pathOf, scanLimiter, SecretScan, watch } from './secretScan.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);

const scan = new SecretScan();
const seenEvents = new Set<string>();
const seenErrors = new Set<string>();

interface Case {
  readonly name: string;
  readonly provider: (o?: { daily?: number }) => Provider;
  readonly simulated: SimulatedProvider;
  readonly engine: SimulatorOptions;
  readonly path: (i: number) => string;
  /** Pipedrive's default: the token goes in the `api_token` query parameter. */
  readonly queryToken?: boolean;
  readonly limit: number;
}

const cases: Case[] = [
  {
    name: 'procore',
    provider: () => providers.procore({ hints: { hourly: { limit: 10, windowMs: 1000 } } }),
    simulated: 'procore',
    engine: { timeScale: 3600, procore: { limit: 10 } },
    path: (i) => `/rest/v1.0/projects/${i}`,
    limit: 10,
  },
  {
    name: 'planningCenter',
    provider: () => providers.planningCenter({ hints: { default: { windowMs: 1000 } } }),
    simulated: 'planningCenter',
    engine: { timeScale: 20, planningCenter: { limit: 10 } },
    path: (i) => `/people/v2/people/${i}`,
    limit: 10,
  },
  {
    name: 'fieldwire',
    provider: () => providers.fieldwire(),
    simulated: 'fieldwire',
    engine: { timeScale: 60, fieldwire: { endpoints: { 'GET /projects/:id/tasks': { minute: 10, hour: 3000 } } } },
    path: (i) => `/projects/${1000 + i}/tasks`,
    limit: 10,
  },
  {
    name: 'pipedrive (api_token in the query)',
    provider: () => providers.pipedrive({ plan: 'essential', hints: { daily: { limit: 60 } } }),
    simulated: 'pipedrive',
    engine: { pipedrive: { plan: 'essential', dailyLimit: 60 }, abuse: { '429sBeforeBlock': 2, blockMs: 3000 } },
    path: (i) => `/v1/deals/${i}`,
    queryToken: true,
    limit: 20,
  },
  {
    name: 'teos',
    provider: () => providers.teos({ hints: { minute: { windowMs: 1000, limit: 10 }, day: { limit: 50 } } }),
    simulated: 'teos',
    engine: { timeScale: 60, teos: { perMinute: 10, perDay: 50, headersAfter: 1 } },
    path: (i) => `/api/v1/items/${i % 3}`,
    limit: 10,
  },
  {
    name: 'generic (against the Procore simulator)',
    provider: () => providers.generic({ limit: 10, windowMs: 1000 }),
    simulated: 'procore',
    engine: { timeScale: 3600, procore: { limit: 10 } },
    path: (i) => `/rest/v1.0/companies/${i}`,
    limit: 10,
  },
];

afterAll(() => {
  // The figures for docs/reliability.md.
  console.log(
    `secrets scan:\n${scan
      .table()
      .map((r) => `${r.surface}\t${r.values}\t${r.strings}`)
      .join('\n')}\nevents: ${[...seenEvents].sort().join(', ')}\nerrors: ${[...seenErrors].sort().join(', ')}`,
  );
});

describe('virtual time: every provider, every outcome', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const before = scan.leaks.length;
    const token = scan.token(makeToken(c.name.slice(0, 4)));
    const errors: unknown[] = [];
    const statuses: number[] = [];
    inVirtualTime(({ now }) => {
      const engine = createSimulatorEngine({ latencyMs: 20, ...c.engine, now: () => START + now() });
      const api = virtualProvider(engine, asyncScheduler);
      const send = (i: number): Observable<SimulatorResponse> => api.request(c.simulated, { path: c.path(i), token });
      // What the limiter is told: the full URL, with the token in it for Pipedrive.
      const url = (i: number) =>
        `https://api.example.com${c.path(i)}${c.queryToken ? `?api_token=${token}&limit=5` : ''}`;
      const limiters: Limiter[] = [];
      const make = (o: Partial<Parameters<typeof createLimiter>[0]> = {}): Limiter => {
        // Limiters of one key in a process share one state; the extra ones here stand for other
        // clients of the token (to meet its 429s and block), so each has a key of its own that
        // still holds the token (a leak of it is still found).
        const key = limiters.length === 0 ? token : `${token}/${limiters.length}`;
        const l = createLimiter({ provider: c.provider(), key, ...o });
        watch(scan, l, '', (e) => seenEvents.add(e.type));
        limiters.push(l);
        return l;
      };
      const through = (l: Limiter, n: number, streams: number, config = {}, offset = 0) =>
        from(Array.from({ length: n }, (_, i) => i + offset))
          .pipe(
            mergeMap(
              (i) =>
                send(i).pipe(
                  // Every third request through the three composable operators instead.
                  i % 3 === 0
                    ? (s$: Observable<SimulatorResponse>) =>
                        s$.pipe(
                          throttleByHeaders(l, { url: url(i) }),
                          retryOn429(l, { url: url(i) }, config),
                          dailyQuotaGuard(l, { url: url(i) }),
                        )
                    : rateLimit(l, { url: url(i), priority: i % 2 }, config),
                  catchError((e: unknown) => {
                    errors.push(e);
                    return EMPTY;
                  }),
                ),
              streams,
            ),
          )
          .subscribe((r) => statuses.push(r.status));
      const spend = (n: number) => {
        for (let i = 0; i < n; i++) send(i).subscribe((r) => statuses.push(r.status));
      };

      // 1. Successes, paced.
      const main = make({ maxWaitMs: 5000 });
      through(main, c.limit * 2, 5);
      // 2. Someone else spends the budget (and, for Pipedrive, gets the token blocked): 429s,
      // retries, pauses, retries exhausted, waits past maxWaitMs, blocked.
      asyncScheduler.schedule(() => spend(c.limit * 3), 2500);
      asyncScheduler.schedule(() => through(main, c.limit, 10, { maxRetries: 1 }, 100), 2520);
      asyncScheduler.schedule(() => through(make({ maxWaitMs: 10 }), 5, 5, { maxRetries: 3 }, 200), 2540);
      asyncScheduler.schedule(() => spend(c.limit * 3), 2600);
      asyncScheduler.schedule(() => through(make({ coldStartConcurrency: 10 }), 10, 10, { maxRetries: 0 }, 300), 2610);
      // While requests wait and are in flight, the limiter as a user might print it.
      asyncScheduler.schedule(() => limiters.forEach((l) => scanLimiter(scan, l)), 2530);
      // A request cancelled while it waits.
      asyncScheduler.schedule(() => {
        const sub = through(main, 3, 3, {}, 600);
        asyncScheduler.schedule(() => sub.unsubscribe(), 1);
      }, 2700);
      // 3. A full queue.
      asyncScheduler.schedule(() => through(make({ maxQueue: 1, coldStartConcurrency: 1 }), 6, 6, {}, 400), 4000);
      // 4. Manual pause and unblock; what the daily quota says; a label that replaces the hash.
      asyncScheduler.schedule(() => {
        main.pause(50);
        main.unblock();
        const quota = main.checkQuota({ url: url(1) }, 1_000_000);
        if (quota) errors.push(quota);
        scanLimiter(scan, main);
      }, 6000);
      // 5. Past the daily budget (Pipedrive, TEOS) or into the next windows (the others).
      asyncScheduler.schedule(() => through(make({ maxWaitMs: 100_000 }), c.limit * 4, 10, {}, 500), 9000);
      asyncScheduler.schedule(() => limiters.forEach((l) => scanLimiter(scan, l)), 60_000);
    });
    for (const e of errors) {
      seenErrors.add((e as Error).name);
      scan.error('errors delivered (virtual time)', e);
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(statuses.some((s) => s === 429)).toBe(true);
    expect(scan.leaks.slice(before)).toEqual([]);
  });

  it('covers every error type and the events they come with', () => {
    for (const t of ['QuotaExhaustedError', 'BlockedError', 'RetryLimitError', 'QueueFullError'])
      expect([...seenErrors]).toContain(t);
    for (const t of ['queued', 'admitted', 'response', 'rate-limited', 'paused', 'resumed', 'retry-scheduled'])
      expect([...seenEvents]).toContain(t);
    for (const t of ['quota-exhausted', 'queue-full', 'blocked', 'unblocked', 'cancelled'])
      expect([...seenEvents]).toContain(t);
  });
});

type Kind =
  'axios attachRateLimiter' | 'axios rateLimitedRequest' | 'fetch rateLimitedFetch' | 'nestjs rateLimitedHttp';
type Target = 'procore' | 'pipedrive';

/** GETs `path` (under the provider, or absolute) through the adapter; the token goes as the provider wants it. */
type Get = (path: string) => Promise<unknown>;

function clientFor(kind: Kind, limiter: Limiter, base: string, target: Target, token: string, maxRetries: number): Get {
  // Pipedrive: the token in the query, as `params` (axios) or in the URL string (fetch; and
  // for axios every other call, so both ways are covered). Procore: a Bearer header.
  const headers: Record<string, string> = target === 'procore' ? { Authorization: `Bearer ${token}` } : {};
  const params = target === 'pipedrive' ? { api_token: token } : undefined;
  const abs = (path: string) => (/^https?:/.test(path) ? path : `${base}${path}`);
  const withQuery = (url: string) =>
    target === 'pipedrive' ? `${url}${url.includes('?') ? '&' : '?'}api_token=${encodeURIComponent(token)}` : url;
  let n = 0;
  const axiosConfig = (path: string) =>
    ++n % 2 === 0 ? { url: withQuery(abs(path)) } : { url: abs(path), ...(params ? { params } : {}) };
  switch (kind) {
    case 'axios attachRateLimiter': {
      const client = axios.create({ headers });
      attachRateLimiter(client, limiter, { maxRetries });
      return (path) => client.request(axiosConfig(path));
    }
    case 'axios rateLimitedRequest': {
      const client = axios.create({ headers });
      return (path) => lastValueFrom(rateLimitedRequest(limiter, client, axiosConfig(path), { maxRetries }));
    }
    case 'fetch rateLimitedFetch': {
      const f = rateLimitedFetch(limiter, { maxRetries });
      return async (path) => {
        const res = await f(withQuery(abs(path)), { headers });
        await res.arrayBuffer();
        return res;
      };
    }
    case 'nestjs rateLimitedHttp': {
      const http = rateLimitedHttp(new HttpService(axios.create({ headers })), limiter, { maxRetries });
      return (path) => {
        const c = axiosConfig(path);
        return lastValueFrom(http.get(c.url, 'params' in c ? { params: c.params } : {}));
      };
    }
  }
}

describe('over HTTP: axios, fetch and NestJS against the simulator', () => {
  let procoreSim: Simulator;
  let pipedriveSim: Simulator;
  beforeAll(async () => {
    // Procore's hour compressed into 1 s; Pipedrive in real time, quick to block a hammered token.
    procoreSim = await startSimulator({ latencyMs: 2, timeScale: 3600, procore: { limit: 10 } });
    pipedriveSim = await startSimulator({
      latencyMs: 2,
      pipedrive: { plan: 'essential' },
      abuse: { '429sBeforeBlock': 2, blockMs: 1500 },
    });
  });
  afterAll(async () => {
    await procoreSim.close();
    await pipedriveSim.close();
  });

  const kinds: Kind[] = [
    'axios attachRateLimiter',
    'axios rateLimitedRequest',
    'fetch rateLimitedFetch',
    'nestjs rateLimitedHttp',
  ];
  const targets: Target[] = ['procore', 'pipedrive'];

  it.each(kinds.flatMap((k) => targets.map((t) => [k, t] as const)))(
    '%s, %s',
    async (kind, target) => {
      const before = scan.leaks.length;
      const token = scan.token(makeToken(`${kind.slice(0, 5)}${target.slice(0, 4)}`));
      const sim = target === 'procore' ? procoreSim : pipedriveSim;
      const base = sim.urlFor(target);
      const path = (i: number) => pathOf(target, i);
      const provider = () =>
        target === 'procore'
          ? providers.procore({ hints: { hourly: { limit: 10, windowMs: 1000 } } })
          : providers.pipedrive({ plan: 'essential' });
      const limiters: Limiter[] = [];
      const errors: unknown[] = [];
      const make = (o: Partial<Parameters<typeof createLimiter>[0]> = {}) => {
        // As above: the extra limiters stand for other clients of the token.
        const key = limiters.length === 0 ? token : `${token}/${limiters.length}`;
        const l = createLimiter({ provider: provider(), key, ...o });
        watch(scan, l, ' (HTTP)', (e) => seenEvents.add(e.type));
        limiters.push(l);
        return l;
      };
      const all = (get: Get, n: number, offset = 0) =>
        Promise.all(
          Array.from({ length: n }, (_, i) =>
            get(path(offset + i)).catch((e: unknown) => {
              errors.push(e);
            }),
          ),
        );

      const main = make();
      const get = clientFor(kind, main, base, target, token, 2);
      // Successes, and an error of the client's own that passes through (404).
      await all(get, 6);
      await get(`${sim.url}/nope/v1/deals/1`).catch((e: unknown) => errors.push(e));
      // 429s: retries exhausted (maxRetries 0), waits past maxWaitMs, blocked (Pipedrive).
      // Procore's compressed hour is 1 s of real time: when it rolls over between the hammer and
      // our requests there is no 429 to see, so that step is tried again (at most three times).
      const limited = () => errors.some((e) => ['RetryLimitError', 'BlockedError'].includes((e as Error).name));
      for (let attempt = 0; attempt < 3 && !limited(); attempt++) {
        await hammer(base, target, token, 30);
        await all(clientFor(kind, make(), base, target, token, 0), 3, 100 + 10 * attempt);
      }
      await all(clientFor(kind, make({ maxWaitMs: 5 }), base, target, token, 3), 3, 200);
      await hammer(base, target, token, 30);
      const busy = all(get, 8, 300);
      limiters.forEach((l) => scanLimiter(scan, l, ' (HTTP)'));
      await busy;
      // A full queue.
      await all(clientFor(kind, make({ maxQueue: 1 }), base, target, token, 0), 5, 400);

      limiters.forEach((l) => scanLimiter(scan, l, ' (HTTP)'));
      for (const e of errors) {
        seenErrors.add(`${(e as Error).name} (HTTP)`);
        scan.error('errors delivered (HTTP)', e);
      }
      const names = new Set(errors.map((e) => (e as Error).name));
      expect(names.has('QueueFullError')).toBe(true);
      expect(names.has(target === 'procore' ? 'RetryLimitError' : 'BlockedError')).toBe(true);
      expect(scan.leaks.slice(before)).toEqual([]);
    },
    30_000,
  );
});

describe('coverage of the scan', () => {
  // Floors for the figures in docs/reliability.md (the runs give more; HTTP ones vary with timing).
  it.each([
    ['state$', 1500],
    ['events$', 1500],
    ['describeEvent', 1500],
    ['logEvents (every type)', 1500],
    ['logEvents (default)', 200],
    ['snapshot', 40],
    ['limiter itself', 40],
    ['errors delivered (virtual time) (ours)', 150],
    ["errors delivered (virtual time) (our errors' causes)", 50],
    ['state$ (HTTP)', 300],
    ['events$ (HTTP)', 300],
    ['logEvents (every type) (HTTP)', 300],
    ['snapshot (HTTP)', 50],
    ['errors delivered (HTTP) (ours)', 40],
    ['errors delivered (HTTP) (passed through)', 6],
    ["errors delivered (HTTP) (our errors' causes)", 20],
  ] as const)('%s: at least %d values scanned', (surface, floor) => {
    expect(scan.tallies.get(surface)?.values ?? 0).toBeGreaterThanOrEqual(floor);
  });
});
