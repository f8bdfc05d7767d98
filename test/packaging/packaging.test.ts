// The package as users get it: `import` and `require` both work and hand out the same
// class objects (one native addon instance), it ships types that resolve through the
// "exports" map, and what `npm pack` would publish can build the addon on install.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { REPO, consumerApp, removeDir, strictConsumerOptions } from '../helpers';

const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));

let dir: string;
/** A consumer project: <dir>/app with node_modules/ringmaster -> the repo (like `npm link`). */
let app: string;

beforeAll(() => {
  ({ dir, app } = consumerApp('rm-packaging-'));
});
afterAll(() => removeDir(dir));

/** Runs `node <args>` in `cwd`; resolves with stdout, rejects with stdout+stderr on failure. */
function node(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { cwd, timeout: 30000, env: { ...process.env, NODE_OPTIONS: '' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`node ${args.join(' ')} failed (cwd ${cwd}): ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

let packList: Set<string> | null = null;
/** What `npm pack` would publish (paths relative to the package root). */
function packed(): Set<string> {
  if (!packList) {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: REPO, encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
    packList = new Set<string>(JSON.parse(out)[0].files.map((f: { path: string }) => f.path));
  }
  return packList;
}

function lastJson(stdout: string): any {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

describe('packaging', () => {
  it('package.json: engines, entry points, exports map', () => {
    expect(pkg.name).toBe('ringmaster');
    expect(pkg.engines?.node).toBe('>=20');
    expect(pkg.exports['.']).toEqual({ types: './dist/core/index.d.ts', import: './dist/index.mjs', require: './dist/core/index.js' });
    // "types" must come first: TypeScript takes the first matching condition.
    expect(Object.keys(pkg.exports['.'])[0]).toBe('types');
    for (const f of [pkg.main, pkg.types, pkg.exports['.'].import, pkg.exports['.'].require, pkg.exports['.'].types]) {
      expect(existsSync(path.join(REPO, f)), `${f} exists`).toBe(true);
    }
    // The addon is compiled on install, so its header-only dependency is a runtime dependency.
    expect(Object.keys(pkg.dependencies ?? {})).toContain('node-addon-api');
    expect(pkg.scripts.install).toMatch(/node-gyp/);
  });

  it('ESM import works (absolute path, self-reference and from a consumer), with the same exports as require', async () => {
    const names = Object.keys(require(REPO)).filter((n) => n !== '__esModule').sort();
    expect(names).toEqual(expect.arrayContaining(['Postmaster', 'attach', 'open', 'Ringmaster', 'RingmasterError']));
    const script = (spec: string) => [
      `import * as m from ${JSON.stringify(spec)};`,
      `import { open, Postmaster, attach } from ${JSON.stringify(spec)};`,
      'if (typeof open !== "function" || typeof Postmaster !== "function" || typeof attach !== "function") throw new Error("missing exports");',
      'if (m.default.Postmaster !== Postmaster) throw new Error("default export differs");',
      'console.log(JSON.stringify(Object.keys(m).filter((n) => n !== "default").sort()));',
    ].join('\n');
    const url = new URL(`file://${path.join(REPO, 'dist', 'index.mjs')}`).href;
    for (const [spec, cwd] of [[url, dir], ['ringmaster', REPO], ['ringmaster', app]] as const) {
      expect(lastJson(await node(['--input-type=module', '-e', script(spec)], cwd)), `${spec} from ${cwd}`).toEqual(names);
    }
  });

  it('require works (absolute path, self-reference and from a consumer)', async () => {
    const script = (spec: string) => [
      `const m = require(${JSON.stringify(spec)});`,
      'if (typeof m.open !== "function" || typeof m.Postmaster !== "function" || typeof m.attach !== "function") throw new Error("missing exports");',
      'console.log(JSON.stringify(require.resolve(' + JSON.stringify(spec) + ')));',
    ].join('\n');
    for (const [spec, cwd] of [[REPO, dir], ['ringmaster', REPO], ['ringmaster', app]] as const) {
      expect(lastJson(await node(['-e', script(spec)], cwd))).toBe(path.join(REPO, 'dist', 'core', 'index.js'));
    }
  });

  it('import and require give the same classes: instanceof works across both', async () => {
    const script = [
      "import * as esm from 'ringmaster';",
      "import { createRequire } from 'node:module';",
      "import { mkdtempSync, rmSync } from 'node:fs';",
      "import path from 'node:path';",
      'const cjs = createRequire(import.meta.url)("ringmaster");',
      'const same = ["Postmaster", "Ringmaster", "Batch", "FileHandle", "Files", "RingmasterError", "IoCancelledError", "open", "attach"].filter((n) => esm[n] !== cjs[n]);',
      'const dataDir = mkdtempSync(path.join(process.argv[1], "esm-"));',
      'const db = await esm.open({ dataDir, arenaSize: 1 << 20 });',
      'const out = { different: same, pm: db instanceof cjs.Postmaster, rmaster: db instanceof cjs.Ringmaster };',
      "const f = await db.files.open('x.dat', { create: true });",
      'out.file = f instanceof cjs.FileHandle;',
      'out.batch = db.batch() instanceof cjs.Batch;',
      'try { db.files.get(999); } catch (e) { out.error = e instanceof cjs.RingmasterError && e instanceof esm.RingmasterError; out.code = e.code; }',
      'await db.close();',
      'rmSync(dataDir, { recursive: true, force: true });',
      'console.log(JSON.stringify(out));',
    ].join('\n');
    const out = lastJson(await node(['--input-type=module', '-e', script, dir], app));
    expect(out).toEqual({ different: [], pm: true, rmaster: true, file: true, batch: true, error: true, code: 'ERR_RINGMASTER_BAD_FILE' });
  });

  it('ships types: dist/core/index.d.ts declares Postmaster, attach, open and a consumer type-checks', () => {
    const dts = readFileSync(path.join(REPO, 'dist', 'core', 'index.d.ts'), 'utf8');
    expect(dts).toMatch(/export \{[^}]*\bPostmaster\b[^}]*\} from '\.\/postmaster'/);
    expect(dts).toMatch(/export \{[^}]*\bopen\b[^}]*\} from '\.\/postmaster'/);
    expect(dts).toMatch(/export \{[^}]*\battach\b[^}]*\} from '\.\/attach'/);
    expect(readFileSync(path.join(REPO, 'dist', 'core', 'postmaster.d.ts'), 'utf8')).toMatch(/export declare class Postmaster extends Ringmaster/);

    const code = [
      "import { Postmaster, attach, open, RingmasterError, type StartOptions, type Features, type IoResult } from 'ringmaster';",
      'const o: StartOptions = { dataDir: "/tmp/x", arenaSize: 1 << 20, backend: "threads" };',
      'export async function f(): Promise<boolean> {',
      '  const pm: Postmaster = await Postmaster.start(o);',
      '  const db: Postmaster = await open(o);',
      '  const feats: Features = pm.features;',
      '  const w = await attach(pm.threadToken());',
      '  const n: number = await w.read(0, 0, new Uint8Array(1));',
      '  const r: IoResult[] = await db.batch().nop().submit();',
      '  return feats.fixedBuffers && n > 0 && r[0].ok && new RingmasterError("E", "m").code === "E";',
      '}',
      '// @ts-expect-error unknown options are a type error (the types are not `any`)',
      'export const bad: StartOptions = { dataDir: "x", nope: 1 };',
      '// @ts-expect-error backend is a closed set',
      'export const bad2: StartOptions = { dataDir: "x", backend: "epoll" };',
      '',
    ].join('\n');
    // CommonJS consumer (.ts -> "require" condition) and ESM consumer (.mts -> "import").
    const files = [path.join(app, 'consumer.ts'), path.join(app, 'consumer.mts')];
    for (const f of files) writeFileSync(f, code);
    const options = strictConsumerOptions(ts);
    const host = ts.createCompilerHost(options);
    for (const f of files) {
      const resolved = ts.resolveModuleName('ringmaster', f, options, host).resolvedModule;
      expect(resolved?.resolvedFileName, f).toBe(path.join(REPO, 'dist', 'core', 'index.d.ts'));
    }
    const program = ts.createProgram(files, options, host);
    const diags = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file ? `${path.relative(REPO, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : '';
      return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
    });
    expect(diags).toEqual([]);
  });

  it('the package is complete: every link of every shipped document, every runtime file, LICENSE, repository', () => {
    const files = packed();
    // Every runtime file: the compiled JS, its types, the ESM entry, the CLI, the entry points.
    const dist: string[] = [];
    const walk = (d: string) => {
      for (const name of readdirSync(path.join(REPO, d), { withFileTypes: true })) {
        const rel = `${d}/${name.name}`;
        if (name.isDirectory()) walk(rel);
        else if (/\.(js|mjs|d\.ts)$/.test(name.name)) dist.push(rel);
      }
    };
    walk('dist');
    expect(dist.length).toBeGreaterThan(10);
    const runtime = [...dist, pkg.main, pkg.types, pkg.bin.ringmaster, pkg.exports['.'].import, pkg.exports['.'].require, pkg.exports['.'].types, 'package.json', 'binding.gyp']
      .map((f: string) => f.replace(/^\.\//, ''));
    expect(runtime.filter((f) => !files.has(f))).toEqual([]);
    // Every document that ships, and everything it links to, ships (or is a URL).
    const docs = [...files].filter((f) => f.endsWith('.md'));
    expect(docs).toEqual(expect.arrayContaining(['README.md', 'RELIABILITY.md', 'docs/ARCHITECTURE.md', 'wal/README.md', 'bufferpool/README.md']));
    const broken: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(path.join(REPO, doc), 'utf8').replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1];
        if (/^[a-z]+:/.test(link)) continue;  // a URL
        const [target, anchor] = link.split('#');
        const file = target ? path.posix.normalize(path.posix.join(path.posix.dirname(doc), target)) : doc;
        if (!files.has(file)) {
          broken.push(`${doc}: ${link} (${file} is not in the package)`);
          continue;
        }
        if (anchor) {
          const slugs = readFileSync(path.join(REPO, file), 'utf8').split('\n').filter((l) => /^#+ /.test(l))
            .map((l) => l.replace(/^#+ /, '').trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-'));
          if (!slugs.includes(anchor)) broken.push(`${doc}: ${link} (no heading '#${anchor}' in ${file})`);
        }
      }
    }
    expect(broken).toEqual([]);
    // MIT, as package.json says, with its text; and where the source lives.
    expect(pkg.license).toBe('MIT');
    expect(files.has('LICENSE')).toBe(true);
    expect(readFileSync(path.join(REPO, 'LICENSE'), 'utf8')).toMatch(/^MIT License[\s\S]*Permission is hereby granted, free of charge/);
    expect(pkg.repository).toMatchObject({ type: 'git' });
    expect(pkg.repository.url).toMatch(/^git\+https:\/\/.+\.git$/);
  });

  it('npm pack would ship the built JS, the types and everything node-gyp needs to build on install', () => {
    const files = packed();
    for (const f of ['package.json', 'binding.gyp', 'dist/index.mjs', 'dist/core/index.js', 'dist/core/index.d.ts', 'dist/core/postmaster.d.ts']) {
      expect(files.has(f), `${f} is packed`).toBe(true);
    }
    const gyp = readFileSync(path.join(REPO, 'binding.gyp'), 'utf8');
    const sources = [...gyp.matchAll(/"(native\/[^"]+\.cc)"/g)].map((m) => m[1]);
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) expect(files.has(s), `${s} is packed`).toBe(true);
    for (const h of readdirSync(path.join(REPO, 'native')).filter((n) => /\.(h|cc)$/.test(n))) {
      expect(files.has(`native/${h}`), `native/${h} is packed`).toBe(true);
    }
    expect([...files].filter((f) => f.startsWith('test/') || f.startsWith('build/') || f.startsWith('node_modules/'))).toEqual([]);
  });
});
