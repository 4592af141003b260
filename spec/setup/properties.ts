/**
 * Property-based specs (fast-check) run from one fixed seed, so that `npm test` proves the same
 * thing on every run and a failure reproduces. Those that pin no seed of their own take it from
 * here: `PROPERTY_SEED=<n>` picks another, `PROPERTY_SEED=random` a new one per run (for soaking:
 * fast-check prints the seed and path of any counterexample, and the failing input then belongs
 * in the spec's `examples`).
 */
import fc from 'fast-check';

const FIXED_SEED = 20_261_203;
const asked = process.env['PROPERTY_SEED'];
if (asked !== 'random') {
  const seed = asked === undefined || asked === '' ? FIXED_SEED : Number(asked);
  if (!Number.isSafeInteger(seed))
    throw new Error(`PROPERTY_SEED must be an integer or "random", got ${JSON.stringify(asked)}`);
  fc.configureGlobal({ seed });
}
