/**
 * The limits the simulator's engine applies: each provider's documented defaults, with the
 * options and the limit changes in effect merged over them.
 */
import { ATLASSIAN_DEFAULTS, type AtlassianConfig } from './sim/atlassian.js';
import { FIELDWIRE_DEFAULTS, type FieldwireConfig } from './sim/fieldwire.js';
import { GITHUB_DEFAULTS, type GithubConfig } from './sim/github.js';
import { HUBSPOT_DEFAULTS, type HubspotConfig } from './sim/hubspot.js';
import { PIPEDRIVE_DEFAULTS, type PipedriveConfig } from './sim/pipedrive.js';
import { PLANNING_CENTER_DEFAULTS, type PlanningCenterConfig } from './sim/planningCenter.js';
import { PROCORE_DEFAULTS, type ProcoreConfig } from './sim/procore.js';
import { endpointKey } from './sim/shared.js';
import { SHOPIFY_DEFAULTS, type ShopifyConfig } from './sim/shopify.js';
import { TEOS_DEFAULTS, type TeosConfig } from './sim/teos.js';
import type { SimulatorLimits } from './providerLimits.js';

/** Every provider's limits, all fields set. */
export interface Resolved {
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

export const BASE_DEFAULTS: Resolved = {
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

/** Keeps defined values of `over` over `under`. */
function merge<T extends object>(under: T, over: object | undefined): T {
  if (over === undefined) return under;
  const out = { ...under } as Record<string, unknown>;
  for (const [k, v] of Object.entries(over)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** `current` with the limits `over` sets. */
export function resolve(current: Resolved, over: SimulatorLimits): Resolved {
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
