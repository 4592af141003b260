import { describe, expect, it } from '@jest/globals';

import { engineAt, T0 } from './helpers.js';

const AUTH = { Authorization: 'Bearer forge-app-token' };
const HOUR = 3_600_000;

describe('simulator: atlassian (Jira Cloud)', () => {
  it('sends the quota and burst fields as the rate-limiting page shows them', () => {
    const { engine } = engineAt({}, T0 + 20 * 60_000);
    const res = engine.handle({ provider: 'atlassian', path: '/rest/api/3/issue/ABC-1', headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'RateLimit-Policy': '"global-app-quota";q=65000;w=3600',
      RateLimit: '"global-app-quota";t=2400',
      'Beta-RateLimit-Policy': '"jira-burst-based";q=100;w=1',
      'X-RateLimit-Limit': '100',
      'X-RateLimit-Remaining': '99',
    });
    expect(res.headers['X-RateLimit-NearLimit']).toBeUndefined();
  });

  it('the points quota: a GET costs 2, a write 1; r and NearLimit under 20 %; 429 until the top of the hour', () => {
    const { engine, clock } = engineAt({ atlassian: { quota: 10 } }, T0 + HOUR - 30_000);
    const get = () => engine.handle({ provider: 'atlassian', path: '/rest/api/3/project/1', headers: AUTH });
    for (let i = 0; i < 4; i++) expect(get().status).toBe(200);
    const near = get();
    expect(near.headers['RateLimit']).toBe('"global-app-quota";r=0;t=30');
    expect(near.headers['X-RateLimit-NearLimit']).toBe('true');
    const post = engine.handle({ provider: 'atlassian', method: 'POST', path: '/rest/api/3/issue', headers: AUTH });
    expect(post.status).toBe(429);
    expect(post.headers).toMatchObject({
      'RateLimit-Reason': 'jira-quota-global-based',
      'Retry-After': '30',
      'X-RateLimit-Reset': '2026-01-01T01:00:00Z',
    });
    clock.advance(30_000);
    expect(get().status).toBe(200);
  });

  it('the burst limit: a token bucket per endpoint and method, refilled at its steady rate', () => {
    const { engine, clock } = engineAt({ atlassian: { burstPerSecond: { GET: 2 } } });
    const get = (path: string) => engine.handle({ provider: 'atlassian', path, headers: AUTH });
    expect(get('/rest/api/3/issue/ABC-1').status).toBe(200);
    expect(get('/rest/api/3/issue/ABC-2').status).toBe(200);
    const res = get('/rest/api/3/issue/10003');
    expect(res.status).toBe(429);
    expect(res.headers['RateLimit-Reason']).toBe('jira-burst-based');
    expect(get('/rest/api/3/search').status).toBe(200); // another endpoint
    clock.advance(500); // one token back
    expect(get('/rest/api/3/issue/ABC-1').status).toBe(200);
    expect(get('/rest/api/3/issue/ABC-1').status).toBe(429);
  });

  it('the per-issue write limit: 20 writes per 2 s to one issue', () => {
    const { engine, clock } = engineAt({ atlassian: { issueWritesPer2s: 2, burstPerSecond: { PUT: 100 } } });
    const put = (key: string) =>
      engine.handle({ provider: 'atlassian', method: 'PUT', path: `/rest/api/3/issue/${key}`, headers: AUTH });
    expect(put('ABC-1').status).toBe(200);
    expect(put('ABC-1').status).toBe(200);
    const res = put('ABC-1');
    expect(res.status).toBe(429);
    expect(res.headers['RateLimit-Reason']).toBe('jira-per-issue-on-write');
    expect(put('ABC-2').status).toBe(200);
    clock.advance(2000);
    expect(put('ABC-1').status).toBe(200);
  });

  it('API-token traffic (quota: false) sends no quota fields', () => {
    const { engine } = engineAt({ atlassian: { quota: false } });
    const res = engine.handle({ provider: 'atlassian', path: '/rest/api/3/myself', headers: AUTH });
    expect(res.headers['RateLimit-Policy']).toBeUndefined();
    expect(res.headers['X-RateLimit-Limit']).toBe('100');
  });

  it('a bad option names it', () => {
    expect(() => engineAt({ atlassian: { quota: -1 } })).toThrow(/atlassian\.quota/);
    expect(() => engineAt({ atlassian: { burstPerSecond: { GET: 0 } } })).toThrow(/atlassian\.burstPerSecond\.GET/);
  });
});
