/**
 * SHA-256 of a string's UTF-8 bytes, as hex. Internal: used to turn what identifies a request
 * (its URL and headers, credentials included) into an opaque key that holds no secret in clear.
 * In Node (20.16 and later) it is Node's own, native `crypto` (reached with
 * `process.getBuiltinModule`, so no bundler sees an import of it): the in-flight sharing key is
 * hashed at every GET, and the plain JavaScript one in hmac.ts cost several microseconds a
 * request there. Elsewhere (browsers, older Node) it is that one, synchronous like Node's.
 * Both hash the same bytes (`TextEncoder`'s UTF-8, lone surrogates as U+FFFD, as Node's
 * `'utf8'`), so a key reads the same wherever it was made.
 */
import { hex, sha256, utf8 } from './hmac.js';

interface NodeCrypto {
  createHash(algorithm: 'sha256'): { update(text: string, encoding: 'utf8'): { digest(encoding: 'hex'): string } };
}

const native: NodeCrypto | undefined = (() => {
  try {
    const p = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    const crypto = p?.getBuiltinModule?.('node:crypto') as NodeCrypto | undefined;
    return typeof crypto?.createHash === 'function' ? crypto : undefined;
  } catch {
    return undefined;
  }
})();

/** SHA-256 of `text` (UTF-8), 64 lowercase hex digits. */
export function sha256Hex(text: string): string {
  return native ? native.createHash('sha256').update(text, 'utf8').digest('hex') : hex(sha256(utf8(text)));
}
