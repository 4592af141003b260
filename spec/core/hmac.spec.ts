/**
 * The pure-JS HMAC-SHA-256 behind key labels (the core runs in browsers, where WebCrypto is
 * async) gives the same bytes as `node:crypto`, on RFC 4231's vectors and on random keys and
 * messages around the 64-byte block and padding boundaries.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createHash, createHmac } from 'node:crypto';

import { hex, hmacSha256, rootBits, sha256, utf8 } from '../../lib/core/hmac.js';
import { sha256Hex } from '../../lib/core/sha256.js';

describe('HMAC-SHA-256 without node:crypto', () => {
  it('sha256Hex (the share keys) is SHA-256 of the UTF-8 text, as node:crypto computes it', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 150 }), (text) => {
        expect(sha256Hex(text)).toBe(createHash('sha256').update(text, 'utf8').digest('hex'));
      }),
    );
  });

  it("the plain JavaScript SHA-256 (browsers) and Node's give the same share key, lone surrogates included", () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 150 }), (text) => {
        expect(hex(sha256(utf8(text)))).toBe(sha256Hex(text));
      }),
    );
  });

  it('matches RFC 4231 test cases 1, 2 and 6 (a key longer than a block)', () => {
    expect(hex(hmacSha256(new Uint8Array(20).fill(0x0b), utf8('Hi There')))).toBe(
      'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
    );
    expect(hex(hmacSha256(utf8('Jefe'), utf8('what do ya want for nothing?')))).toBe(
      '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
    );
    expect(
      hex(hmacSha256(new Uint8Array(131).fill(0xaa), utf8('Test Using Larger Than Block-Size Key - Hash Key First'))),
    ).toBe('60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54');
  });

  it('matches node:crypto on random keys and messages (0–200 bytes)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (key, message) => {
        expect(hex(sha256(message))).toBe(createHash('sha256').update(message).digest('hex'));
        expect(hex(hmacSha256(key, message))).toBe(createHmac('sha256', key).update(message).digest('hex'));
      }),
      { numRuns: 500 },
    );
  });

  it('matches node:crypto on text, UTF-8 encoded, at every length around the padding boundaries', () => {
    for (let n = 50; n <= 130; n++) {
      const text = 'é'.repeat(n >> 1) + 'x'.repeat(n & 1);
      expect(hex(hmacSha256(utf8('secret'), utf8(text)))).toBe(
        createHmac('sha256', 'secret').update(text).digest('hex'),
      );
    }
  });
});

describe('SHA-256 constants, computed from roots of primes', () => {
  // FIPS 180-4 §5.3.3 (initial hash) and the first and last round constants of §4.2.2.
  const H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const PRIMES_8 = [2, 3, 5, 7, 11, 13, 17, 19];

  it('are the standard values', () => {
    expect(PRIMES_8.map((p) => rootBits(p, 2))).toEqual(H0);
    expect([rootBits(2, 3), rootBits(3, 3), rootBits(311, 3)]).toEqual([0x428a2f98, 0x71374491, 0xc67178f2]);
  });

  it('are exact even when the float root they start from is off', () => {
    for (const off of [-1e-9, -(2 ** -40), 2 ** -40, 1e-9]) {
      expect(PRIMES_8.map((p) => rootBits(p, 2, Math.sqrt(p) + off))).toEqual(H0);
      expect(rootBits(311, 3, Math.cbrt(311) + off)).toBe(0xc67178f2);
    }
  });
});
