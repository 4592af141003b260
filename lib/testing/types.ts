/**
 * Public types of the provider simulator (`rx-ratelimit/testing`); each provider's limit
 * overrides are in providerLimits.ts.
 *
 * The simulator is written from the providers' own documentation, not from the client code in
 * `lib/providers`, so that it is an independent check of it.
 */
import type { SimulatorLimits } from './providerLimits.js';

/**
 * The providers the simulator reproduces. The HTTP server mounts each under its own path prefix.
 *
 * @example
 * ```ts
 * import { startSimulator, type SimulatedProvider } from 'rx-ratelimit/testing';
 *
 * const sim = await startSimulator();
 * const provider: SimulatedProvider = 'planningCenter';
 * sim.urlFor(provider); // 'http://127.0.0.1:<port>/pco'
 * ```
 */
export type SimulatedProvider =
  'procore' | 'planningCenter' | 'fieldwire' | 'pipedrive' | 'teos' | 'github' | 'hubspot' | 'atlassian' | 'shopify';

/**
 * Every simulated provider, in a stable order.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, SIMULATED_PROVIDERS } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine();
 * for (const p of SIMULATED_PROVIDERS) console.log(p, Object.keys(engine.stats()[p]).length);
 * ```
 */
export const SIMULATED_PROVIDERS: readonly SimulatedProvider[] = [
  'procore',
  'planningCenter',
  'fieldwire',
  'pipedrive',
  'teos',
  'github',
  'hubspot',
  'atlassian',
  'shopify',
];

/**
 * How Pipedrive was authenticated: the `api_token` query parameter, or an OAuth `Bearer` access token.
 *
 * @example
 * ```ts
 * import { asyncScheduler } from 'rxjs';
 * import { createSimulatorEngine, virtualProvider, type PipedriveAuth } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine();
 * const auth: PipedriveAuth = 'oauth';
 * virtualProvider(engine, asyncScheduler).request('pipedrive', { path: '/v1/deals', token: 't', auth });
 * ```
 */
export type PipedriveAuth = 'api_token' | 'oauth';

/**
 * The limit overrides of one provider.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type LimitsOf } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine();
 * const set: LimitsOf<'pipedrive'> = { plan: 'enterprise' };
 * engine.changeLimits('pipedrive', set);
 * ```
 */
export type LimitsOf<P extends SimulatedProvider> = NonNullable<SimulatorLimits[P]>;

/**
 * A limit change applied, without notice, from a chosen time on.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type LimitChange } from 'rx-ratelimit/testing';
 *
 * const halve: LimitChange = { at: Date.now() + 5_000, provider: 'procore', set: { limit: 1800 } };
 * createSimulatorEngine({ limitChanges: [halve] });
 * ```
 */
export type LimitChange = {
  readonly [P in SimulatedProvider]: {
    /** When the change takes effect, in epoch ms of the engine's `now()` (the client's clock, before `clockOffsetMs`). */
    readonly at: number;
    readonly provider: P;
    /** Merged over the limits in force (Fieldwire `endpoints` merge key by key). */
    readonly set: LimitsOf<P>;
  };
}[SimulatedProvider];

/**
 * Pipedrive's abuse rule: hammering while limited earns Cloudflare's 403 page.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type AbuseOptions } from 'rx-ratelimit/testing';
 *
 * const abuse: AbuseOptions = { '429sBeforeBlock': 5, blockMs: 1_000 };
 * createSimulatorEngine({ abuse });
 * ```
 */
export interface AbuseOptions {
  /**
   * How many requests sent while already limited, within one 2-second window, are still answered
   * 429; the next one is answered 403 and starts the block. @default 10
   */
  readonly '429sBeforeBlock'?: number | undefined;
  /** How long the block lasts, in real ms (already scaled). @default 60000 / timeScale */
  readonly blockMs?: number | undefined;
}

/**
 * Layout of JSON error bodies whose exact bytes the docs do not fix.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type JsonLayout } from 'rx-ratelimit/testing';
 *
 * const layout: JsonLayout = 'doc'; // error bodies laid out exactly as in the providers' docs
 * createSimulatorEngine({ jsonLayout: layout });
 * ```
 */
export type JsonLayout = 'compact' | 'doc';

/**
 * Options of {@link createSimulatorEngine}.
 *
 * @example
 * ```ts
 * import { expect } from '@jest/globals';
 * import { TestScheduler } from 'rxjs/testing';
 * import { createSimulatorEngine, type SimulatorOptions } from 'rx-ratelimit/testing';
 *
 * const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
 * const options: SimulatorOptions = {
 *   now: () => scheduler.now(),
 *   timeScale: 1000,
 *   clockOffsetMs: 1_500,
 *   latencyMs: 20,
 *   pipedrive: { plan: 'advanced', dailyLimit: 50 },
 * };
 * const engine = createSimulatorEngine(options);
 * ```
 */
export interface SimulatorOptions extends SimulatorLimits {
  /** The client's clock in epoch ms; in virtual time pass `() => scheduler.now()`. @default Date.now */
  readonly now?: (() => number) | undefined;
  /** Time runs this many times faster: a window of W ms lasts W / timeScale ms. @default 1 */
  readonly timeScale?: number | undefined;
  /** Server clock minus client clock, in ms; shifts `Date` and every absolute time reported. @default 0 */
  readonly clockOffsetMs?: number | undefined;
  /** Time from request to response, used by the HTTP server and the virtual adapter. @default 0 */
  readonly latencyMs?: number | undefined;
  /** Limit changes at chosen times, without notice. */
  readonly limitChanges?: readonly LimitChange[] | undefined;
  /** Pipedrive's abuse rule (api_token traffic only); `false` turns it off. */
  readonly abuse?: AbuseOptions | false | undefined;
  /**
   * `'compact'` (default) sends JSON error bodies as `JSON.stringify` does, keys in the docs'
   * order; `'doc'` reproduces the docs' text layout byte for byte (one member per line, no
   * indentation). Pipedrive's body is given on one line by its docs and is the same in both.
   */
  readonly jsonLayout?: JsonLayout | undefined;
}

/**
 * A request as the engine sees it.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type SimulatorRequest } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine();
 * const request: SimulatorRequest = {
 *   provider: 'planningCenter',
 *   method: 'GET',
 *   path: '/people/v2/people',
 *   query: { offset: 40_000 },
 *   headers: { Authorization: 'Bearer pco-token' },
 * };
 * engine.handle(request).headers['X-PCO-API-Request-Rate-Limit']; // '75'
 * ```
 */
export interface SimulatorRequest {
  /** A simulated provider; anything else is answered 404. */
  readonly provider: SimulatedProvider | (string & {});
  /** @default 'GET' */
  readonly method?: string | undefined;
  /** The path under the provider's prefix; may carry a `?query`. @default '/' */
  readonly path?: string | undefined;
  /** Query parameters (merged over any in `path`). */
  readonly query?: Readonly<Record<string, string | number | undefined>> | URLSearchParams | undefined;
  /** Request headers, any case. The credential is `Authorization` (or Pipedrive's `api_token` query parameter). */
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>> | undefined;
}

/**
 * A response from the engine: header names are spelled exactly as the provider's docs spell them.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type SimulatorResponse } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine();
 * const res: SimulatorResponse = engine.handle({ provider: 'pipedrive', path: '/v1/deals?api_token=t' });
 * if (res.status === 429) JSON.parse(res.body); // { success: false, error: 'request over limit', errorCode: 429 }
 * ```
 */
export interface SimulatorResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * What happened to one credential at one provider.
 *
 * @example
 * ```ts
 * import { expect } from '@jest/globals';
 * import { createSimulatorEngine, type SimulatorCounts } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine();
 * const counts: SimulatorCounts = engine.statsFor('procore', 'Bearer t');
 * expect(counts.limited).toBe(0);
 * ```
 */
export interface SimulatorCounts {
  /** 2xx answers. */
  readonly ok: number;
  /** 429 answers. */
  readonly limited: number;
  /** 403 answers (Pipedrive's block). */
  readonly blocked: number;
  /** Requests that arrived while that credential was already limited (after a 429 whose wait had not passed) or blocked. */
  readonly sentWhileLimited: number;
  /** Every answered request (requests without a credential, 401, and to unknown providers, 404, are not counted). */
  readonly total: number;
}

/**
 * Statistics per provider, per credential label (`credentialLabel(credential)`, never the credential).
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type SimulatorStats } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine();
 * const stats: SimulatorStats = engine.stats();
 * const anyLimited = Object.values(stats.pipedrive).some((c) => c.limited > 0);
 * ```
 */
export type SimulatorStats = { readonly [P in SimulatedProvider]: Readonly<Record<string, SimulatorCounts>> };
