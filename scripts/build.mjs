#!/usr/bin/env node
// Builds the dual package:
//   dist/esm  ES modules + .d.ts   (tsconfig.build.json; the root package.json says "type": "module")
//   dist/cjs  CommonJS   + .d.ts   (tsconfig.cjs.json; dist/cjs/package.json says "type": "commonjs")
// and checks that every target in package.json "exports" was produced.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function step(label, fn) {
  const started = Date.now();
  fn();
  console.log(`build: ${label} (${Date.now() - started} ms)`);
}

function runTsc(project) {
  const result = spawnSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    console.error(`build: tsc -p ${project} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status || 1);
  }
}

/** Every file path named in an "exports" target (conditions nested to any depth). */
function exportTargets(exportsField, subpath = '.', out = []) {
  if (typeof exportsField === 'string') out.push({ subpath, file: exportsField });
  else if (exportsField && typeof exportsField === 'object') {
    for (const [key, value] of Object.entries(exportsField)) {
      exportTargets(value, key.startsWith('.') ? key : subpath, out);
    }
  }
  return out;
}

step('clean dist/', () => rmSync(dist, { recursive: true, force: true }));
step('tsc -p tsconfig.build.json -> dist/esm', () => runTsc('tsconfig.build.json'));
step('tsc -p tsconfig.cjs.json -> dist/cjs', () => runTsc('tsconfig.cjs.json'));
step('write dist/cjs/package.json', () =>
  writeFileSync(join(dist, 'cjs', 'package.json'), JSON.stringify({ type: 'commonjs' }, null, 2) + '\n'),
);

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const missing = exportTargets(pkg.exports).filter(({ file }) => !existsSync(join(root, file)));
if (missing.length > 0) {
  console.warn('build: WARNING: package.json "exports" targets that the build did not produce:');
  for (const { subpath, file } of missing) console.warn(`  ${subpath}: ${file}`);
  // Strict in CI so a broken exports map is never published; a warning locally while sources are in progress.
  if (process.env.CI || process.argv.includes('--strict')) process.exit(1);
}
console.log('build: done');
