import type { VirtualTimeScheduler } from 'rxjs';
import type { SimulatedProvider, SimulatorEngine } from '../../lib/testing/index.js';

/**
 * A `fetch` answered by the simulator engine in virtual time: the engine handles the request
 * when it is called (the server's clock is the scheduler's), and the `Response` resolves the
 * engine's `latencyMs` later on `scheduler`. The URL's path is the path under the provider.
 */
export function virtualFetch(
  engine: SimulatorEngine,
  scheduler: VirtualTimeScheduler,
  provider: SimulatedProvider,
): typeof fetch {
  const send = (input: globalThis.RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const url = new URL(request.url);
    const answer = engine.handle({ provider, method: request.method, path: url.pathname + url.search, headers });
    return new Promise((resolve) => {
      scheduler.schedule(() => {
        resolve(new Response(answer.body, { status: answer.status, headers: answer.headers }));
      }, engine.latencyMs);
    });
  };
  return send as typeof fetch;
}

/**
 * Runs promise-based code in virtual time: lets every pending promise job run, then moves the
 * scheduler to its next action (and runs every action due then), until `done()` says so.
 * Throws when nothing is scheduled and `done()` is still false (the code is stuck).
 */
export async function runPromisesVirtually(scheduler: VirtualTimeScheduler, done: () => boolean): Promise<void> {
  for (;;) {
    // Promise jobs (and the body streams of `Response`s) settle within a few turns.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    if (done()) return;
    const next = scheduler.actions[0];
    if (next === undefined) throw new Error('virtual time is stuck: nothing scheduled, and not done');
    scheduler.maxFrames = next.delay;
    scheduler.flush();
  }
}
