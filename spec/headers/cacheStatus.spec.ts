import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parseCacheStatusHit } from '../../lib/headers/cacheStatus.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

describe('parseCacheStatusHit', () => {
  it.each([
    // RFC 9211's own examples.
    ['ExampleCache; hit', true],
    ['ExampleCache; hit; ttl=30', true],
    ['ExampleCache; fwd=uri-miss', false],
    ['ExampleCache; fwd=uri-miss; stored', false],
    ['ExampleCache; fwd=stale; fwd-status=304; collapsed; ttl=-412', false],
    ['ExampleCache; hit, OriginCache; fwd=uri-miss', true],
    ['OriginCache; fwd=uri-miss, ExampleCDN; hit', true],
    ['"Example CDN"; hit; key="/x"', true],
    // `hit=?0` is false; `hit=1` is not the Boolean the RFC defines.
    ['ExampleCache; hit=?0', false],
    ['ExampleCache; hit=1', false],
    ['ExampleCache', false],
  ])('%j: %s', (value, expected) => {
    expect(parseCacheStatusHit(value)).toBe(expected);
  });

  it.each([
    [undefined],
    [null],
    [''],
    ['   '],
    ['HIT'.padEnd(1001, 'x')],
    ['ExampleCache; hit,'],
    ['ExampleCache;; hit'],
    ['((a b); hit'],
  ])('%j says nothing', (value) => {
    expect(parseCacheStatusHit(value)).toBeUndefined();
  });

  it('an inner list is no cache, even with hit', () => {
    expect(parseCacheStatusHit('(a b); hit')).toBe(false);
  });

  it.each(GARBAGE_ROWS)('never throws on %s', (_label, value) => {
    expect(() => parseCacheStatusHit(value as string)).not.toThrow();
  });

  it('never throws, and answers a boolean or undefined, for any string', () => {
    fc.assert(
      fc.property(anyHeaderValue, (v) => {
        const r = parseCacheStatusHit(v as string);
        return r === undefined || typeof r === 'boolean';
      }),
      RUNS,
    );
  });
});
