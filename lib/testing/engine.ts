/**
 * The simulator's engine: a pure request -> response function with per-provider, per-credential
 * state and an injectable clock. No I/O, no timers; the HTTP server and the virtual-time adapter
 * are thin layers over it.
 */
import { createHash } from 'node:crypto';

import { imfFixdate } from './format.js';
import {
  FIELDWIRE_DEFAULTS,
  fieldwireHandle,
  fieldwireState,
  type FieldwireConfig,
  type FieldwireState,
} from './sim/fieldwire.js';
import {
  PIPEDRIVE_DEFAULTS,
  pipedriveHandle,
  pipedriveState,
  type PipedriveAbuse,
  type PipedriveConfig,
  type PipedriveState,
} from './sim/pipedrive.js';
import {
  PLANNING_CENTER_DEFAULTS,
  planningCenterHandle,
  planningCenterState,
  type PlanningCenterConfig,
  type PlanningCenterState,
} from './sim/planningCenter.js';
import { PROCORE_DEFAULTS, procoreHandle, procoreState, type ProcoreConfig, type ProcoreState } from './sim/procore.js';
import { GITHUB_DEFAULTS, githubHandle, githubState, type GithubConfig, type GithubState } from './sim/github.js';
import {
  ATLASSIAN_DEFAULTS,
  atlassianHandle,
  atlassianState,
  type AtlassianConfig,
  type AtlassianState,
} from './sim/atlassian.js';
import { HUBSPOT_DEFAULTS, hubspotHandle, hubspotState, type HubspotConfig, type HubspotState } from './sim/hubspot.js';
import { SHOPIFY_DEFAULTS, shopifyHandle, shopifyState, type ShopifyConfig, type ShopifyState } from './sim/shopify.js';
import { endpointKey, TEXT_TYPE, type SimContext, type SimOutcome } from './sim/shared.js';
import { TEOS_DEFAULTS, teosHandle, teosState, type TeosConfig, type TeosState } from './sim/teos.js';
import {
  SIMULATED_PROVIDERS,
  type JsonLayout,
  type LimitChange,
  type LimitsOf,
  type PipedriveAuth,
  type SimulatedProvider,
  type SimulatorCounts,
  type SimulatorLimits,
  type SimulatorOptions,
  type SimulatorRequest,
  type SimulatorResponse,
  type SimulatorStats,
} from './types.js';

/**
 * The simulator's engine. Create it with {@link createSimulatorEngine}.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type SimulatorEngine } from 'rx-ratelimit/testing';
 *
 * const engine: SimulatorEngine = createSimulatorEngine({ teos: { perMinute: 10 } });
 * engine.handle({ provider: 'teos', path: '/jobs', headers: { Authorization: 'ApiKey k' } }).status; // 200
 * ```
 */
export interface SimulatorEngine {
  /**
   * Answers one request as the provider would, at the engine's `now()`.
   *
   * @example
   * ```ts
   * import { createSimulatorEngine } from 'rx-ratelimit/testing';
   *
   * const engine = createSimulatorEngine({ procore: { limit: 2 } });
   * const res = engine.handle({ provider: 'procore', path: '/rest/v1.0/projects', headers: { Authorization: 'Bearer t' } });
   * res.headers['X-Rate-Limit-Remaining']; // '1'
   * ```
   */
  handle(request: SimulatorRequest): SimulatorResponse;
  /**
   * Statistics per provider, per credential label.
   *
   * @example
   * ```ts
   * import { createSimulatorEngine, credentialLabel } from 'rx-ratelimit/testing';
   *
   * const engine = createSimulatorEngine();
   * engine.stats().procore[credentialLabel('Bearer t')]; // { ok, limited, blocked, sentWhileLimited, total } or undefined
   * ```
   */
  stats(): SimulatorStats;
  /**
   * The counts of one credential: the `Authorization` header value (for Pipedrive api_token
   * requests, the token itself). Zeros when it was never seen.
   *
   * @example
   * ```ts
   * import { createSimulatorEngine } from 'rx-ratelimit/testing';
   *
   * const engine = createSimulatorEngine();
   * engine.statsFor('pipedrive', 'my-api-token').limited; // 0
   * ```
   */
  statsFor(provider: SimulatedProvider, credential: string): SimulatorCounts;
  /**
   * Forgets every window, log, block and statistic (limit changes and options stay).
   *
   * @example
   * ```ts
   * import { createSimulatorEngine } from 'rx-ratelimit/testing';
   *
   * const engine = createSimulatorEngine();
   * engine.reset();
   * ```
   */
  reset(): void;
  /**
   * Changes a provider's limits from now on, without notice (like a `limitChanges` entry at `now()`).
   *
   * @example
   * ```ts
   * import { createSimulatorEngine } from 'rx-ratelimit/testing';
   *
   * const engine = createSimulatorEngine();
   * engine.changeLimits('planningCenter', { limit: 50 });
   * ```
   */
  changeLimits<P extends SimulatedProvider>(provider: P, set: LimitsOf<P>): void;
  /** The client clock the engine reads (epoch ms). */
  now(): number;
  /** The server clock: `now() + clockOffsetMs`. */
  serverNow(): number;
  /** `latencyMs`, for the HTTP server and the virtual adapter. */
  readonly latencyMs: number;
  /** `timeScale`. */
  readonly timeScale: number;
}

/**
 * A safe label for a credential: `cred_` and the first 16 hex digits of its SHA-256. It names the
 * credential in {@link SimulatorEngine.stats} without revealing it.
 *
 * @example
 * ```ts
 * import { credentialLabel } from 'rx-ratelimit/testing';
 *
 * credentialLabel('Bearer my-token'); // 'cred_…'
 * ```
 */
export function credentialLabel(credential: string): string {
  return `cred_${sha256(credential).slice(0, 16)}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * Where the simulator's HTTP server mounts each provider.
 *
 * @example
 * ```ts
 * import { PROVIDER_PREFIXES } from 'rx-ratelimit/testing';
 *
 * PROVIDER_PREFIXES.planningCenter; // '/pco'
 * ```
 */
export const PROVIDER_PREFIXES: Readonly<Record<SimulatedProvider, string>> = {
  procore: '/procore',
  planningCenter: '/pco',
  fieldwire: '/fieldwire',
  pipedrive: '/pipedrive',
  teos: '/teos',
  github: '/github',
  hubspot: '/hubspot',
  atlassian: '/atlassian',
  shopify: '/shopify',
};

interface Resolved {
  readonly procore: ProcoreConfig;
  readonly planningCenter: PlanningCenterConfig;
  readonly fieldwire: FieldwireConfig;
  readonly pipedrive: PipedriveConfig;
  readonly teos: TeosConfig;
  readonly github: GithubConfig;
  readonly hubspot: HubspotConfig;
  readonly atlassian: AtlassianConfig;
  readonly shopify: ShopifyConfig;
}

interface States {
  readonly procore: Map<string, ProcoreState>;
  readonly planningCenter: Map<string, PlanningCenterState>;
  readonly fieldwire: Map<string, FieldwireState>;
  readonly pipedrive: Map<string, PipedriveState>;
  readonly teos: Map<string, TeosState>;
  readonly github: Map<string, GithubState>;
  readonly hubspot: Map<string, HubspotState>;
  readonly atlassian: Map<string, AtlassianState>;
  readonly shopify: Map<string, ShopifyState>;
}

interface MutableCounts {
  ok: number;
  limited: number;
  blocked: number;
  sentWhileLimited: number;
  total: number;
}

/**
 * Creates the simulator's engine: Procore, Planning Center, Fieldwire, Pipedrive and TEOS as their
 * docs describe them (headers, units and bodies), per credential, on an injectable clock.
 *
 * Time: windows last `W / timeScale` ms of the clock `now()`; the server clock is
 * `now() + clockOffsetMs`; fixed windows are aligned to multiples of their (scaled) length on the
 * server clock; every absolute time reported (`Date`, resets) is on the server clock, every
 * duration (`Retry-After`, seconds left, periods) in real (scaled) seconds, rounded up.
 *
 * @throws TypeError naming the option when an option is invalid.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine } from 'rx-ratelimit/testing';
 *
 * let t = Date.UTC(2026, 0, 1);
 * const engine = createSimulatorEngine({ now: () => t, pipedrive: { plan: 'advanced' } });
 * const res = engine.handle({ provider: 'pipedrive', method: 'POST', path: '/v1/deals', query: { api_token: 'tok' } });
 * res.headers['x-ratelimit-limit'];      // '40'
 * res.headers['x-daily-requests-left'];  // '9999'
 * t += 2000;                              // a new 2-second window
 * ```
 */
export function createSimulatorEngine(options: SimulatorOptions = {}): SimulatorEngine {
  validateOptions(options);
  const clock = options.now ?? Date.now;
  const scale = options.timeScale ?? 1;
  const offset = options.clockOffsetMs ?? 0;
  const latencyMs = options.latencyMs ?? 0;
  const layout: JsonLayout = options.jsonLayout ?? 'compact';
  const abuse: PipedriveAbuse | undefined =
    options.abuse === false
      ? undefined
      : {
          threshold: options.abuse?.['429sBeforeBlock'] ?? 10,
          blockMs: options.abuse?.blockMs ?? 60_000 / scale,
        };

  const base = resolve(BASE_DEFAULTS, options);
  // Stable sort by time; changeLimits() inserts in time order.
  const changes: LimitChange[] = [...(options.limitChanges ?? [])].sort((a, b) => a.at - b.at);

  let states = newStates();
  let counts = newCounts();

  function limitsAt(t: number): Resolved {
    let current = base;
    for (const change of changes) {
      if (change.at > t) break;
      current = resolve(current, { [change.provider]: change.set });
    }
    return current;
  }

  function stateOf<S>(map: Map<string, S>, key: string, create: () => S): S {
    let s = map.get(key);
    if (s === undefined) {
      s = create();
      map.set(key, s);
    }
    return s;
  }

  function handle(request: SimulatorRequest): SimulatorResponse {
    const t = clock();
    const serverNow = t + offset;
    const date = imfFixdate(serverNow);
    const provider = request.provider;
    if (!isProvider(provider)) {
      return { status: 404, headers: { Date: date, 'Content-Type': TEXT_TYPE }, body: 'Not Found' };
    }
    const method = (request.method ?? 'GET').toUpperCase();
    const [pathOnly, query] = splitPath(request.path ?? '/', request.query);
    const headers = lowerHeaders(request.headers);
    const ctx: SimContext = { serverNow, scale, method, path: pathOnly, query, layout, headers };

    const credential = credentialOf(provider, headers, query);
    if (credential === undefined) {
      return {
        status: 401,
        headers: { Date: date, 'Content-Type': TEXT_TYPE },
        body: 'Unauthorized',
      };
    }
    const limits = limitsAt(t);
    const key = `${credential.auth}:${sha256(credential.value)}`;
    let outcome: SimOutcome;
    switch (provider) {
      case 'procore':
        outcome = procoreHandle(stateOf(states.procore, key, procoreState), ctx, limits.procore);
        break;
      case 'planningCenter':
        outcome = planningCenterHandle(
          stateOf(states.planningCenter, key, planningCenterState),
          ctx,
          limits.planningCenter,
        );
        break;
      case 'fieldwire':
        outcome = fieldwireHandle(stateOf(states.fieldwire, key, fieldwireState), ctx, limits.fieldwire);
        break;
      case 'pipedrive':
        outcome = pipedriveHandle(
          stateOf(states.pipedrive, key, pipedriveState),
          ctx,
          limits.pipedrive,
          credential.auth === 'oauth' ? 'oauth' : 'api_token',
          abuse,
        );
        break;
      case 'teos':
        outcome = teosHandle(stateOf(states.teos, key, teosState), ctx, limits.teos);
        break;
      case 'github':
        outcome = githubHandle(stateOf(states.github, key, githubState), ctx, limits.github);
        break;
      case 'hubspot':
        outcome = hubspotHandle(stateOf(states.hubspot, key, hubspotState), ctx, limits.hubspot);
        break;
      case 'atlassian':
        outcome = atlassianHandle(stateOf(states.atlassian, key, atlassianState), ctx, limits.atlassian);
        break;
      case 'shopify':
        outcome = shopifyHandle(stateOf(states.shopify, key, shopifyState), ctx, limits.shopify);
        break;
    }
    count(provider, credentialLabel(credential.value), outcome);
    return { status: outcome.status, headers: { Date: date, ...outcome.headers }, body: outcome.body };
  }

  function count(provider: SimulatedProvider, label: string, outcome: SimOutcome): void {
    const byLabel = counts[provider];
    let c = byLabel.get(label);
    if (c === undefined) {
      c = { ok: 0, limited: 0, blocked: 0, sentWhileLimited: 0, total: 0 };
      byLabel.set(label, c);
    }
    c.total += 1;
    // A throttled answer in a 200 (Shopify GraphQL) is a rate-limit answer, not a success.
    if (outcome.limited === true) c.limited += 1;
    else if (outcome.status >= 200 && outcome.status < 300) c.ok += 1;
    else if (outcome.limited ?? outcome.status === 429) c.limited += 1;
    else if (outcome.status === 403 && outcome.limited === undefined) c.blocked += 1;
    if (outcome.sentWhileLimited) c.sentWhileLimited += 1;
  }

  return {
    handle,
    stats() {
      const out = {} as Record<SimulatedProvider, Record<string, SimulatorCounts>>;
      for (const p of SIMULATED_PROVIDERS) {
        out[p] = Object.fromEntries([...counts[p]].map(([label, c]) => [label, { ...c }]));
      }
      return out;
    },
    statsFor(provider, credential) {
      const c = counts[provider].get(credentialLabel(credential));
      return c ? { ...c } : { ok: 0, limited: 0, blocked: 0, sentWhileLimited: 0, total: 0 };
    },
    reset() {
      states = newStates();
      counts = newCounts();
    },
    changeLimits(provider, set) {
      const change = { at: clock(), provider, set } as LimitChange;
      validateLimits({ [provider]: set }, `changeLimits(${provider})`);
      // Insert after every change at or before that time.
      let i = changes.length;
      while (i > 0 && (changes[i - 1]?.at ?? -Infinity) > change.at) i--;
      changes.splice(i, 0, change);
    },
    now: () => clock(),
    serverNow: () => clock() + offset,
    latencyMs,
    timeScale: scale,
  };
}

const BASE_DEFAULTS: Resolved = {
  procore: PROCORE_DEFAULTS,
  planningCenter: PLANNING_CENTER_DEFAULTS,
  fieldwire: FIELDWIRE_DEFAULTS,
  pipedrive: PIPEDRIVE_DEFAULTS,
  teos: TEOS_DEFAULTS,
  github: GITHUB_DEFAULTS,
  hubspot: HUBSPOT_DEFAULTS,
  atlassian: ATLASSIAN_DEFAULTS,
  shopify: SHOPIFY_DEFAULTS,
};

function newStates(): States {
  return {
    procore: new Map(),
    planningCenter: new Map(),
    fieldwire: new Map(),
    pipedrive: new Map(),
    teos: new Map(),
    github: new Map(),
    hubspot: new Map(),
    atlassian: new Map(),
    shopify: new Map(),
  };
}

function newCounts(): Record<SimulatedProvider, Map<string, MutableCounts>> {
  return {
    procore: new Map(),
    planningCenter: new Map(),
    fieldwire: new Map(),
    pipedrive: new Map(),
    teos: new Map(),
    github: new Map(),
    hubspot: new Map(),
    atlassian: new Map(),
    shopify: new Map(),
  };
}

function isProvider(p: string): p is SimulatedProvider {
  return (SIMULATED_PROVIDERS as readonly string[]).includes(p);
}

/** Keeps defined values of `over` over `under`. */
function merge<T extends object>(under: T, over: object | undefined): T {
  if (over === undefined) return under;
  const out = { ...under } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over)) if (v !== undefined) out[k] = v;
  return out as T;
}

function resolve(current: Resolved, over: SimulatorLimits): Resolved {
  const fw = over.fieldwire;
  let fieldwire = current.fieldwire;
  if (fw !== undefined) {
    const endpoints: Record<string, { minute: number; hour: number }> = { ...fieldwire.endpoints };
    for (const [k, v] of Object.entries(fw.endpoints ?? {}))
      endpoints[endpointKey(k)] = { minute: v.minute, hour: v.hour };
    fieldwire = {
      ...merge(fieldwire, { catchAll: fw.catchAll, legacyLimit: fw.legacyLimit, legacyWindowMs: fw.legacyWindowMs }),
      endpoints,
      legacy: fw.legacy !== undefined ? fw.legacy.map((k) => endpointKey(k)) : fieldwire.legacy,
    };
  }
  return {
    procore: merge(current.procore, over.procore),
    planningCenter: merge(current.planningCenter, over.planningCenter),
    fieldwire,
    pipedrive: merge(current.pipedrive, over.pipedrive),
    teos: merge(current.teos, over.teos),
    github: merge(current.github, over.github),
    hubspot: merge(current.hubspot, over.hubspot),
    atlassian: {
      ...merge(current.atlassian, { ...over.atlassian, burstPerSecond: undefined }),
      burstPerSecond: merge(current.atlassian.burstPerSecond, over.atlassian?.burstPerSecond),
    },
    shopify: merge(current.shopify, over.shopify),
  };
}

function splitPath(path: string, query: SimulatorRequest['query']): [string, URLSearchParams] {
  const q = path.indexOf('?');
  const pathOnly = q < 0 ? path : path.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : path.slice(q + 1));
  if (query instanceof URLSearchParams) {
    for (const [k, v] of query) params.set(k, v);
  } else if (query !== undefined) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  }
  return [pathOnly.startsWith('/') ? pathOnly : `/${pathOnly}`, params];
}

function lowerHeaders(headers: SimulatorRequest['headers']): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out.set(k.toLowerCase(), typeof v === 'string' ? v : v.join(', '));
  }
  return out;
}

interface Credential {
  readonly value: string;
  readonly auth: PipedriveAuth | 'authorization';
}

function credentialOf(
  provider: SimulatedProvider,
  headers: Map<string, string>,
  query: URLSearchParams,
): Credential | undefined {
  const authorization = headers.get('authorization')?.trim();
  if (provider === 'pipedrive') {
    const apiToken = query.get('api_token') ?? headers.get('x-api-token');
    if (apiToken) return { value: apiToken, auth: 'api_token' };
    if (authorization) {
      return { value: authorization, auth: /^bearer\s/i.test(authorization) ? 'oauth' : 'api_token' };
    }
    return undefined;
  }
  return authorization ? { value: authorization, auth: 'authorization' } : undefined;
}

// ---- validation --------------------------------------------------------------------------

function fail(option: string, expected: string): never {
  throw new TypeError(`rx-ratelimit/testing: option \`${option}\` must be ${expected}`);
}

function checkNumber(
  value: unknown,
  option: string,
  opts: { min?: number; positive?: boolean; integer?: boolean },
): void {
  if (value === undefined) return;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (opts.integer !== true || Number.isInteger(value)) &&
    (opts.positive !== true || value > 0) &&
    (opts.min === undefined || value >= opts.min);
  if (!ok) {
    const what = [
      opts.integer === true ? 'an integer' : 'a finite number',
      opts.positive === true ? '> 0' : opts.min !== undefined ? `>= ${opts.min}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    fail(option, what);
  }
}

const COUNT = { integer: true, min: 0 } as const;
const PLANS = ['essential', 'advanced', 'professional', 'enterprise'];

function validateLimits(limits: SimulatorLimits, at: string): void {
  const p = at === '' ? '' : `${at}.`;
  const { procore, planningCenter, fieldwire, pipedrive, teos, github, hubspot, atlassian, shopify } = limits;
  checkNumber(procore?.limit, `${p}procore.limit`, COUNT);
  checkNumber(planningCenter?.limit, `${p}planningCenter.limit`, COUNT);
  checkNumber(planningCenter?.highOffsetLimit, `${p}planningCenter.highOffsetLimit`, COUNT);
  checkNumber(fieldwire?.catchAll, `${p}fieldwire.catchAll`, COUNT);
  checkNumber(fieldwire?.legacyLimit, `${p}fieldwire.legacyLimit`, COUNT);
  checkNumber(fieldwire?.legacyWindowMs, `${p}fieldwire.legacyWindowMs`, { positive: true });
  for (const [k, v] of Object.entries(fieldwire?.endpoints ?? {})) {
    if (typeof v !== 'object' || v === null) fail(`${p}fieldwire.endpoints['${k}']`, 'an object { minute, hour }');
    checkNumber(v.minute, `${p}fieldwire.endpoints['${k}'].minute`, COUNT);
    checkNumber(v.hour, `${p}fieldwire.endpoints['${k}'].hour`, COUNT);
    if (v.minute === undefined || v.hour === undefined)
      fail(`${p}fieldwire.endpoints['${k}']`, 'an object { minute, hour }');
  }
  if (
    fieldwire?.legacy !== undefined &&
    (!Array.isArray(fieldwire.legacy) || fieldwire.legacy.some((k) => typeof k !== 'string'))
  ) {
    fail(`${p}fieldwire.legacy`, 'an array of endpoint keys');
  }
  if (pipedrive?.plan !== undefined && !PLANS.includes(pipedrive.plan))
    fail(`${p}pipedrive.plan`, `one of ${PLANS.join(', ')}`);
  checkNumber(pipedrive?.limit, `${p}pipedrive.limit`, COUNT);
  checkNumber(pipedrive?.dailyLimit, `${p}pipedrive.dailyLimit`, COUNT);
  checkNumber(teos?.perMinute, `${p}teos.perMinute`, COUNT);
  checkNumber(teos?.perDay, `${p}teos.perDay`, COUNT);
  checkNumber(teos?.headersAfter, `${p}teos.headersAfter`, COUNT);
  for (const k of ['core', 'search', 'codeSearch', 'graphql', 'contentPerMinute', 'contentPerHour'] as const)
    checkNumber(github?.[k], `${p}github.${k}`, COUNT);
  if (github?.limitedStatus !== undefined && github.limitedStatus !== 403 && github.limitedStatus !== 429)
    fail(`${p}github.limitedStatus`, '403 or 429');
  checkNumber(hubspot?.perInterval, `${p}hubspot.perInterval`, COUNT);
  if (hubspot?.perDay !== false) checkNumber(hubspot?.perDay, `${p}hubspot.perDay`, COUNT);
  checkNumber(hubspot?.searchPerSecond, `${p}hubspot.searchPerSecond`, COUNT);
  if (hubspot?.timeZone !== undefined && !knownTimeZone(hubspot.timeZone))
    fail(`${p}hubspot.timeZone`, 'an IANA time zone that Intl knows, such as "America/New_York"');
  if (atlassian?.quota !== false) checkNumber(atlassian?.quota, `${p}atlassian.quota`, COUNT);
  for (const k of ['readPoints', 'writePoints', 'issueWritesPer2s', 'issueWritesPer30s'] as const)
    checkNumber(atlassian?.[k], `${p}atlassian.${k}`, COUNT);
  for (const [m, v] of Object.entries(atlassian?.burstPerSecond ?? {})) {
    if (!['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(m))
      fail(`${p}atlassian.burstPerSecond.${m}`, 'one of GET, POST, PUT, PATCH, DELETE');
    checkNumber(v, `${p}atlassian.burstPerSecond.${m}`, { integer: true, positive: true });
  }
  for (const k of ['restBucket', 'graphqlBucket'] as const)
    checkNumber(shopify?.[k], `${p}shopify.${k}`, { integer: true, positive: true });
  for (const k of ['restPerSecond', 'graphqlPerSecond'] as const)
    checkNumber(shopify?.[k], `${p}shopify.${k}`, { positive: true });
}

function knownTimeZone(timeZone: unknown): boolean {
  if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 64) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

function validateOptions(options: SimulatorOptions): void {
  if (options.now !== undefined && typeof options.now !== 'function') fail('now', 'a function returning epoch ms');
  checkNumber(options.timeScale, 'timeScale', { positive: true });
  checkNumber(options.clockOffsetMs, 'clockOffsetMs', {});
  checkNumber(options.latencyMs, 'latencyMs', { min: 0 });
  if (options.jsonLayout !== undefined && options.jsonLayout !== 'compact' && options.jsonLayout !== 'doc') {
    fail('jsonLayout', "'compact' or 'doc'");
  }
  if (options.abuse !== undefined && options.abuse !== false) {
    checkNumber(options.abuse['429sBeforeBlock'], "abuse['429sBeforeBlock']", COUNT);
    checkNumber(options.abuse.blockMs, 'abuse.blockMs', { min: 0 });
  }
  validateLimits(options, '');
  (options.limitChanges ?? []).forEach((change, i) => {
    checkNumber(change.at, `limitChanges[${i}].at`, {});
    if (change.at === undefined) fail(`limitChanges[${i}].at`, 'epoch ms');
    if (!isProvider(change.provider)) fail(`limitChanges[${i}].provider`, `one of ${SIMULATED_PROVIDERS.join(', ')}`);
    validateLimits({ [change.provider]: change.set }, `limitChanges[${i}].set`);
  });
}
