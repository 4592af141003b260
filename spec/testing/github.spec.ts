import { describe, expect, it } from '@jest/globals';

import { engineAt, T0, unix } from './helpers.js';

const AUTH = { Authorization: 'Bearer gh-token' };
const HOUR = 3_600_000;
const MINUTE = 60_000;

describe('simulator: github', () => {
  it('sends x-ratelimit-limit/-remaining/-used/-reset/-resource; the window starts at its first request', () => {
    const { engine } = engineAt({}, T0 + 1234);
    const res = engine.handle({ provider: 'github', path: '/repos/o/r/issues', headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': '4999',
      'x-ratelimit-used': '1',
      'x-ratelimit-reset': String(Math.ceil((T0 + 1234 + HOUR) / 1000)),
      'x-ratelimit-resource': 'core',
    });
  });

  it('counts search, code search and GraphQL in budgets of their own', () => {
    const { engine } = engineAt({ github: { search: 1, codeSearch: 1 } });
    const get = (path: string, method = 'GET') => engine.handle({ provider: 'github', method, path, headers: AUTH });
    expect(get('/search/issues').headers['x-ratelimit-resource']).toBe('search');
    expect(get('/search/code').headers['x-ratelimit-resource']).toBe('code_search');
    expect(get('/graphql', 'POST').headers['x-ratelimit-resource']).toBe('graphql');
    expect(get('/search/issues').status).toBe(403);
    expect(get('/user').status).toBe(200);
  });

  it('past the primary limit: 403 with remaining 0 and the rate-limit message; 429 when configured', () => {
    for (const limitedStatus of [403, 429] as const) {
      const { engine } = engineAt({ github: { core: 1, limitedStatus } });
      engine.handle({ provider: 'github', path: '/user', headers: AUTH });
      const res = engine.handle({ provider: 'github', path: '/user', headers: AUTH });
      expect(res.status).toBe(limitedStatus);
      expect(res.headers['x-ratelimit-remaining']).toBe('0');
      expect(res.body).toMatch(/API rate limit exceeded/);
      expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ ok: 1, limited: 1, blocked: 0 });
    }
  });

  it('the secondary content-creation limit: a sliding minute of writes, then 403 with retry-after', () => {
    const { engine, clock } = engineAt({ github: { contentPerMinute: 2 } });
    const post = () => engine.handle({ provider: 'github', method: 'POST', path: '/repos/o/r/issues', headers: AUTH });
    expect(post().status).toBe(201);
    clock.advance(30_000);
    expect(post().status).toBe(201);
    const res = post();
    expect(res.status).toBe(403);
    expect(res.headers['retry-after']).toBe('30');
    expect(res.body).toMatch(/secondary rate limit/);
    expect(engine.handle({ provider: 'github', path: '/user', headers: AUTH }).status).toBe(200);
    clock.advance(30_000);
    expect(post().status).toBe(201);
  });

  it('the hourly content limit holds across minutes', () => {
    const { engine, clock } = engineAt({ github: { contentPerHour: 3 } });
    const post = () => engine.handle({ provider: 'github', method: 'PATCH', path: '/repos/o/r', headers: AUTH });
    for (let i = 0; i < 3; i++) {
      expect(post().status).toBe(201);
      clock.advance(MINUTE);
    }
    expect(post().status).toBe(403);
    clock.advance(HOUR - 3 * MINUTE);
    expect(post().status).toBe(201);
  });

  it('a 403 under /forbidden is a permission error: neither limited nor a block, with the usual headers', () => {
    const { engine } = engineAt();
    const res = engine.handle({ provider: 'github', path: '/forbidden/hooks', headers: AUTH });
    expect(res.status).toBe(403);
    expect(res.headers['x-ratelimit-remaining']).toBe('4999');
    expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ limited: 0, blocked: 0, total: 1 });
  });

  it('a bad option names it', () => {
    expect(() => engineAt({ github: { core: -1 } })).toThrow(/github\.core/);
    expect(() => engineAt({ github: { limitedStatus: 500 as never } })).toThrow(/github\.limitedStatus/);
  });

  it('resets at the reset it reported', () => {
    const { engine, clock } = engineAt({ github: { core: 1 } }, T0);
    const first = engine.handle({ provider: 'github', path: '/user', headers: AUTH });
    expect(first.headers['x-ratelimit-reset']).toBe(String(unix(T0 + HOUR)));
    clock.advance(HOUR);
    expect(engine.handle({ provider: 'github', path: '/user', headers: AUTH }).status).toBe(200);
  });
});
