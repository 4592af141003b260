#!/usr/bin/env node
// Runs the unit suite on another Node LTS line than the one running npm: `npm run test:node22`,
// `npm run test:node24` (extra arguments go to Jest, e.g. `-- --maxWorkers=1`).
//
// The Node binaries are the registry's prebuilt `node-linux-<arch>` packages, pinned in
// .ci/node-lts/package-lock.json and installed there on first use (`npm ci`, about 60 MB to
// download per line), not by the root `npm ci`. Jest, ts-jest and the specs come from the root
// node_modules; only the Node running them changes.
//
// The unit suite: every spec of `npm test` except spec/integration (frameworks and real sockets in
// real time, Node-independent in what they prove) and spec/readme.spec.ts (type-checks the docs).
// It includes spec/package (the built package loaded by `require` and `import` in child processes
// of that Node: what its module loader does with the dual package) when dist/ is up to date.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ltsDir = join(root, '.ci/node-lts');
const UNIT = [
  'adapters',
  'cli',
  'core',
  'headers',
  'operators',
  'otel',
  'package',
  'providers',
  'reliability',
  'testing',
];

const [major, ...jestArgs] = process.argv.slice(2);
if (!/^\d+$/.test(major ?? '')) {
  console.error('usage: node scripts/test-node.mjs <node major version, e.g. 22> [jest arguments]');
  process.exit(2);
}
const lock = JSON.parse(readFileSync(join(ltsDir, 'package-lock.json'), 'utf8'));
const alias = `node${major}-${process.platform}-${process.arch}`;
const pinned = lock.packages[`node_modules/${alias}`];
if (!pinned) {
  const lines = Object.keys(lock.packages)
    .filter((p) => p.startsWith('node_modules/'))
    .map((p) => p.slice('node_modules/'.length));
  console.error(
    `test-node: no Node ${major} build for ${process.platform}-${process.arch} in .ci/node-lts (has: ${lines.join(', ')})`,
  );
  process.exit(2);
}

const binary = join(ltsDir, 'node_modules', alias, 'bin/node');
/** The installed build's version, or undefined when it is missing or not the pinned one. */
function installed() {
  if (!existsSync(binary)) return undefined;
  const { version } = JSON.parse(readFileSync(join(ltsDir, 'node_modules', alias, 'package.json'), 'utf8'));
  return version === pinned.version ? version : undefined;
}

if (!installed()) {
  console.log(`test-node: installing Node ${pinned.version} (${pinned.name}) in .ci/node-lts`);
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: ltsDir, stdio: 'inherit' });
  if (npm.status !== 0 || !installed()) {
    console.error(
      `test-node: could not install ${pinned.name}@${pinned.version} (npm ci exit ${npm.status ?? npm.signal})`,
    );
    process.exit(1);
  }
}

const jest = join(root, 'node_modules/jest/bin/jest.js');
const args = ['--experimental-vm-modules', jest, `spec/(${UNIT.join('|')})/`, ...jestArgs];
const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`test-node: the unit suite on Node ${version} (${binary})`);
const run = spawnSync(binary, args, { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
