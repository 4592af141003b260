#!/usr/bin/env node
// Size budget of the browser-facing code, as an app's bundler sees it, with esbuild (the bundler of
// Angular's application builder): minified, with the peers an app already has (rxjs, @angular/*,
// axios, @opentelemetry/api) left external, then gzipped.
//
// - Entries: each entry point of the built package (dist/esm) bundled alone, every export kept.
// - Apps: what a typical app's bundle gets from the package for the imports it writes, after
//   tree-shaking (`import { createLimiter, pipedrive } from 'rx-ratelimit'`…).
//
// Prints each one's size against its budget, what every package (and the library's own code)
// contributes and the library's largest own modules, from esbuild's metafile; `--modules` prints
// the largest modules of each (packages' too) with each module's minified size, that code gzipped
// on its own (an upper bound of its share: gzip shares its dictionary across modules) and what the
// gzipped bundle loses without it (a lower bound: what cutting the module would save). Exits 1
// when one is over budget or dist/ is missing.
//
//   npm run build && npm run size [-- --modules]
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, transformSync } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const showModules = process.argv.includes('--modules');

/**
 * Budgets in gzipped bytes (1 KB = 1024 bytes): a ceiling just above today's size, so growth is
 * caught; `target` is where it should get to (the library's own code must shrink for it).
 */
const ENTRIES = [
  { name: 'rx-ratelimit', file: 'dist/esm/index.js', budget: 64.8 * 1024, target: 20 * 1024 },
  { name: 'rx-ratelimit/angular', file: 'dist/esm/adapters/angular.js', budget: 14.8 * 1024 },
  { name: 'rx-ratelimit/providers', file: 'dist/esm/providers/profiles.js', budget: 30.8 * 1024 },
  { name: 'rx-ratelimit/fetch', file: 'dist/esm/adapters/fetch.js', budget: 3.8 * 1024 },
  { name: 'rx-ratelimit/axios', file: 'dist/esm/adapters/axios.js', budget: 9.5 * 1024 },
  { name: 'rx-ratelimit/otel', file: 'dist/esm/otel/index.js', budget: 1.7 * 1024 },
  { name: 'rx-ratelimit/octokit', file: 'dist/esm/adapters/octokit.js', budget: 2.0 * 1024 },
];

/** Typical apps: the code is what the app writes; only what it uses counts. */
const APPS = [
  {
    name: 'Angular app: a limiter, one profile (rx-ratelimit/providers), the interceptor',
    budget: 49.7 * 1024,
    target: 15 * 1024,
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
    budget: 64.6 * 1024,
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
    budget: 46.0 * 1024,
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

const OWN = 'rx-ratelimit (own code)';

/** `node_modules/zod/v4/core/x.js` → `zod`; a library file → `rx-ratelimit (own code)`. */
function packageOf(path) {
  const parts = path.split('node_modules/');
  if (parts.length < 2) return OWN;
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

const gzip = (code) => gzipSync(code, { level: 9 }).length;

/** A module's code as the minified bundle has it: whitespace and comments (JSDoc is kept) dropped. */
function squeeze(code) {
  try {
    return transformSync(code, { minifyWhitespace: true, format: 'esm', logLevel: 'silent' }).code;
  } catch {
    return code.replace(/\n\s*/g, '\n'); // a fragment that does not parse alone
  }
}

/**
 * Each module's code in the bundle (identifiers and syntax minified, indentation dropped):
 * `alone`, gzipped on its own; `without`, what the whole bundle, gzipped, loses without it.
 */
async function moduleGz(input) {
  const result = await build({ ...options(input), minifySyntax: true, minifyIdentifiers: true, metafile: false });
  // Without whitespace minification esbuild heads each module's code with a `// path` comment.
  const chunks = result.outputFiles[0].text.split(/^\/\/ (\S+)$/m);
  const parts = [{ name: '', code: chunks[0] }];
  for (let i = 1; i < chunks.length; i += 2) {
    parts.push({ name: moduleName(chunks[i]), code: squeeze(chunks[i + 1]) });
  }
  const whole = gzip(parts.map((p) => p.code).join(''));
  const alone = new Map();
  const without = new Map();
  for (const { name, code } of parts) {
    // A module split in two (around a hoisted import) counts once, its parts summed.
    alone.set(name, (alone.get(name) ?? 0) + gzip(code));
    if (!without.has(name)) {
      without.set(name, whole - gzip(parts.flatMap((p) => (p.name === name ? [] : [p.code])).join('')));
    }
  }
  return { alone, without };
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
  const ownModules = new Set();
  for (const output of Object.values(result.metafile.outputs)) {
    for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
      const pkg = packageOf(path);
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + bytesInOutput);
      byModule.set(moduleName(path), bytesInOutput);
      if (pkg === OWN) ownModules.add(moduleName(path));
    }
  }
  for (const [pkg, bytes] of [...byPackage].sort((a, b) => b[1] - a[1])) {
    console.log(`       ${pkg.padEnd(30)} ${kb(bytes).padStart(9)} minified`);
  }
  const largest = [...byModule].sort((a, b) => b[1] - a[1]);
  if (showModules) {
    const { alone, without } = await moduleGz(input);
    const cell = (bytes) => (bytes === undefined ? ''.padStart(10) : kb(bytes).padStart(10));
    console.log(`       largest modules                 minified  gz alone  gz saved if cut`);
    for (const [mod, bytes] of largest.slice(0, 25)) {
      if (bytes < 200) break;
      console.log(`       ${mod.padEnd(30)} ${kb(bytes).padStart(9)}${cell(alone.get(mod))}${cell(without.get(mod))}`);
    }
  } else {
    const own = largest.filter(([mod]) => ownModules.has(mod)).slice(0, 6);
    if (own.length > 0) {
      console.log(`       largest own modules: ${own.map(([mod, bytes]) => `${mod} ${kb(bytes)}`).join(', ')}`);
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
