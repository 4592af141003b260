import { afterEach, describe, expect, it } from '@jest/globals';

import { createSimulatorEngine, startSimulator, type Simulator } from '../../lib/testing/index.js';

describe('simulator: HTTP server (real sockets)', () => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  it('starts on a free port of 127.0.0.1, answers over fetch, counts, and closes cleanly', async () => {
    sim = await startSimulator({ procore: { limit: 1 }, latencyMs: 30 });
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(sim.urlFor('planningCenter')).toBe(`${sim.url}/pco`);

    const headers = { Authorization: 'Bearer socket-token' };
    const started = Date.now();
    const first = await fetch(`${sim.urlFor('procore')}/rest/v1.0/projects?company_id=1`, { headers });
    expect(Date.now() - started).toBeGreaterThanOrEqual(25); // latencyMs (timers may fire a little early)
    expect(first.status).toBe(200);
    expect(first.headers.get('x-rate-limit-limit')).toBe('1');
    expect(first.headers.get('x-rate-limit-remaining')).toBe('0');
    expect(Date.parse(first.headers.get('date')!)).toBeGreaterThan(started - 2000);
    await first.text();

    const second = await fetch(`${sim.urlFor('procore')}/rest/v1.0/projects`, { headers });
    expect(second.status).toBe(429);
    expect(await second.text()).toBe(
      'You have surpassed the max number of requests for an hour. Please wait until your limit resets.',
    );

    const missing = await fetch(`${sim.url}/gitlab/repos`, { headers });
    expect(missing.status).toBe(404);
    await missing.text();

    const stats = sim.stats();
    expect(Object.values(stats.procore)).toEqual([{ ok: 1, limited: 1, blocked: 0, sentWhileLimited: 0, total: 2 }]);
    expect(sim.engine.statsFor('procore', 'Bearer socket-token').total).toBe(2);

    const url = sim.url;
    await sim.close();
    sim = undefined;
    await expect(fetch(`${url}/procore/x`, { headers })).rejects.toThrow();
  });

  it('routes every prefix, reads the api_token query and POST bodies, and preserves header names', async () => {
    sim = await startSimulator({ timeScale: 1000 });
    const pd = await fetch(`${sim.urlFor('pipedrive')}/v1/deals?api_token=pd-socket`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Deal' }),
    });
    expect(pd.status).toBe(200);
    expect(pd.headers.get('x-daily-requests-left')).toBe('9999');
    expect(await pd.json()).toEqual({ success: true, data: [] });

    const pco = await fetch(`${sim.urlFor('planningCenter')}/people/v2/me?offset=40000`, {
      headers: { Authorization: 'Bearer u' },
    });
    expect(pco.headers.get('x-pco-api-request-rate-limit')).toBe('75');
    expect(pco.headers.get('x-pco-api-request-rate-period')).toBe('0.02 seconds');
    await pco.text();

    for (const prefix of ['fieldwire', 'teos']) {
      const res = await fetch(`${sim.url}/${prefix}/anything`, { headers: { Authorization: 'Bearer u' } });
      expect(res.status).toBe(200);
      await res.text();
    }
    // Node's fetch lowercases names; the raw response keeps the docs' spelling.
    const { request } = await import('node:http');
    const rawNames = await new Promise<string[]>((resolve, reject) => {
      const req = request(`${sim!.urlFor('procore')}/x`, { headers: { Authorization: 'Bearer raw' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.rawHeaders.filter((_, i) => i % 2 === 0)));
      });
      req.on('error', reject);
      req.end();
    });
    expect(rawNames).toEqual(
      expect.arrayContaining(['Date', 'X-Rate-Limit-Limit', 'X-Rate-Limit-Remaining', 'X-Rate-Limit-Reset']),
    );
  });

  it('serves a given engine and drops pending answers on close', async () => {
    const engine = createSimulatorEngine({ latencyMs: 5_000 });
    sim = await startSimulator({ engine });
    expect(sim.engine).toBe(engine);
    const pending = fetch(`${sim.urlFor('teos')}/slow`, { headers: { Authorization: 'Bearer slow' } });
    pending.catch(() => undefined); // asserted below; not unhandled while the server gets it
    // Close once the server holds the request (a busy machine may take more than a few ms to send it).
    for (const until = Date.now() + 5_000; engine.statsFor('teos', 'Bearer slow').total === 0;) {
      if (Date.now() > until) throw new Error('the simulator never received the request');
      await new Promise((r) => setTimeout(r, 10));
    }
    const started = Date.now();
    await sim.close();
    sim = undefined;
    await expect(pending).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(engine.statsFor('teos', 'Bearer slow').total).toBe(1);
  });
});

describe('startSimulator with CORS options', () => {
  it('answers a preflight uncounted, and lets an allowed origin read the rate-limit headers', async () => {
    const sim = await startSimulator({ cors: { allowOrigin: ['http://localhost:4200'] } });
    try {
      const url = `${sim.urlFor('pipedrive')}/v1/deals?api_token=cors-token`;
      const preflight = await fetch(url, {
        method: 'OPTIONS',
        headers: {
          Origin: 'http://localhost:4200',
          'Access-Control-Request-Method': 'GET',
          'Access-Control-Request-Headers': 'x-requested-with',
        },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get('access-control-allow-origin')).toBe('http://localhost:4200');
      expect(preflight.headers.get('access-control-allow-headers')).toBe('x-requested-with');
      expect(Object.keys(sim.stats().pipedrive)).toHaveLength(0);

      const allowed = await fetch(url, { headers: { Origin: 'http://localhost:4200' } });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:4200');
      expect(allowed.headers.get('access-control-expose-headers')?.toLowerCase()).toContain('x-ratelimit-remaining');

      const refused = await fetch(url, { headers: { Origin: 'http://evil.example' } });
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      expect(refused.headers.get('access-control-expose-headers')).toBeNull();
    } finally {
      await sim.close();
    }
  });

  it('exposes only the headers listed, and rejects a bad option naming it', async () => {
    const sim = await startSimulator({ cors: { allowOrigin: '*', exposeHeaders: [] } });
    try {
      const res = await fetch(`${sim.urlFor('procore')}/rest/v1.0/projects`, {
        headers: { Origin: 'http://a.example', Authorization: 'Bearer t' },
      });
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('access-control-expose-headers')).toBeNull();
    } finally {
      await sim.close();
    }
    await expect(startSimulator({ cors: { allowOrigin: 'http://a.example' as never } })).rejects.toThrow(
      /cors\.allowOrigin/,
    );
  });
});
