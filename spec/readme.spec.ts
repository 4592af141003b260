/**
 * Type-checks every ```ts fenced block in README.md, docs/**\/*.md and the doc comments (JSDoc) of lib/**\/*.ts
 * against the library's emitted declarations.
 *
 * Each block is written to its own module in a temporary directory under `.readme-check/` (gitignored), next to a
 * generated tsconfig.json that extends the root one (same strictness) and maps `rx-ratelimit` and each subpath of
 * package.json "exports" to the declarations the build emits for it (as a user's compiler sees the package: a
 * module augmentation reaches a block only through what the block imports). Blocks are compiled as if alone: a
 * program holds only blocks that import exactly the same entry points, so one block's imports never make another
 * compile. Diagnostics are mapped back to the markdown file and line, one test per block.
 *
 * A block fenced as ```ts no-check is skipped; one fenced as ```ts decorators is compiled with `experimentalDecorators`
 * and `emitDecoratorMetadata` (a Nest app's settings). Set README_CHECK_KEEP=1 to keep the generated files for debugging.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import ts from 'typescript';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const readme = join(root, 'README.md');
const docsDir = join(root, 'docs');

interface Block {
  /** Markdown file, relative to the repository root (forward slashes). */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  noCheck: boolean;
  /** Fenced as ```ts decorators: compiled with `experimentalDecorators` and `emitDecoratorMetadata`, as a `nest new` app. */
  decorators: boolean;
}

const OPEN_FENCE = /^( {0,3})(`{3,}|~{3,})[ \t]*(ts|typescript)(?:[ \t]+(.*))?$/;

/** Every ```ts / ```typescript block of a markdown file. */
function extractBlocks(absPath: string): Block[] {
  return blocksOfLines(relative(root, absPath).split(sep).join('/'), readFileSync(absPath, 'utf8').split(/\r?\n/));
}

/**
 * Every ```ts block in the doc comments of a library source: a line inside a comment opened by
 * a slash and two stars keeps its text after the leading ` * `; other lines become blank, so a
 * block's line numbers are the source file's.
 */
function extractDocCommentBlocks(absPath: string): Block[] {
  const lines = readFileSync(absPath, 'utf8').split(/\r?\n/);
  let inDoc = false;
  const text = lines.map((line) => {
    if (!inDoc && /^\s*\/\*\*/.test(line)) inDoc = !line.includes('*/', line.indexOf('/**') + 3);
    else if (inDoc) {
      if (line.includes('*/')) inDoc = false;
      else return line.replace(/^\s*\* ?/, '');
    }
    return '';
  });
  return blocksOfLines(relative(root, absPath).split(sep).join('/'), text);
}

function blocksOfLines(file: string, lines: readonly string[]): Block[] {
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN_FENCE.exec(lines[i] ?? '');
    if (!open) continue;
    const indent = open[1]?.length ?? 0;
    const fence = open[2] ?? '```';
    const meta = (open[4] ?? '').trim().split(/\s+/);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const text = lines[j] ?? '';
      const trimmed = text.trim();
      if (trimmed.startsWith(fence) && trimmed.slice(fence.length).trim() === '' && text.search(/\S/) <= 3) break;
      body.push(text.slice(Math.min(indent, text.search(/\S|$/))));
    }
    blocks.push({
      file,
      line: i + 1,
      code: body.join('\n') + '\n',
      noCheck: meta.includes('no-check'),
      decorators: meta.includes('decorators'),
    });
    i = j; // continue after the closing fence
  }
  return blocks;
}

function markdownFiles(): string[] {
  const files: string[] = [];
  if (existsSync(readme)) files.push(readme);
  if (existsSync(docsDir)) {
    const docs = readdirSync(docsDir, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.md'))
      .sort()
      .map((name) => join(docsDir, name));
    files.push(...docs);
  }
  return files;
}

/** `rx-ratelimit[/sub]` → emitted declarations under `types`, from package.json "exports" (dist/esm/X.js → X.d.ts). */
function declarationPaths(types: string): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    name: string;
    exports: Record<string, unknown>;
  };
  const paths: Record<string, string> = {};
  for (const [subpath, entry] of Object.entries(pkg.exports)) {
    const target = JSON.stringify(entry);
    const match = /\.\/dist\/esm\/([^"]+?)\.js"/.exec(target);
    if (!match) continue; // e.g. ./package.json
    const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`;
    paths[specifier] = join(types, `${match[1]}.d.ts`);
  }
  return paths;
}

/** The library's TypeScript sources (lib/**\/*.ts), sorted. */
function librarySources(): string[] {
  return readdirSync(join(root, 'lib'), { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .sort()
    .map((name) => join(root, 'lib', name));
}

const blocks = [...markdownFiles().flatMap(extractBlocks), ...librarySources().flatMap(extractDocCommentBlocks)];
const checked = blocks.filter((block) => !block.noCheck);

const blockName = (block: Block): string => `${block.file}:${block.line}`;

/** The library entry points a block imports, as one string: blocks with the same ones may share a program. */
function entryPointsOf(block: Block): string {
  const found = new Set<string>();
  for (const match of block.code.matchAll(/(?:from|import)\s+['"](rx-ratelimit(?:\/[\w-]+)?)['"]/g)) {
    if (match[1]) found.add(match[1]);
  }
  return `${block.decorators ? 'decorators ' : ''}${[...found].sort().join(' ')}`;
}
const moduleName = (block: Block): string => `${block.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${block.line}.ts`;

describe('the docs that must stay compiled', () => {
  // The SDK recipes are what users copy: a block moved to `no-check` or a file renamed would
  // silently stop checking them.
  it('docs/sdks.md has a checked block for each SDK', () => {
    const sdkBlocks = checked.filter((b) => b.file === 'docs/sdks.md').map((b) => b.code);
    expect(sdkBlocks.some((code) => code.includes("from 'pipedrive'"))).toBe(true);
    expect(sdkBlocks.some((code) => code.includes("from '@procore/js-sdk'"))).toBe(true);
  });
});

describe('TypeScript blocks in README.md, docs/**/*.md and the doc comments of lib/**/*.ts', () => {
  let workDir = '';
  /** Formatted diagnostics per generated module path. */
  const diagnosticsByFile = new Map<string, string[]>();

  beforeAll(() => {
    if (checked.length === 0) return;
    mkdirSync(join(root, '.readme-check'), { recursive: true });
    workDir = mkdtempSync(join(root, '.readme-check', 'run-'));
    const types = join(workDir, 'types');
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const emitted = spawnSync(
      process.execPath,
      [tsc, '-p', 'tsconfig.build.json', '--emitDeclarationOnly', '--declarationMap', 'false', '--outDir', types],
      { cwd: root, encoding: 'utf8' },
    );
    if (emitted.status !== 0)
      throw new Error(`emitting the library's declarations failed:\n${emitted.stdout}${emitted.stderr}`);

    const files = checked.map((block) => {
      const path = join(workDir, moduleName(block));
      writeFileSync(path, block.code);
      return path;
    });
    const paths = Object.fromEntries(
      Object.entries(declarationPaths(types)).map(([specifier, source]) => [
        specifier,
        [`./${relative(workDir, source)}`],
      ]),
    );
    const tsconfig = {
      extends: join(root, 'tsconfig.json'),
      compilerOptions: {
        noEmit: true,
        // Each block is its own module even without import/export, so blocks never clash.
        moduleDetection: 'force',
        // Snippets may declare things only to show them.
        noUnusedLocals: false,
        noUnusedParameters: false,
        paths,
      },
      files: files.map((file) => relative(workDir, file)),
      include: [],
    };
    const configPath = join(workDir, 'tsconfig.json');
    writeFileSync(configPath, JSON.stringify(tsconfig, null, 2) + '\n');

    const configDiagnostics: ts.Diagnostic[] = [];
    const parsed = ts.getParsedCommandLineOfConfigFile(configPath, undefined, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => configDiagnostics.push(diagnostic),
    });
    if (!parsed || configDiagnostics.length > 0 || parsed.errors.length > 0) {
      throw new Error(
        `generated ${configPath} is invalid:\n${format([...configDiagnostics, ...(parsed?.errors ?? [])])}`,
      );
    }

    const groups = new Map<string, number[]>();
    checked.forEach((block, index) => {
      const entry = entryPointsOf(block);
      groups.set(entry, [...(groups.get(entry) ?? []), index]);
    });
    let previous: ts.Program | undefined;
    for (const indices of groups.values()) {
      const rootNames = indices.map((index) => files[index] ?? '');
      const decorators = checked[indices[0] ?? 0]?.decorators === true;
      const options = decorators
        ? { ...parsed.options, experimentalDecorators: true, emitDecoratorMetadata: true }
        : parsed.options;
      const program = ts.createProgram({
        rootNames,
        options,
        ...(previous ? { oldProgram: previous } : {}),
      });
      previous = program;
      for (const index of indices) {
        const block = checked[index] as Block;
        const path = files[index] ?? '';
        const sourceFile = program.getSourceFile(path);
        const diagnostics = sourceFile ? ts.getPreEmitDiagnostics(program, sourceFile) : [];
        diagnosticsByFile.set(path, diagnostics.length > 0 ? diagnostics.map((d) => describeDiagnostic(d, block)) : []);
      }
    }
  }, 180_000);

  afterAll(() => {
    if (workDir && !process.env['README_CHECK_KEEP']) rmSync(workDir, { recursive: true, force: true });
  });

  /** `README.md:57:12 TS2345: message` with the block's generated file mapped back to the markdown line. */
  function describeDiagnostic(diagnostic: ts.Diagnostic, block: Block): string {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n    ');
    const { file, start } = diagnostic;
    if (!file || start === undefined) return `${blockName(block)} TS${diagnostic.code}: ${message}`;
    const { line, character } = file.getLineAndCharacterOfPosition(start);
    if (file.fileName !== join(workDir, moduleName(block)).split(sep).join('/')) {
      return `${blockName(block)} (in ${relative(root, file.fileName)}:${line + 1}:${character + 1}) TS${diagnostic.code}: ${message}`;
    }
    const source = block.code.split('\n')[line] ?? '';
    return `${block.file}:${block.line + 1 + line}:${character + 1} TS${diagnostic.code}: ${message}\n    > ${source.trim()}`;
  }

  function format(diagnostics: readonly ts.Diagnostic[]): string {
    return ts.formatDiagnostics(diagnostics, {
      getCanonicalFileName: (name) => name,
      getCurrentDirectory: () => root,
      getNewLine: () => '\n',
    });
  }

  if (!existsSync(readme)) {
    it.skip('README.md does not exist yet — nothing to type-check (add README.md to enable this suite)', () =>
      undefined);
  } else if (blocks.length === 0) {
    it('README.md exists (it has no ```ts blocks to check)', () => {
      expect(existsSync(readme)).toBe(true);
    });
  }

  for (const block of blocks) {
    if (block.noCheck) {
      it.skip(`${blockName(block)} (no-check)`, () => undefined);
      continue;
    }
    it(blockName(block), () => {
      const diagnostics = diagnosticsByFile.get(join(workDir, moduleName(block)));
      if (diagnostics === undefined) throw new Error(`${blockName(block)} was not compiled`);
      if (diagnostics.length > 0) {
        throw new Error(`${diagnostics.length} TypeScript error(s) in ${blockName(block)}:\n${diagnostics.join('\n')}`);
      }
    });
  }
});
