import { atlassian } from './atlassian.js';
import { fieldwire } from './fieldwire.js';
import { generic, ietf } from './generic.js';
import { github } from './github.js';
import { hubspot } from './hubspot.js';
import { pipedrive } from './pipedrive.js';
import { planningCenter } from './planningCenter.js';
import { procore } from './procore.js';
import { shopify } from './shopify.js';
import { teos } from './teos.js';

/**
 * Ready-made provider profiles. Pick one per limiter:
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'my-token' });
 * ```
 *
 * This object brings every profile into a browser bundle (about 9 KB gzipped more than one): bundlers keep all
 * of an object's properties. In the browser, import the profiles as a namespace from
 * `rx-ratelimit/providers` instead (`import * as providers from 'rx-ratelimit/providers'`), and
 * only those the app calls are bundled.
 */
export const providers = {
  /** Any API with `X-RateLimit-*`-style counters (names, reset unit and statuses configurable). */
  generic,
  /** An API with the IETF `RateLimit` / `RateLimit-Policy` fields (or their draft forms). */
  ietf,
  /** Procore: 3,600 requests per hour per token, `X-Rate-Limit-*` headers. */
  procore,
  /** Planning Center: 100 requests per 20 s, stricter past offset 30,000. */
  planningCenter,
  /** Fieldwire: per-endpoint limits per minute and hour. */
  fieldwire,
  /** Pipedrive: a 2-second window by plan, a daily budget, and Cloudflare blocks on 403. */
  pipedrive,
  /** TEOS: a per-minute and a rolling per-day budget. */
  teos,
  /** GitHub: a primary limit per resource (`core`, `search`, …) and the content-creation limits. */
  github,
  /** HubSpot: a burst limit per 10 s and, for private apps, a daily limit reset at the account's midnight. */
  hubspot,
  /** Jira and Confluence Cloud: the hourly points quota of an app and a burst limit per endpoint. */
  atlassian,
  /** Shopify's Admin APIs: a leaky bucket of requests (REST) or of query cost points (GraphQL), by plan. */
  shopify,
} as const;

export { defineProvider, bucketSpecSchema, type ProviderDefinition } from './define.js';
export { learnCosts, type LearnCostOptions } from './learnCost.js';
export type { CostLearner } from '../core/costLearning.js';
export type { GenericProviderOptions, IetfProviderOptions } from './generic.js';
export { isServedFromCache, readCounters, readIetf, readRetryAfter, type CounterHeaders } from './read.js';
export { resourceName } from './resources.js';
export { violatedPolicies } from './problem.js';
export type { BucketKind, BucketReading, BucketSpec, Provider, ResponseReading, RetrySource } from './types.js';
export { leakyBuckets } from '../core/leakyBucket.js';
export { rollingWindows } from '../core/rollingBucket.js';
export {
  endpointKey,
  endpointPath,
  normalizeEndpointKey,
  type CommonProviderOptions,
  type HintOverride,
} from './endpoint.js';
export type { ProcoreOptions } from './procore.js';
export { isHighOffset, type PlanningCenterOptions } from './planningCenter.js';
export {
  fieldwireEndpoint,
  type FieldwireEndpointLimits,
  type FieldwireLegacyLimits,
  type FieldwireOptions,
} from './fieldwire.js';
export { isPipedriveBlock, type PipedriveOptions, type PipedrivePlan } from './pipedrive.js';
export type { TeosOptions } from './teos.js';
export { githubResource, type GithubOptions } from './github.js';
export { isHubspotSearch, nextMidnight, type HubspotOptions, type HubspotTier } from './hubspot.js';
export { atlassianEndpoint, type AtlassianOptions } from './atlassian.js';
export type { ShopifyOptions, ShopifyPlan } from './shopify.js';
