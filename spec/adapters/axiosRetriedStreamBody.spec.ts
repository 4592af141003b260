import { afterEach, describe, expect, it } from '@jest/globals';
import { Agent } from 'node:http';
import axios from 'axios';
import { createLimiter, providers, type Limiter } from '../../lib/index.js';
import { attachRateLimiter, rateLimitedRequest } from '../../lib/adapters/axios.js';
import { lastValueFrom } from 'rxjs';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer | undefined;
const limiters: Limiter[] = [];
const agents: Agent[] = [];
afterEach(async () => {
  await server?.close();
  server = undefined;
  for (const a of agents.splice(0)) a.destroy();
  await Promise.all(limiters.splice(0).map((l) => l.close()));
});

/** A server that answers its first request 429 with a large body, the next ones 200 `ok`. */
async function firstOnly429(): Promise<TestServer> {
  return startTestServer((_req, res, record) => {
    res.writeHead(record.n === 1 ? 429 : 200, { 'Retry-After': '0', 'Content-Type': 'text/plain' });
    res.end(record.n === 1 ? 'x'.repeat(256 * 1024) : 'ok');
  });
}

/** The answer, or `stuck` when none came in 10 s (the retry waiting for a socket that never came back). */
function within10s<T>(answer: Promise<T>): Promise<T | 'stuck'> {
  const stuck = new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 10_000).unref());
  return Promise.race([answer, stuck]);
}

describe('axios: a 429 retried with responseType stream frees its connection', () => {
  it('one socket to the API: the retry gets it, and the answer comes back', async () => {
    // A 429 with a body the caller never sees, then 200.
    server = await startTestServer((_req, res, record) => {
      res.writeHead(record.n === 1 ? 429 : 200, { 'Retry-After': '0', 'Content-Type': 'text/plain' });
      res.end(record.n === 1 ? 'x'.repeat(256 * 1024) : 'ok');
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    const client = axios.create({ baseURL: server.url, httpAgent: agent });
    const limiter = createLimiter({ provider: providers.generic(), key: 'stream-retry' });
    limiters.push(limiter);
    attachRateLimiter(client, limiter);
    // Held by the 429's unread stream, the one socket never came back: the retry waited forever.
    const answer = client.get('/v1/export', { responseType: 'stream' });
    const stuck = new Promise<'stuck'>((resolve) => setTimeout(() => resolve('stuck'), 10_000).unref());
    const res = await Promise.race([answer, stuck]);
    expect(res === 'stuck' ? res : res.status).toBe(200);
    if (res !== 'stuck') {
      let text = '';
      for await (const chunk of res.data as AsyncIterable<Buffer>) text += String(chunk);
      expect(text).toBe('ok');
    }
    expect(server.requests).toHaveLength(2);
  }, 20_000);

  it('rateLimitedRequest (the operator): the same', async () => {
    server = await firstOnly429();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    const client = axios.create({ baseURL: server.url, httpAgent: agent });
    const limiter = createLimiter({ provider: providers.generic(), key: 'stream-retry-operator' });
    limiters.push(limiter);
    const res = await within10s(
      lastValueFrom(rateLimitedRequest(limiter, client, { url: '/v1/export', responseType: 'stream' })),
    );
    expect(res === 'stuck' ? res : res.status).toBe(200);
    if (res !== 'stuck') (res.data as { destroy(): void }).destroy();
    expect(server.requests).toHaveLength(2);
  }, 20_000);
});
