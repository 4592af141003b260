/**
 * A busy machine, over real sockets: the client's event loop stalls at random (a stall of up to
 * 0.8 s, as a 2-core machine under load or a long synchronous task gives), answers come back
 * after a random latency (so they overtake one another), the server's clock is off from ours by
 * up to 30 s either way, the run starts at a random phase of the server's windows, and one
 * request in ten starts late. The simulator runs in a process of its own, so that it reads
 * each request when it arrives, whatever the client's stalls.
 *
 * What a user sees must not change: every request answered 200, none counted over the limit by
 * the server. The draws come from one seed, printed in each test's name (`BUSY_SEED` replays a
 * run).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from '@jest/globals';
import { from, lastValueFrom, mergeMap, timer, toArray } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';
import { createLimiter, providers, rateLimit, type Limiter, type Provider } from '../../lib/index.js';
import type { SimulatedProvider, SimulatorOptions, SimulatorStats } from '../../lib/testing/index.js';
import { prng } from './arbitraries.js';
import type { StartSimulator } from './simulatorProcess.js';

const here = dirname(fileURLToPath(import.meta.url));
const SEED = Number(process.env.BUSY_SEED ?? Math.floor(Math.random() * 2 ** 31));

interface Case {
  readonly simulated: SimulatedProvider;
  readonly sim: SimulatorOptions;
  readonly provider: () => Provider;
  readonly requests: number;
  readonly streams: number;
  readonly path: (i: number) => string;
}

// The windows compressed to about 2 s, as in providers.sockets.spec.ts.
const cases: Array<[string, Case]> = [
  [
    'procore',
    {
      simulated: 'procore',
      sim: { timeScale: 1800, procore: { limit: 40 } },
      provider: () => providers.procore({ hints: { hourly: { limit: 40, windowMs: 2000 } } }),
      requests: 120,
      streams: 20,
      path: (i) => `/rest/v1.0/projects/${i}`,
    },
  ],
  [
    'planningCenter',
    {
      simulated: 'planningCenter',
      sim: { timeScale: 10 },
      provider: () => providers.planningCenter({ hints: { default: { windowMs: 2000 } } }),
      requests: 300,
      streams: 30,
      path: (i) => `/people/v2/people/${i}`,
    },
  ],
  [
    'fieldwire',
    {
      simulated: 'fieldwire',
      sim: { timeScale: 30, fieldwire: { endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } } } },
      provider: () =>
        providers.fieldwire({
          endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } },
          hints: {
            'GET /projects/:id/tasks:minute': { windowMs: 2000 },
            'GET /projects/:id/tasks:hour': { windowMs: 120_000 },
            'catch-all': { windowMs: 10_000 },
          },
        }),
      requests: 150,
      streams: 25,
      path: (i) => `/projects/${i}/tasks`,
    },
  ],
  [
    'pipedrive',
    {
      simulated: 'pipedrive',
      sim: { pipedrive: { plan: 'advanced' } },
      provider: () => providers.pipedrive({ plan: 'advanced' }),
      requests: 120,
      streams: 30,
      path: (i) => `/v1/deals/${i}?api_token=token-S`,
    },
  ],
  [
    'teos',
    {
      simulated: 'teos',
      sim: { timeScale: 30, teos: { headersAfter: 1 } },
      provider: () => providers.teos({ hints: { minute: { windowMs: 2000 }, day: { windowMs: 2_880_000 } } }),
      requests: 200,
      streams: 20,
      path: (i) => `/api/v1/items/${i}`,
    },
  ],
  [
    'github (primary, core)',
    {
      simulated: 'github',
      sim: { timeScale: 1800, github: { core: 40 } },
      provider: () => providers.github({ hints: { core: { limit: 40, windowMs: 2000 } } }),
      requests: 120,
      streams: 30,
      path: (i) => `/repos/octo/hello/issues/${i}`,
    },
  ],
  [
    'hubspot (burst limit, a rolling 10 s)',
    {
      simulated: 'hubspot',
      sim: { timeScale: 5, hubspot: { perInterval: 40 } },
      provider: () => providers.hubspot({ hints: { interval: { limit: 40, windowMs: 2000 } } }),
      requests: 120,
      streams: 30,
      path: (i) => `/crm/v3/objects/contacts/${i}`,
    },
  ],
  [
    'atlassian (burst, a token bucket of 40 a second)',
    {
      simulated: 'atlassian',
      sim: { atlassian: { burstPerSecond: { GET: 40 } } },
      provider: () => providers.atlassian({ burstPerSecond: { GET: 40 } }),
      requests: 120,
      streams: 30,
      path: (i) => `/rest/api/3/issue/ABC-${i + 1}`,
    },
  ],
  [
    'atlassian (points quota, an hour compressed to 2 s)',
    {
      simulated: 'atlassian',
      sim: { timeScale: 1800, atlassian: { quota: 40, readPoints: 1 } },
      provider: () => providers.atlassian({ hints: { quota: { limit: 40, windowMs: 2000 }, burst: { windowMs: 1 } } }),
      requests: 120,
      streams: 30,
      path: (i) => `/rest/api/3/issue/ABC-${i + 1}`,
    },
  ],
];

/** The process is busy: no timer fires, no socket is read. */
function busy(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

interface Server {
  readonly child: ChildProcess;
  ask<T>(message: object): Promise<T>;
}

function startServer(): Server {
  const child = fork(join(here, 'simulatorProcess.ts'), [], { execArgv: ['--import', 'tsx'] });
  return {
    child,
    ask: <T>(message: object) =>
      new Promise<T>((resolve, reject) => {
        child.once('message', (m) => resolve(m as T));
        child.once('exit', (code) => reject(new Error(`the simulator's process exited (${code})`)));
        child.send(message);
      }),
  };
}

describe('a busy client: random stalls, jitter, clock skew and phase over real sockets', () => {
  let server: Server | undefined;
  let limiter: Limiter | undefined;
  afterEach(async () => {
    await limiter?.close();
    server?.child.send({ close: true });
    server = limiter = undefined;
  });

  it.each(cases.map(([name, c], n) => [name, SEED + n, c] as const))(
    '%s: every request answered, none over the limit (seed %s)',
    async (_, seed, c) => {
      const random = prng(seed);
      const least = random() * 20;
      const latencyMs: [number, number] = [least, least + 20 + random() * 150];
      const clockOffsetMs = (random() - 0.5) * 60_000;
      server = startServer();
      const start: StartSimulator = {
        options: { ...c.sim, clockOffsetMs },
        provider: c.simulated,
        latencyMs,
        seed,
      };
      const { url } = await server.ask<{ url: string }>({ start });
      limiter = createLimiter({ provider: c.provider(), key: 'token-S' });
      const l = limiter;
      // A random phase of the server's windows.
      await new Promise((r) => setTimeout(r, random() * 2000));
      let running = true;
      let stalls = 0;
      const stall = (): void => {
        if (!running) return;
        busy(random() < 0.2 ? 200 + random() * 600 : random() * 80);
        stalls++;
        setTimeout(stall, random() * 400);
      };
      setTimeout(stall, random() * 300);
      const delays = Array.from({ length: c.requests }, () => (random() < 0.1 ? random() * 1500 : 0));
      let statuses: number[];
      try {
        statuses = await lastValueFrom(
          from(delays.map((d, i) => [d, i] as const)).pipe(
            mergeMap(
              ([delay, i]) =>
                timer(delay).pipe(
                  mergeMap(() =>
                    fromFetch(`${url}${c.path(i)}`, { headers: { authorization: 'Bearer token-S' } }).pipe(
                      rateLimit(l, { method: 'GET', url: c.path(i).split('?')[0] ?? '' }),
                      mergeMap(async (res) => {
                        await res.arrayBuffer();
                        return res.status;
                      }),
                    ),
                  ),
                ),
              c.streams,
            ),
            toArray(),
          ),
        );
      } finally {
        running = false;
      }
      const { stats } = await server.ask<{ stats: SimulatorStats }>({ stats: true });
      const counts = Object.values(stats[c.simulated])[0];
      expect(stalls).toBeGreaterThan(0);
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      expect(counts).toMatchObject({ ok: c.requests, limited: 0, blocked: 0, sentWhileLimited: 0 });
    },
    60_000,
  );
});
