/**
 * Arbitraries shared by the reliability properties: header maps as servers (and broken proxies)
 * send them, for the five providers and the generic profile. Values range from plausible to
 * absurd: resets in the past or in year 9999, negative, fractional and NaN-ish numbers, huge
 * strings, duplicated names in mixed case.
 */
import fc from 'fast-check';
import { providers, type Provider } from '../../lib/index.js';

export const PROVIDERS = [
  'procore',
  'planningCenter',
  'fieldwire',
  'pipedrive',
  'teos',
  'generic',
  'github',
  'hubspot',
  'atlassian',
  'shopify',
  'shopifyGraphql',
] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export function makeProvider(name: ProviderName, hint?: { limit: number; windowMs: number }): Provider {
  switch (name) {
    case 'procore':
      return providers.procore();
    case 'planningCenter':
      return providers.planningCenter();
    case 'fieldwire':
      return providers.fieldwire({ endpoints: { 'GET /projects': { minute: 20, hour: 200 } } });
    case 'pipedrive':
      return providers.pipedrive({ plan: 'essential' });
    case 'teos':
      return providers.teos();
    case 'generic':
      return providers.generic(hint ?? {});
    case 'github':
      return providers.github();
    case 'hubspot':
      return providers.hubspot({ timeZone: 'America/New_York' });
    case 'atlassian':
      return providers.atlassian();
    case 'shopify':
      return providers.shopify({ api: 'rest' });
    case 'shopifyGraphql':
      return providers.shopify({ api: 'graphql', queryCost: 1 });
  }
}

/** Every rate-limit header name any provider (or the generic profile) reads. */
export const HEADER_NAMES = [
  'x-rate-limit-limit',
  'x-rate-limit-remaining',
  'x-rate-limit-reset',
  'x-ratelimit-limit',
  'x-ratelimit-remaining',
  'x-ratelimit-reset',
  'x-pco-api-request-rate-limit',
  'x-pco-api-request-rate-count',
  'x-pco-api-request-rate-period',
  'ratelimit-limit-minute',
  'ratelimit-remaining-minute',
  'ratelimit-limit-hour',
  'ratelimit-remaining-hour',
  'ratelimit-reset',
  'ratelimit-limit',
  'ratelimit-remaining',
  'ratelimit',
  'ratelimit-policy',
  'x-daily-requests-left',
  'x-ratelimit-used',
  'x-ratelimit-resource',
  'x-ratelimit-retry-after',
  'x-hubspot-ratelimit-max',
  'x-hubspot-ratelimit-remaining',
  'x-hubspot-ratelimit-interval-milliseconds',
  'x-hubspot-ratelimit-daily',
  'x-hubspot-ratelimit-daily-remaining',
  'beta-ratelimit',
  'beta-ratelimit-policy',
  'ratelimit-reason',
  'x-ratelimit-nearlimit',
  'age',
  'retry-after',
  'date',
  'content-type',
] as const;

/** Absurd and edge values, spelled as headers carry them. */
export const ABSURD_VALUES = [
  '0',
  '-1',
  '-0',
  '-99999999999',
  '1.5',
  '0.0001',
  '3599.999',
  '9007199254740993',
  '9'.repeat(400),
  '99999999999',
  '253402300799', // 9999-12-31T23:59:59Z in unix seconds
  '253402300799999', // the same in unix ms
  '8640000000000001',
  '9007199254740', // seconds that overflow a Date once in ms
  '1',
  '2',
  '60',
  '1m',
  '1d',
  '12h',
  '20 seconds',
  '0s',
  '1e5',
  'NaN',
  'Infinity',
  '-Infinity',
  'null',
  'undefined',
  '',
  ' ',
  '0x10',
  '100, 50',
  '10, -3',
  'Fri, 31 Dec 9999 23:59:59 GMT',
  'Thu, 01 Jan 1970 00:00:00 GMT',
  'Mon, 01 Jan 1900 00:00:00 GMT',
  'Sunday, 06-Nov-94 08:49:37 GMT',
  '9999-12-31T23:59:59.9999999Z',
  '0001-01-01T00:00:00Z',
  '2026-01-01T00:00:00Z',
  '2026-13-45T99:99:99Z',
  'limit=100, remaining=-5, reset=9999999999',
  '"default";r=0;t=99999999999',
  '"default";r=-1;t=-1, "other";r=1.5;t=0.5',
  '"p";q=0;w=0',
  '"p";q=99999999999999999999;w=1',
  'text/html',
  'application/json',
  'x'.repeat(1001),
  '1'.repeat(5000),
] as const;

/** A header value: plausible numbers, absurd ones, or junk. */
export const headerValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...ABSURD_VALUES) },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 100_000 }).map(String) },
  { weight: 1, arbitrary: fc.double({ noDefaultInfinity: false }).map(String) },
  { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom(...'0123456789 -+.:,;="TZmshd'), maxLength: 24 }) },
);

/** Random upper/lower case per character of a header name. */
export const mixedCase = (name: string): fc.Arbitrary<string> =>
  fc
    .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
    .map((ups) => [...name].map((c, i) => (ups[i] ? c.toUpperCase() : c)).join(''));

/**
 * A header map: names from every provider, in mixed case, some duplicated (as arrays or as
 * two keys differing only in case), values plausible or absurd.
 */
export const headerMap: fc.Arbitrary<Record<string, string | string[]>> = fc
  .array(
    fc.tuple(
      fc.constantFrom(...HEADER_NAMES).chain(mixedCase),
      fc.oneof(
        { weight: 4, arbitrary: headerValue },
        { weight: 1, arbitrary: fc.array(headerValue, { minLength: 1, maxLength: 3 }) },
      ),
    ),
    { maxLength: 12 },
  )
  .map((entries) => {
    const out: Record<string, string | string[]> = {};
    for (const [k, v] of entries) out[k] = v;
    return out;
  });

/** Seeded PRNG (mulberry32): backoff jitter reproducible from the fast-check seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
