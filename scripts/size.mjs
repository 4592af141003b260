#!/usr/bin/env node
// Size budget of the browser-facing code, as an app's bundler sees it, with esbuild (the bundler of
// Angular's application builder): minified, with the peers an app already has (rxjs, @angular/*,
// axios, @opentelemetry/api) left external, then gzipped.
//
// - Entries: each entry point of the built package (dist/esm) bundled alone, every export kept.
// - Apps: what a typical app's bundle gets from the package for the imports it writes, after
//   tree-shaking (`import { createLimiter, pipedrive } from 'rx-ratelimit'`…).
//
// Prints each one's size against its budget and what every package (and the library's own code)
// contributes, from esbuild's metafile; `--modules` also prints the largest modules of each, with
// each module's minified size and that code gzipped on its own (an upper bound of its share: gzip
// shares its dictionary across modules). Exits 1 when one is over budget or dist/ is missing.
//
//   npm run build && npm run size [-- --modules]
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const showModules = process.argv.includes('--modules');

/**
 * Budgets in gzipped bytes (1 KB = 1024 bytes): a ceiling just above today's size, so growth is
 * caught; `target` is where it should get to (the library's own code must shrink for it).
 */
const ENTRIES = [
  { name: 'rx-ratelimit', file: 'dist/esm/index.js', budget: 45.0 * 1024, target: 20 * 1024 },
  { name: 'rx-ratelimit/angular', file: 'dist/esm/adapters/angular.js', budget: 9.2 * 1024 },
  { name: 'rx-ratelimit/providers', file: 'dist/esm/providers/profiles.js', budget: 21.3 * 1024 },
  { name: 'rx-ratelimit/fetch', file: 'dist/esm/adapters/fetch.js', budget: 2.7 * 1024 },
  { name: 'rx-ratelimit/axios', file: 'dist/esm/adapters/axios.js', budget: 5.6 * 1024 },
  { name: 'rx-ratelimit/otel', file: 'dist/esm/otel/index.js', budget: 1.6 * 1024 },
  { name: 'rx-ratelimit/octokit', file: 'dist/esm/adapters/octokit.js', budget: 2.0 * 1024 },
];

/** Typical apps: the code is what the app writes; only what it uses counts. */
const APPS = [
  {
    name: 'Angular app: a limiter, one profile (rx-ratelimit/providers), the interceptor',
    budget: 35.7 * 1024,
    code: `
      import { createLimiter } from 'rx-ratelimit';
      import { provideRateLimiting, rateLimitingInterceptor } from 'rx-ratelimit/angular';
      import * as profiles from 'rx-ratelimit/providers';
      export const providers = [
        provideRateLimiting({ limiters: { 'api.pipedrive.com': () => createLimiter({ provider: profiles.pipedrive({ plan: 'advanced' }), key: 'k' }) } }),
        rateLimitingInterceptor(),
      ];`,
  },
  {
    name: 'the same Angular app with `providers` from rx-ratelimit',
    budget: 44.8 * 1024,
    code: `
      import { createLimiter, providers as profiles } from 'rx-ratelimit';
      import { provideRateLimiting, rateLimitingInterceptor } from 'rx-ratelimit/angular';
      export const providers = [
        provideRateLimiting({ limiters: { 'api.pipedrive.com': () => createLimiter({ provider: profiles.pipedrive({ plan: 'advanced' }), key: 'k' }) } }),
        rateLimitingInterceptor(),
      ];`,
  },
  {
    name: 'fetch app: a limiter, one profile, rateLimitedFetch',
    budget: 31.9 * 1024,
    code: `
      import { createLimiter } from 'rx-ratelimit';
      import { rateLimitedFetch } from 'rx-ratelimit/fetch';
      import * as providers from 'rx-ratelimit/providers';
      export const api = rateLimitedFetch(createLimiter({ provider: providers.github(), key: 'k' }));`,
  },
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

/** A module's name in the table: `core/limiter.js` for the library's, `zod/v4/core/schemas.js` for a package's. */
function moduleName(path) {
  const parts = path.split('node_modules/');
  if (parts.length > 1) return parts[parts.length - 1];
  return relative(join(root, 'dist/esm'), resolve(root, path));
}

const options = (input) => ({
  ...input,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  external: EXTERNAL,
  write: false,
  metafile: true,
  logLevel: 'error',
});

/** Each module's code in the bundle (identifiers and syntax minified, indentation dropped), gzipped on its own. */
async function moduleGzAlone(input) {
  const result = await build({ ...options(input), minifySyntax: true, minifyIdentifiers: true, metafile: false });
  const sizes = new Map();
  // Without whitespace minification esbuild heads each module's code with a `// path` comment.
  const chunks = result.outputFiles[0].text.split(/^\/\/ (\S+)$/m);
  for (let i = 1; i < chunks.length; i += 2) {
    const code = chunks[i + 1].replace(/\n\s*/g, '\n');
    const name = moduleName(chunks[i]);
    // A module split in two (around a hoisted import) counts once, its parts summed.
    sizes.set(name, (sizes.get(name) ?? 0) + gzipSync(code, { level: 9 }).length);
  }
  return sizes;
}

async function measure({ name, budget, target }, input) {
  const result = await build({ ...options(input), minify: true });
  const code = result.outputFiles[0].contents;
  const gz = gzipSync(code, { level: 9 }).length;
  const ok = gz <= budget;
  console.log(
    `${ok ? 'ok  ' : 'OVER'} ${name}: ${kb(gz)} gzipped (budget ${kb(budget)}` +
      `${target ? `, target ${kb(target)}` : ''}), ${kb(code.length)} minified`,
  );
  const byPackage = new Map();
  const byModule = new Map();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = packageOf(path);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytesInOutput);
      byModule.set(moduleName(path), bytesInOutput);
    }
  }
  for (const [pkg, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) {
    console.log(`       ${pkg.padEnd(30)} ${kb(bytes).padStart(9)} minified`);
  }
  if (showModules) {
    const alone = await moduleGzAlone(input);
    console.log(`       largest modules                 minified  gz alone`);
    for (const [mod, bytes] of [...byModule].sort((a, b) => b[1] - a[1]).slice(0, 25)) {
      if (bytes < 200) break;
      const gzAlone = alone.get(mod);
      console.log(
        `       ${mod.padEnd(30)} ${kb(bytes).padStart(9)} ${gzAlone === undefined ? '' : kb(gzAlone).padStart(9)}`,
      );
    }
  }
  return ok;
}

let failed = false;
console.log('Entries (each bundled alone, every export kept):');
for (const entry of ENTRIES) {
  const input = join(root, entry.file);
  if (!existsSync(input)) {
    console.error(`size: ${entry.file} is missing (run \`npm run build\` first)`);
    failed = true;
    continue;
  }
  if (!(await measure(entry, { entryPoints: [input] }))) failed = true;
}
if (!failed) {
  console.log('\nApps (what an app bundles for the imports it writes, tree-shaken):');
  for (const app of APPS) {
    // The package imports itself by name (its "exports" map, as an installed copy would resolve).
    const input = { stdin: { contents: app.code, resolveDir: root, sourcefile: 'app.js' } };
    if (!(await measure(app, input))) failed = true;
  }
}
if (failed) {
  console.error('size: over budget (or not built); see above');
  process.exit(1);
}
