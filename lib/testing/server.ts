/**
 * The simulator over real sockets: a `node:http` server on 127.0.0.1 that routes by path prefix
 * to the engine and answers after `latencyMs`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createSimulatorEngine, PROVIDER_PREFIXES, type SimulatorEngine } from './engine.js';
import { SIMULATED_PROVIDERS, type SimulatedProvider, type SimulatorOptions, type SimulatorStats } from './types.js';

/**
 * Options of {@link startSimulator}: the engine's options, or an engine to serve.
 *
 * @example
 * ```ts
 * import { createSimulatorEngine, startSimulator, type SimulatorServerOptions } from 'rx-ratelimit/testing';
 *
 * const options: SimulatorServerOptions = { engine: createSimulatorEngine({ latencyMs: 25 }) };
 * const sim = await startSimulator(options);
 * ```
 */
export interface SimulatorServerOptions extends SimulatorOptions {
  /** Serve this engine instead of creating one (its own options then apply; the others here are ignored). */
  readonly engine?: SimulatorEngine | undefined;
  /** Port to listen on. @default 0 (a free port) */
  readonly port?: number | undefined;
}

/**
 * A running simulator.
 *
 * @example
 * ```ts
 * import { startSimulator, type Simulator } from 'rx-ratelimit/testing';
 *
 * const sim: Simulator = await startSimulator();
 * const res = await fetch(`${sim.urlFor('pipedrive')}/v1/deals?api_token=t`);
 * res.headers.get('x-ratelimit-remaining'); // '19'
 * await sim.close();
 * ```
 */
export interface Simulator {
  /** Base URL, e.g. `http://127.0.0.1:54321`. */
  readonly url: string;
  /** Base URL of one provider, e.g. `http://127.0.0.1:54321/pco` for `'planningCenter'`. */
  urlFor(provider: SimulatedProvider): string;
  readonly engine: SimulatorEngine;
  /** Same as `engine.stats()`. */
  stats(): SimulatorStats;
  /** Stops listening, drops every connection and pending answer; resolves when the server is closed. */
  close(): Promise<void>;
}

/**
 * Starts the provider simulator as an HTTP server on 127.0.0.1 (a free port unless `port` is
 * given). Routes: `/procore`, `/pco` (Planning Center), `/fieldwire`, `/pipedrive`, `/teos`; any
 * other prefix is 404. Each request is handled by the engine when it has been read, and answered
 * `latencyMs` later.
 *
 * @example
 * ```ts
 * import { startSimulator } from 'rx-ratelimit/testing';
 *
 * const sim = await startSimulator({ timeScale: 1000, procore: { limit: 60 } });
 * const res = await fetch(`${sim.urlFor('procore')}/rest/v1.0/projects`, { headers: { Authorization: 'Bearer t' } });
 * res.headers.get('x-rate-limit-remaining'); // '59'
 * await sim.close();
 * ```
 */
export async function startSimulator(options: SimulatorServerOptions = {}): Promise<Simulator> {
  const engine = options.engine ?? createSimulatorEngine(options);
  const pending = new Set<ReturnType<typeof setTimeout>>();
  const byPrefix = new Map<string, SimulatedProvider>(
    SIMULATED_PROVIDERS.map((p) => [PROVIDER_PREFIXES[p].slice(1), p]),
  );

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const segments = url.pathname.split('/');
    const prefix = segments[1] ?? '';
    const rest = `/${segments.slice(2).join('/')}`;
    req.on('error', () => res.destroy());
    req.resume();
    req.on('end', () => {
      const answer = engine.handle({
        provider: byPrefix.get(prefix) ?? `unknown:${prefix}`,
        method: req.method ?? 'GET',
        path: rest,
        query: url.searchParams,
        headers: req.headers,
      });
      const send = (): void => {
        if (res.destroyed) return;
        res.writeHead(answer.status, { ...answer.headers, 'Content-Length': String(Buffer.byteLength(answer.body)) });
        res.end(answer.body);
      };
      if (engine.latencyMs <= 0) {
        send();
        return;
      }
      const timer = setTimeout(() => {
        pending.delete(timer);
        send();
      }, engine.latencyMs);
      pending.add(timer);
    });
  };

  const server = createServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  let closing: Promise<void> | undefined;

  return {
    url,
    urlFor: (provider) => `${url}${PROVIDER_PREFIXES[provider]}`,
    engine,
    stats: () => engine.stats(),
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const timer of pending) clearTimeout(timer);
        pending.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
