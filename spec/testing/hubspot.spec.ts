import { describe, expect, it } from '@jest/globals';

import { engineAt, T0 } from './helpers.js';

const AUTH = { Authorization: 'Bearer pat-na1-token' };
const HOUR = 3_600_000;

describe('simulator: hubspot', () => {
  it('sends the burst and daily headers as the usage guidelines name them', () => {
    const { engine } = engineAt();
    const res = engine.handle({ provider: 'hubspot', path: '/crm/v3/objects/contacts', headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'X-HubSpot-RateLimit-Daily': '250000',
      'X-HubSpot-RateLimit-Daily-Remaining': '249999',
      'X-HubSpot-RateLimit-Interval-Milliseconds': '10000',
      'X-HubSpot-RateLimit-Max': '100',
      'X-HubSpot-RateLimit-Remaining': '99',
    });
  });

  it('the burst limit is a rolling 10 seconds, answered 429 TEN_SECONDLY_ROLLING past it', () => {
    const { engine, clock } = engineAt({ hubspot: { perInterval: 2 } });
    const get = () => engine.handle({ provider: 'hubspot', path: '/crm/v3/objects/deals', headers: AUTH });
    expect(get().status).toBe(200);
    clock.advance(5000);
    expect(get().status).toBe(200);
    const res = get();
    expect(res.status).toBe(429);
    expect(JSON.parse(res.body)).toMatchObject({ errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING' });
    clock.advance(5000); // the first request leaves the window
    expect(get().status).toBe(200);
    expect(get().status).toBe(429);
  });

  it('the daily limit ends at midnight in the account’s time zone, answered 429 DAILY past it', () => {
    // 2026-01-01T00:00Z is 19:00 on Dec 31 in New York: midnight there is 05:00 UTC.
    const { engine, clock } = engineAt({ hubspot: { perDay: 1, timeZone: 'America/New_York' } });
    const get = () => engine.handle({ provider: 'hubspot', path: '/crm/v3/objects/deals', headers: AUTH });
    expect(get().status).toBe(200);
    clock.advance(4 * HOUR);
    const res = get();
    expect(res.status).toBe(429);
    expect(JSON.parse(res.body)).toMatchObject({ policyName: 'DAILY' });
    clock.advance(HOUR); // 05:00 UTC, a new day in New York
    expect(get().status).toBe(200);
  });

  it('CRM search: 5 a second, no rate-limit headers, and not in the burst count', () => {
    const { engine, clock } = engineAt({ hubspot: { searchPerSecond: 2 } });
    const search = () =>
      engine.handle({ provider: 'hubspot', method: 'POST', path: '/crm/v3/objects/contacts/search', headers: AUTH });
    expect(search().headers['X-HubSpot-RateLimit-Max']).toBeUndefined();
    expect(search().status).toBe(200);
    expect(search().status).toBe(429);
    const plain = engine.handle({ provider: 'hubspot', path: '/crm/v3/objects/contacts', headers: AUTH });
    expect(plain.headers['X-HubSpot-RateLimit-Remaining']).toBe('99');
    expect(plain.headers['X-HubSpot-RateLimit-Daily-Remaining']).toBe(String(250_000 - 3));
    clock.advance(1000);
    expect(search().status).toBe(200);
  });

  it('a public app (perDay: false) sends no daily headers', () => {
    const { engine } = engineAt({ hubspot: { perDay: false } });
    const res = engine.handle({ provider: 'hubspot', path: '/crm/v3/objects/contacts', headers: AUTH });
    expect(res.headers['X-HubSpot-RateLimit-Daily']).toBeUndefined();
    expect(res.headers['X-HubSpot-RateLimit-Max']).toBe('100');
  });

  it('a bad option names it', () => {
    expect(() => engineAt({ hubspot: { perInterval: -1 } })).toThrow(/hubspot\.perInterval/);
    expect(() => engineAt({ hubspot: { timeZone: 'Mars/Olympus' } })).toThrow(/hubspot\.timeZone/);
  });

  it('a compressed day (timeScale) is a scaled window on the server clock', () => {
    const { engine, clock } = engineAt({ timeScale: 24, hubspot: { perDay: 1 } }, T0);
    const get = () => engine.handle({ provider: 'hubspot', path: '/x', headers: AUTH });
    expect(get().status).toBe(200);
    expect(get().status).toBe(429);
    clock.advance(HOUR);
    expect(get().status).toBe(200);
  });
});
