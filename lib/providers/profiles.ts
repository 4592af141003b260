/**
 * `rx-ratelimit/providers`: the ready-made provider profiles, one function each, the same as the
 * `providers` object of `rx-ratelimit`. Import them as a namespace, and a bundler keeps only the
 * profiles the app calls (about 3 KB gzipped for Pipedrive's, 12 KB for all of them):
 *
 * ```ts
 * import { createLimiter } from 'rx-ratelimit';
 * import * as providers from 'rx-ratelimit/providers';
 * const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'my-token' });
 * ```
 *
 * Through the `providers` object every profile is bundled: bundlers do not drop the unused
 * properties of an object (nor, in esbuild's case, of a namespace re-exported by another module).
 *
 * @packageDocumentation
 */
export { generic, ietf, type GenericProviderOptions, type IetfProviderOptions } from './generic.js';
export { procore, type ProcoreOptions } from './procore.js';
export { planningCenter, type PlanningCenterOptions } from './planningCenter.js';
export { fieldwire, type FieldwireOptions } from './fieldwire.js';
export { pipedrive, type PipedriveOptions } from './pipedrive.js';
export { teos, type TeosOptions } from './teos.js';
export { github, type GithubOptions } from './github.js';
export { hubspot, type HubspotOptions, type HubspotTier } from './hubspot.js';
export { atlassian, type AtlassianOptions } from './atlassian.js';
export { shopify, type ShopifyOptions, type ShopifyPlan } from './shopify.js';
