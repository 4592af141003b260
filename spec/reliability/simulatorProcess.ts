/**
 * The provider simulator in a process of its own (`node --import tsx simulatorProcess.ts`), so
 * that a test can stall its own event loop, as a busy machine does, without stalling the
 * server's clock or the moment it reads each request. Each answer leaves after a latency drawn
 * from `latencyMs` ([least, most]), so answers overtake one another.
 *
 * Messages: `{ start: { options, provider, latencyMs, seed } }` → `{ url }`; `{ stats: true }` →
 * `{ stats }`; `{ close: true }` closes the server and exits.
 */
import {
  startSimulator,
  type SimulatedProvider,
  type Simulator,
  type SimulatorOptions,
} from '../../lib/testing/index.js';
import { prng } from './arbitraries.js';

export interface StartSimulator {
  readonly options: SimulatorOptions;
  readonly provider: SimulatedProvider;
  readonly latencyMs: readonly [number, number];
  readonly seed: number;
}

let sim: Simulator | undefined;
process.on('message', (m: { start?: StartSimulator; stats?: true; close?: true }) => {
  void (async () => {
    if (m.start) {
      const { options, provider, latencyMs, seed } = m.start;
      sim = await startSimulator({ ...options, latencyMs: 1 });
      const random = prng(seed);
      const [least, most] = latencyMs;
      // Read by the server for each answer it sends.
      Object.defineProperty(sim.engine, 'latencyMs', { get: () => least + random() * (most - least) });
      process.send?.({ url: sim.urlFor(provider) });
    } else if (m.stats) {
      process.send?.({ stats: sim?.stats() });
    } else if (m.close) {
      await sim?.close();
      process.exit(0);
    }
  })();
});
