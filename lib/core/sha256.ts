/**
 * SHA-256 of a string's UTF-8 bytes, as hex: the one implementation in hmac.ts (synchronous,
 * plain JavaScript, so it runs the same in Node and in browsers). Internal: used to turn what
 * identifies a request (its URL and headers, credentials included) into an opaque key that
 * holds no secret in clear.
 */
import { hex, sha256, utf8 } from './hmac.js';

/** SHA-256 of `text` (UTF-8), 64 lowercase hex digits. */
export function sha256Hex(text: string): string {
  return hex(sha256(utf8(text)));
}
