import { describe, expect, it } from '@jest/globals';
import { asyncScheduler } from 'rxjs';
import { createLimiter, logEvents, providers, rateLimit, type LimiterEvent } from '../../lib/index.js';
import { safePath } from '../../lib/core/events.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { virtualApi } from '../helpers/virtualApi.js';

describe('events', () => {
  it('logEvents sends one line per notable event at a fitting level, and none for per-request noise by default', () => {
    const lines: Array<[string, string, LimiterEvent]> = [];
    const logger = {
      info: (m: string, e: LimiterEvent) => lines.push(['info', m, e]),
      warn: (m: string, e: LimiterEvent) => lines.push(['warn', m, e]),
      error: (m: string, e: LimiterEvent) => lines.push(['error', m, e]),
    };
    inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, {
        limit: 2,
        windowMs: 1000,
        override: (n) => (n === 3 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
      });
      const limiter = createLimiter({ provider: providers.generic({ resetUnit: 'unix-seconds' }), key: 'k' });
      logEvents(limiter.events$, logger);
      for (let i = 0; i < 5; i++) api.request().pipe(rateLimit(limiter)).subscribe();
    });
    expect(lines.map(([level, , e]) => `${level}:${e.type}`)).toEqual(
      expect.arrayContaining(['warn:paused', 'warn:rate-limited', 'info:retry-scheduled']),
    );
    expect(lines.some(([, , e]) => e.type === 'admitted' || e.type === 'queued')).toBe(false);
    const limited = lines.find(([, , e]) => e.type === 'rate-limited')!;
    expect(limited[1]).toMatch(
      /^\[rx-ratelimit generic key_[0-9a-f]{16}\] GET got 429; retry at 1970-01-01T00:00:0\d\.\d{3}Z \(from retry-after\)$/,
    );
  });

  it('logEvents with types logs exactly those', () => {
    const seen: string[] = [];
    inVirtualTime(() => {
      const api = virtualApi(asyncScheduler, { limit: 10, windowMs: 1000 });
      const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
      logEvents(limiter.events$, { debug: (_m, e) => seen.push(e.type) }, { types: ['admitted'] });
      for (let i = 0; i < 3; i++) api.request().pipe(rateLimit(limiter)).subscribe();
    });
    expect(seen).toEqual(['admitted', 'admitted', 'admitted']);
  });

  it.each([
    ['https://user:pass@api.example.com/v1/deals?api_token=SECRET#x', 'https://api.example.com/v1/deals'],
    ['/v1/deals?api_token=SECRET', '/v1/deals'],
    ['', null],
  ])('safePath(%s) strips credentials and query', (url, path) => {
    expect(safePath(url)).toBe(path);
  });
});

describe('credentials in URLs', () => {
  it.each([
    ['//alice:s3cr3t@api.example.com/v1/deals', '//api.example.com/v1/deals'],
    ['https://alice:p@ss@api.example.com/v1', 'https://api.example.com/v1'],
  ])('safePath(%s) drops user-info, even with @ in the password or no scheme', (url, path) => {
    expect(safePath(url)).toBe(path);
  });
});
