// @ts-check
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // e2e/angular-app is a fixture app, type-checked by its own Angular build (spec/e2e/angular.e2e.ts).
  globalIgnores([
    'dist/',
    'coverage/',
    'node_modules/',
    '.readme-check/',
    '**/*.tsbuildinfo',
    'e2e/angular-app/',
    'docs/api/',
  ]),

  js.configs.recommended,
  tseslint.configs.strict,

  {
    name: 'rx-ratelimit/typescript',
    files: ['**/*.ts', '**/*.mts', '**/*.cts'],
    languageOptions: {
      parserOptions: {
        // Type information for the few type-aware rules below (tsconfig.json covers lib, spec, demo, bench, scripts).
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Type-aware: a dropped promise in a library is a silently lost error.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',

      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'inline-type-imports', disallowTypeAnnotations: true },
      ],
      '@typescript-eslint/consistent-type-exports': ['error', { fixMixedExportsWithInlineTypeSpecifier: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          args: 'after-used',
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },

  {
    // A library writes to the console only to warn of a mistake (credential.ts) or through a
    // logger the user passes (logEvents): a stray debug line prints on every response.
    name: 'rx-ratelimit/no-debug-output',
    files: ['lib/**/*.ts'],
    rules: { 'no-console': ['error', { allow: ['warn', 'error'] }] },
  },

  {
    name: 'rx-ratelimit/specs',
    files: ['spec/**/*.ts'],
    rules: {
      // Tests assert on values they just produced; `!` after an expect is idiomatic there.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },

  // The library's layers, lowest first: headers (pure parsers) ← core (the limiter, the store
  // interface, the provider contract) ← providers, operators, stores ← adapters, otel, cli; the
  // entry points (lib/index.ts) and testing are above them all. Each folder may import only
  // from the layers below it; scripts/layers.mjs (run by `npm run lint`) refuses import cycles.
  ...layerRules({
    headers: [],
    core: ['headers'],
    providers: ['core', 'headers'],
    operators: ['core'],
    stores: ['core'],
    adapters: ['core', 'headers', 'operators'],
    otel: ['core'],
    cli: ['core', 'headers', 'providers'],
  }),
  {
    name: 'rx-ratelimit/node-scripts',
    files: ['scripts/**', 'bench/**', 'demo/**', '.ci/**', '*.config.{js,mjs,cjs,ts}'],
    languageOptions: {
      globals: { ...globals.node },
    },
  },

  {
    name: 'rx-ratelimit/javascript',
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: { ...globals.node },
    },
  },
);

/** Browser bundles: classic zod is ~450 KB minified with its locales; zod/mini tree-shakes. */
function zodMini() {
  return { name: 'zod', message: "Import * as z from 'zod/mini': the classic API bloats browser bundles." };
}

/**
 * One `no-restricted-imports` block per folder of lib/: a folder may import the folders it
 * lists, and no other folder of lib/ (relative imports that climb out of it into one it does
 * not list). The zod rule applies everywhere in lib/ (a later block replaces a rule's options).
 * @param {Record<string, string[]>} allowed
 */
function layerRules(allowed) {
  const folders = ['headers', 'core', 'providers', 'operators', 'stores', 'adapters', 'otel', 'cli', 'testing'];
  return [
    {
      name: 'rx-ratelimit/library-zod-mini',
      files: ['lib/**/*.ts'],
      rules: { 'no-restricted-imports': ['error', { paths: [zodMini()] }] },
    },
    ...Object.entries(allowed).map(([folder, below]) => {
      const refused = folders.filter((f) => f !== folder && !below.includes(f));
      return {
        name: `rx-ratelimit/layers/${folder}`,
        files: [`lib/${folder}/**/*.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              paths: [zodMini()],
              patterns: [
                {
                  regex: `^(\\.\\./)+(${refused.join('|')}|index\\.js$)`,
                  message: `lib/${folder} may import only ${below.length ? below.map((b) => `lib/${b}`).join(', ') : 'nothing else in lib/'} (layers: eslint.config.js).`,
                },
              ],
            },
          ],
        },
      };
    }),
  ];
}
