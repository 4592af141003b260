/**
 * The first limiter and the first pool a process makes are collected once dropped, as every
 * other one is: what `inspect` shows of them is set on their prototype once, by the first
 * instance, and must not hold that instance. Run in a process of its own (plain Node, through
 * tsx), where they are the process's first: Jest's module registry keeps objects of its own.
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const lib = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));

const script = `
import { inspect } from 'node:util';
const { createLimiter, createLimiterPool, providers } = await import(${JSON.stringify(lib)});
const refs = [];
const shown = [];
await (async () => {
  const pool = createLimiterPool({ provider: providers.generic(), idleMs: 60_000 });
  const tenant = pool.get('first-tenant');
  shown.push(inspect(tenant).split(' ')[0], inspect(pool).split(' ')[0]);
  refs.push(new WeakRef(pool), new WeakRef(tenant));
  await pool.close();
})();
const later = createLimiter({ provider: providers.generic(), key: 'later' });
shown.push(inspect(later).includes(later.key));
// No deref between collections: a WeakRef read keeps its target alive to the end of that job.
for (let i = 0; i < 10; i++) {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 10));
}
console.log(JSON.stringify({ shown, collected: refs.map((r) => r.deref() === undefined) }));
`;

describe('the first instances a process makes', () => {
  it('a first pool and its first limiter, closed and dropped, are collected; inspect still shows each', () => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(JSON.parse(out.trim().split('\n').pop() as string)).toEqual({
      shown: ['Limiter', 'LimiterPool', true],
      collected: [true, true],
    });
  }, 90_000);
});
