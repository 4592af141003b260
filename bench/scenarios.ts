/**
 * The benchmark's scenarios, shared by the orchestrator (`bench/run.ts`, which hosts the
 * simulator and computes the figures) and the client processes (`bench/client.ts`, which run one
 * competitor on one scenario).
 *
 * Every window is compressed to 2 s (the simulator's `timeScale`), so that a run takes a few
 * seconds; the numbers each competitor is configured with are the providers' documented limits in
 * that compressed time, as a user would type them in from the docs.
 */
import { providers, type Provider } from '../lib/index.js';
import type { LimitChange, SimulatedProvider, SimulatorOptions } from '../lib/testing/index.js';

/** Simulated network latency (server side, per request), ms. */
export const LATENCY_MS = 20;

/** Retries after the first attempt, for every competitor (rx-ratelimit's default, and the PCO doc's `MAX_RETRIES`). */
export const MAX_RETRIES = 5;

export type Method = 'GET' | 'POST';

/** One request of a workload. */
export interface BenchRequest {
  readonly method: Method;
  /** Path under the provider's prefix, with its query (Pipedrive's `api_token`). */
  readonly path: string;
  /** The path without secrets, as the limiter is told it. */
  readonly infoUrl: string;
  /** Which credential sends it. */
  readonly token: string;
}

/** How the server's windows are laid out in time. */
export type WindowKind = 'aligned' | 'first-request' | 'rolling';

export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly provider: SimulatedProvider;
  /** The simulator's options (limits, time scale, clock offset), latency excluded. */
  readonly sim: SimulatorOptions;
  readonly timeScale: number;
  readonly tokens: readonly string[];
  readonly requests: number;
  /** Concurrent streams (per client process when there are several). */
  readonly streams: number;
  /**
   * Client processes started together, sharing the work (request i goes to process i mod P)
   * and the token. @default 1
   */
  readonly processes?: number;
  request(i: number): BenchRequest;
  /** The documented limit of the window that binds this workload (compressed), and its length. */
  readonly limit: number;
  readonly windowMs: number;
  /** Further documented windows, for clients that take several (axios-rate-limit `limits`). */
  readonly extraWindows?: ReadonlyArray<{ readonly limit: number; readonly windowMs: number }>;
  readonly windowKind: WindowKind;
  /**
   * Aligned windows: start this far into a window of the server clock (ms). Half a window: a
   * client starts at a random moment of the provider's window, and half is the mean.
   */
  readonly phaseMs?: number;
  /**
   * A limit change without notice, when the `atRequest`-th request (1-based, retries included)
   * reaches the server: mid-burst for every competitor, whatever its timing.
   */
  readonly limitChange?: {
    readonly atRequest: number;
    readonly set: LimitChange['set'];
    /** The binding limit from then on. */
    readonly newLimit: number;
  };
  /** Whether a 429 on a POST is retried (Pipedrive applies no request it answered 429). */
  readonly retryPosts: boolean;
  /** rx-ratelimit's provider profile, with the compressed windows as hints. */
  rxProvider(): Provider;
  /**
   * The same profile with every bucket's `pacing: 'burst'`, for a profile that paces smoothly
   * by default (TEOS): rx-ratelimit runs a second time with it, as its own row. The provider
   * target is judged on that row; the default row against the even-spread time.
   */
  rxBurstProvider?(): Provider;
  /** Requests no client can complete (a daily budget smaller than the work). */
  readonly impossible: number;
  /**
   * The shortest time the limits allow (ms from the start), given the start on the server clock
   * and, for the steadiness rows, the median round trip the run saw.
   */
  physicalMs(serverStart: number, roundTripMs?: number): number;
  /** How `physicalMs` is computed, for the report. */
  readonly formula: string;
  /** The per-provider target applies: ≤ 1.05 × physical limit and zero 429s. */
  readonly providerTarget: boolean;
  /**
   * A steadiness row: rx-ratelimit runs this many times (the competitors once), and the table
   * shows min / median / max of its ratio to the physical limit and of its 429s. Target: every
   * repetition clean (no 429, nothing lost), each ≤ 1.03 × physical, the spread ≤ 0.03.
   */
  readonly repetitions?: number;
  /** Clock-aligned windows: each repetition starts at a random phase of the server's window. */
  readonly randomPhase?: boolean;
  /**
   * No header describes the window until a 429 (a legacy endpoint): the first window's overflow is
   * how it is learned, so a clean repetition allows 429s up to the streams in flight, not one more.
   */
  readonly learnsFromFirst429?: boolean;
}

const W = 2000;
const TOKEN = 'bench-token-A';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Headers carrying the credential (Pipedrive's goes in the query instead). */
export function authHeaders(provider: SimulatedProvider, token: string): Record<string, string> {
  return provider === 'pipedrive' ? {} : bearer(token);
}

/** Windows needed for `n` requests at `limit` per window. */
const windows = (n: number, limit: number) => Math.ceil(n / limit);

/** Windows that start at the first request (Planning Center, Pipedrive) or rolling windows (TEOS). */
export const fromFirst = (n: number, limit: number, windowMs: number) => (windows(n, limit) - 1) * windowMs;

/** Windows aligned to multiples of `windowMs` on the server clock (Procore, Fieldwire). */
export function aligned(n: number, limit: number, windowMs: number, serverStart: number): number {
  if (windows(n, limit) <= 1) return 0;
  const firstBoundary = (Math.floor(serverStart / windowMs) + 1) * windowMs;
  return firstBoundary - serverStart + (windows(n, limit) - 2) * windowMs;
}

/**
 * The shortest time for `n` requests over `streams` streams against clock-aligned windows of
 * `limit` per `windowMs`, starting at `serverStart` on the server clock. The first, partial
 * window takes what the streams can send before its end (each stream one request per round
 * trip, at most `limit`): when the run starts in the last few ms of a window, no client can
 * fill it, and the run needs a window more. The last window's requests go `streams` at a time.
 */
export function alignedPhysical(
  n: number,
  limit: number,
  windowMs: number,
  serverStart: number,
  streams: number,
  /**
   * The median round trip the run saw. With it, the first window takes what a client that
   * follows headers can send before its end: one request, then `streams` per whole round trip.
   */
  roundTripMs?: number,
): number {
  const firstMs = (Math.floor(serverStart / windowMs) + 1) * windowMs - serverStart;
  const rtt = roundTripMs ?? LATENCY_MS;
  const sendable =
    roundTripMs === undefined
      ? streams * Math.ceil(firstMs / LATENCY_MS)
      : 1 + streams * Math.max(0, Math.floor((firstMs - rtt) / rtt));
  const first = Math.min(limit, sendable);
  if (n <= first) return rounds(n, streams, rtt);
  const after = n - first;
  const full = Math.ceil(after / limit);
  return firstMs + (full - 1) * windowMs + rounds(after - (full - 1) * limit, streams, rtt);
}

/**
 * Round trips the last window needs: its `r` requests go `streams` at a time, each stream
 * sending its next request when the previous one is answered.
 */
const rounds = (r: number, streams: number, rtt = LATENCY_MS) => Math.ceil(r / streams) * rtt;
/** Requests left for the last window. */
const lastWindow = (n: number, limit: number) => n - (windows(n, limit) - 1) * limit;
const ROUNDS = '⌈r/S⌉·latency (the r requests of the last window, S streams at a time)';

const get = (path: string, token = TOKEN): BenchRequest => ({ method: 'GET', path, infoUrl: path, token });

function pipedriveRequest(i: number, token: string, method: Method): BenchRequest {
  const path = method === 'POST' ? '/v1/deals' : `/v1/deals/${i}`;
  return { method, path: `${path}?api_token=${token}`, infoUrl: path, token };
}

const procore: Scenario = {
  id: 'procore',
  title: 'Procore: 3,600/hour (here 100 per 2 s window, clock-aligned), 300 requests, 30 streams',
  provider: 'procore',
  sim: { timeScale: 1800, procore: { limit: 100 } },
  timeScale: 1800,
  tokens: [TOKEN],
  requests: 300,
  streams: 30,
  request: (i) => get(`/rest/v1.0/projects/${i}`),
  limit: 100,
  windowMs: W,
  windowKind: 'aligned',
  phaseMs: W / 2,
  retryPosts: false,
  rxProvider: () => providers.procore({ hints: { hourly: { limit: 100, windowMs: W } } }),
  impossible: 0,
  physicalMs: (s) => alignedPhysical(300, 100, W, s, 30),
  formula: `clock-aligned windows: d = first boundary − start, the first window takes F = min(L, S·⌈d/latency⌉), then d + (⌈(N − F)/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

const planningCenter: Scenario = {
  id: 'planning-center',
  title: 'Planning Center: 100 per 20 s (here 2 s), period starts at its first request, 300 requests, 30 streams',
  provider: 'planningCenter',
  sim: { timeScale: 10 },
  timeScale: 10,
  tokens: [TOKEN],
  requests: 300,
  streams: 30,
  request: (i) => get(`/people/v2/people/${i}`),
  limit: 100,
  windowMs: W,
  windowKind: 'first-request',
  retryPosts: false,
  rxProvider: () => providers.planningCenter({ hints: { default: { windowMs: W } } }),
  impossible: 0,
  physicalMs: () => fromFirst(300, 100, W) + rounds(lastWindow(300, 100), 30),
  formula: `windows from their first request: (⌈N/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

/**
 * GitHub's window starts at its first request and its reset is a whole unix second (rounded up
 * by the simulator): with 2 s windows the limiter waits for a reset up to 1 s after the window's
 * true end, so this row measured 1.31 × physical (2026-12-03, rx-ratelimit alone); at GitHub's
 * real hour the rounding is 0.03 %.
 */
const github: Scenario = {
  id: 'github',
  title: 'GitHub: core 5,000/hour (here 100 per 2 s), window from its first request, 300 requests, 30 streams',
  provider: 'github',
  sim: { timeScale: 1800, github: { core: 100 } },
  timeScale: 1800,
  tokens: [TOKEN],
  requests: 300,
  streams: 30,
  request: (i) => get(`/repos/octo/hello/issues/${i}`),
  limit: 100,
  windowMs: W,
  windowKind: 'first-request',
  retryPosts: false,
  rxProvider: () => providers.github({ hints: { core: { limit: 100, windowMs: W } } }),
  impossible: 0,
  physicalMs: () => fromFirst(300, 100, W) + rounds(lastWindow(300, 100), 30),
  formula: `windows from their first request: (⌈N/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

const FIELDWIRE_TASKS = 'GET /projects/:id/tasks';
const fieldwire: Scenario = {
  id: 'fieldwire',
  title:
    'Fieldwire: tasks endpoint 50/minute + 3,000/hour + catch-all (here a minute = 2 s, aligned), 150 requests, 25 streams',
  provider: 'fieldwire',
  sim: { timeScale: 30, fieldwire: { endpoints: { [FIELDWIRE_TASKS]: { minute: 50, hour: 3000 } } } },
  timeScale: 30,
  tokens: [TOKEN],
  requests: 150,
  streams: 25,
  request: (i) => get(`/projects/${i}/tasks`),
  limit: 50,
  windowMs: W,
  extraWindows: [
    { limit: 3000, windowMs: 120_000 },
    { limit: 3000, windowMs: 10_000 },
  ],
  windowKind: 'aligned',
  phaseMs: W / 2,
  retryPosts: false,
  rxProvider: () =>
    providers.fieldwire({
      endpoints: { [FIELDWIRE_TASKS]: { minute: 50, hour: 3000 } },
      hints: {
        [`${FIELDWIRE_TASKS}:minute`]: { windowMs: W },
        [`${FIELDWIRE_TASKS}:hour`]: { windowMs: 120_000 },
        'catch-all': { windowMs: 10_000 },
      },
    }),
  impossible: 0,
  physicalMs: (s) => alignedPhysical(150, 50, W, s, 25),
  formula: `clock-aligned windows: d = first boundary − start, the first window takes F = min(L, S·⌈d/latency⌉), then d + (⌈(N − F)/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

const pipedrive: Scenario = {
  id: 'pipedrive',
  title: 'Pipedrive professional: 80 per 2 s, window starts at its first request, 240 requests, 30 streams',
  provider: 'pipedrive',
  sim: { pipedrive: { plan: 'professional' } },
  timeScale: 1,
  tokens: [TOKEN],
  requests: 240,
  streams: 30,
  request: (i) => pipedriveRequest(i, TOKEN, 'GET'),
  limit: 80,
  windowMs: W,
  windowKind: 'first-request',
  retryPosts: false,
  rxProvider: () => providers.pipedrive({ plan: 'professional' }),
  impossible: 0,
  physicalMs: () => fromFirst(240, 80, W) + rounds(lastWindow(240, 80), 30),
  formula: `windows from their first request: (⌈N/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

const teos: Scenario = {
  id: 'teos',
  title: 'TEOS: 100 per rolling minute (here 2 s) + 10,000 per rolling day, 300 requests, 20 streams',
  provider: 'teos',
  sim: { timeScale: 30 },
  timeScale: 30,
  tokens: [TOKEN],
  requests: 300,
  streams: 20,
  request: (i) => get(`/api/v1/items/${i}`),
  limit: 100,
  windowMs: W,
  extraWindows: [{ limit: 10_000, windowMs: 2_880_000 }],
  windowKind: 'rolling',
  retryPosts: false,
  rxProvider: () => providers.teos({ hints: { minute: { windowMs: W }, day: { windowMs: 2_880_000 } } }),
  rxBurstProvider: () =>
    providers.teos({ hints: { minute: { windowMs: W, pacing: 'burst' }, day: { windowMs: 2_880_000 } } }),
  impossible: 0,
  physicalMs: () => fromFirst(300, 100, W) + rounds(lastWindow(300, 100), 20),
  formula: `rolling window, bursts allowed: (⌈N/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

/**
 * HubSpot's burst limit is a rolling 10 s (here 2 s, timeScale 5) with no reset header: the
 * limiter frees a slot when the call that took it leaves the window. The daily limit (250,000,
 * a day of 4.8 h here) does not bind.
 */
const hubspot: Scenario = {
  id: 'hubspot',
  title: 'HubSpot: 100 per rolling 10 s (here 2 s) + 250,000 a day, 300 requests, 30 streams',
  provider: 'hubspot',
  sim: { timeScale: 5, hubspot: { perInterval: 100 } },
  timeScale: 5,
  tokens: [TOKEN],
  requests: 300,
  streams: 30,
  request: (i) => get(`/crm/v3/objects/contacts/${i}`),
  limit: 100,
  windowMs: W,
  extraWindows: [{ limit: 250_000, windowMs: 17_280_000 }],
  windowKind: 'rolling',
  retryPosts: false,
  rxProvider: () =>
    providers.hubspot({ hints: { interval: { limit: 100, windowMs: W }, daily: { windowMs: 17_280_000 } } }),
  impossible: 0,
  physicalMs: () => fromFirst(300, 100, W) + rounds(lastWindow(300, 100), 30),
  formula: `rolling window, bursts allowed: (⌈N/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

/**
 * Jira Cloud's points quota resets at the top of each UTC hour (here every 2 s, timeScale 1800).
 * Every request costs one point here (the simulator's `readPoints: 1`): a real GET of an issue
 * costs 2, and the limiter counts requests, not points (request cost is core work to come). The
 * burst limit, scaled with the hour, does not bind.
 */
const atlassian: Scenario = {
  id: 'atlassian',
  title:
    'Jira Cloud: 65,000 points/hour (here 100 per 2 s, clock-aligned, 1 point a request), 300 requests, 30 streams',
  provider: 'atlassian',
  sim: { timeScale: 1800, atlassian: { quota: 100, readPoints: 1 } },
  timeScale: 1800,
  tokens: [TOKEN],
  requests: 300,
  streams: 30,
  request: (i) => get(`/rest/api/3/issue/ABC-${i + 1}`),
  limit: 100,
  windowMs: W,
  windowKind: 'aligned',
  phaseMs: W / 2,
  retryPosts: false,
  rxProvider: () => providers.atlassian({ hints: { quota: { limit: 100, windowMs: W }, burst: { windowMs: 1 } } }),
  impossible: 0,
  physicalMs: (s) => alignedPhysical(300, 100, W, s, 30),
  formula: `clock-aligned windows: d = first boundary − start, the first window takes F = min(L, S·⌈d/latency⌉), then d + (⌈(N − F)/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: true,
};

/**
 * Shopify's REST Admin API: a leaky bucket of 40 requests restoring 2 a second (here 20, timeScale
 * 10), no window and no reset. The competitors are told 40 per 2 s, the bucket's restore as a
 * window a user would type in. The least time: the bucket's 40 at once, the rest at the restore
 * rate, plus the last answer's trip.
 */
const shopify: Scenario = {
  id: 'shopify',
  title: 'Shopify REST: a leaky bucket of 40 restoring 2 a second (here 20, timeScale 10), 200 requests, 30 streams',
  provider: 'shopify',
  sim: { timeScale: 10 },
  timeScale: 10,
  tokens: [TOKEN],
  requests: 200,
  streams: 30,
  request: (i) => get(`/admin/api/2024-10/products/${i}.json`),
  limit: 40,
  windowMs: W,
  windowKind: 'first-request',
  retryPosts: false,
  rxProvider: () => providers.shopify({ api: 'rest', hints: { rest: { restorePerSecond: 20 } } }),
  impossible: 0,
  physicalMs: () => ((200 - 40) / 20) * 1000 + LATENCY_MS,
  formula: 'leaky bucket of C restoring R a second: (N − C)/R + latency',
  providerTarget: true,
};

/** The request at which the limit is halved: the 30th of the second window. */
const HALVE_AT_REQUEST = 130;
const halved: Scenario = {
  id: 'halved',
  title: `Planning Center, limit halved (100 → 50) without notice when the ${HALVE_AT_REQUEST}th request reaches the server (for a client within the limit: mid-burst, 30 into the second window), 200 requests, 30 streams`,
  provider: 'planningCenter',
  sim: { timeScale: 10 },
  timeScale: 10,
  tokens: [TOKEN],
  requests: 200,
  streams: 30,
  request: (i) => get(`/people/v2/people/${i}`),
  limit: 100,
  windowMs: W,
  windowKind: 'first-request',
  limitChange: { atRequest: HALVE_AT_REQUEST, set: { limit: 50 }, newLimit: 50 },
  retryPosts: false,
  rxProvider: () => providers.planningCenter({ hints: { default: { windowMs: W } } }),
  impossible: 0,
  // 100 in the first window; 29 before the change and 21 after it in the second (its count
  // includes them); 50 in the third.
  physicalMs: () => 2 * W + rounds(50, 30),
  formula: `windows from their first request: 100, then 50 (29 before the change, 21 after), then the last 50: 2·W + ${ROUNDS}`,
  providerTarget: false,
};

const SKEW_MS = -30_000;
const skew: Scenario = {
  ...procore,
  id: 'skew',
  title:
    'Procore with the server clock 30 s behind ours (resets are unix times on its clock), 300 requests, 30 streams',
  sim: { ...procore.sim, clockOffsetMs: SKEW_MS },
  providerTarget: false,
};

const daily: Scenario = {
  id: 'daily',
  title:
    'Pipedrive advanced (40 per 2 s) with 40 POSTs left today: 80 GETs + 80 POSTs interleaved, 30 streams (40 POSTs cannot succeed)',
  provider: 'pipedrive',
  sim: { pipedrive: { plan: 'advanced', dailyLimit: 40 } },
  timeScale: 1,
  tokens: [TOKEN],
  requests: 160,
  streams: 30,
  request: (i) => pipedriveRequest(i, TOKEN, i % 2 === 1 ? 'POST' : 'GET'),
  limit: 40,
  windowMs: W,
  windowKind: 'first-request',
  retryPosts: true,
  rxProvider: () => providers.pipedrive({ plan: 'advanced' }),
  impossible: 40,
  physicalMs: () => fromFirst(120, 40, W) + rounds(lastWindow(120, 40), 30),
  formula: `the 120 requests that can succeed (the 40 others refused at once), windows from their first request: (⌈120/L⌉ − 1)·W + ${ROUNDS}`,
  providerTarget: false,
};

const MULTI_TOKENS = ['bench-token-A', 'bench-token-B', 'bench-token-C', 'bench-token-D'];
const multi: Scenario = {
  id: 'tokens',
  title: 'Pipedrive advanced (40 per 2 s per token), 4 tokens at once: 480 requests interleaved, 40 streams',
  provider: 'pipedrive',
  sim: { pipedrive: { plan: 'advanced' } },
  timeScale: 1,
  tokens: MULTI_TOKENS,
  requests: 480,
  streams: 40,
  request: (i) => pipedriveRequest(i, MULTI_TOKENS[i % MULTI_TOKENS.length] ?? TOKEN, 'GET'),
  limit: 40,
  windowMs: W,
  windowKind: 'first-request',
  retryPosts: false,
  rxProvider: () => providers.pipedrive({ plan: 'advanced' }),
  impossible: 0,
  physicalMs: () => fromFirst(120, 40, W) + rounds(lastWindow(120, 40) * MULTI_TOKENS.length, 40),
  formula: `per token (120 each), windows from their first request: (⌈120/L⌉ − 1)·W + ${ROUNDS}, the 4 tokens' last windows sharing the streams`,
  providerTarget: false,
};

/** Four processes, one token, the budget shared through Redis. */
const PROCESSES = 4;
const PROCESS_STREAMS = 20;
const processes: Scenario = {
  ...procore,
  id: 'processes',
  title: `Procore, ${PROCESSES} client processes sharing one token: 3,600/hour (here 100 per 2 s window, clock-aligned), 300 requests in all (75 per process), ${PROCESS_STREAMS} streams per process`,
  streams: PROCESS_STREAMS,
  processes: PROCESSES,
  physicalMs: (s) => alignedPhysical(300, 100, W, s, PROCESS_STREAMS * PROCESSES),
  formula: `one budget for all processes, clock-aligned windows: d = first boundary − start, the first window takes F = min(L, S·⌈d/latency⌉), then d + (⌈(N − F)/L⌉ − 1)·W + ${ROUNDS}, S = ${PROCESSES} × ${PROCESS_STREAMS} streams`,
  providerTarget: false,
};

/**
 * Shopify REST's leaky bucket (40 restoring 20 a second, as in `shopify`) shared by four
 * processes through Redis: one bucket for all, so the least time is the single-process one.
 */
const shopifyProcesses: Scenario = {
  ...shopify,
  id: 'shopify-processes',
  title: `Shopify REST, ${PROCESSES} client processes sharing one token: a leaky bucket of 40 restoring 2 a second (here 20, timeScale 10), 200 requests in all (50 per process), ${PROCESS_STREAMS / 2} streams per process`,
  streams: PROCESS_STREAMS / 2,
  processes: PROCESSES,
  formula: `one bucket for all processes, leaky bucket of C restoring R a second: (N − C)/R + latency, S = ${PROCESSES} × ${PROCESS_STREAMS / 2} streams`,
  providerTarget: false,
};

// ---- steadiness: the same work repeated, min / median / max ----------------------------------

const REPS = 3;

/**
 * The steadiness rows take the workloads the independent harness measured, not the 2-s windows of
 * the rows above: Procore's hour compressed to 6 s (120 per window), 360 GETs over 10 streams. On
 * 2-s windows the fixed `resetGuardMs` (50 ms) at each boundary is 2.5 % by itself; the rows above
 * keep that stress, these measure steadiness at the harness's scale.
 */
const STEADY_W = 6000;
const steadyProcore: Scenario = {
  ...procore,
  id: 'steady-procore',
  title:
    'Procore: 120/hour (here per 6 s, clock-aligned), resets in whole unix seconds, each repetition at a random phase of the window: 360 requests, 10 streams',
  sim: { timeScale: 3_600_000 / STEADY_W, procore: { limit: 120 } },
  timeScale: 3_600_000 / STEADY_W,
  requests: 360,
  streams: 10,
  limit: 120,
  windowMs: STEADY_W,
  phaseMs: STEADY_W / 2,
  rxProvider: () => providers.procore({ hints: { hourly: { limit: 120, windowMs: STEADY_W } } }),
  physicalMs: (s, rtt) => alignedPhysical(360, 120, STEADY_W, s, 10, rtt),
  formula: `clock-aligned windows: d = first boundary − start; the first window takes F = min(L, 1 + S·⌊(d − rtt)/rtt⌋) (one request first, then S per round trip), then d + (⌈(N − F)/L⌉ − 1)·W + ⌈r/S⌉·rtt (the r requests of the last window); rtt = the median round trip of the run`,
  repetitions: REPS,
  randomPhase: true,
  providerTarget: false,
};

/** Planning Center's 20-s period compressed to 4 s; the limit halved 30 into the second window. */
const DROP_SCALE = 5;
const DROP_W = 20_000 / DROP_SCALE;
const steadyDrop: Scenario = {
  ...halved,
  id: 'steady-drop',
  title: `Planning Center: 100 per 20 s (here 4 s), halved to 50 without notice when the ${HALVE_AT_REQUEST}th request reaches the server: 300 requests, 30 streams`,
  sim: { timeScale: DROP_SCALE },
  timeScale: DROP_SCALE,
  requests: 300,
  windowMs: DROP_W,
  rxProvider: () => providers.planningCenter({ hints: { default: { windowMs: DROP_W } } }),
  // 100, then 50 (29 before the change, 21 after), then three windows of 50.
  physicalMs: (_s, rtt) => 4 * DROP_W + rounds(50, 30, rtt),
  formula: `windows from their first request: 100, then 50 (29 before the change, 21 after), then three of 50: 4·W + ⌈r/S⌉·rtt (rtt = the median round trip of the run)`,
  repetitions: REPS,
};

const steadySkew: Scenario = {
  ...steadyProcore,
  id: 'steady-skew',
  title:
    'Procore with the server clock 30 s ahead of ours (Date and resets): 120 per 6 s, random phase, 360 requests, 10 streams',
  sim: { ...steadyProcore.sim, clockOffsetMs: 30_000 },
};

/** TEOS's rolling day compressed to 8 s (the minute to 5.6 ms, never binding): 300 per day. */
const TEOS_DAY_SCALE = 86_400_000 / 8000;
const steadyTeosDay: Scenario = {
  id: 'steady-teos-day',
  title:
    'TEOS, the rolling daily quota binding: 300 per rolling day (here 8 s; the minute allows 100 per 5.6 ms), 500 requests, 20 streams',
  provider: 'teos',
  sim: { timeScale: TEOS_DAY_SCALE, teos: { perMinute: 100, perDay: 300, headersAfter: 1 } },
  timeScale: TEOS_DAY_SCALE,
  tokens: [TOKEN],
  requests: 500,
  streams: 20,
  request: (i) => get(`/api/v1/items/${i}`),
  limit: 300,
  windowMs: 8000,
  extraWindows: [{ limit: 100, windowMs: 60_000 / TEOS_DAY_SCALE }],
  windowKind: 'rolling',
  retryPosts: false,
  rxProvider: () =>
    providers.teos({
      hints: { minute: { windowMs: 60_000 / TEOS_DAY_SCALE, pacing: 'burst' }, day: { limit: 300, windowMs: 8000 } },
    }),
  impossible: 0,
  // The 200 beyond the day's 300 go as the first 200 age out, a day after they arrived.
  physicalMs: (_s, rtt) => 8000 + rounds(200, 20, rtt),
  formula: `rolling day: the (N − L) requests past the quota go a day after the first (N − L): W + ⌈(N − L)/S⌉·rtt (rtt = the median round trip of the run)`,
  providerTarget: false,
  repetitions: REPS,
};

const LEGACY = 'GET /projects/:id/legacy_reports';
const steadyLegacy: Scenario = {
  id: 'steady-legacy',
  title:
    'Fieldwire legacy endpoint: 10 per second (aligned, undocumented: no header until a 429), random phase, 100 requests, 10 streams',
  provider: 'fieldwire',
  sim: { timeScale: 1, fieldwire: { legacy: [LEGACY], legacyLimit: 10, legacyWindowMs: 1000 } },
  timeScale: 1,
  tokens: [TOKEN],
  requests: 100,
  streams: 10,
  request: (i) => get(`/projects/${1000 + i}/legacy_reports`),
  // The competitors are told the true numbers (a user who measured them); rx-ratelimit infers them.
  limit: 10,
  windowMs: 1000,
  windowKind: 'aligned',
  retryPosts: false,
  rxProvider: () => providers.fieldwire(),
  impossible: 0,
  physicalMs: (s, rtt) => alignedPhysical(100, 10, 1000, s, 10, rtt),
  formula: steadyProcore.formula,
  providerTarget: false,
  repetitions: REPS,
  randomPhase: true,
  learnsFromFirst429: true,
};

export const SCENARIOS: readonly Scenario[] = [
  procore,
  planningCenter,
  fieldwire,
  pipedrive,
  teos,
  github,
  hubspot,
  atlassian,
  shopify,
  halved,
  skew,
  daily,
  multi,
  processes,
  shopifyProcesses,
  steadyProcore,
  steadyDrop,
  steadyTeosDay,
  steadySkew,
  steadyLegacy,
];

/** The requests process `part` (0-based) of a scenario sends: every P-th, from `part`. */
export function shareOf(sc: Scenario, part: number): number[] {
  const p = sc.processes ?? 1;
  return Array.from({ length: sc.requests }, (_, i) => i).filter((i) => i % p === part);
}

/** The Redis the multi-process scenario shares state through (never flushed: keys are per run). */
export const REDIS = { host: '127.0.0.1', port: 6379 } as const;

export function scenarioById(id: string): Scenario {
  const s = SCENARIOS.find((x) => x.id === id);
  if (!s) throw new Error(`unknown scenario ${id}`);
  return s;
}

/**
 * For a scenario whose profile paces smoothly by default: the shortest time an even spread
 * allows, one request every W/L, (N − 1)·W/L + latency.
 */
export function evenSpreadMs(s: Scenario): number {
  return ((s.requests - 1) * s.windowMs) / s.limit + LATENCY_MS;
}

/** Longest a run may take before its unfinished requests count as lost. */
export function deadlineMs(s: Scenario, physical: number): number {
  return Math.round(physical * 2 + 4000);
}

// ---- what a user who read the provider's doc would do after a 429 --------------------------

type HeaderGet = (name: string) => string | null | undefined;

function retryAfterMs(h: HeaderGet, now: number): number | undefined {
  const v = h('retry-after');
  if (v === null || v === undefined || v.trim() === '') return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(v);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

const unixSeconds = (v: string | null | undefined, now: number) => {
  const n = Number(v);
  return v && Number.isFinite(n) && n > 0 ? Math.max(0, n * 1000 - now) : undefined;
};

/**
 * How long the provider's doc says to wait after a 429, read the way the doc describes it:
 * `Retry-After` when present; else Procore's `X-Rate-Limit-Reset` (unix seconds), Pipedrive's
 * `x-ratelimit-reset` (seconds left), TEOS's `X-Rate-Limit-Reset` (ISO 8601), Fieldwire's
 * `ratelimit-reset` / `X-RateLimit-Reset` (unix seconds). No clock-skew correction: the docs do
 * not mention one. `undefined` when the response says nothing.
 */
export function docRetryMs(provider: SimulatedProvider, h: HeaderGet, now: number): number | undefined {
  const ra = retryAfterMs(h, now);
  if (ra !== undefined) return ra;
  switch (provider) {
    case 'procore':
      return unixSeconds(h('x-rate-limit-reset'), now);
    case 'pipedrive': {
      const left = Number(h('x-ratelimit-reset'));
      return Number.isFinite(left) ? Math.max(0, left * 1000) : undefined;
    }
    case 'teos': {
      const at = Date.parse(h('x-rate-limit-reset') ?? '');
      return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
    }
    case 'fieldwire':
      return unixSeconds(h('ratelimit-reset'), now) ?? unixSeconds(h('x-ratelimit-reset'), now);
    case 'planningCenter':
      return undefined;
    case 'github':
      return unixSeconds(h('x-ratelimit-reset'), now);
    case 'hubspot':
      // The burst limit is a rolling 10 s with no reset header; the doc gives no wait.
      return undefined;
    case 'atlassian': {
      const at = Date.parse(h('x-ratelimit-reset') ?? '');
      return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
    }
    case 'shopify':
      // REST sends Retry-After (read above); GraphQL's wait is in the body, which this does not read.
      return undefined;
  }
}

/** axios-retry's `exponentialDelay` (2^n · 100 ms, + up to 20 %), the fallback when a 429 says nothing. */
export function exponentialMs(retryNumber: number): number {
  const delay = 2 ** retryNumber * 100;
  return delay + delay * 0.2 * Math.random();
}

/** The wait every competitor's retry uses after a 429: the doc's time, else exponential backoff. */
export function competitorRetryMs(
  provider: SimulatedProvider,
  h: HeaderGet,
  retryNumber: number,
  now = Date.now(),
): number {
  return docRetryMs(provider, h, now) ?? exponentialMs(retryNumber);
}
