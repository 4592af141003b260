import type { SimulatorResponse } from './types.js';

/**
 * Reads a header of a simulator response case-insensitively (the engine spells names as each
 * provider's docs do: `X-Rate-Limit-Reset`, `x-ratelimit-reset`, `ratelimit-reset`, …).
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, headerOf } from 'rx-ratelimit/testing';
 *
 * const res = createSimulatorEngine().handle({ provider: 'teos', path: '/x', headers: { authorization: 'k' } });
 * headerOf(res, 'date'); // the server clock as an IMF-fixdate, e.g. 'Thu, 01 Jan 2026 00:00:00 GMT'
 * ```
 */
export function headerOf(response: Pick<SimulatorResponse, 'headers'>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [k, v] of Object.entries(response.headers)) if (k.toLowerCase() === wanted) return v;
  return undefined;
}
