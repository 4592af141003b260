/**
 * Several processes, one token, one budget in Redis: real processes (forked with tsx), real
 * Redis, the simulator over real sockets. The tests' shared Redis (spec/helpers/redis.ts) is used with a
 * fresh key prefix per test; the restart test runs its own redis-server on a free port.
 */
import { afterEach, describe, expect, it } from '@jest/globals';

import {
  createSimulatorEngine,
  credentialLabel,
  startSimulator,
  type Simulator,
  type SimulatorEngine,
} from '../../../lib/testing/index.js';
import { freePort, REDIS } from '../../helpers/redis.js';
import { alignTo, startWorker, tempRedis, until, type Worker, type WorkerJob } from './fork.js';

const LIMIT = 40;
const WINDOW_MS = 2000;
const SIM = { timeScale: 1800, latencyMs: 2, procore: { limit: LIMIT } };

let sim: Simulator | undefined;
let workers: Worker[] = [];

afterEach(async () => {
  for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL');
  workers = [];
  await sim?.close();
  sim = undefined;
});

function job(s: Simulator, over: Partial<WorkerJob>): WorkerJob {
  return {
    url: s.urlFor('procore'),
    token: 'token-shared',
    requests: 60,
    streams: 10,
    redisPort: REDIS.port,
    prefix: `rxrl-test-${process.pid}-${Date.now()}:`,
    limit: LIMIT,
    windowMs: WINDOW_MS,
    ...over,
  };
}

async function startAll(count: number, j: WorkerJob): Promise<Worker[]> {
  workers = Array.from({ length: count }, () => startWorker(j));
  await Promise.all(workers.map((w) => w.ready));
  return workers;
}

const counts = (s: Simulator) => s.stats().procore[credentialLabel('Bearer token-shared')];

describe('redis store: processes sharing one token', () => {
  it('four processes complete every request once with zero 429s, never faster than the limits allow', async () => {
    sim = await startSimulator(SIM);
    // Redis's own default timeout (1 s), as in the tests below: with the workers' 300 ms a
    // process stalled by a loaded machine could declare Redis away and add its local share.
    const all = await startAll(4, job(sim, { timeoutMs: 1000 }));
    await alignTo(WINDOW_MS);
    const started = Date.now();
    for (const w of all) w.go();
    const results = await Promise.all(all.map((w) => w.result));
    const elapsed = Math.max(...results.map((r) => r?.finishedAt ?? Infinity)) - started;
    const total = 4 * 60;
    // Windows are aligned to multiples of 2 s: the rest of the first, then one per 40 requests.
    const minimum = Math.ceil(started / WINDOW_MS) * WINDOW_MS + (Math.ceil(total / LIMIT) - 2) * WINDOW_MS - started;
    if (process.env['RXRL_TRACE']) {
      const at = results.flatMap((r) => (r?.events ?? []).filter((e) => e.type === 'admitted').map((e) => e.at));
      const byWindow = new Map<number, number[]>();
      for (const t of at.sort((a, b) => a - b)) {
        const k = Math.floor(t / WINDOW_MS);
        byWindow.set(k, [...(byWindow.get(k) ?? []), t % WINDOW_MS]);
      }
      console.log(started % WINDOW_MS, [...byWindow].map(([k, ts]) => `${k}: ${ts.length} ${ts.join(',')}`).join('\n'));
    }
    for (const r of results) expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
    expect(counts(sim)).toMatchObject({ ok: total, limited: 0, blocked: 0, sentWhileLimited: 0 });
    expect(elapsed).toBeGreaterThanOrEqual(minimum);
    // How close to the minimum is the benchmark's figure (npm run bench, min/median/max over runs):
    // a real-time ratio here would only measure how busy the machine is.
    console.log(
      `redis, 4 processes: ${total} requests in ${elapsed} ms; minimum ${minimum} ms; ratio ${(elapsed / minimum).toFixed(3)}`,
    );
  }, 80_000);

  it('pipedrive (windows that start at the first request, resets in seconds left): four processes, every request once, zero 429s', async () => {
    // Every arrival (time, status, process and request), shown around the first 429 if one comes.
    const inner = createSimulatorEngine({ latencyMs: 2, pipedrive: { plan: 'advanced' } });
    const arrivals: Array<[number, number, string]> = [];
    const engine: SimulatorEngine = Object.assign(Object.create(inner) as SimulatorEngine, {
      handle(req: Parameters<SimulatorEngine['handle']>[0]) {
        const res = inner.handle(req);
        if (req.provider === 'pipedrive')
          arrivals.push([Date.now(), res.status, (req.path ?? '').split('/').pop() ?? '']);
        return res;
      },
    });
    sim = await startSimulator({ engine });
    // Redis's own default timeout (1 s): the 300 ms of the other tests here declared Redis away
    // in most runs on a loaded 2-core machine (load 20), and this test is about sharing.
    const all = await startAll(4, {
      ...job(sim, { provider: 'pipedrive', timeoutMs: 1000 }),
      url: sim.urlFor('pipedrive'),
    });
    const started = Date.now();
    for (const w of all) w.go();
    const results = await Promise.all(all.map((w) => w.result));
    const elapsed = Math.max(...results.map((r) => r?.finishedAt ?? Infinity)) - started;
    // The first window starts at the first request: one window per 40 requests after it.
    // (Its time is the bench's to judge; at load 20 it took 15–40 s, hence the test's 80 s.)
    const minimum = (Math.ceil(240 / 40) - 1) * 2000;
    for (const r of results) expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
    const stats = Object.values(sim.stats().pipedrive).find((c) => c.total >= 240);
    // Shown beside the counts when they fail: whether a process fell back to its local share.
    const outages = results.flatMap((r) => (r?.events ?? []).filter((e) => e.type === 'store-unavailable')).length;
    const first429 = arrivals.findIndex(([, status]) => status === 429);
    const around429 =
      first429 < 0
        ? []
        : arrivals.slice(Math.max(0, first429 - 45), first429 + 12).map(([t, st, id]) => `${t - started} ${st} ${id}`);
    // With RXRL_TRACE=1, when each process's limiter admitted its requests (to tell a late send).
    const admitted =
      first429 < 0
        ? []
        : results.map((r) =>
            (r?.events ?? [])
              .filter((e) => e.type === 'admitted')
              .map((e) => Math.round(e.at - started))
              .join(','),
          );
    expect({ stats, outages, around429, admitted }).toMatchObject({
      stats: { ok: 240, limited: 0, blocked: 0, sentWhileLimited: 0 },
      outages,
      around429: [],
      admitted: [],
    });
    // How close to the minimum is the benchmark's figure (npm run bench, min/median/max over runs):
    // a real-time ratio here would only measure how busy the machine is.
    console.log(
      `redis, 4 processes, pipedrive: 240 requests in ${elapsed} ms; minimum ${minimum} ms; ratio ${(elapsed / minimum).toFixed(3)}`,
    );
  }, 80_000);

  it('a process killed mid-run costs the others nothing: they complete every request, zero 429s', async () => {
    sim = await startSimulator(SIM);
    // Redis's own default timeout (1 s), as in the pipedrive test: with 300 ms a process stalled
    // by a loaded machine declared Redis away while the others kept using it, and its local
    // share came on top of theirs (a partial outage, a known limit in docs/distributed.md); this
    // test is about a process that dies.
    // A lease well above the slowest request (`leaseMs` in docs/distributed.md), as a user's
    // 60 s default is: with 1 s, on a loaded machine (requests took up to 2 s from admission to
    // their answer read) live processes' leases lapsed before any figure read in Redis counted
    // their requests, Redis handed those units out again and the server answered 429 (with no
    // outage). The victim's leases hold its units for 10 s after its death.
    const all = await startAll(4, job(sim, { leaseMs: 10_000, timeoutMs: 1000 }));
    for (const w of all) w.go();
    const [victim, ...rest] = all;
    if (!victim) throw new Error('no worker');
    await until(() => victim.done >= 20);
    victim.child.kill('SIGKILL');
    const results = await Promise.all(rest.map((w) => w.result));
    for (const r of results) {
      expect(r?.statuses).toHaveLength(60);
      expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
    }
    // Shown beside the counts when they fail: whether a process fell back to its local share,
    // and how close its slowest request came to outliving its lease.
    const outages = results.flatMap((r) => (r?.events ?? []).filter((e) => e.type === 'store-unavailable')).length;
    const slowestMs = Math.max(...results.map((r) => r?.slowestMs ?? 0));
    expect({ counts: counts(sim), outages, slowestMs }).toMatchObject({
      counts: { limited: 0, blocked: 0, sentWhileLimited: 0 },
      outages,
      slowestMs,
    });
    expect(counts(sim)?.ok).toBeGreaterThanOrEqual(3 * 60 + 20);
  }, 80_000);

  it('Redis stopped and restarted mid-run: the run finishes, nothing past the budget, a clear event in between', async () => {
    const redis = tempRedis(await freePort());
    await redis.start();
    try {
      sim = await startSimulator(SIM);
      // Redis's own default timeout (1 s), as in the tests above: a stopped Redis is noticed at
      // once all the same (its connection closes; checked below), not after the timeout.
      const all = await startAll(4, job(sim, { redisPort: redis.port, requests: 60, timeoutMs: 1000 }));
      for (const w of all) w.go();
      await until(() => all.reduce((n, w) => n + w.done, 0) >= 60);
      // Timed from before the stop: a process may notice it before redis-server's exit is seen here.
      const stoppedAt = Date.now();
      await redis.stop();
      await new Promise((r) => setTimeout(r, 2500));
      const restartedAt = Date.now();
      await redis.start();
      const trace = process.env['RXRL_TRACE']
        ? setInterval(() => console.log('progress', all.map((w) => w.done).join(',')), 3000)
        : undefined;
      const results = await Promise.all(all.map((w) => w.result));
      clearInterval(trace);
      for (const r of results) {
        expect(r?.statuses).toHaveLength(60);
        expect(r?.statuses.filter((s) => s !== 200)).toEqual([]);
      }
      if (process.env['RXRL_TRACE'])
        console.log(
          JSON.stringify(counts(sim)),
          stoppedAt % 2000,
          restartedAt % 2000,
          JSON.stringify(
            results.map((r) =>
              r?.events.filter((e) => e.type !== 'admitted').map((e) => `${e.type}@${e.at - stoppedAt}`),
            ),
          ),
        );
      expect(counts(sim)).toMatchObject({ ok: 240, limited: 0, blocked: 0, sentWhileLimited: 0 });
      const events = results.flatMap((r) => r?.events ?? []);
      const down = events.filter((e) => e.type === 'store-unavailable');
      const up = events.filter((e) => e.type === 'store-recovered');
      expect(down.length).toBeGreaterThanOrEqual(1);
      expect(up.length).toBeGreaterThanOrEqual(1);
      // The order of phases, per process: unavailable, then recovered, alternating (a loaded machine
      // may time out a call before the stop, so a stray early pair is allowed); the outage itself is
      // noticed while Redis is down, and admission through Redis resumes after the restart.
      for (const r of results) {
        const phases = (r?.events ?? []).filter((e) => e.type === 'store-unavailable' || e.type === 'store-recovered');
        phases.forEach((e, i) => expect(e.type).toBe(i % 2 === 0 ? 'store-unavailable' : 'store-recovered'));
      }
      const during = down.filter((e) => e.at >= stoppedAt && e.at <= restartedAt);
      expect(during.length).toBeGreaterThanOrEqual(1);
      // Noticed at once despite the 1 s timeout: each call met the closed connection's own error
      // (ioredis gives up after one reconnect), none waited out the timeout ("no answer within").
      expect(during.filter((e) => e.error?.startsWith('no answer within'))).toEqual([]);
      expect(up.filter((e) => e.at >= restartedAt).length).toBeGreaterThanOrEqual(1);
      console.log(
        `redis restart: ${down.length} store-unavailable, ${up.length} store-recovered events ` +
          `(noticed ${during.map((e) => Math.round(e.at - stoppedAt)).join(', ')} ms after the stop began); ` +
          `run finished ${Math.max(...results.map((r) => r?.finishedAt ?? 0)) - restartedAt} ms after the restart`,
      );
    } finally {
      await redis.stop();
    }
  }, 90_000);
});
