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
    name: 'rx-ratelimit/specs',
    files: ['spec/**/*.ts'],
    rules: {
      // Tests assert on values they just produced; `!` after an expect is idiomatic there.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },

  {
    // Browser bundles: classic zod is ~450 KB minified with its locales; zod/mini tree-shakes.
    name: 'rx-ratelimit/library-zod-mini',
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: 'zod', message: "Import * as z from 'zod/mini': the classic API bloats browser bundles." }] },
      ],
    },
  },

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
