import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { main } from '../../lib/cli/main.js';
import type { ProbeReport } from '../../lib/cli/probe.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';

const TOKEN = 'probe-secret-token-1234567890';

/** Runs the command; returns its exit code and everything it printed. */
async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(
    argv,
    (l) => out.push(l),
    (l) => err.push(l),
  );
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('rx-ratelimit probe', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    await sim.close();
  });

  it('names the profile that reads the headers, each bucket, and the server clock, never the credential', async () => {
    const { code, out, err } = await run([
      'probe',
      `${sim.urlFor('procore')}/rest/v1.0/projects`,
      '-H',
      `Authorization: Bearer ${TOKEN}`,
    ]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/answered 200/);
    expect(out).toMatch(/profile: providers\.procore\(\)/);
    expect(out).toMatch(/bucket hourly: 3599 of 3600 left, resets /);
    expect(out).toMatch(/server clock: /);
    expect(out).not.toContain(TOKEN);
  });

  it('--json gives the same report as data, with the query string (which may hold a token) removed', async () => {
    const { code, out } = await run(['probe', `${sim.urlFor('pipedrive')}/v1/deals?api_token=${TOKEN}`, '--json']);
    expect(code).toBe(0);
    expect(out).not.toContain(TOKEN);
    const report = JSON.parse(out) as ProbeReport;
    expect(report.url).toMatch(/\/pd\/v1\/deals$|\/v1\/deals$/);
    expect(report.best).toBe('pipedrive');
    expect(report.profiles[0]?.buckets.length).toBeGreaterThan(0);
    expect(typeof report.clockOffsetMs).toBe('number');
  });

  it('says what is missing when the response has no rate-limit headers', async () => {
    const { code, out } = await run(['probe', `${sim.url}/nowhere`]);
    expect(code).toBe(0);
    expect(out).toMatch(/profile: none fits/);
    expect(out).toMatch(/missing: rate-limit headers/);
  });

  it('refuses a malformed header without echoing it, and a missing URL with the usage', async () => {
    const bad = await run(['probe', sim.url, '-H', TOKEN]);
    expect(bad.code).toBe(2);
    expect(bad.err).not.toContain(TOKEN);
    expect((await run(['probe'])).err).toMatch(/usage: rx-ratelimit probe/);
  });
});
