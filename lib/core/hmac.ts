/**
 * HMAC-SHA-256 (RFC 2104 over FIPS 180-4), synchronous and dependency-free, so the core can
 * derive keyed labels in browsers (where WebCrypto's `subtle` is async only) as well as in Node.
 * A differential property test checks it against `node:crypto` on random keys and messages.
 *
 * @internal
 * @packageDocumentation
 */

/**
 * The first 32 bits of the fractional part of the square (`root` 2) or cube root of `p`: the
 * constants of FIPS 180-4 (§4.2.2, §5.3.3). Computed rather than tabled (the table is 700 bytes a
 * browser bundle cannot compress); the float root is only an estimate, corrected with integers
 * until exact, so an engine whose `Math.cbrt` is off by an ulp still gets the standard's value.
 * `r`, the estimate, is a parameter for the test of that correction.
 */
export function rootBits(p: number, root: 2 | 3, r = root === 2 ? Math.sqrt(p) : Math.cbrt(p)): number {
  const whole = Math.floor(r);
  // x / 2^32 is the root, to 32 bits: the largest x with x^root <= p * 2^(32 * root).
  let x = (BigInt(whole) << 32n) + BigInt(Math.floor((r - whole) * 2 ** 32));
  const e = BigInt(root);
  const bound = BigInt(p) << BigInt(32 * root);
  while (x ** e > bound) x--;
  while ((x + 1n) ** e <= bound) x++;
  return Number(x & 0xffffffffn);
}

let constants: { readonly k: Uint32Array; readonly initial: readonly number[] } | undefined;

/** Round constants (cube roots of the first 64 primes) and initial hash (square roots of the first 8), made once. */
function sha256Constants(): { readonly k: Uint32Array; readonly initial: readonly number[] } {
  if (constants === undefined) {
    const primes: number[] = [];
    for (let n = 2; primes.length < 64; n++) if (primes.every((q) => n % q !== 0)) primes.push(n);
    constants = {
      k: Uint32Array.from(primes, (q) => rootBits(q, 3)),
      initial: primes.slice(0, 8).map((q) => rootBits(q, 2)),
    };
  }
  return constants;
}

const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  const bitLength = data.length * 8;
  // Message, 0x80, zeros, then the 64-bit big-endian bit length: a multiple of 64 bytes.
  const padded = new Uint8Array((((data.length + 8) >> 6) + 1) << 6);
  padded.set(data);
  padded[data.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLength / 0x1_0000_0000));
  view.setUint32(padded.length - 4, bitLength >>> 0);

  const { k: K, initial } = sha256Constants();
  const h = initial.slice();
  const w = new Uint32Array(64);
  for (let block = 0; block < padded.length; block += 64) {
    for (let t = 0; t < 16; t++) w[t] = view.getUint32(block + t * 4);
    for (let t = 16; t < 64; t++) {
      const x = w[t - 15] ?? 0;
      const y = w[t - 2] ?? 0;
      const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
      const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
      w[t] = ((w[t - 16] ?? 0) + s0 + (w[t - 7] ?? 0) + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h as [number, number, number, number, number, number, number, number];
    for (let t = 0; t < 64; t++) {
      const t1 =
        (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + (K[t] ?? 0) + (w[t] ?? 0)) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = b;
      b = a;
      a = (t1 + t2) >>> 0;
    }
    const add = [a, b, c, d, e, f, g, hh];
    for (let i = 0; i < 8; i++) h[i] = ((h[i] ?? 0) + (add[i] ?? 0)) >>> 0;
  }

  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) outView.setUint32(i * 4, h[i] ?? 0);
  return out;
}

/** HMAC-SHA-256 of `message` under `key` (both as bytes). */
export function hmacSha256(key: Uint8Array, message: Uint8Array): Uint8Array {
  const block = new Uint8Array(64);
  block.set(key.length > 64 ? sha256(key) : key);
  const inner = new Uint8Array(64 + message.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    const b = block[i] ?? 0;
    inner[i] = b ^ 0x36;
    outer[i] = b ^ 0x5c;
  }
  inner.set(message, 64);
  outer.set(sha256(inner), 64);
  return sha256(outer);
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * `length` random bytes from Web Crypto (Node 20+ and browsers have it); `Math.random` only
 * where a runtime lacks it. For salts and per-process secrets, never for keys of their own.
 */
export function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const c = (globalThis as { crypto?: { getRandomValues?: (a: Uint8Array) => Uint8Array } }).crypto;
  if (typeof c?.getRandomValues === 'function') c.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return bytes;
}

/**
 * Lower-case hex of bytes, as one flat string. Built by `+=`, it was a chain of a rope node per
 * byte, which V8 keeps as it is until the string is read whole: a key label (8 bytes) held
 * about 500 bytes and a 16-byte salt about 1 KB, on every limiter of a pool.
 */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
