/**
 * The simulator's limit overrides, per provider (`rx-ratelimit/testing`): anything left out keeps
 * the limit the provider documents. Public types, re-exported by the testing entry point.
 */

/**
 * Pipedrive's four plans, cheapest first.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type PipedrivePlan } from 'rx-ratelimit/testing';
 *
 * const engine = createSimulatorEngine({ pipedrive: { plan: 'professional' satisfies PipedrivePlan } });
 * ```
 */
export type PipedrivePlan = 'essential' | 'advanced' | 'professional' | 'enterprise';

/**
 * Procore: a fixed 60-minute window per token, aligned to the (scaled) clock.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type ProcoreLimits } from 'rx-ratelimit/testing';
 *
 * const limits: ProcoreLimits = { limit: 60 };
 * createSimulatorEngine({ procore: limits });
 * ```
 */
export interface ProcoreLimits {
  /** Requests per 60-minute window. @default 3600 */
  readonly limit?: number | undefined;
}

/**
 * Planning Center: a 20-second period per user that starts at the period's first request.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type PlanningCenterLimits } from 'rx-ratelimit/testing';
 *
 * const limits: PlanningCenterLimits = { limit: 100, highOffsetLimit: 75 };
 * createSimulatorEngine({ planningCenter: limits });
 * ```
 */
export interface PlanningCenterLimits {
  /** Requests per period. @default 100 */
  readonly limit?: number | undefined;
  /** Requests per period for requests whose `offset` query parameter is above 30,000 (own counter). @default 75 */
  readonly highOffsetLimit?: number | undefined;
}

/**
 * One Fieldwire per-endpoint limit.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type FieldwireEndpointLimit } from 'rx-ratelimit/testing';
 *
 * const projects: FieldwireEndpointLimit = { minute: 50, hour: 3000 };
 * createSimulatorEngine({ fieldwire: { endpoints: { 'GET /projects': projects } } });
 * ```
 */
export interface FieldwireEndpointLimit {
  readonly minute: number;
  readonly hour: number;
}

/**
 * Fieldwire: a catch-all fixed window, per-endpoint minute/hour limits, and legacy fixed windows.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type FieldwireLimits } from 'rx-ratelimit/testing';
 *
 * const limits: FieldwireLimits = {
 *   catchAll: 3000,
 *   endpoints: { 'GET /projects': { minute: 50, hour: 3000 } },
 *   legacy: ['GET /legacy'],
 * };
 * createSimulatorEngine({ fieldwire: limits });
 * ```
 */
export interface FieldwireLimits {
  /** Requests per 5 minutes, every endpoint together. @default 3000 */
  readonly catchAll?: number | undefined;
  /**
   * Per-endpoint limits, keyed by `METHOD /path` where numeric and UUID path segments are written
   * `:id` (e.g. `'GET /projects/:id/tasks'`). Keys are normalised the same way as requests, so
   * `'get /projects/1/tasks'` works too. Merged key by key by `limitChanges`.
   */
  readonly endpoints?: Readonly<Record<string, FieldwireEndpointLimit>> | undefined;
  /** Endpoints (same key form) on the legacy fixed-window system. Replaced, not merged, by `limitChanges`. */
  readonly legacy?: readonly string[] | undefined;
  /** Requests per legacy window, per endpoint (not documented by Fieldwire). @default 60 */
  readonly legacyLimit?: number | undefined;
  /** Length of a legacy window in ms before `timeScale` (not documented by Fieldwire). @default 60000 */
  readonly legacyWindowMs?: number | undefined;
}

/**
 * Pipedrive: a 2-second window per token plus the daily POST/PUT budget of api_token requests.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type PipedriveLimits } from 'rx-ratelimit/testing';
 *
 * const limits: PipedriveLimits = { plan: 'advanced', dailyLimit: 50 };
 * createSimulatorEngine({ pipedrive: limits });
 * ```
 */
export interface PipedriveLimits {
  /** The plan, which sets the 2-second limit (api_token 20/40/80/120, OAuth 80/160/320/480). @default 'essential' */
  readonly plan?: PipedrivePlan | undefined;
  /** Overrides the plan's 2-second limit, for both kinds of auth. */
  readonly limit?: number | undefined;
  /** POST/PUT requests per UTC day for api_token requests. @default 10000 */
  readonly dailyLimit?: number | undefined;
}

/**
 * TEOS: per tenant, a rolling minute and a rolling 24 hours (sliding logs); throttled calls count.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type TeosLimits } from 'rx-ratelimit/testing';
 *
 * const limits: TeosLimits = { perMinute: 100, perDay: 10_000, headersAfter: 1 };
 * createSimulatorEngine({ teos: limits });
 * ```
 */
export interface TeosLimits {
  /** Calls within a rolling minute. @default 100 */
  readonly perMinute?: number | undefined;
  /** Calls within a rolling 24 hours. @default 10000 */
  readonly perDay?: number | undefined;
  /**
   * The `X-Rate-Limit-*` headers appear on a response only once this many calls (this one
   * included) have been made by the tenant to that endpoint ("once enough calls have been made
   * to an endpoint"). @default 3
   */
  readonly headersAfter?: number | undefined;
}

/**
 * GitHub: a primary window per resource that starts at its first request, and the secondary
 * content-creation limit on writes (sliding windows).
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type GithubLimits } from 'rx-ratelimit/testing';
 *
 * const limits: GithubLimits = { core: 60, contentPerMinute: 10, limitedStatus: 429 };
 * createSimulatorEngine({ github: limits });
 * ```
 */
export interface GithubLimits {
  /** `core` requests per hour. @default 5000 */
  readonly core?: number | undefined;
  /** `search` requests per minute. @default 30 */
  readonly search?: number | undefined;
  /** `code_search` requests per minute. @default 10 */
  readonly codeSearch?: number | undefined;
  /** `graphql` requests per hour (one point a query here). @default 5000 */
  readonly graphql?: number | undefined;
  /** Content-creating requests (POST, PATCH, PUT, DELETE outside GraphQL) per sliding minute. @default 80 */
  readonly contentPerMinute?: number | undefined;
  /** Content-creating requests per sliding hour. @default 500 */
  readonly contentPerHour?: number | undefined;
  /** The status of a rate-limit answer: GitHub sends 403 or 429. @default 403 */
  readonly limitedStatus?: 403 | 429 | undefined;
}

/**
 * HubSpot: per account, a burst limit per rolling 10 seconds, a daily limit that resets at
 * midnight in the account's time zone (private apps), and 5 CRM searches a second.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type HubspotLimits } from 'rx-ratelimit/testing';
 *
 * const limits: HubspotLimits = { perInterval: 190, perDay: 650_000, timeZone: 'America/New_York' };
 * createSimulatorEngine({ hubspot: limits });
 * ```
 */
export interface HubspotLimits {
  /** Requests per rolling 10 seconds (search excluded). @default 100 */
  readonly perInterval?: number | undefined;
  /** Requests per day, or `false` for a public OAuth app (no daily limit, no daily headers). @default 250000 */
  readonly perDay?: number | false | undefined;
  /** CRM search requests (`POST /crm/…/search`) per rolling second. @default 5 */
  readonly searchPerSecond?: number | undefined;
  /**
   * The account's time zone: the day ends at midnight there. With a `timeScale` other than 1
   * the day is a scaled window on the server clock instead. @default 'UTC'
   */
  readonly timeZone?: string | undefined;
}

/**
 * Jira Cloud: per credential, an hourly points quota (top of the UTC hour), a token bucket per
 * endpoint and method, and the per-issue write limits.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type AtlassianLimits } from 'rx-ratelimit/testing';
 *
 * const limits: AtlassianLimits = { quota: 1000, readPoints: 1, burstPerSecond: { GET: 20 } };
 * createSimulatorEngine({ atlassian: limits });
 * ```
 */
export interface AtlassianLimits {
  /** Points per hour, or `false` for API-token traffic (no points quota). @default 65000 */
  readonly quota?: number | false | undefined;
  /** Points a GET costs (1 base + 1 object). @default 2 */
  readonly readPoints?: number | undefined;
  /** Points a POST, PUT, PATCH or DELETE costs. @default 1 */
  readonly writePoints?: number | undefined;
  /** Steady requests per second of an endpoint, by method (token-bucket capacity the same). @default { GET: 100, POST: 100, PUT: 50, PATCH: 50, DELETE: 50 } */
  readonly burstPerSecond?: Readonly<Partial<Record<'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', number>>> | undefined;
  /** Writes to one issue per rolling 2 s. @default 20 */
  readonly issueWritesPer2s?: number | undefined;
  /** Writes to one issue per rolling 30 s. @default 100 */
  readonly issueWritesPer30s?: number | undefined;
}

/**
 * Shopify's Admin APIs: per credential, a leaky bucket of requests (REST) and one of query cost
 * points (GraphQL, on paths ending `/graphql.json`). The simulator cannot cost a query: send its
 * requested cost in `x-simulated-query-cost` (default 10) and its actual cost in
 * `x-simulated-actual-cost` (default: the requested).
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type ShopifyLimits } from 'rx-ratelimit/testing';
 *
 * const limits: ShopifyLimits = { restBucket: 80, restPerSecond: 4 };
 * createSimulatorEngine({ shopify: limits });
 * ```
 */
export interface ShopifyLimits {
  /** REST bucket size, requests. @default 40 */
  readonly restBucket?: number | undefined;
  /** REST leak rate, requests per second. @default 2 */
  readonly restPerSecond?: number | undefined;
  /** GraphQL bucket size, cost points. @default 1000 */
  readonly graphqlBucket?: number | undefined;
  /** GraphQL restore rate, points per second. @default 50 */
  readonly graphqlPerSecond?: number | undefined;
}

/**
 * Per-provider limit overrides; anything left out keeps the documented default.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, type SimulatorLimits } from 'rx-ratelimit/testing';
 *
 * const limits: SimulatorLimits = { procore: { limit: 60 }, teos: { perMinute: 10 } };
 * createSimulatorEngine({ ...limits, timeScale: 100 });
 * ```
 */
export interface SimulatorLimits {
  readonly procore?: ProcoreLimits | undefined;
  readonly planningCenter?: PlanningCenterLimits | undefined;
  readonly fieldwire?: FieldwireLimits | undefined;
  readonly pipedrive?: PipedriveLimits | undefined;
  readonly teos?: TeosLimits | undefined;
  readonly github?: GithubLimits | undefined;
  readonly hubspot?: HubspotLimits | undefined;
  readonly atlassian?: AtlassianLimits | undefined;
  readonly shopify?: ShopifyLimits | undefined;
}
