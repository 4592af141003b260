import { describe, expect, it } from '@jest/globals';

import {
  createSimulatorEngine,
  credentialLabel,
  headerOf,
  SIMULATED_PROVIDERS,
  type SimulatedProvider,
  type SimulatorRequest,
} from '../../lib/testing/index.js';
import { engineAt, T0, unix } from './helpers.js';

/** RFC 9110 IMF-fixdate. */
const IMF_FIXDATE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
const SECRET = 'S3CR3T-T0KEN-never-echoed';

function requestFor(provider: SimulatedProvider, secret = SECRET): SimulatorRequest {
  return provider === 'pipedrive'
    ? { provider, method: 'POST', path: '/v1/deals', query: { api_token: secret } }
    : { provider, path: '/x', headers: { authorization: `Bearer ${secret}` } };
}

describe('simulator engine', () => {
  it('sends a correct IMF-fixdate Date of the server clock, shifted by clockOffsetMs', () => {
    const { engine } = engineAt({ clockOffsetMs: 90_500 }, T0 + 1_250);
    for (const provider of SIMULATED_PROVIDERS) {
      const res = engine.handle(requestFor(provider));
      const date = res.headers['Date']!;
      expect(date).toMatch(IMF_FIXDATE);
      expect(date).toBe('Thu, 01 Jan 2026 00:01:31 GMT');
      expect(Date.parse(date)).toBe(Math.floor((T0 + 1_250 + 90_500) / 1000) * 1000);
    }
    expect(engine.serverNow() - engine.now()).toBe(90_500);
  });

  it('shifts every absolute time by clockOffsetMs (windows live on the server clock)', () => {
    const offset = -30 * 60_000; // the server is 30 minutes behind
    const { engine } = engineAt({ clockOffsetMs: offset, teos: { headersAfter: 1 }, fieldwire: { catchAll: 0 } });
    const procore = engine.handle(requestFor('procore'));
    expect(procore.headers['X-Rate-Limit-Reset']).toBe(String(unix(T0))); // server is at 23:30, its hour ends at T0
    const teos = engine.handle(requestFor('teos'));
    expect(teos.headers['X-Rate-Limit-Reset']).toBe('2025-12-31T23:31:00.0000000Z');
    const fieldwire = engine.handle(requestFor('fieldwire'));
    expect(fieldwire.headers['X-RateLimit-Reset']).toBe(String(unix(T0 - 30 * 60_000 + 300_000)));
  });

  it('answers 404 to an unknown provider and 401 without a credential', () => {
    const { engine } = engineAt();
    const res = engine.handle({ provider: 'gitlab', path: '/repos' });
    expect(res.status).toBe(404);
    expect(res.headers['Date']).toMatch(IMF_FIXDATE);
    for (const provider of SIMULATED_PROVIDERS) expect(engine.handle({ provider, path: '/x' }).status).toBe(401);
    expect(engine.stats()).toEqual({
      procore: {},
      planningCenter: {},
      fieldwire: {},
      pipedrive: {},
      teos: {},
      github: {},
      hubspot: {},
      atlassian: {},
      shopify: {},
    });
  });

  it('never echoes or exposes a credential: stats are keyed by a label', () => {
    const { engine } = engineAt({ procore: { limit: 0 }, pipedrive: { limit: 0 }, fieldwire: { catchAll: 0 } });
    const seen: string[] = [];
    for (const provider of SIMULATED_PROVIDERS) {
      for (let i = 0; i < 15; i++) {
        const res = engine.handle(requestFor(provider));
        seen.push(res.body, JSON.stringify(res.headers));
      }
    }
    expect(seen.join('\n')).not.toContain(SECRET);
    const stats = engine.stats();
    expect(JSON.stringify(stats)).not.toContain(SECRET);
    expect(Object.keys(stats.procore)).toEqual([credentialLabel(`Bearer ${SECRET}`)]);
    expect(Object.keys(stats.pipedrive)).toEqual([credentialLabel(SECRET)]);
    expect(credentialLabel(SECRET)).toMatch(/^cred_[0-9a-f]{16}$/);
    expect(stats.procore[credentialLabel(`Bearer ${SECRET}`)]).toEqual({
      ok: 0,
      limited: 15,
      blocked: 0,
      sentWhileLimited: 14,
      total: 15,
    });
    expect(engine.statsFor('pipedrive', SECRET)).toMatchObject({ limited: 11, blocked: 4, total: 15 });
  });

  it('reset() forgets every window and statistic', () => {
    const { engine } = engineAt({ procore: { limit: 1 } });
    engine.handle(requestFor('procore'));
    expect(engine.handle(requestFor('procore')).status).toBe(429);
    engine.reset();
    expect(engine.statsFor('procore', `Bearer ${SECRET}`).total).toBe(0);
    expect(engine.handle(requestFor('procore')).status).toBe(200);
  });

  it('applies limitChanges in time order on the client clock, and changeLimits from now on', () => {
    const { engine, clock } = engineAt({
      clockOffsetMs: 10 * 60_000,
      procore: { limit: 10 },
      limitChanges: [
        { at: T0 + 2000, provider: 'procore', set: { limit: 30 } },
        { at: T0 + 1000, provider: 'procore', set: { limit: 20 } },
      ],
    });
    const limit = () => engine.handle(requestFor('procore')).headers['X-Rate-Limit-Limit'];
    expect(limit()).toBe('10');
    clock.set(T0 + 1000);
    expect(limit()).toBe('20');
    clock.set(T0 + 2000);
    expect(limit()).toBe('30');
    engine.changeLimits('procore', { limit: 5 });
    expect(limit()).toBe('5');
    clock.set(T0 + 500); // a clock that goes back sees the limits of that time
    expect(limit()).toBe('10');
  });

  it('rejects bad options with a TypeError naming the option', () => {
    expect(() => createSimulatorEngine({ timeScale: 0 })).toThrow(/`timeScale`/);
    expect(() => createSimulatorEngine({ latencyMs: -1 })).toThrow(TypeError);
    expect(() => createSimulatorEngine({ procore: { limit: 1.5 } })).toThrow(/`procore\.limit`/);
    expect(() => createSimulatorEngine({ pipedrive: { plan: 'gold' as never } })).toThrow(/`pipedrive\.plan`/);
    expect(() => createSimulatorEngine({ fieldwire: { endpoints: { 'GET /x': { minute: 1 } as never } } })).toThrow(
      /fieldwire\.endpoints/,
    );
    expect(() =>
      createSimulatorEngine({ limitChanges: [{ at: T0, provider: 'teos', set: { perMinute: -1 } }] }),
    ).toThrow(/`limitChanges\[0\]\.set\.teos\.perMinute`/);
    expect(() => createSimulatorEngine({ abuse: { '429sBeforeBlock': -2 } })).toThrow(/429sBeforeBlock/);
    const engine = createSimulatorEngine();
    expect(() => engine.changeLimits('teos', { perDay: Number.NaN })).toThrow(/perDay/);
  });

  it('reads credentials and query parameters from any header case and from the path', () => {
    const { engine } = engineAt({ procore: { limit: 1 } });
    engine.handle({ provider: 'procore', path: '/a', headers: { AUTHORIZATION: 'Bearer a' } });
    expect(engine.handle({ provider: 'procore', path: '/a', headers: { authorization: 'Bearer a' } }).status).toBe(429);
    expect(
      headerOf(
        engine.handle({ provider: 'procore', path: '/a', headers: { Authorization: 'Bearer b' } }),
        'x-rate-limit-remaining',
      ),
    ).toBe('0');
  });
});
