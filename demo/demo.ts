/**
 * `npm run demo`: starts the bundled simulator of the five providers (on loopback, windows
 * compressed so each run takes seconds), drives hundreds of requests from tens of concurrent
 * streams through one limiter per provider, shows every limiter's state live, then a summary.
 *
 * Options: `--events` logs what the limiters do; `--web` also serves a live view of every limiter's state on
 * localhost (demo/web.ts), repeats the workload `--rounds=N` times (default 4 with `--web`, else 1) and keeps the
 * page up once the run has finished, until Ctrl+C; `--port=N` picks its port (default: a free one).
 */
import { from, mergeMap, type Observable } from 'rxjs';
import { fromFetch } from 'rxjs/fetch';
import {
  createLimiter,
  isRateLimitError,
  logEvents,
  providers,
  rateLimit,
  type Limiter,
  type LimiterSnapshot,
  type RequestInfo,
} from '../lib/index.js';
import { startSimulator, type SimulatedProvider, type Simulator, type SimulatorOptions } from '../lib/testing/index.js';
import { startLiveView, type LiveView } from './web.js';

interface Workload {
  readonly label: string;
  readonly simulated: SimulatedProvider;
  /** The simulator's settings: its time scale and limits. */
  readonly sim: SimulatorOptions;
  readonly limiter: Limiter;
  readonly requests: number;
  readonly streams: number;
  /** Path and request info of request `i`. */
  readonly request: (i: number) => { path: string; info: RequestInfo };
  /** The shortest time the limits allow for this workload, from its start (ms). */
  readonly minimumMs: (startedAt: number) => number;
}

const TOKEN = 'demo-token-not-a-secret';
const fixed = (n: number, limit: number, windowMs: number) => (Math.ceil(n / limit) - 1) * windowMs;
const aligned = (n: number, limit: number, windowMs: number) => (start: number) => {
  const boundary = Math.ceil(start / windowMs) * windowMs;
  return Math.ceil(n / limit) <= 1 ? 0 : boundary + (Math.ceil(n / limit) - 2) * windowMs - start;
};

const allWorkloads: Workload[] = [
  {
    label: 'Procore (100/hour, an hour = 5 s; cached)',
    simulated: 'procore',
    sim: { timeScale: 720, procore: { limit: 100 } },
    // A dashboard-like load: one request in six asks again for a project fetched a moment ago.
    // Identical GETs in flight share one request, and the 2 s cache (which Procore's doc asks
    // for) serves the rest: those never reach the API.
    limiter: createLimiter({
      provider: providers.procore({ hints: { hourly: { limit: 100, windowMs: 5000 } } }),
      key: TOKEN,
      cache: { ttlMs: 2000, maxEntries: 1000 },
    }),
    requests: 360,
    streams: 20,
    request: (i) => {
      const id = i % 6 === 5 ? i - 3 : i;
      return { path: `/rest/v1.0/projects/${id}`, info: { method: 'GET', url: `/rest/v1.0/projects/${id}` } };
    },
    minimumMs: (start) => aligned(300, 100, 5000)(start),
  },
  {
    label: 'Planning Center (100/20 s, 20 s = 4 s)',
    simulated: 'planningCenter',
    sim: { timeScale: 5 },
    limiter: createLimiter({
      provider: providers.planningCenter({ hints: { default: { windowMs: 4000 } } }),
      key: TOKEN,
    }),
    requests: 300,
    streams: 30,
    request: (i) => ({ path: `/people/v2/people/${i}`, info: { method: 'GET', url: `/people/v2/people/${i}` } }),
    minimumMs: () => fixed(300, 100, 4000),
  },
  {
    label: 'Fieldwire (tasks: 50/minute, a minute = 3 s)',
    simulated: 'fieldwire',
    sim: { timeScale: 20, fieldwire: { endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } } } },
    limiter: createLimiter({
      provider: providers.fieldwire({
        endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } },
        // The simulator runs 20× faster: its windows, as the limiter would learn them from a real API's docs.
        hints: {
          'catch-all': { windowMs: 15_000 },
          'GET /projects/:id/tasks:minute': { windowMs: 3000 },
          'GET /projects/:id/tasks:hour': { windowMs: 180_000 },
        },
      }),
      key: TOKEN,
    }),
    requests: 200,
    streams: 25,
    request: (i) => ({
      path: `/projects/${100 + (i % 7)}/tasks?page=${i}`,
      info: { method: 'GET', url: `/projects/${100 + (i % 7)}/tasks?page=${i}` },
    }),
    minimumMs: aligned(200, 50, 3000),
  },
  {
    label: 'Pipedrive advanced (40/2 s; 40 writes a day)',
    simulated: 'pipedrive',
    sim: { pipedrive: { plan: 'advanced', dailyLimit: 40 } },
    limiter: createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: TOKEN }),
    requests: 260,
    streams: 30,
    // One request in five is a POST: the daily budget of 40 writes runs out and the rest fail
    // at once with QuotaExhaustedError instead of being sent.
    request: (i) =>
      i % 5 === 4
        ? { path: `/v1/deals?api_token=${TOKEN}`, info: { method: 'POST', url: '/v1/deals' } }
        : { path: `/v1/deals/${i}?api_token=${TOKEN}`, info: { method: 'GET', url: `/v1/deals/${i}` } },
    minimumMs: () => fixed(260 - 12, 40, 2000),
  },
  {
    label: 'TEOS (100/minute spread evenly, a minute = 5 s)',
    simulated: 'teos',
    sim: { timeScale: 12, teos: { headersAfter: 1 } },
    limiter: createLimiter({
      provider: providers.teos({ hints: { minute: { windowMs: 5000 }, day: { windowMs: 7_200_000 } } }),
      key: TOKEN,
    }),
    requests: 200,
    streams: 20,
    request: (i) => ({ path: `/api/v1/items/${i}`, info: { method: 'GET', url: `/api/v1/items/${i}` } }),
    minimumMs: () => ((200 - 1) * 5000) / 100,
  },
];

// `npm run demo -- pipedrive teos` runs only those.
const only = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const web = process.argv.includes('--web');
function numberOption(name: string, fallback: number): number {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`));
  if (arg === undefined) return fallback;
  const n = Number(arg.slice(name.length + 3));
  if (!Number.isInteger(n) || n < 0) throw new TypeError(`--${name} must be a whole number, not ${arg}`);
  return n;
}
const port = numberOption('port', 0);
// With --web, repeat the workload so that a person can watch it (the limiters keep what they learned).
const rounds = Math.max(1, numberOption('rounds', web ? 4 : 1));
const workloads = only.length ? allWorkloads.filter((w) => only.includes(w.simulated)) : allWorkloads;
if (process.argv.includes('--events'))
  for (const w of workloads)
    logEvents(w.limiter.events$, {
      info: (m) => console.log(m),
      warn: (m) => console.log(m),
      error: (m) => console.log(m),
    });

interface Progress {
  done: number;
  failed: number;
  saved: number;
  started: number;
  finished?: number;
  /** The round running now (1-based). */
  round: number;
}

function line(w: Workload, p: Progress, s: LimiterSnapshot): string {
  const buckets = s.buckets
    .filter((b) => b.limit !== null && !b.quota)
    .slice(0, 2)
    .map((b) => {
      const reset = b.resetAt === null ? '' : ` ${Math.max(0, (b.resetAt - Date.now()) / 1000).toFixed(1)}s`;
      return `${b.name.slice(-12)} ${b.remaining ?? '?'}/${b.limit}${reset}`;
    })
    .join('  ');
  const total = w.requests * rounds;
  const bar = '#'.repeat(Math.round(((p.done + p.failed) / total) * 20)).padEnd(20, '.');
  const flags = `${s.pausedUntil ? ' PAUSED' : ''}${s.blocked ? ' BLOCKED' : ''}`;
  return `${w.label.padEnd(46)} [${bar}] ${String(p.done + p.failed).padStart(3)}/${total} q${String(s.queued).padStart(3)} ${buckets}${flags}`;
}

function drive(w: Workload, base: string, progress: Progress): Observable<unknown> {
  return from(Array.from({ length: w.requests }, (_, i) => i)).pipe(
    mergeMap(
      (i) =>
        new Promise<void>((resolve) => {
          const { path, info } = w.request(i);
          const headers = { authorization: `Bearer ${TOKEN}` };
          // The headers go to the limiter too: identical GETs share a response (and the cache)
          // only when their credentials and headers are the same.
          fromFetch(`${base}${path}`, { method: info.method ?? 'GET', headers })
            .pipe(rateLimit(w.limiter, { ...info, headers }))
            .subscribe({
              next: (res) => {
                if (res.ok) progress.done++;
                else progress.failed++;
                void res.arrayBuffer().catch(() => undefined);
              },
              error: (e: unknown) => {
                progress.failed++;
                if (!isRateLimitError(e)) console.error(`\n${w.label}: ${String(e)}`);
                resolve();
              },
              complete: resolve,
            });
        }),
      w.streams,
    ),
  );
}

async function main(): Promise<void> {
  const runs: Array<{ w: Workload; sim: Simulator; p: Progress }> = [];
  for (const w of workloads)
    runs.push({
      w,
      sim: await startSimulator({ ...w.sim, latencyMs: 5 }),
      p: { done: 0, failed: 0, saved: 0, started: Date.now(), round: 1 },
    });
  const tty = process.stdout.isTTY;
  let live: LiveView | undefined;
  if (web) {
    live = await startLiveView({
      port,
      title: 'rx-ratelimit demo · live view',
      sources: runs.map(({ w, p }) => ({
        id: w.simulated,
        label: w.label,
        limiter: w.limiter,
        progress: () => ({ done: p.done, failed: p.failed, total: w.requests * rounds, round: p.round }),
      })),
    });
    console.log(
      `Live view: ${live.url}  (${rounds} round${rounds > 1 ? 's' : ''}; stays up after the run until Ctrl+C)\n`,
    );
    live.setRun({ phase: 'running', rounds, startedAt: Date.now() });
  }
  console.log('Five simulated providers on loopback, one limiter each, all at once.\n');
  let drawn = false;
  const draw = () => {
    const lines = runs.map(({ w, p }) => line(w, p, w.limiter.snapshot));
    if (tty) {
      if (drawn) process.stdout.write(`\x1b[${lines.length}A`);
      process.stdout.write(lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n');
      drawn = true;
    } else {
      console.log(lines.join('\n') + '\n');
    }
  };
  const ticker = setInterval(draw, tty ? 150 : 2000);
  await Promise.all(
    runs.map(
      ({ w, sim, p }) =>
        new Promise<void>((resolve) => {
          p.started = Date.now();
          const next = (): void => {
            drive(w, sim.urlFor(w.simulated), p).subscribe({
              complete: () => {
                if (p.round < rounds) {
                  p.round++;
                  next();
                  return;
                }
                p.finished = Date.now();
                resolve();
              },
            });
          };
          next();
        }),
    ),
  );
  clearInterval(ticker);
  draw();

  console.log('\nSummary');
  console.log(
    `${'provider'.padEnd(46)} ${'ok'.padStart(4)} ${'refused'.padStart(7)} ${'429s'.padStart(5)} ${'403s'.padStart(5)} ${'saved'.padStart(5)} ${'elapsed'.padStart(8)} ${'shortest'.padStart(8)} ${'ratio'.padStart(6)}`,
  );
  let bad = false;
  const summary = runs.map(({ w, sim, p }) => {
    const counts = Object.values(sim.stats()[w.simulated])[0] ?? { ok: 0, limited: 0, blocked: 0 };
    const elapsed = ((p.finished ?? Date.now()) - p.started) / 1000;
    const totals = w.limiter.snapshot.totals;
    if (counts.limited > 0 || counts.blocked > 0 || p.done + p.failed !== w.requests * rounds) bad = true;
    // The shortest time is worked out for one round from a cold start (later rounds start warm).
    const minimum = w.minimumMs(p.started) / 1000;
    const shortest = rounds === 1 ? `${minimum.toFixed(2)}s` : '-';
    const ratio = rounds === 1 ? (minimum > 0 ? elapsed / minimum : 1).toFixed(3) : '-';
    console.log(
      `${w.label.padEnd(46)} ${String(p.done).padStart(4)} ${String(p.failed).padStart(7)} ${String(counts.limited).padStart(5)} ${String(counts.blocked).padStart(5)} ${String(totals.saved).padStart(5)} ${`${elapsed.toFixed(2)}s`.padStart(8)} ${shortest.padStart(8)} ${ratio.padStart(6)}`,
    );
    return {
      id: w.simulated,
      ok: p.done,
      refused: p.failed,
      rateLimited: counts.limited,
      blocked: counts.blocked,
      saved: totals.saved,
      elapsedMs: elapsed * 1000,
    };
  });
  console.log(
    '\nrefused: ended by the limiter with a typed error (here Pipedrive POSTs past the daily budget), never sent.',
  );
  await Promise.all(runs.map(({ sim }) => sim.close()));
  if (bad) process.exitCode = 1;
  if (live) {
    const view = live;
    view.setRun({ phase: 'finished', finishedAt: Date.now(), summary });
    console.log(`\nRun finished. The live view stays up at ${view.url} until Ctrl+C.`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await view.close();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
