#!/usr/bin/env node
// `npm run lint` step: no import cycle between the files of lib/, type-only imports included
// (a cycle of types is still two files that cannot be understood one without the other).
// The direction between folders is checked by ESLint (`no-restricted-imports`, eslint.config.js);
// this script checks what ESLint cannot see one file at a time. Prints each cycle found.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (path.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Relative imports and re-exports of a file (static and `import()` types), as repository paths. */
function importsOf(file) {
  const src = readFileSync(file, 'utf8');
  const out = new Set();
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const spec = (m[1] ?? m[2]).replace(/\.js$/, '.ts');
    out.add(relative(root, resolve(dirname(file), spec)));
  }
  return out;
}

const files = walk(join(root, 'lib')).map((f) => relative(root, f));
const graph = new Map(files.map((f) => [f, [...importsOf(join(root, f))].filter((t) => files.includes(t))]));

// Tarjan's strongly connected components: every component of more than one file is a cycle.
let index = 0;
const stack = [];
const info = new Map();
const cycles = [];
function connect(v) {
  info.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v)) {
    if (!info.has(w)) {
      connect(w);
      info.get(v).low = Math.min(info.get(v).low, info.get(w).low);
    } else if (info.get(w).onStack) info.get(v).low = Math.min(info.get(v).low, info.get(w).index);
  }
  if (info.get(v).low === info.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      info.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v).includes(v)) cycles.push(component.sort());
  }
}
for (const f of files) if (!info.has(f)) connect(f);

if (cycles.length) {
  console.error(`layers: ${cycles.length} import cycle(s) in lib/ (type-only imports count):`);
  for (const c of cycles) {
    console.error(`  ${c.join(' ⇄ ')}`);
    for (const f of c)
      console.error(
        `    ${f} imports ${graph
          .get(f)
          .filter((t) => c.includes(t))
          .join(', ')}`,
      );
  }
  process.exit(1);
}
console.log(`layers: ${files.length} files in lib/, no import cycle`);
