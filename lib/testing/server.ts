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
  /**
   * Answer browsers from other origins as a CORS-enabled API does. Unset: no CORS headers at all,
   * as an API that does not support browsers (a browser then refuses every response: status 0).
   */
  readonly cors?: SimulatorCorsOptions | undefined;
}

/**
 * CORS behaviour of the simulator's server, to try a browser app against it.
 *
 * @example
 * ```ts
 * import { startSimulator } from 'rx-ratelimit/testing';
 *
 * // An API that allows the dev server's origin and exposes its rate-limit headers.
 * const sim = await startSimulator({ cors: { allowOrigin: ['http://localhost:4200'] } });
 * await sim.close();
 * ```
 */
export interface SimulatorCorsOptions {
  /** Origins allowed (`Access-Control-Allow-Origin` echoes a listed one), or `'*'` for any. */
  readonly allowOrigin: '*' | readonly string[];
  /**
   * Response headers listed in `Access-Control-Expose-Headers`: `'all'` (every header of the
   * answer), or names; `[]` exposes none, so the browser shows only the CORS-safelisted ones.
   * @default 'all'
   */
  readonly exposeHeaders?: 'all' | readonly string[] | undefined;
  /**
   * Answer a preflight (`OPTIONS` with `Access-Control-Request-Method`) with 204 and the allowed
   * methods and headers, without counting it; `false` passes it to the provider like any request.
   * @default true
   */
  readonly preflight?: boolean | undefined;
}

/** The CORS headers for a request from `origin` (none when it is not allowed). */
function corsHeaders(cors: SimulatorCorsOptions | undefined, origin: string | undefined): Record<string, string> {
  if (!cors || origin === undefined) return {};
  const any = cors.allowOrigin === '*';
  if (!any && !cors.allowOrigin.includes(origin)) return {};
  return { 'Access-Control-Allow-Origin': any ? '*' : origin, Vary: 'Origin' };
}

function checkCors(cors: unknown): SimulatorCorsOptions | undefined {
  if (cors === undefined) return undefined;
  const c = cors as Partial<SimulatorCorsOptions> | null;
  const origins = c?.allowOrigin;
  if (origins !== '*' && !(Array.isArray(origins) && origins.every((o) => typeof o === 'string'))) {
    throw new TypeError("startSimulator: option `cors.allowOrigin` must be '*' or an array of origins");
  }
  const expose = c?.exposeHeaders;
  if (
    expose !== undefined &&
    expose !== 'all' &&
    !(Array.isArray(expose) && expose.every((h) => typeof h === 'string'))
  ) {
    throw new TypeError("startSimulator: option `cors.exposeHeaders` must be 'all' or an array of header names");
  }
  if (c?.preflight !== undefined && typeof c.preflight !== 'boolean') {
    throw new TypeError('startSimulator: option `cors.preflight` must be a boolean');
  }
  return c as SimulatorCorsOptions;
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
  const cors = checkCors(options.cors);
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
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    const allow = corsHeaders(cors, origin);
    req.on('error', () => res.destroy());
    req.resume();
    if (cors && cors.preflight !== false && req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      req.on('end', () => {
        const asked = req.headers['access-control-request-headers'];
        res.writeHead(204, {
          ...allow,
          ...(allow['Access-Control-Allow-Origin']
            ? {
                'Access-Control-Allow-Methods': 'GET, HEAD, POST, PUT, PATCH, DELETE',
                ...(typeof asked === 'string' ? { 'Access-Control-Allow-Headers': asked.slice(0, 1000) } : {}),
                'Access-Control-Max-Age': '600',
              }
            : {}),
          'Content-Length': '0',
        });
        res.end();
      });
      return;
    }
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
        const expose =
          !allow['Access-Control-Allow-Origin'] || !cors
            ? []
            : cors.exposeHeaders === undefined || cors.exposeHeaders === 'all'
              ? Object.keys(answer.headers)
              : cors.exposeHeaders;
        res.writeHead(answer.status, {
          ...answer.headers,
          ...allow,
          ...(expose.length > 0 ? { 'Access-Control-Expose-Headers': expose.join(', ') } : {}),
          'Content-Length': String(Buffer.byteLength(answer.body)),
        });
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
