#!/usr/bin/env node
// Size budget of the browser-facing entry points, as an app's bundler sees them: each entry of
// the built package (dist/esm) bundled alone with esbuild, minified, with the peers an app already
// has (rxjs, @angular/*, axios, @opentelemetry/api) left external, then gzipped. Prints each
// entry's size against its budget and what every package (and the library's own code) contributes,
// from esbuild's metafile; exits 1 when an entry is over budget or dist/ is missing.
//
//   npm run build && npm run size
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Budgets in gzipped bytes (1 KB = 1024 bytes): a ceiling just above today's size, so growth is
 * caught; `target` is where the entry should get to (the library's own code must shrink for it).
 */
const ENTRIES = [
  { name: 'rx-ratelimit', file: 'dist/esm/index.js', budget: 40 * 1024, target: 20 * 1024 },
  { name: 'rx-ratelimit/angular', file: 'dist/esm/adapters/angular.js', budget: 31 * 1024, target: 15 * 1024 },
  { name: 'rx-ratelimit/fetch', file: 'dist/esm/adapters/fetch.js', budget: 3 * 1024 },
  { name: 'rx-ratelimit/axios', file: 'dist/esm/adapters/axios.js', budget: 29 * 1024, target: 15 * 1024 },
  { name: 'rx-ratelimit/otel', file: 'dist/esm/otel/index.js', budget: 2 * 1024 },
];

/** What an app already has: not counted against the library. */
const EXTERNAL = ['rxjs', 'rxjs/*', '@angular/*', 'axios', '@opentelemetry/api'];

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;

/** `node_modules/zod/v4/core/x.js` → `zod`; a library file → `rx-ratelimit (own code)`. */
function packageOf(path) {
  const parts = path.split('node_modules/');
  if (parts.length < 2) return 'rx-ratelimit (own code)';
  const rest = parts[parts.length - 1].split('/');
  return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
}

let failed = false;
for (const entry of ENTRIES) {
  const input = join(root, entry.file);
  if (!existsSync(input)) {
    console.error(`size: ${entry.file} is missing (run \`npm run build\` first)`);
    failed = true;
    continue;
  }
  const result = await build({
    entryPoints: [input],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    external: EXTERNAL,
    write: false,
    metafile: true,
    logLevel: 'error',
  });
  const code = result.outputFiles[0].contents;
  const gz = gzipSync(code, { level: 9 }).length;
  const ok = gz <= entry.budget;
  if (!ok) failed = true;
  console.log(
    `${ok ? 'ok  ' : 'OVER'} ${entry.name.padEnd(22)} ${kb(gz).padStart(9)} gzipped (budget ${kb(entry.budget)}` +
      `${entry.target ? `, target ${kb(entry.target)}` : ''}), ${kb(code.length)} minified`,
  );
  const byPackage = new Map();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = packageOf(path);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytesInOutput);
    }
  }
  for (const [pkg, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) {
    console.log(`       ${pkg.padEnd(30)} ${kb(bytes).padStart(9)} minified`);
  }
}
if (failed) {
  console.error('size: over budget (or not built); see above');
  process.exit(1);
}
