/**
 * The simulator's engine: a pure request -> response function with per-provider, per-credential
 * state and an injectable clock. No I/O, no timers; the HTTP server and the virtual-time adapter
 * are thin layers over it.
 */
import { imfFixdate } from './format.js';
import { BASE_DEFAULTS, resolve, type Resolved } from './limits.js';
import { credentialLabel, credentialOf, lowerHeaders, sha256, splitPath } from './request.js';
import { atlassianHandle, atlassianState, type AtlassianState } from './sim/atlassian.js';
import { fieldwireHandle, fieldwireState, type FieldwireState } from './sim/fieldwire.js';
import { githubHandle, githubState, type GithubState } from './sim/github.js';
import { hubspotHandle, hubspotState, type HubspotState } from './sim/hubspot.js';
import { pipedriveHandle, pipedriveState, type PipedriveAbuse, type PipedriveState } from './sim/pipedrive.js';
import { planningCenterHandle, planningCenterState, type PlanningCenterState } from './sim/planningCenter.js';
import { procoreHandle, procoreState, type ProcoreState } from './sim/procore.js';
import { TEXT_TYPE, type SimContext, type SimOutcome } from './sim/shared.js';
import { shopifyHandle, shopifyState, type ShopifyState } from './sim/shopify.js';
import { teosHandle, teosState, type TeosState } from './sim/teos.js';
import {
  SIMULATED_PROVIDERS,
  type JsonLayout,
  type LimitChange,
  type LimitsOf,
  type SimulatedProvider,
  type SimulatorCounts,
  type SimulatorOptions,
  type SimulatorRequest,
  type SimulatorResponse,
  type SimulatorStats,
} from './types.js';
import { isProvider, validateLimits, validateOptions } from './validate.js';

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
