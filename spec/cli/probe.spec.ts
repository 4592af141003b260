import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { main } from '../../lib/cli/main.js';
import { formatProbe, probe, type ProbeReport } from '../../lib/cli/probe.js';
import { startSimulator, type Simulator } from '../../lib/testing/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

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
    // Pipedrive's three X-RateLimit headers, on a host that is not Pipedrive's: the general
    // profile fits, and Pipedrive's reads them as well.
    expect(report.best).toBe('generic');
    expect(report.profiles.map((p) => p.provider)).toContain('pipedrive');
    expect(report.profiles[0]?.buckets.length).toBeGreaterThan(0);
    expect(typeof report.clockOffsetMs).toBe('number');
  });

  it.each([
    ['procore', '/rest/v1.0/projects', 'providers.procore()'],
    ['planningCenter', '/people/v2/people', 'providers.planningCenter()'],
    ['github', '/repos/octo/hello/issues', 'providers.github()'],
    ['hubspot', '/crm/v3/objects/contacts', 'providers.hubspot()'],
    ['atlassian', '/rest/api/3/issue/ABC-1', 'providers.atlassian()'],
    ['shopify', '/admin/api/2025-01/products.json', "providers.shopify({ api: 'rest' })"],
  ] as const)('names %s from the headers only its API sends, as the call that makes it', async (name, path, use) => {
    const { code, out } = await run(['probe', `${sim.urlFor(name)}${path}`, '-H', `Authorization: Bearer ${TOKEN}`]);
    expect(code).toBe(0);
    expect(out).toContain(`profile: ${use}\n`);
  });

  it('says what is missing when the response has no rate-limit headers', async () => {
    const { code, out } = await run(['probe', `${sim.url}/nowhere`]);
    expect(code).toBe(0);
    expect(out).toMatch(/profile: none fits/);
    expect(out).toMatch(/missing: rate-limit headers/);
  });

  it('a server clock ahead by less than a second is not called in step: Date allows no less than its lower bound', async () => {
    // Sent at 12:00:00.200, answered at .210, stamped "12:00:01": the server's clock is at least
    // 790 ms ahead (its second had begun), which a limiter takes as its offset.
    const sent = Date.UTC(2026, 11, 7, 12, 0, 0, 200);
    const now = jest
      .spyOn(Date, 'now')
      .mockReturnValueOnce(sent)
      .mockReturnValueOnce(sent + 10);
    try {
      const fetch = async () =>
        new Response('', { headers: { date: new Date(Date.UTC(2026, 11, 7, 12, 0, 1)).toUTCString() } });
      const report = await probe('https://api.example.com/v1/x', { fetch });
      expect(report.clockOffsetRangeMs).toEqual([790, 1800]);
      expect(report.clockOffsetMs).toBe(790);
      expect(formatProbe(report)).toContain('server clock: ahead by at least 790 ms (Date allows +790 to +1800 ms)');
    } finally {
      now.mockRestore();
    }
  });

  it('refuses a malformed header without echoing it, and a missing URL with the usage', async () => {
    const bad = await run(['probe', sim.url, '-H', TOKEN]);
    expect(bad.code).toBe(2);
    expect(bad.err).not.toContain(TOKEN);
    expect((await run(['probe'])).err).toMatch(/usage: rx-ratelimit probe/);
  });

  it.each([
    ['a password', `http://user:${TOKEN}@127.0.0.1:1/v1`],
    ['a password with a space', `http://user:pass ${TOKEN}@127.0.0.1:1/v1`],
    ['a password with a tab', `http://user:\t${TOKEN}@127.0.0.1:1/v1`],
  ])('refuses a URL holding %s as a usage error, echoing none of it', async (_name, url) => {
    const { code, out, err } = await run(['probe', url]);
    expect(code).toBe(2);
    expect(err).toMatch(/user name or password/);
    expect(out + err).not.toContain(TOKEN);
  });

  it.each([
    ['a header value with a line break', ['-H', `Authorization: Bearer ${TOKEN}\r\nX-Evil: 1`]],
    ['a header name that is no token', ['-H', `Bad Name: ${TOKEN}`]],
    ['a method with a line break', ['-X', `GET\r\n${TOKEN}`]],
  ])('refuses %s as a usage error, echoing none of it', async (_name, args) => {
    const { code, out, err } = await run(['probe', `${sim.url}/nowhere`, ...args]);
    expect(code).toBe(2);
    expect(err).toMatch(/argument 3/);
    expect(out + err).not.toContain(TOKEN);
  });
});

describe('rx-ratelimit probe on headers several APIs send', () => {
  const inAMinute = () => String(Math.floor(Date.now() / 1000) + 60);
  /** A fetch that answers every URL with `headers`, as the API at that URL would. */
  const answering = (headers: Record<string, string>) =>
    (async () => new Response('{}', { status: 200, headers })) as unknown as typeof globalThis.fetch;

  it('reads plain X-RateLimit headers from an unknown host with the generic profile, not a provider', async () => {
    const server = await startTestServer((_req, res) => {
      res.writeHead(200, {
        'x-ratelimit-limit': '100',
        'x-ratelimit-remaining': '42',
        'x-ratelimit-reset': inAMinute(),
      });
      res.end();
    });
    try {
      const { code, out } = await run(['probe', `${server.url}/v1/things`]);
      expect(code).toBe(0);
      expect(out).toContain('profile: providers.generic()\n');
      expect(out).toMatch(/42 of 100 left/);
    } finally {
      await server.close();
    }
  });

  it.each([
    ['https://api.fieldwire.com/api/v3/projects', 'fieldwire'],
    ['https://acme.fieldwire.net/api/v3/projects', 'fieldwire'],
    ['https://api.github.com/repos/octo/hello', 'github'],
    ['https://ACME.Atlassian.net/rest/api/3/issue/A-1', 'atlassian'],
  ])('names the API of the URL %s when its headers fit several profiles', async (url, best) => {
    const headers = { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '42', 'x-ratelimit-reset': inAMinute() };
    const report = await probe(url, { fetch: answering(headers) });
    expect(report.best).toBe(best);
    expect(report.profiles.map((p) => p.provider)).toContain('generic');
  });

  it("reads Pipedrive's reset in seconds on Pipedrive's host, where a timestamp would be decades ago", async () => {
    const headers = { 'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '39', 'x-ratelimit-reset': '2' };
    const report = await probe('https://acme.pipedrive.com/api/v1/deals', { fetch: answering(headers) });
    expect(report.best).toBe('pipedrive');
    expect(report.profiles[0]?.buckets[0]?.resetAt).toEqual(expect.any(Number));
  });

  it('does not name a provider from a host that only ends like its own', async () => {
    const headers = { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '42', 'x-ratelimit-reset': inAMinute() };
    const report = await probe('https://notgithub.com/v1', { fetch: answering(headers) });
    expect(report.best).toBe('generic');
  });
});

describe('rx-ratelimit probe against a hostile server', () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('does not follow a redirect, so the credential never reaches the other host', async () => {
    const other = await startTestServer((_req, res) => void res.end());
    server = await startTestServer((_req, res) => {
      res.writeHead(302, { location: `${other.url}/steal` });
      res.end();
    });
    const { code, out } = await run(['probe', `${server.url}/v1`, '-H', `Authorization: Bearer ${TOKEN}`]);
    await other.close();
    expect(code).toBe(0);
    expect(out).toMatch(/answered 302/);
    expect(other.requests).toEqual([]);
  });

  it('reads the headers of a never-ending body without reading the body', async () => {
    server = await startTestServer((_req, res) => {
      res.writeHead(200, { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '4' });
      const drip = setInterval(() => res.write('x'.repeat(65_536)), 1);
      res.on('close', () => clearInterval(drip));
    });
    const { code, out } = await run(['probe', `${server.url}/v1`]);
    expect(code).toBe(0);
    expect(out).toMatch(/4 of 10 left/);
  });

  it('gives up on a server that never answers', async () => {
    server = await startTestServer(() => undefined);
    const started = Date.now();
    await expect(probe(`${server.url}/v1`, { timeoutMs: 200 })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('shows no reset for a window 31 years long, whatever the server says', async () => {
    server = await startTestServer((_req, res) => {
      res.writeHead(200, {
        'ratelimit-policy': '"burst";q=10;w=60',
        ratelimit: '"burst";r=3;t=999999999',
        date: 'Fri, 31 Dec 9999 23:59:59 GMT',
      });
      res.end();
    });
    const { code, out } = await run(['probe', `${server.url}/v1`]);
    expect(code).toBe(0);
    expect(out).toMatch(/bucket burst: 3 of 10 left, reset unknown/);
  });
});
