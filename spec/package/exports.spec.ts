/**
 * Checks the built package the way consumers load it: CommonJS `require` and ESM `import`, by file path and by
 * the package's own name (Node's package self-reference, which applies package.json "exports"), plus every
 * subpath of the "exports" map. Each check runs in a fresh `node` child process, outside Jest's module system.
 *
 * It checks the repository's `dist/` when that is newer than every source (as after `npm run build` in CI);
 * otherwise it builds the package into a temporary folder first (the same two tsc projects, ~30 s), so a
 * fresh clone tests what its sources build to, never a stale or missing `dist/`.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from '@jest/globals';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Newest modification time of the files the build reads. */
function newestSource(): number {
  let newest = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else newest = Math.max(newest, statSync(path).mtimeMs);
    }
  };
  walk(join(repo, 'lib'));
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.cjs.json']) {
    newest = Math.max(newest, statSync(join(repo, f)).mtimeMs);
  }
  return newest;
}

/** The package root to check: the repository when its dist/ is fresh, else a temporary build of it. */
function packageRoot(): { root: string; built: boolean } {
  const marker = join(repo, 'dist', 'cjs', 'package.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= newestSource()) return { root: repo, built: false };
  const root = mkdtempSync(join(tmpdir(), 'rxrl-pack-'));
  writeFileSync(join(root, 'package.json'), readFileSync(join(repo, 'package.json')));
  symlinkSync(join(repo, 'node_modules'), join(root, 'node_modules'), 'dir');
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  for (const [project, out] of [
    ['tsconfig.build.json', 'esm'],
    ['tsconfig.cjs.json', 'cjs'],
  ] as const) {
    execFileSync(process.execPath, [tsc, '-p', project, '--outDir', join(root, 'dist', out)], {
      cwd: repo,
      stdio: 'pipe',
    });
  }
  writeFileSync(join(root, 'dist', 'cjs', 'package.json'), JSON.stringify({ type: 'commonjs' }) + '\n');
  return { root, built: true };
}

const { root, built } = packageRoot();
const dist = join(root, 'dist');
afterAll(() => {
  if (built) rmSync(root, { recursive: true, force: true });
});

interface PackageJson {
  name: string;
  exports: Record<string, unknown>;
}
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as PackageJson;

type Condition = 'import' | 'require';
const CONDITIONS: readonly Condition[] = ['import', 'require'];

/** Runs a script in a child `node` with the package root as cwd and returns what it printed as JSON. */
function runNode(condition: Condition, script: string): unknown {
  const env = { ...process.env };
  delete env['NODE_OPTIONS']; // no Jest/loader flags leaking into the child
  const args = condition === 'import' ? ['--input-type=module', '-e', script] : ['-e', script];
  const stdout = execFileSync(process.execPath, args, { cwd: root, env, encoding: 'utf8', stdio: 'pipe' });
  return JSON.parse(stdout) as unknown;
}

/**
 * Modules to load before a subpath. Angular's packages are partially compiled: an Angular app's build links them
 * (the Angular linker); anywhere else, as in every Angular test setup, the JIT compiler must be loaded first.
 */
const PRELOAD: Readonly<Record<string, string>> = { angular: '@angular/compiler' };

/** A script that loads `specifier` with `condition` and prints where it resolved and the type of each export. */
function loadScript(condition: Condition, specifier: string): string {
  const spec = JSON.stringify(specifier);
  const before = PRELOAD[specifier.split('/').pop() ?? ''];
  const preload =
    before === undefined ? '' : condition === 'require' ? `require('${before}'); ` : `await import('${before}'); `;
  const report = `const exportTypes = Object.fromEntries(Object.keys(m).sort().map((k) => [k, typeof m[k]]));`;
  return condition === 'require'
    ? `${preload}const m = require(${spec}); ${report}
       console.log(JSON.stringify({ resolved: require.resolve(${spec}), exportTypes }));`
    : `${preload}const m = await import(${spec}); ${report}
       const { fileURLToPath } = await import('node:url');
       console.log(JSON.stringify({ resolved: fileURLToPath(import.meta.resolve(${spec})), exportTypes }));`;
}

interface Loaded {
  resolved: string;
  exportTypes: Record<string, string>;
}

function load(condition: Condition, specifier: string): Loaded {
  return runNode(condition, loadScript(condition, specifier)) as Loaded;
}

function expectMainExports(loaded: Loaded): void {
  expect(loaded.exportTypes).toMatchObject({
    createLimiter: 'function',
    rateLimit: 'function',
    providers: 'object',
  });
}

/** One `exports` entry under one condition: `{ types, default }` objects or a bare string target. */
interface Target {
  subpath: string;
  condition: Condition;
  types: string | undefined;
  file: string;
  /** Keys of the condition object in order (TypeScript needs `types` first). */
  keys: string[];
}

function targetsOf(subpath: string, entry: unknown): Target[] {
  if (typeof entry === 'string') {
    return CONDITIONS.map((condition) => ({ subpath, condition, types: undefined, file: entry, keys: [] }));
  }
  const conditions = entry as Partial<Record<Condition, unknown>>;
  return CONDITIONS.map((condition) => {
    const value = conditions[condition];
    if (typeof value === 'string') return { subpath, condition, types: undefined, file: value, keys: [] };
    const object = (value ?? {}) as Record<string, unknown>;
    const types = typeof object['types'] === 'string' ? object['types'] : undefined;
    const file = typeof object['default'] === 'string' ? object['default'] : '';
    return { subpath, condition, types, file, keys: Object.keys(object) };
  });
}

const targets = Object.entries(pkg.exports).flatMap(([subpath, entry]) => targetsOf(subpath, entry));

/** `./dist/esm/adapters/axios.js` → `lib/adapters/axios.ts`; undefined for targets outside dist/. */
function sourceOf(file: string): string | undefined {
  const match = /^\.\/dist\/(?:esm|cjs)\/(.+?)(?:\.d\.ts|\.js)$/.exec(file);
  return match ? `lib/${match[1]}.ts` : undefined;
}

describe(built ? 'package exports (a fresh build of the sources)' : 'package exports (built dist/)', () => {
  it('dist/cjs is marked CommonJS and dist/esm inherits "type": "module"', () => {
    const cjsPkg = JSON.parse(readFileSync(join(dist, 'cjs', 'package.json'), 'utf8')) as { type?: string };
    expect(cjsPkg.type).toBe('commonjs');
    expect(existsSync(join(dist, 'esm', 'package.json'))).toBe(false);
  });

  describe('main entry', () => {
    it('CommonJS: require(dist/cjs/index.js)', () => {
      const loaded = load('require', join(dist, 'cjs', 'index.js'));
      expectMainExports(loaded);
    });

    it('ESM: import(dist/esm/index.js)', () => {
      const loaded = load('import', pathToFileURL(join(dist, 'esm', 'index.js')).href);
      expectMainExports(loaded);
    });

    it(`CommonJS: require('${pkg.name}') by self-reference resolves to dist/cjs`, () => {
      const loaded = load('require', pkg.name);
      expect(relative(root, loaded.resolved)).toBe(join('dist', 'cjs', 'index.js'));
      expectMainExports(loaded);
    });

    it(`ESM: import('${pkg.name}') by self-reference resolves to dist/esm`, () => {
      const loaded = load('import', pkg.name);
      expect(relative(root, loaded.resolved)).toBe(join('dist', 'esm', 'index.js'));
      expectMainExports(loaded);
    });
  });

  describe('every "exports" subpath', () => {
    for (const target of targets) {
      const { subpath, condition, file, types } = target;
      const source = sourceOf(file);
      const pending = source !== undefined && !existsSync(join(repo, source));
      const name = `${subpath} [${condition}] → ${file}`;
      if (pending) {
        it.skip(`${name} — PENDING: ${source} is not written yet`, () => undefined);
        continue;
      }

      it(name, () => {
        expect(file).not.toBe('');
        expect(existsSync(join(root, file))).toBe(true);
        if (subpath === './package.json') return;

        expect(types).toBeDefined();
        expect(existsSync(join(root, types ?? ''))).toBe(true);
        expect(target.keys[0]).toBe('types'); // TypeScript matches conditions in order

        const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
        const loaded = load(condition, specifier);
        expect(relative(root, loaded.resolved)).toBe(relative(root, join(root, file)));
        expect(Object.keys(loaded.exportTypes).length).toBeGreaterThan(0);
      });
    }
  });
});
