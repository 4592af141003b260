import * as z from 'zod/mini';
import { parseOptions } from '../core/options.js';
import { defineProvider } from './define.js';
import { checkBucketNames, commonShape, retryFields, withCommon, type CommonProviderOptions } from './endpoint.js';
import { readCounters, type CounterHeaders } from './read.js';
import type { Provider } from './types.js';

/**
 * Options of `providers.procore()`: only the common ones. Procore's one bucket is `hourly`.
 *
 * ```ts
 * import { providers, type ProcoreOptions } from 'rx-ratelimit';
 * const options: ProcoreOptions = { hints: { hourly: { limit: 1800 } } };
 * const procore = providers.procore(options);
 * ```
 */
export type ProcoreOptions = CommonProviderOptions;

const HOURLY = 'hourly';
const HEADERS: CounterHeaders = {
  limit: 'x-rate-limit-limit',
  remaining: 'x-rate-limit-remaining',
  reset: 'x-rate-limit-reset',
};
const schema = z.strictObject(commonShape).check(z.superRefine(checkBucketNames((n) => n === HOURLY, `"${HOURLY}"`)));

/**
 * Procore: 3,600 requests per 60-minute window per token (a hint until the headers tell),
 * read from `X-Rate-Limit-Limit/-Remaining/-Reset` (reset in unix seconds). A 429 keeps the
 * headers, and the doc says to sleep until `X-Rate-Limit-Reset`: every stream of the token
 * pauses until then (`Retry-After` wins if a proxy adds one).
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.procore(), key: 'procore-token' });
 * ```
 */
export function procore(options: ProcoreOptions = {}): Provider {
  const o = parseOptions('providers.procore', schema, options) as ProcoreOptions;
  return defineProvider({
    name: 'procore',
    buckets: withCommon([{ name: HOURLY, limit: 3600, windowMs: 3_600_000 }], o),
    read(res) {
      const hourly = readCounters(res, HOURLY, HEADERS, 'unix-seconds');
      const buckets = hourly ? [hourly] : [];
      if (res.status !== 429) return { outcome: 'ok', buckets };
      return { outcome: 'limited', buckets, ...retryFields(res, undefined, hourly?.reset) };
    },
  });
}
