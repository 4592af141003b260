#!/usr/bin/env node
/**
 * The `rx-ratelimit` command: `rx-ratelimit probe <url> [-H 'Name: value']… [-X METHOD] [--json]`.
 * @packageDocumentation
 */
import { escapeControls, safePath } from '../core/events.js';
import { formatProbe, probe } from './probe.js';

const USAGE = `usage: rx-ratelimit probe <url> [-H 'Name: value']... [-X METHOD] [--json]

Sends one request and prints which provider profile reads its rate-limit headers, every
bucket (limit, remaining, reset in local time), the server's clock offset and what is missing.
Header values (credentials) are sent, never printed; put none in the URL.
Exit status: 0 when the server answered (whatever its status), 1 when it did not (network
error, 10 s timeout), 2 for a bad argument.`;

/** An HTTP token (RFC 9110 5.6.2): what a header name and a method are made of. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** What would end a header line early: fetch refuses it, and it is no value a user means. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const BREAK = /[\r\n\u0000]/;

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
      const name = header.slice(0, colon).trim();
      const value = header.slice(colon + 1).trim();
      if (colon <= 0 || !TOKEN.test(name) || BREAK.test(value)) {
        // The value may be a credential: only the argument's position is named.
        err(`rx-ratelimit probe: -H expects 'Name: value' on one line (argument ${i + 1})`);
        return 2;
      }
      headers[name] = value;
    } else if (arg === '-X' || arg === '--method') {
      method = rest[++i] ?? '';
      if (!TOKEN.test(method)) {
        err(`rx-ratelimit probe: -X expects a method such as GET (argument ${i + 1})`);
        return 2;
      }
    } else if (url === undefined && !arg.startsWith('-')) url = arg;
    else {
      err(`rx-ratelimit probe: unexpected argument ${i + 1}\n${USAGE}`);
      return 2;
    }
  }
  if (url === undefined || !/^https?:\/\//i.test(url) || !URL.canParse(url)) {
    err(`rx-ratelimit probe: expected an http(s) URL\n${USAGE}`);
    return 2;
  }
  const { username, password } = new URL(url);
  if (username !== '' || password !== '') {
    // fetch refuses such a URL with a bare `TypeError`: say what to do, without echoing it.
    err(`rx-ratelimit probe: the URL holds a user name or password; send it with -H 'Authorization: …'`);
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
    err(
      escapeControls(
        `rx-ratelimit probe: ${safePath(url) ?? ''} failed (${name}${typeof code === 'string' ? ` ${code}` : ''})`,
      ),
    );
    return 1;
  }
}

const self = process.argv[1] ?? '';
if (/rx-ratelimit$|[\\/]cli[\\/]main\.[cm]?js$/.test(self)) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
