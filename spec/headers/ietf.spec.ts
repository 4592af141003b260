import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import {
  parseLegacyRateLimit,
  parseRateLimit,
  parseRateLimitDictionary,
  parseRateLimitPolicy,
  type IetfLimit,
  type IetfPolicy,
  type LegacyRateLimit,
} from '../../lib/headers/ietf.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

describe('parseRateLimitPolicy', () => {
  it.each<[string, string, IetfPolicy[]]>([
    // Draft examples.
    ['default policy', '"default";q=100;w=10', [{ name: 'default', quota: 100, windowSeconds: 10 }]],
    ['permit policy', '"permit";q=100;w=60', [{ name: 'permit', quota: 100, windowSeconds: 60 }]],
    [
      'multiple policies',
      '"burst";q=100;w=60,"daily";q=1000;w=86400',
      [
        { name: 'burst', quota: 100, windowSeconds: 60 },
        { name: 'daily', quota: 1000, windowSeconds: 86400 },
      ],
    ],
    [
      'quota unit content-bytes',
      '"peruser";q=65535;qu="content-bytes";w=10',
      [{ name: 'peruser', quota: 65535, windowSeconds: 10, quotaUnit: 'content-bytes' }],
    ],
    [
      'quota unit concurrent-requests',
      '"conc";q=5;qu="concurrent-requests"',
      [{ name: 'conc', quota: 5, quotaUnit: 'concurrent-requests' }],
    ],
    [
      'quota unit requests',
      '"default";q=100;qu="requests";w=60',
      [{ name: 'default', quota: 100, windowSeconds: 60, quotaUnit: 'requests' }],
    ],
    [
      'partition key',
      '"peruser";q=100;w=60;pk=:dXNlcjEyMw==:',
      [{ name: 'peruser', quota: 100, windowSeconds: 60, partitionKey: 'dXNlcjEyMw==' }],
    ],
    // Draft-08 token form, with `l` as the older name of `q`.
    ['token name', 'default;q=100;w=60', [{ name: 'default', quota: 100, windowSeconds: 60 }]],
    ['token name with l=', 'default;l=100;w=60', [{ name: 'default', quota: 100, windowSeconds: 60 }]],
    [
      'draft-08 extension parameters',
      'tier1;l=100;w=60;comment="fixed window", protect;l=12;w=1;burst=1000',
      [
        { name: 'tier1', quota: 100, windowSeconds: 60 },
        { name: 'protect', quota: 12, windowSeconds: 1 },
      ],
    ],
    // Draft-07 integer form: named after the list index.
    ['draft-07 integer form', '100;w=60', [{ name: '0', quota: 100, windowSeconds: 60 }]],
    [
      'draft-07 integer form, two policies',
      '10;w=1, 50;w=60',
      [
        { name: '0', quota: 10, windowSeconds: 1 },
        { name: '1', quota: 50, windowSeconds: 60 },
      ],
    ],
    ['q wins over l', '"a";q=5;l=7', [{ name: 'a', quota: 5 }]],
    ['zero quota', '"closed";q=0;w=60', [{ name: 'closed', quota: 0, windowSeconds: 60 }]],
    ['w=0 is ignored', '"a";q=5;w=0', [{ name: 'a', quota: 5 }]],
    ['negative w is ignored', '"a";q=5;w=-1', [{ name: 'a', quota: 5 }]],
    ['non-string qu is ignored', '"a";q=5;qu=1', [{ name: 'a', quota: 5 }]],
    ['invalid member skipped', '"a";w=10, "b";q=5', [{ name: 'b', quota: 5 }]],
    ['inner list skipped', '("x" "y");q=1, "b";q=2', [{ name: 'b', quota: 2 }]],
    ['boolean skipped', '?1;q=1, "b";q=2', [{ name: 'b', quota: 2 }]],
    [
      'duplicated header joined',
      '"a";q=1;w=1, "b";q=2;w=2',
      [
        { name: 'a', quota: 1, windowSeconds: 1 },
        { name: 'b', quota: 2, windowSeconds: 2 },
      ],
    ],
    ['surrounding whitespace', '  "default";q=100;w=10  ', [{ name: 'default', quota: 100, windowSeconds: 10 }]],
  ])('%s: %j', (_label, value, expected) => {
    expect(parseRateLimitPolicy(value)).toEqual(expected);
  });

  it.each([
    ['no quota', '"default";w=10'],
    ['negative quota', '"a";q=-1'],
    ['fractional quota', '"a";q=1.5'],
    ['string quota', '"a";q="100"'],
    ['negative integer item', '-5;w=60'],
    ['only an inner list', '("a" "b");q=1'],
    ['unterminated string', '"default;q=100'],
    ['invalid structured field', '"a";q=1,,'],
    ['trailing comma', '"a";q=1,'],
    ['dictionary form', 'limit=100, remaining=50'],
    ['upper-case parameter', '"a";Q=1'],
  ])('rejects %s: %j', (_label, value) => {
    expect(parseRateLimitPolicy(value)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseRateLimitPolicy(value as string)).toBeUndefined();
  });

  it('never throws and returns undefined or a non-empty list of well-formed policies', () => {
    fc.assert(
      fc.property(fc.oneof(anyHeaderValue, sfLike()), (value) => {
        const result = parseRateLimitPolicy(value as string);
        if (result === undefined) return true;
        return (
          result.length > 0 &&
          result.every(
            (p) =>
              typeof p.name === 'string' &&
              Number.isSafeInteger(p.quota) &&
              p.quota >= 0 &&
              (p.windowSeconds === undefined || (Number.isFinite(p.windowSeconds) && p.windowSeconds > 0)) &&
              (p.quotaUnit === undefined || typeof p.quotaUnit === 'string') &&
              (p.partitionKey === undefined || typeof p.partitionKey === 'string'),
          )
        );
      }),
      RUNS,
    );
  });
});

describe('parseRateLimit', () => {
  it.each<[string, string, IetfLimit[]]>([
    // Draft examples.
    ['default', '"default";r=50;t=30', [{ name: 'default', remaining: 50, resetSeconds: 30 }]],
    ['paired with "default";q=100;w=10', '"default";r=50;t=5', [{ name: 'default', remaining: 50, resetSeconds: 5 }]],
    ['problem policy', '"problemPolicy";r=0;t=10', [{ name: 'problemPolicy', remaining: 0, resetSeconds: 10 }]],
    ['draft-08 token form', 'protection;r=50;t=30', [{ name: 'protection', remaining: 50, resetSeconds: 30 }]],
    ['token default', 'default;r=50;t=5', [{ name: 'default', remaining: 50, resetSeconds: 5 }]],
    [
      'multiple policies',
      '"burst";r=99;t=59,"daily";r=999;t=86399',
      [
        { name: 'burst', remaining: 99, resetSeconds: 59 },
        { name: 'daily', remaining: 999, resetSeconds: 86399 },
      ],
    ],
    ['no t', '"a";r=3', [{ name: 'a', remaining: 3 }]],
    [
      'partition key',
      '"peruser";r=5;t=1;pk=:AQID:',
      [{ name: 'peruser', remaining: 5, resetSeconds: 1, partitionKey: 'AQID' }],
    ],
    ['negative remaining read as 0', '"a";r=-1;t=2', [{ name: 'a', remaining: 0, resetSeconds: 2 }]],
    ['negative t ignored', '"a";r=5;t=-1', [{ name: 'a', remaining: 5 }]],
    ['decimal t kept', '"a";r=5;t=1.5', [{ name: 'a', remaining: 5, resetSeconds: 1.5 }]],
    ['invalid member skipped', '"a";t=5, "b";r=1', [{ name: 'b', remaining: 1 }]],
    // Draft-07 dictionary form.
    ['draft-07 dictionary', 'limit=100, remaining=50, reset=5', [{ name: 'default', remaining: 50, resetSeconds: 5 }]],
    [
      'draft-07 dictionary (10/1/7)',
      'limit=10, remaining=1, reset=7',
      [{ name: 'default', remaining: 1, resetSeconds: 7 }],
    ],
    ['draft-07 dictionary without reset', 'limit=10, remaining=1', [{ name: 'default', remaining: 1 }]],
  ])('%s: %j', (_label, value, expected) => {
    expect(parseRateLimit(value)).toEqual(expected);
  });

  it.each([
    ['no r', '"default";t=5'],
    ['fractional r', '"a";r=1.5'],
    ['string r', '"a";r="1"'],
    ['integer item', '50;r=1'],
    ['dictionary without remaining', 'limit=100, reset=5'],
    ['dictionary with boolean remaining', 'limit=100, remaining'],
    ['invalid structured field', '"a";r=1,,'],
    ['plain number', '50'],
  ])('rejects %s: %j', (_label, value) => {
    expect(parseRateLimit(value)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseRateLimit(value as string)).toBeUndefined();
  });

  it('never throws and returns undefined or a non-empty list of well-formed limits', () => {
    fc.assert(
      fc.property(fc.oneof(anyHeaderValue, sfLike()), (value) => {
        const result = parseRateLimit(value as string);
        if (result === undefined) return true;
        return (
          result.length > 0 &&
          result.every(
            (l) =>
              typeof l.name === 'string' &&
              Number.isSafeInteger(l.remaining) &&
              l.remaining >= 0 &&
              (l.resetSeconds === undefined || (Number.isFinite(l.resetSeconds) && l.resetSeconds >= 0)) &&
              (l.partitionKey === undefined || typeof l.partitionKey === 'string'),
          )
        );
      }),
      RUNS,
    );
  });
});

describe('parseRateLimitDictionary', () => {
  it.each<[string, LegacyRateLimit]>([
    ['limit=100, remaining=50, reset=5', { limit: 100, remaining: 50, resetSeconds: 5 }],
    ['limit=10, remaining=1, reset=7', { limit: 10, remaining: 1, resetSeconds: 7 }],
    ['limit=100;w=60, remaining=50, reset=5', { limit: 100, windowSeconds: 60, remaining: 50, resetSeconds: 5 }],
    ['remaining=50, limit=100', { limit: 100, remaining: 50 }],
    ['limit=100', { limit: 100 }],
    ['reset=5, other=1', { resetSeconds: 5 }],
    ['limit=100, remaining=-1', { limit: 100, remaining: 0 }],
  ])('%j → %j', (value, expected) => {
    expect(parseRateLimitDictionary(value)).toEqual(expected);
  });

  it.each(['foo=1', 'limit=-1', 'limit="100"', 'limit=(1 2)', '"default";r=50', 'limit=100,'])(
    'rejects %j',
    (value) => {
      expect(parseRateLimitDictionary(value)).toBeUndefined();
    },
  );

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseRateLimitDictionary(value as string)).toBeUndefined();
  });

  it('never throws and returns undefined or finite non-negative numbers', () => {
    fc.assert(
      fc.property(fc.oneof(anyHeaderValue, sfLike()), (value) => {
        const result = parseRateLimitDictionary(value as string);
        return result === undefined || isLegacyShape(result);
      }),
      RUNS,
    );
  });
});

describe('parseLegacyRateLimit', () => {
  it.each<[string, Parameters<typeof parseLegacyRateLimit>[0], LegacyRateLimit]>([
    // Draft 00–06 examples.
    ['three fields', { limit: '10', remaining: '1', reset: '7' }, { limit: 10, remaining: 1, resetSeconds: 7 }],
    ['limit with policies', { limit: '10, 10;w=1, 50;w=60' }, { limit: 10, windowSeconds: 1 }],
    [
      'limit with one policy',
      { limit: '100, 100;w=60', remaining: '50', reset: '50' },
      { limit: 100, windowSeconds: 60, remaining: 50, resetSeconds: 50 },
    ],
    ['limit carrying its own w', { limit: '100;w=60' }, { limit: 100, windowSeconds: 60 }],
    ['no matching policy', { limit: '100, 50;w=60' }, { limit: 100 }],
    ['duplicated limit header', { limit: '100, 100' }, { limit: 100 }],
    ['remaining only', { remaining: '50' }, { remaining: 50 }],
    ['negative remaining', { remaining: '-1' }, { remaining: 0 }],
    ['reset only', { reset: '50' }, { resetSeconds: 50 }],
    ['fractional reset', { reset: '1.5' }, { resetSeconds: 1.5 }],
    ['whitespace', { limit: ' 10 ', remaining: ' 1 ', reset: ' 7 ' }, { limit: 10, remaining: 1, resetSeconds: 7 }],
    ['bad fields dropped', { limit: 'abc', remaining: '5', reset: 'soon' }, { remaining: 5 }],
    ['null fields', { limit: null, remaining: '5', reset: null }, { remaining: 5 }],
  ])('%s', (_label, fields, expected) => {
    expect(parseLegacyRateLimit(fields)).toEqual(expected);
  });

  it.each<[string, Parameters<typeof parseLegacyRateLimit>[0]]>([
    ['no fields', {}],
    ['all null', { limit: null, remaining: null, reset: null }],
    ['all undefined', { limit: undefined, remaining: undefined, reset: undefined }],
    ['all blank', { limit: '', remaining: ' ', reset: '\t' }],
    ['all garbage', { limit: 'abc', remaining: '12abc', reset: '-1' }],
    ['exponents', { limit: '1e5', remaining: '1e5', reset: '1e5' }],
    ['not an object', null as unknown as Parameters<typeof parseLegacyRateLimit>[0]],
  ])('returns undefined for %s', (_label, fields) => {
    expect(parseLegacyRateLimit(fields)).toBeUndefined();
  });

  it('never throws and returns undefined or finite non-negative numbers', () => {
    const field = fc.oneof(anyHeaderValue, sfLike());
    fc.assert(
      fc.property(field, field, field, (limit, remaining, reset) => {
        const result = parseLegacyRateLimit({ limit, remaining, reset } as Parameters<typeof parseLegacyRateLimit>[0]);
        return result === undefined || isLegacyShape(result);
      }),
      RUNS,
    );
  });
});

function isLegacyShape(result: LegacyRateLimit): boolean {
  const values = Object.values(result) as unknown[];
  return (
    values.length > 0 &&
    values.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) &&
    (result.limit === undefined || Number.isSafeInteger(result.limit)) &&
    (result.remaining === undefined || Number.isSafeInteger(result.remaining))
  );
}

/** Strings shaped like Structured Fields, so the property tests reach past the SF parser. */
function sfLike(): fc.Arbitrary<string> {
  const name = fc.oneof(
    fc.constantFrom('"default"', 'default', '"a b"', '100', '-1', '1.5', '?1', ':AQID:', '("x" 1)'),
    fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)),
  );
  const value = fc.oneof(
    fc.integer({ min: -1000, max: 1_000_000 }).map(String),
    fc.constantFrom('1.5', '-0.5', '"requests"', ':AQID:', ':dXNlcjEyMw==:', '?0', 'tok', '999999999999999'),
  );
  const param = fc
    .tuple(fc.constantFrom('q', 'l', 'w', 'qu', 'pk', 'r', 't', 'x'), value)
    .map(([k, v]) => `;${k}=${v}`);
  const member = fc.tuple(name, fc.array(param, { maxLength: 4 })).map(([n, ps]) => n + ps.join(''));
  const dictMember = fc.tuple(fc.constantFrom('limit', 'remaining', 'reset', 'w'), value).map(([k, v]) => `${k}=${v}`);
  return fc.oneof(
    fc.array(member, { minLength: 1, maxLength: 4 }).map((ms) => ms.join(', ')),
    fc.array(dictMember, { minLength: 1, maxLength: 4 }).map((ms) => ms.join(', ')),
  );
}
