// The TypeScript layers point one way. core/ (the ring, files, postmaster, attach) knows
// nothing of the modules built on it: the buffer pool and the WAL attach themselves through
// core/modules.ts, and only the package entry (core/index.ts, whose compiled path is the
// published main/types/exports) imports core, the pool and the WAL together. Every kind of
// import counts here, type-only ones included (`import type`, `import('...').T`,
// `export ... from`, `require()`): a type import is still an edge a reader has to follow.
// The native boundary (the addon loader and its interface) is typed throughout: no
// explicit `any` there.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ts from 'typescript';

const REPO = path.resolve(__dirname, '..', '..');
const LAYERS = ['core', 'bufferpool', 'wal'];
const ENTRY = 'core/index.ts';
/** The files that define what crosses between JavaScript and the addon. */
const NATIVE_BOUNDARY = ['core/native.ts', 'core/constants.ts'];

function sources(): string[] {
  const out: string[] = [];
  for (const dir of LAYERS) {
    for (const f of readdirSync(path.join(REPO, dir))) {
      if (f.endsWith('.ts') && !f.endsWith('.d.ts')) out.push(`${dir}/${f}`);
    }
  }
  return out.sort();
}

/** Every module specifier `file` names, by any kind of import. */
export function specifiers(text: string, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      found.push(node.moduleReference.expression.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1) {
      const callee = node.expression;
      const isRequire = ts.isIdentifier(callee) && callee.text === 'require';
      const isDynamicImport = callee.kind === ts.SyntaxKind.ImportKeyword;
      if (isRequire || isDynamicImport) {
        const arg = node.arguments[0];
        if (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg)) found.push(arg.text);
        // require(path.join(__dirname, '..', 'x')): the joined relative parts name the file.
        else if (ts.isCallExpression(arg) && arg.expression.getText(sf) === 'path.join' && arg.arguments[0]?.getText(sf) === '__dirname') {
          const parts = arg.arguments.slice(1).map((a) => (ts.isStringLiteral(a) ? a.text : null));
          if (parts.every((p) => p !== null)) found.push(['.', ...(parts as string[])].join('/'));
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

/** The repository file a relative specifier from `from` names (null: a package or a non-TS file). */
function resolve(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const c of [base, `${base}.ts`, `${base}/index.ts`]) {
    if (c.endsWith('.ts') && existsSync(path.join(REPO, c))) return c;
  }
  return null;
}

function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of sources()) {
    const text = readFileSync(path.join(REPO, f), 'utf8');
    const deps = new Set<string>();
    for (const s of specifiers(text, f)) {
      const r = resolve(f, s);
      if (r && r !== f) deps.add(r);
    }
    g.set(f, [...deps].sort());
  }
  return g;
}

/** Every cycle found by a depth-first walk (each reported once, as the path that closes it). */
export function cycles(g: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const found: string[][] = [];
  const walk = (n: string): void => {
    state.set(n, 'open');
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (state.get(d) === 'open') found.push([...stack.slice(stack.indexOf(d)), d]);
      else if (!state.has(d)) walk(d);
    }
    stack.pop();
    state.set(n, 'done');
  };
  for (const n of [...g.keys()].sort()) if (!state.has(n)) walk(n);
  return found;
}

/** Imports from core/ of a module above it: the buffer pool, the WAL or the package entry. */
function layerViolations(g: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [f, deps] of g) {
    if (!f.startsWith('core/') || f === ENTRY) continue;
    for (const d of deps) {
      if (!d.startsWith('core/') || d === ENTRY) out.push(`${f} -> ${d}`);
    }
  }
  for (const [f, deps] of g) {
    if (f !== ENTRY && deps.includes(ENTRY)) out.push(`${f} -> ${ENTRY} (only users import the package entry)`);
  }
  return out;
}

/** The two modules on core reach each other only through core/modules.ts (WalHook, PagesForWal). */
const SIBLINGS: [string, string, string][] = [['wal/', 'bufferpool/', 'buffers'], ['bufferpool/', 'wal/', 'wal']];

/** Imports of one module by the other, and uses of the other's handle property (`db.buffers`, `db.wal`). */
export function siblingViolations(g: Map<string, string[]>, read: (f: string) => string): string[] {
  const out: string[] = [];
  for (const [from, to, property] of SIBLINGS) {
    for (const [f, deps] of g) {
      if (!f.startsWith(from)) continue;
      for (const d of deps) if (d.startsWith(to)) out.push(`${f} -> ${d}`);
      for (const line of propertyUses(read(f), property, f)) out.push(`${f} uses .${property} (${line})`);
    }
  }
  return out;
}

/** Lines where `text` reads property `name` of something (`x.name`, `x?.name`). */
export function propertyUses(text: string, name: string, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) && node.name.text === name) {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      out.push(`${line + 1}: ${text.split('\n')[line].trim()}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Names of the `_`-prefixed members that core's classes declare: core's own internals. */
export function coreInternalNames(texts: string[]): Set<string> {
  const names = new Set<string>();
  for (const text of texts) {
    const sf = ts.createSourceFile('core.ts', text, ts.ScriptTarget.ES2022, true);
    const visit = (node: ts.Node): void => {
      if (ts.isClassLike(node)) {
        for (const m of node.members) {
          if (m.name && (ts.isIdentifier(m.name) || ts.isPrivateIdentifier(m.name)) && /^_[a-zA-Z]/.test(m.name.text)) names.add(m.name.text);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return names;
}

/** Lines where `text` uses a member named in `names` (`x._name`, `x?._name`, `x['_name']`). */
export function internalUses(text: string, names: Set<string>, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    let name: string | null = null;
    if (ts.isPropertyAccessExpression(node)) name = node.name.text;
    else if (ts.isElementAccessExpression(node) && ts.isStringLiteral(node.argumentExpression)) name = node.argumentExpression.text;
    if (name !== null && names.has(name)) {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      out.push(`${line + 1}: ${text.split('\n')[line].trim()}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Calls in `text` that load the addon's file themselves (`require`/`process.dlopen` of build/Release or a `.node`). */
export function directLoads(text: string, fileName = 'x.cjs'): string[] {
  const kind = /\.(c|m)?js$/.test(fileName) ? ts.ScriptKind.JS : ts.ScriptKind.TS;
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true, kind);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression.getText(sf);
      if (/(^|\.)(require|dlopen)$/.test(callee) && node.arguments.some((a) => /\.node\b|['"]Release['"]|build\/Release/.test(a.getText(sf)))) {
        const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
        out.push(`${line + 1}: ${text.split('\n')[line].trim()}`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Every script of the repository outside the package's sources: tests, fixtures, soaks, benchmarks, tools. */
function scripts(): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(REPO, rel), { withFileTypes: true })) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'results') walk(r);
      } else if (/\.(ts|cjs|mjs|js)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(r);
    }
  };
  for (const dir of ['test', 'soak', 'bench', 'scripts', 'demo', 'tools']) if (existsSync(path.join(REPO, dir))) walk(dir);
  return out.sort();
}

/** Places where `any` is written in `text` (line: source). */
export function explicitAny(text: string, fileName = 'x.ts'): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (node.kind === ts.SyntaxKind.AnyKeyword) {
      const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
      out.push(`${line + 1}: ${text.split('\n')[line].trim()}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe('import graph of core/, bufferpool/ and wal/', () => {
  it('the parser sees every kind of import (positive control)', () => {
    const text = [
      "import a from './a';",
      "import type { B } from './b';",
      "import './c';",
      "export { D } from './d';",
      "export * from './e';",
      "const f = require('./f');",
      "let g: import('./g').G;",
      "const h = require(path.join(__dirname, '..', 'h'));",
      "async function i() { await import('./i'); }",
      "// import x from './not-this-one';",
    ].join('\n');
    expect(specifiers(text)).toEqual(['./a', './b', './c', './d', './e', './f', './g', './../h', './i']);
  });

  it('the cycle finder and the `any` finder catch what they look for (positive controls)', () => {
    const g = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(cycles(g)).toEqual([['a', 'b', 'c', 'a']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
    expect(explicitAny('const x: any = 1;\nfunction f(y: number): Promise<any> { return y as never; }\n// any in a comment\nconst z = <any>x as any;')).toEqual([
      '1: const x: any = 1;', '2: function f(y: number): Promise<any> { return y as never; }', '4: const z = <any>x as any;', '4: const z = <any>x as any;',
    ]);
  });

  it('has no cycle', () => {
    expect(cycles(graph()).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('core/ imports nothing above it (the buffer pool, the WAL, the package entry)', () => {
    expect(layerViolations(graph())).toEqual([]);
  });

  it('the sibling check catches an import and a use of the other module (positive control)', () => {
    const g = new Map([['wal/index.ts', ['bufferpool/index.ts', 'core/modules.ts']], ['bufferpool/index.ts', ['core/modules.ts']]]);
    const text: Record<string, string> = { 'wal/index.ts': 'const p = db.buffers; // db.buffers in a comment', 'bufferpool/index.ts': 'db?.wal.flush();' };
    expect(siblingViolations(g, (f) => text[f])).toEqual([
      'wal/index.ts -> bufferpool/index.ts', 'wal/index.ts uses .buffers (1: const p = db.buffers; // db.buffers in a comment)',
      'bufferpool/index.ts uses .wal (1: db?.wal.flush();)',
    ]);
  });

  it('the WAL and the buffer pool reach each other only through core/modules.ts (no import, no db.buffers / db.wal)', () => {
    expect(siblingViolations(graph(), (f) => readFileSync(path.join(REPO, f), 'utf8'))).toEqual([]);
  });

  it("the internal-member check finds core's `_` members and their uses (positive control)", () => {
    const names = coreInternalNames(['class Batch { _setKind(k: number) { return this; } submit() {} }\ninterface NotAClass { _other(): void }']);
    expect([...names]).toEqual(['_setKind']);
    expect(internalUses("batch.write(1)._setKind(2);\nb?.['_setKind'](3);\nb._other();\n// x._setKind in a comment", names)).toEqual([
      '1: batch.write(1)._setKind(2);', "2: b?.['_setKind'](3);",
    ]);
  });

  it("the buffer pool and the WAL use no `_` member of core's classes (they go through ModuleCore)", () => {
    const core = sources().filter((f) => f.startsWith('core/')).map((f) => readFileSync(path.join(REPO, f), 'utf8'));
    const names = coreInternalNames(core);
    expect(names.size).toBeGreaterThan(0);  // _native, _submit, _setKind, ... (the scan sees them)
    const uses: string[] = [];
    for (const f of sources().filter((x) => !x.startsWith('core/'))) {
      for (const u of internalUses(readFileSync(path.join(REPO, f), 'utf8'), names, f)) uses.push(`${f} ${u}`);
    }
    expect(uses).toEqual([]);
  });

  it('the package entry composes core, the buffer pool and the WAL', () => {
    const deps = graph().get(ENTRY)!;
    expect(deps).toContain('bufferpool/index.ts');
    expect(deps).toContain('wal/index.ts');
  });

  it('the addon is loaded in one place', () => {
    const loaders = sources().filter((f) => /ringmaster\.node/.test(readFileSync(path.join(REPO, f), 'utf8')));
    expect(loaders).toEqual(['core/native.ts']);
  });

  it('the direct-load finder catches a require of the .node file (positive control)', () => {
    const text = [
      "const a = require(path.join(__dirname, '..', 'build', 'Release', 'ringmaster.node'));",
      "const b = require('../../build/Release/ringmaster.node').bpInfo(x);",
      "process.dlopen(m, '/x/ringmaster.node');",
      "const c = require(path.join(__dirname, '..', 'dist', 'core', 'native.js')).native;",
      "copyFileSync(path.join('build', 'Release', 'ringmaster.node'), dest);",
    ].join('\n');
    expect(directLoads(text).map((l) => Number(l.split(':')[0]))).toEqual([1, 2, 3]);
  });

  it('tests, fixtures, soaks and benchmarks load the addon through core/native.ts, never the .node file', () => {
    const files = scripts();
    expect(files).toEqual(expect.arrayContaining(['test/helpers.ts', 'soak/kill-mixed.cjs']));
    const found: string[] = [];
    for (const f of files) for (const l of directLoads(readFileSync(path.join(REPO, f), 'utf8'), f)) found.push(`${f} ${l}`);
    expect(found).toEqual([]);
  });

  it('the build compiles with strict (noImplicitAny on): no implicit `any` anywhere', () => {
    const { compilerOptions } = JSON.parse(readFileSync(path.join(REPO, 'tsconfig.json'), 'utf8'));
    expect(compilerOptions.strict).toBe(true);
    expect(compilerOptions.noImplicitAny).not.toBe(false);
  });

  it('the native boundary, and every file that calls the addon, has no explicit `any`', () => {
    const g = graph();
    const touching = [...g].filter(([, deps]) => deps.includes('core/native.ts')).map(([f]) => f);
    // The buffer pool and the WAL call the addon (the scan sees them).
    expect(touching).toEqual(expect.arrayContaining(['bufferpool/index.ts', 'wal/index.ts']));
    const found: string[] = [];
    for (const f of [...NATIVE_BOUNDARY, ...touching]) {
      for (const a of explicitAny(readFileSync(path.join(REPO, f), 'utf8'), f)) found.push(`${f} ${a}`);
    }
    expect(found).toEqual([]);
  });
});

// `export { X } from` (or a re-export of an import) compiles to an accessor property, and
// one accessor turns the module's exports object into a dictionary: every load from it
// (`io_1.checkOffset`, a constant) is then a generic lookup, on the per-op path too. Only
// the package entries re-export.
describe('compiled modules keep fast exports objects', () => {
  const ENTRIES = new Set(['core/index.ts', 'wal/index.ts']);
  function slowExports(files: string[]): string {
    const script = `const out = [];
for (const f of ${JSON.stringify(files)}) if (!%HasFastProperties(require(f))) out.push(f);
process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', script], { encoding: 'utf8', timeout: 60000 });
    expect(r.stderr).toBe('');
    return r.stdout;
  }
  it('the check tells an accessor re-export from plain exports (positive control)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rm-exports-'));
    try {
      // Compiled as this repository compiles (tsconfig's CommonJS output).
      const compile = (name: string, text: string): string => {
        const out = ts.transpileModule(text, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
        writeFileSync(path.join(dir, name), out);
        return path.join(dir, name);
      };
      compile('c.js', 'export const A = 1;\nexport const B = 2;\n');
      const plain = compile('plain.js', "import { A } from './c';\nexport const C = A + 1;\nexport function f(): number { return A; }\n");
      const reexport = compile('reexport.js', "import { A } from './c';\nexport { A };\nexport function f(): number { return A; }\n");
      const reexportFrom = compile('reexport-from.js', "export { B } from './c';\nexport function f(): number { return 1; }\n");
      expect(JSON.parse(slowExports([plain, reexport, reexportFrom]))).toEqual([reexport, reexportFrom]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('every compiled module but the package entries', () => {
    const files = sources().filter((f) => !ENTRIES.has(f)).map((f) => path.join(REPO, 'dist', f.replace(/\.ts$/, '.js')));
    for (const f of files) expect(existsSync(f), `${f} (run npm run build:ts)`).toBe(true);
    expect(JSON.parse(slowExports(files))).toEqual([]);
  });
});
