#!/usr/bin/env node
/**
 * The `rx-ratelimit` command: `rx-ratelimit probe <url> [-H 'Name: value']… [-X METHOD] [--json]`.
 * @packageDocumentation
 */
import { safePath } from '../core/events.js';
import { formatProbe, probe } from './probe.js';

const USAGE = `usage: rx-ratelimit probe <url> [-H 'Name: value']... [-X METHOD] [--json]

Sends one request and prints which provider profile reads its rate-limit headers, every
bucket (limit, remaining, reset in local time), the server's clock offset and what is missing.
Header values (credentials) are sent, never printed.`;

/** Runs the command; resolves to the exit code. `out`/`err` print a line. */
export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  fetchImpl: typeof globalThis.fetch = globalThis.fetch,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== 'probe') {
    err(USAGE);
    return command === undefined || command === '--help' || command === '-h' ? 0 : 2;
  }
  const headers: Record<string, string> = {};
  let url: string | undefined;
  let json = false;
  let method = 'GET';
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    if (arg === '--json') json = true;
    else if (arg === '-H' || arg === '--header') {
      const header = rest[++i] ?? '';
      const colon = header.indexOf(':');
      if (colon <= 0) {
        // The value may be a credential: only the argument's position is named.
        err(`rx-ratelimit probe: -H expects 'Name: value' (argument ${i + 1})`);
        return 2;
      }
      headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
    } else if (arg === '-X' || arg === '--method') method = rest[++i] ?? 'GET';
    else if (url === undefined && !arg.startsWith('-')) url = arg;
    else {
      err(`rx-ratelimit probe: unexpected argument ${i + 1}\n${USAGE}`);
      return 2;
    }
  }
  if (url === undefined || !/^https?:\/\//i.test(url)) {
    err(`rx-ratelimit probe: expected an http(s) URL\n${USAGE}`);
    return 2;
  }
  try {
    const report = await probe(url, { headers, method, fetch: fetchImpl });
    out(json ? JSON.stringify(report, null, 2) : formatProbe(report));
    return 0;
  } catch (error) {
    // Only the error's kind: a message might quote the request.
    const name = error instanceof Error ? error.name : 'Error';
    const code = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
    err(`rx-ratelimit probe: ${safePath(url) ?? ''} failed (${name}${typeof code === 'string' ? ` ${code}` : ''})`);
    return 1;
  }
}

const self = process.argv[1] ?? '';
if (/rx-ratelimit$|[\\/]cli[\\/]main\.[cm]?js$/.test(self)) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
