import { describe, expect, it } from '@jest/globals';

import { createSimulatorEngine } from '../../lib/testing/index.js';
import { engineAt, T0, unix } from './helpers.js';

// From the Procore doc (seeds/procore-rate-limits.txt), verbatim.
const DOC_429_BODY = 'You have surpassed the max number of requests for an hour. Please wait until your limit resets.';
const AUTH = { Authorization: 'Bearer procore-token' };
const HOUR = 3_600_000;

describe('simulator: procore', () => {
  it('sends X-Rate-Limit-Limit/-Remaining/-Reset on every response; Reset is the unix second the next window begins', () => {
    const { engine } = engineAt({}, T0 + 1234);
    const res = engine.handle({ provider: 'procore', path: '/rest/v1.0/projects', headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers['X-Rate-Limit-Limit']).toBe('3600');
    expect(res.headers['X-Rate-Limit-Remaining']).toBe('3599');
    expect(res.headers['X-Rate-Limit-Reset']).toBe(String(unix(T0 + HOUR)));
    expect(res.headers['X-Rate-Limit-Reset']).toMatch(/^\d{10}$/); // like the doc's 1466182244
  });

  it('answers 429 past the limit with the doc sentence as plain text, and the three headers still present', () => {
    const { engine } = engineAt({ procore: { limit: 2 } }, T0 + 10 * 60_000);
    engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    const last = engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    expect(last.headers['X-Rate-Limit-Remaining']).toBe('0');
    const res = engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    expect(res.status).toBe(429);
    expect(res.body).toBe(DOC_429_BODY);
    expect(res.headers['Content-Type']).toMatch(/^text\/plain/);
    expect(res.headers).toMatchObject({
      'X-Rate-Limit-Limit': '2',
      'X-Rate-Limit-Remaining': '0',
      'X-Rate-Limit-Reset': String(unix(T0 + HOUR)),
    });
  });

  it('uses fixed 60-minute windows aligned to the clock, per token', () => {
    const { engine, clock } = engineAt({ procore: { limit: 1 } }, T0 + HOUR - 1000);
    expect(engine.handle({ provider: 'procore', path: '/a', headers: AUTH }).status).toBe(200);
    expect(engine.handle({ provider: 'procore', path: '/a', headers: AUTH }).status).toBe(429);
    // Another token has its own window.
    expect(engine.handle({ provider: 'procore', path: '/a', headers: { Authorization: 'Bearer other' } }).status).toBe(
      200,
    );
    clock.advance(999);
    expect(engine.handle({ provider: 'procore', path: '/a', headers: AUTH }).status).toBe(429);
    clock.advance(1); // the hour boundary
    const res = engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers['X-Rate-Limit-Reset']).toBe(String(unix(T0 + 2 * HOUR)));
  });

  it('follows a limit change mid-window without notice', () => {
    const { engine, clock } = engineAt({ limitChanges: [{ at: T0 + 60_000, provider: 'procore', set: { limit: 3 } }] });
    for (let i = 0; i < 2; i++) engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    clock.advance(60_000);
    const res = engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    expect(res.headers['X-Rate-Limit-Limit']).toBe('3');
    expect(res.headers['X-Rate-Limit-Remaining']).toBe('0');
    expect(engine.handle({ provider: 'procore', path: '/a', headers: AUTH }).status).toBe(429);
  });

  it('with timeScale 1000 an hour lasts 3.6 s and Reset is the unix second that window ends (rounded up)', () => {
    const { engine, clock } = engineAt({ timeScale: 1000, procore: { limit: 1 } });
    const first = engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    expect(first.headers['X-Rate-Limit-Reset']).toBe(String(unix(T0) + 4)); // window ends at T0 + 3.6 s
    expect(engine.handle({ provider: 'procore', path: '/a', headers: AUTH }).status).toBe(429);
    clock.advance(3_599);
    expect(engine.handle({ provider: 'procore', path: '/a', headers: AUTH }).status).toBe(429);
    clock.advance(1);
    const next = engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    expect(next.status).toBe(200);
    expect(next.headers['X-Rate-Limit-Reset']).toBe(String(Math.ceil((T0 + 7_200) / 1000)));
  });

  it('answers 401 without a credential, and counts the per-token statistics', () => {
    const { engine } = engineAt({ procore: { limit: 1 } });
    expect(engine.handle({ provider: 'procore', path: '/a' }).status).toBe(401);
    for (let i = 0; i < 3; i++) engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    expect(engine.statsFor('procore', AUTH.Authorization)).toEqual({
      ok: 1,
      limited: 2,
      blocked: 0,
      sentWhileLimited: 1,
      total: 3,
    });
  });

  it('defaults to the real clock', () => {
    const engine = createSimulatorEngine();
    const before = Date.now();
    const res = engine.handle({ provider: 'procore', path: '/a', headers: AUTH });
    const reset = Number(res.headers['X-Rate-Limit-Reset']) * 1000;
    expect(reset).toBeGreaterThan(before);
    expect(reset).toBeLessThanOrEqual(before + HOUR + 1000);
  });
});
