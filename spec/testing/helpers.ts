import { createSimulatorEngine, type SimulatorEngine, type SimulatorOptions } from '../../lib/testing/index.js';

/** 2026-01-01T00:00:00Z: an hour, a minute and a UTC-day boundary. */
export const T0 = Date.UTC(2026, 0, 1);

/** A hand-driven clock. */
export interface ManualClock {
  readonly now: () => number;
  advance(ms: number): void;
  set(epochMs: number): void;
}

export function manualClock(start = T0): ManualClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

/** An engine on a manual clock. */
export function engineAt(options: SimulatorOptions = {}, start = T0): { engine: SimulatorEngine; clock: ManualClock } {
  const clock = manualClock(start);
  return { engine: createSimulatorEngine({ now: clock.now, ...options }), clock };
}

/** Unix seconds of an epoch-ms time. */
export const unix = (ms: number): number => Math.floor(ms / 1000);
