/**
 * The seed providers' fixed windows, one simulated workload each, for the virtual-time specs
 * that vary how requests travel (spec/reliability/sendLag and countedLate): where the window
 * starts, how its reset is told, and the profile as a user would configure it for windows
 * compressed to 2–3 s.
 */
import { providers, type Provider } from '../../lib/index.js';
import type { SimulatedProvider, SimulatorOptions } from '../../lib/testing/index.js';

export interface WindowCase {
  readonly sim: SimulatedProvider;
  readonly options: SimulatorOptions;
  readonly provider: () => Provider;
  readonly path: (i: number) => string;
}

export const WINDOW_CASES = {
  'Pipedrive (window from the first request, reset as whole seconds left)': {
    sim: 'pipedrive',
    options: { pipedrive: { plan: 'advanced' } },
    provider: () => providers.pipedrive({ plan: 'advanced' }),
    path: (i) => `/v1/deals/${i}`,
  },
  'Procore (clock-aligned, reset as unix seconds)': {
    sim: 'procore',
    options: { timeScale: 1800, procore: { limit: 40 } },
    provider: () => providers.procore({ hints: { hourly: { limit: 40, windowMs: 2000 } } }),
    path: (i) => `/rest/v1.0/projects/${i}`,
  },
  'Planning Center (window from the first request, a period, no reset)': {
    sim: 'planningCenter',
    options: { timeScale: 10, planningCenter: { limit: 40 } },
    provider: () => providers.planningCenter({ hints: { default: { limit: 40, windowMs: 2000 } } }),
    path: (i) => `/people/v2/people/${i}`,
  },
  'Fieldwire (clock-aligned endpoint minute, no reset until a 429, window from a hint)': {
    sim: 'fieldwire',
    options: { timeScale: 20, fieldwire: { endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } } } },
    provider: () =>
      providers.fieldwire({
        endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } },
        hints: {
          'catch-all': { windowMs: 15_000 },
          'GET /projects/:id/tasks:minute': { windowMs: 3000 },
          'GET /projects/:id/tasks:hour': { windowMs: 180_000 },
        },
      }),
    path: (i) => `/projects/${100 + (i % 7)}/tasks?page=${i}`,
  },
} satisfies Record<string, WindowCase>;

/** The credential the simulator counts a case's requests under, for a token sent as the cases send it. */
export const countedAs = (c: WindowCase, token: string): string => (c.sim === 'pipedrive' ? token : `Bearer ${token}`);
