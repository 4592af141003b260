/**
 * The host keys of `rx-ratelimit/angular` (`rateLimitInterceptor`'s and `provideRateLimiting`'s
 * `limiters` and `pools`): each key is read as a URL's host is, so that it matches every request
 * to that host, and a key that can match none is refused when the option is given.
 */
import { safePath } from '../core/events.js';

/** A host, bracketed IPv6 or a name, then an optional port: what a key may be. */
const HOST_AND_PORT = /^(\[[\da-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i;

/** Characters that end a URL's host: a key holding one names a path, a query or user-info too. */
const NOT_IN_HOST = /[/\\?#@\s]/;

/** The port a request goes to when its URL names none. */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

/**
 * `key` as requests are matched against it: the host as a URL reads it (lower case, a Unicode
 * name in its ASCII form, an IPv4 address in its usual form), without the trailing dot of a fully
 * qualified name, then `:port` when the key gives one. Throws a `TypeError` naming the key
 * (`where`: the function, `option`: its option) when it is not a host with an optional port.
 */
function hostKey(where: string, option: string, key: string): string {
  const host = readHostKey(key);
  if (host === undefined) {
    throw new TypeError(
      `${where}: option \`${option}\` is keyed by host ("api.example.com" or "localhost:8080"), got "${safePath(key) ?? ''}"`,
    );
  }
  return host;
}

/** {@link hostKey} of `key`, or `undefined` when it is not a host with an optional port. */
export function readHostKey(key: string): string | undefined {
  const parts = NOT_IN_HOST.test(key) ? null : HOST_AND_PORT.exec(key);
  const hostname = parts?.[1] === undefined ? undefined : hostnameOf(parts[1]);
  const port = parts?.[2] === undefined ? undefined : Number(parts[2]);
  if (hostname === undefined || (port !== undefined && port > 65535)) return undefined;
  return port === undefined ? hostname : `${hostname}:${port}`;
}

/** The hostname of `http://<host>`, trailing dot removed; `undefined` when it is no host. */
function hostnameOf(host: string): string | undefined {
  if (!URL.canParse(`http://${host}`)) return undefined;
  const { hostname } = new URL(`http://${host}`);
  // `api.example.com.` names the same host as `api.example.com`: one budget, one key.
  return withoutTrailingDot(hostname) || undefined;
}

function withoutTrailingDot(hostname: string): string {
  return hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
}

/**
 * The entries of `record` (a plain object by host) by their keys as {@link hostKey} reads them,
 * each with its key as written (for messages). Throws a `TypeError` when `record` is not a plain
 * object (a `Map` or an array has no hosts as its own keys: given one, nothing was ever
 * limited), or when two keys name one host.
 */
export function byHostKey<T>(
  where: string,
  option: string,
  record: unknown,
): Map<string, { readonly key: string; readonly value: T }> {
  if (!isPlainObject(record)) {
    throw new TypeError(`${where}: option \`${option}\` must be an object keyed by host, got ${kindOf(record)}`);
  }
  const out = new Map<string, { readonly key: string; readonly value: T }>();
  for (const [key, value] of Object.entries(record)) {
    const host = hostKey(where, option, key);
    const earlier = out.get(host)?.key;
    if (earlier !== undefined) {
      throw new TypeError(
        `${where}: option \`${option}\` names one host twice, "${safePath(earlier) ?? ''}" and "${safePath(key) ?? ''}"`,
      );
    }
    out.set(host, { key, value: value as T });
  }
  return out;
}

/**
 * The entry of `map` (keyed by {@link hostKey}) for a request to `url`: the key with its host and
 * port first (the port the URL names, else its scheme's: `api.example.com:443` matches
 * `https://api.example.com/`), then the host alone.
 */
export function entryForUrl<T>(map: ReadonlyMap<string, T>, url: URL): T | undefined {
  const hostname = withoutTrailingDot(url.hostname);
  const port = url.port || DEFAULT_PORTS[url.protocol];
  return (port === undefined ? undefined : map.get(`${hostname}:${port}`)) ?? map.get(hostname);
}

/** `{}` or `Object.create(null)`: what holds its hosts as its own keys. */
function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
}

/** What came instead of a plain object, for an error message. */
function kindOf(x: unknown): string {
  if (Array.isArray(x)) return 'an array';
  if (x instanceof Map) return 'a Map';
  if (typeof x === 'object' && x !== null) return `an object (${(x as object).constructor?.name ?? 'no class'})`;
  return x === null ? 'null' : typeof x;
}
