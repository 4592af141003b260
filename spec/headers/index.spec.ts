import { describe, expect, it } from '@jest/globals';

import * as headers from '../../lib/headers/index.js';

describe('lib/headers index', () => {
  it('re-exports every parser', () => {
    expect(Object.keys(headers).sort()).toEqual([
      'parseCacheStatusHit',
      'parseCount',
      'parseHttpDate',
      'parseLegacyRateLimit',
      'parsePeriod',
      'parseRateLimit',
      'parseRateLimitDictionary',
      'parseRateLimitPolicy',
      'parseReset',
      'parseRetryAfter',
      'parseTimestamp',
      'parseUsedLimit',
      'parseXRateLimitRetryAfter',
    ]);
  });

  it('reads one full response from each provider doc', () => {
    // Procore.
    expect(headers.parseCount('3600')).toBe(3600);
    expect(headers.parseReset('1466182244', 'unix-seconds')).toEqual({ at: 1466182244000 });
    // Planning Center 429.
    expect(headers.parsePeriod('20 seconds')).toBe(20_000);
    expect(headers.parseRetryAfter('19')).toEqual({ delayMs: 19_000 });
    // Pipedrive.
    expect(headers.parseReset('2', 'seconds-left')).toEqual({ inMs: 2000 });
    // Fieldwire: ratelimit-reset is 0 when the limit is not exceeded.
    expect(headers.parseReset('0', 'unix-seconds')).toBeUndefined();
    // TEOS.
    expect(headers.parsePeriod('12h')).toBe(12 * 3_600_000);
    expect(headers.parseReset('2026-01-01T00:00:00.0000000Z', 'timestamp')).toEqual({
      at: Date.UTC(2026, 0, 1),
    });
    // Shopify REST Admin API.
    expect(headers.parseUsedLimit('32/40')).toEqual({ used: 32, limit: 40 });
  });
});
