import { describe, expect, it } from '@jest/globals';

import { createSimulatorEngine, type PipedrivePlan } from '../../lib/testing/index.js';
import { engineAt, manualClock, T0 } from './helpers.js';

// From the Pipedrive doc (seeds/pipedrive-rate-limits.txt), verbatim.
const DOC_429_BODY = '{"success":false,"error":"request over limit","errorCode":429}';
const CLOUDFLARE = 'This error is produced by Cloudflare. See troubleshooting guide here.';
const TOKEN = 'pd-api-token';
const viaToken = (method = 'GET', path = '/v1/deals') => ({
  provider: 'pipedrive',
  method,
  path,
  query: { api_token: TOKEN },
});
const viaOAuth = (method = 'GET', path = '/v1/deals') => ({
  provider: 'pipedrive',
  method,
  path,
  headers: { Authorization: 'Bearer pd-access-token' },
});

describe('simulator: pipedrive', () => {
  it("reproduces the doc's example headers after a successful POST on the Advanced plan", () => {
    const { engine } = engineAt({ pipedrive: { plan: 'advanced' } });
    const res = engine.handle(viaToken('POST'));
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'x-ratelimit-limit': '40',
      'x-ratelimit-remaining': '39',
      'x-ratelimit-reset': '2',
      'x-daily-requests-left': '9999',
    });
  });

  it('sends x-daily-requests-left only on POST and PUT', () => {
    const { engine } = engineAt();
    expect(engine.handle(viaToken('GET')).headers['x-daily-requests-left']).toBeUndefined();
    expect(engine.handle(viaToken('DELETE')).headers['x-daily-requests-left']).toBeUndefined();
    expect(engine.handle(viaToken('PATCH')).headers['x-daily-requests-left']).toBeUndefined();
    expect(engine.handle(viaToken('PUT')).headers['x-daily-requests-left']).toBe('9999');
    expect(engine.handle(viaToken('POST')).headers['x-daily-requests-left']).toBe('9998');
  });

  it.each<[PipedrivePlan, number, number]>([
    ['essential', 20, 80],
    ['advanced', 40, 160],
    ['professional', 80, 320],
    ['enterprise', 120, 480],
  ])('plan %s: %i per 2 s with api_token, %i with OAuth', (plan, apiToken, oauth) => {
    const { engine } = engineAt({ pipedrive: { plan } });
    expect(engine.handle(viaToken()).headers['x-ratelimit-limit']).toBe(String(apiToken));
    expect(engine.handle(viaOAuth()).headers['x-ratelimit-limit']).toBe(String(oauth));
  });

  it('answers 429 with the doc body; x-ratelimit-reset is the seconds LEFT in the window, rounded up', () => {
    const { engine, clock } = engineAt({ pipedrive: { limit: 2 } }, T0 + 300);
    engine.handle(viaToken());
    clock.advance(500);
    const second = engine.handle(viaToken());
    expect(second.headers['x-ratelimit-remaining']).toBe('0');
    expect(second.headers['x-ratelimit-reset']).toBe('2'); // 1.5 s left
    clock.advance(600);
    const res = engine.handle(viaToken());
    expect(res.status).toBe(429);
    expect(res.body).toBe(DOC_429_BODY);
    expect(res.headers).toMatchObject({
      'x-ratelimit-limit': '2',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-reset': '1',
    });
    clock.advance(899); // 1 ms before the window (started by the first request) ends
    expect(engine.handle(viaToken()).status).toBe(429);
    clock.advance(1);
    const fresh = engine.handle(viaToken());
    expect(fresh.status).toBe(200);
    expect(fresh.headers['x-ratelimit-remaining']).toBe('1');
    expect(fresh.headers['x-ratelimit-reset']).toBe('2');
  });

  it('keeps state per token and per kind of auth', () => {
    const { engine } = engineAt({ pipedrive: { limit: 1 } });
    expect(engine.handle(viaToken()).status).toBe(200);
    expect(engine.handle(viaToken()).status).toBe(429);
    expect(engine.handle(viaOAuth()).status).toBe(200);
    expect(engine.handle({ provider: 'pipedrive', path: '/v1/deals?api_token=other' }).status).toBe(200);
  });

  describe('daily POST/PUT budget', () => {
    it('answers 429 with x-daily-requests-left: 0 past the budget; GET is unaffected', () => {
      const { engine } = engineAt({ pipedrive: { dailyLimit: 2, limit: 100 } }, T0 + 3_600_000);
      expect(engine.handle(viaToken('POST')).headers['x-daily-requests-left']).toBe('1');
      expect(engine.handle(viaToken('PUT')).headers['x-daily-requests-left']).toBe('0');
      const res = engine.handle(viaToken('POST'));
      expect(res.status).toBe(429);
      expect(res.body).toBe(DOC_429_BODY);
      expect(res.headers['x-daily-requests-left']).toBe('0');
      expect(res.headers['x-ratelimit-remaining']).toBe('97'); // the 2-second window has room
      expect(engine.handle(viaToken('GET')).status).toBe(200);
    });

    it('resets at midnight UTC of the server clock', () => {
      const clock = manualClock(T0 - 1000);
      const engine = createSimulatorEngine({ now: clock.now, pipedrive: { dailyLimit: 1 } });
      expect(engine.handle(viaToken('POST')).status).toBe(200);
      expect(engine.handle(viaToken('POST')).status).toBe(429);
      clock.set(T0);
      const res = engine.handle(viaToken('POST'));
      expect(res.status).toBe(200);
      expect(res.headers['x-daily-requests-left']).toBe('0');
    });

    it('with timeScale, a day is 86,400,000 / timeScale ms aligned to the epoch', () => {
      const { engine, clock } = engineAt({ timeScale: 1000, pipedrive: { dailyLimit: 1 } }, T0 + 86_000);
      expect(engine.handle(viaToken('POST')).status).toBe(200);
      clock.advance(10); // a new 2-ms window, same 86.4-s day
      expect(engine.handle(viaToken('POST')).headers['x-daily-requests-left']).toBe('0');
      clock.set(T0 + 86_400);
      expect(engine.handle(viaToken('POST')).headers['x-daily-requests-left']).toBe('0');
      expect(engine.handle(viaToken('POST')).status).toBe(429);
    });

    it('does not apply to OAuth requests ("applicable only to api_token requests")', () => {
      const { engine } = engineAt({ pipedrive: { dailyLimit: 0 } });
      const res = engine.handle(viaOAuth('POST'));
      expect(res.status).toBe(200);
      expect(res.headers['x-daily-requests-left']).toBeUndefined();
    });
  });

  describe('blocking high-volume traffic', () => {
    it('answers 403 with the Cloudflare HTML page after 10 requests sent while limited, for blockMs', () => {
      const { engine, clock } = engineAt({ pipedrive: { limit: 1 }, abuse: { blockMs: 5_000 } });
      expect(engine.handle(viaToken()).status).toBe(200);
      expect(engine.handle(viaToken()).status).toBe(429); // the first 429: not yet "while limited"
      for (let i = 0; i < 10; i++) expect(engine.handle(viaToken()).status).toBe(429);
      const res = engine.handle(viaToken());
      expect(res.status).toBe(403);
      expect(res.headers['Content-Type']).toMatch(/^text\/html/);
      expect(res.body).toContain(CLOUDFLARE);
      expect(res.body).toMatch(/^<!DOCTYPE html>/);
      expect(res.headers['x-ratelimit-limit']).toBeUndefined();
      clock.advance(2_000); // the 2-second window is over, the block is not
      expect(engine.handle(viaToken()).status).toBe(403);
      clock.advance(2_999);
      expect(engine.handle(viaToken()).status).toBe(403);
      clock.advance(1);
      expect(engine.handle(viaToken()).status).toBe(200);
      expect(engine.statsFor('pipedrive', TOKEN)).toEqual({
        ok: 2,
        limited: 11,
        blocked: 3,
        sentWhileLimited: 13,
        total: 16,
      });
    });

    it("honours '429sBeforeBlock', defaults blockMs to 60 s / timeScale, and counts only within a window", () => {
      const { engine, clock } = engineAt({ timeScale: 10, pipedrive: { limit: 1 }, abuse: { '429sBeforeBlock': 2 } });
      engine.handle(viaToken());
      engine.handle(viaToken()); // 429
      engine.handle(viaToken()); // 429, while limited (1)
      clock.advance(200); // new window (2 s / 10): the count starts again
      engine.handle(viaToken());
      engine.handle(viaToken()); // 429
      expect(engine.handle(viaToken()).status).toBe(429); // (1)
      expect(engine.handle(viaToken()).status).toBe(429); // (2)
      expect(engine.handle(viaToken()).status).toBe(403); // (3) > 2
      clock.advance(5_999);
      expect(engine.handle(viaToken()).status).toBe(403);
      clock.advance(1);
      expect(engine.handle(viaToken()).status).toBe(200);
    });

    it('never blocks OAuth traffic, and abuse: false turns the rule off', () => {
      const oauth = engineAt({ pipedrive: { limit: 1 } }).engine;
      for (let i = 0; i < 30; i++) oauth.handle(viaOAuth());
      expect(oauth.handle(viaOAuth()).status).toBe(429);
      const off = engineAt({ pipedrive: { limit: 1 }, abuse: false }).engine;
      for (let i = 0; i < 30; i++) off.handle(viaToken());
      expect(off.handle(viaToken()).status).toBe(429);
    });

    it('also counts hammering POSTs past the daily budget', () => {
      const { engine } = engineAt({ pipedrive: { dailyLimit: 0, limit: 1000 } });
      expect(engine.handle(viaToken('POST')).status).toBe(429);
      for (let i = 0; i < 10; i++) expect(engine.handle(viaToken('POST')).status).toBe(429);
      expect(engine.handle(viaToken('POST')).status).toBe(403);
    });
  });
});
