/**
 * `rx-ratelimit/testing`: a simulator of Procore, Planning Center, Fieldwire, Pipedrive and TEOS
 * rate limiting (and GitHub's, HubSpot's, Jira Cloud's and Shopify's), written from their docs. A pure engine with an injectable clock, an HTTP server
 * for tests over real sockets, and an adapter for RxJS virtual time.
 *
 * @example
 * ```ts
 * import { startSimulator } from 'rx-ratelimit/testing';
 *
 * const sim = await startSimulator({ timeScale: 100 });
 * // point your client at sim.urlFor('pipedrive'), run it, then:
 * console.log(sim.stats().pipedrive);
 * await sim.close();
 * ```
 *
 * @packageDocumentation
 */
export { createSimulatorEngine, PROVIDER_PREFIXES, type SimulatorEngine } from './engine.js';
export { credentialLabel } from './request.js';
export { startSimulator, type Simulator, type SimulatorCorsOptions, type SimulatorServerOptions } from './server.js';
export { virtualProvider, type VirtualProvider, type VirtualRequest } from './virtual.js';
export { headerOf } from './headers.js';
export {
  SIMULATED_PROVIDERS,
  type AbuseOptions,
  type JsonLayout,
  type LimitChange,
  type LimitsOf,
  type PipedriveAuth,
  type SimulatedProvider,
  type SimulatorCounts,
  type SimulatorOptions,
  type SimulatorRequest,
  type SimulatorResponse,
  type SimulatorStats,
} from './types.js';
export type {
  AtlassianLimits,
  FieldwireEndpointLimit,
  FieldwireLimits,
  GithubLimits,
  HubspotLimits,
  PipedriveLimits,
  PipedrivePlan,
  PlanningCenterLimits,
  ProcoreLimits,
  ShopifyLimits,
  SimulatorLimits,
  TeosLimits,
} from './providerLimits.js';
