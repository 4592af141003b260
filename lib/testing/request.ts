/**
 * Reading a simulator request: its path and query, its headers, and the credential it is sent
 * with (and the safe label that names a credential in statistics).
 */
import { createHash } from 'node:crypto';

import type { PipedriveAuth, SimulatedProvider, SimulatorRequest } from './types.js';

/**
 * A safe label for a credential: `cred_` and the first 16 hex digits of its SHA-256. It names the
 * credential in {@link SimulatorEngine.stats} without revealing it.
 *
 * @example
 * ```ts
 * import { credentialLabel } from 'rx-ratelimit/testing';
 *
 * credentialLabel('Bearer my-token'); // 'cred_…'
 * ```
 */
export function credentialLabel(credential: string): string {
  return `cred_${sha256(credential).slice(0, 16)}`;
}

/** The hex SHA-256 of `text` (UTF-8): credentials are keyed by it, never kept in clear. */
export function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The path (with a leading `/`) and the query, from the path's own and `query`. */
export function splitPath(path: string, query: SimulatorRequest['query']): [string, URLSearchParams] {
  const q = path.indexOf('?');
  const pathOnly = q < 0 ? path : path.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : path.slice(q + 1));
  if (query instanceof URLSearchParams) {
    for (const [k, v] of query) params.set(k, v);
  } else if (query !== undefined) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  }
  return [pathOnly.startsWith('/') ? pathOnly : `/${pathOnly}`, params];
}

/** Headers by lower-case name, repeated values joined with `", "`. */
export function lowerHeaders(headers: SimulatorRequest['headers']): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out.set(k.toLowerCase(), typeof v === 'string' ? v : v.join(', '));
  }
  return out;
}

/** A credential and how it was sent. */
export interface Credential {
  readonly value: string;
  readonly auth: PipedriveAuth | 'authorization';
}

/** The credential a request is sent with; Pipedrive's api_token first. */
export function credentialOf(
  provider: SimulatedProvider,
  headers: Map<string, string>,
  query: URLSearchParams,
): Credential | undefined {
  const authorization = headers.get('authorization')?.trim();
  if (provider === 'pipedrive') {
    const apiToken = query.get('api_token') ?? headers.get('x-api-token');
    if (apiToken) return { value: apiToken, auth: 'api_token' };
    if (authorization) {
      return { value: authorization, auth: /^bearer\s/i.test(authorization) ? 'oauth' : 'api_token' };
    }
    return undefined;
  }
  return authorization ? { value: authorization, auth: 'authorization' } : undefined;
}
