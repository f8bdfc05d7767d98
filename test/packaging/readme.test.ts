// README.md's code blocks, run the way a user runs them: the package is packed with
// `npm pack`, installed from that tarball into a new app (`npm install <tarball>`,
// offline: npm builds the addon from the packed sources on install, as it does for a
// user), and every ```js block is executed there with node, forked workers and worker
// threads included. A README example that breaks fails the suite.
//
// How README blocks are read (every fenced block must be one of these):
// - ```js whose first line is `// name.mjs`: a file of an example; the named blocks under
//   one heading are one example (written side by side), run from its first file.
// - ```js without a name: a whole program of its own (written as example.mjs).
// - ```js whose first line is `// fragment: <why>`: not a program; only syntax-checked.
// - ```ts: type declarations; every `interface X` in it must be the package's exported X
//   (mutually assignable), so the documented shape cannot drift from the real one.
// - ```sh: commands CI itself runs (each line must be an `npm ...` command).
// - ```text: program output, not code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { removeDir, tempDir } from '../helpers';

const REPO = path.resolve(__dirname, '..', '..');
const README = readFileSync(path.join(REPO, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8'));

interface Block { lang: string; code: string; heading: string; line: number; name: string | null; fragment: boolean }

function readmeBlocks(): Block[] {
  const blocks: Block[] = [];
  const lines = README.split('\n');
  let heading = '(top)';
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{1,4} (.*)$/.exec(lines[i]);
    if (h) heading = h[1];
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]);
    const code = `${body.join('\n')}\n`;
    const first = body[0] ?? '';
    const named = /^\/\/ ([\w.-]+\.(?:mjs|cjs|js))\b/.exec(first);
    blocks.push({ lang: open[1], code, heading, line: start + 1, name: named ? named[1] : null, fragment: /^\/\/ fragment:/.test(first) });
  }
  return blocks;
}

interface Example { id: string; heading: string; files: { name: string; code: string }[]; main: string }

function examples(blocks: Block[]): Example[] {
  const out: Example[] = [];
  const named = new Map<string, Example>();
  for (const b of blocks) {
    if (b.lang !== 'js' || b.fragment) continue;
    if (b.name) {
      let ex = named.get(b.heading);
      if (!ex) {
        ex = { id: `${b.heading} (${b.name}, README line ${b.line})`, heading: b.heading, files: [], main: b.name };
        named.set(b.heading, ex);
        out.push(ex);
      }
      ex.files.push({ name: b.name, code: b.code });
    } else {
      out.push({ id: `${b.heading} (README line ${b.line})`, heading: b.heading, files: [{ name: 'example.mjs', code: b.code }], main: 'example.mjs' });
    }
  }
  return out;
}

// ---- the app: the packed package installed from its tarball ---------------------------

let work: string;
let app: string;
let installNote = '';

/** Node's headers without a download (node-gyp needs them to build the addon on install). */
function offlineNodedir(): string | null {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) return prefix;
  const cached = path.join(os.homedir(), '.cache', 'node-gyp', process.versions.node);
  if (existsSync(path.join(cached, 'include', 'node', 'common.gypi'))) return cached;
  return null;
}

/** Runs a command; a run past `timeout` is SIGKILLed and reported as timedOut (an example
 *  that handles SIGTERM, like the cluster one, must not pass by being stopped). */
function run(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout: number }): Promise<{ code: number | null; timedOut: boolean; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, options.timeout);
    child.on('error', (e) => { stderr += String(e); });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, timedOut, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  work = tempDir('rm-readme-');
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: REPO, encoding: 'utf8', timeout: 120000, stdio: ['ignore', 'pipe', 'pipe'] }));
  const tarball = path.join(work, packed[0].filename);
  app = path.join(work, 'app');
  mkdirSync(path.join(app, 'node_modules'), { recursive: true });
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'readme-examples', private: true, type: 'module' }));
  // The one dependency, from this checkout (the install is offline): node-gyp needs its headers.
  cpSync(path.join(REPO, 'node_modules', 'node-addon-api'), path.join(app, 'node_modules', 'node-addon-api'), { recursive: true });
  const nodedir = offlineNodedir();
  const env: NodeJS.ProcessEnv = {
    ...process.env, npm_config_cache: path.join(work, 'npm-cache'), npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false',
    ...(nodedir ? { npm_config_nodedir: nodedir } : {}),
  };
  const t0 = Date.now();
  const args = ['install', tarball, '--offline', '--no-package-lock', ...(nodedir ? [] : ['--ignore-scripts'])];
  // The addon's compile is CPU-bound for 20-30 s: at a lower priority, so the test files
  // running beside this one (on a 2-core machine) keep their pace.
  const niced = existsSync('/usr/bin/nice') || existsSync('/bin/nice');
  const r = niced ? await run('nice', ['-n', '10', 'npm', ...args], { cwd: app, env, timeout: 900000 })
    : await run('npm', args, { cwd: app, env, timeout: 900000 });
  if (r.code !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  const installed = path.join(app, 'node_modules', 'ringmaster');
  if (!nodedir) {
    // No Node headers reachable offline: node-gyp could not build, so the addon this
    // checkout built is copied in. Everything else is the tarball's.
    mkdirSync(path.join(installed, 'build', 'Release'), { recursive: true });
    cpSync(path.join(REPO, 'build', 'Release', 'ringmaster.node'), path.join(installed, 'build', 'Release', 'ringmaster.node'));
    installNote = 'no Node headers offline: the built addon was copied in (set npm_config_nodedir to build it on install)';
  } else {
    installNote = `built on install with headers from ${nodedir}`;
  }
  // piscina (a devDependency here) for the piscina example: the checkout's copy.
  symlinkSync(path.join(REPO, 'node_modules', 'piscina'), path.join(app, 'node_modules', 'piscina'), 'dir');
  console.log(`readme: npm install of ${path.basename(tarball)} took ${Math.round((Date.now() - t0) / 1000)} s (${installNote})`);
}, 900000);
afterAll(() => {
  if (work) removeDir(work);
});

// Lines an example may print on stderr: the documented fallbacks of the environment
// (the non-root CI leg's 8 MiB memlock, a sandbox without io_uring).
const ALLOWED_STDERR = [/RingmasterWarning: ringmaster: fixed buffers off/, /RingmasterWarning: ringmaster: .*using the threads backend/, /Use `node --trace-warnings/];

async function runExample(ex: Example, dirName: string): Promise<{ dir: string; stdout: string }> {
  const dir = path.join(app, 'examples', dirName);
  mkdirSync(dir, { recursive: true });
  for (const f of ex.files) writeFileSync(path.join(dir, f.name), f.code);
  return rerun(ex, dir);
}

async function rerun(ex: Example, dir: string): Promise<{ dir: string; stdout: string }> {
  const env = { ...process.env, NODE_OPTIONS: '' };
  delete env.RINGMASTER_TEST_HOOKS;  // a user's environment: no test hooks
  const r = await run(process.execPath, [ex.main], { cwd: dir, env, timeout: 60000 });
  const stray = r.stderr.split('\n').filter((l) => l.trim() && !ALLOWED_STDERR.some((re) => re.test(l)));
  expect({ example: ex.id, code: r.code, timedOut: r.timedOut, stderr: stray }, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toEqual({ example: ex.id, code: 0, timedOut: false, stderr: [] });
  return { dir, stdout: r.stdout };
}

const data = (dir: string, file: string) => readFileSync(path.join(dir, 'data', file));

// What each example must leave behind, found by what its code does (any other example
// must at least run to exit code 0 with nothing on stderr).
const CHECKS: { match: RegExp; check: (ex: Example, r: { dir: string; stdout: string }) => Promise<void> | void }[] = [
  { match: /new TextEncoder\(\)\.encode\('hello'\)/, check: (_ex, r) => {
    const t = data(r.dir, 'table.0');
    expect(t.subarray(0, 5).toString()).toBe('hello');
    expect(t.length).toBe(16384 + 8192);
  } },
  { match: /written by a worker/, check: (_ex, r) => {
    expect(data(r.dir, 'table.0').subarray(0, 19).toString()).toBe('written by a worker');
    expect(r.stdout).toMatch(/worker \d+ exited \(0\); slots cleaned: 0/);
  } },
  { match: /hello from slot/, check: (_ex, r) => expect(data(r.dir, 'table.0').toString()).toMatch(/^hello from slot \d+/) },
  { match: /written by a thread/, check: (_ex, r) => expect(data(r.dir, 'table.0').subarray(0, 19).toString()).toBe('written by a thread') },
  { match: /new Piscina/, check: (_ex, r) => {
    const t = data(r.dir, 'table.0');
    expect(t.length).toBe(4 * 4096);
    for (let i = 0; i < 4; i++) expect(t.subarray(i * 4096, (i + 1) * 4096).every((x) => x === i)).toBe(true);
  } },
  { match: /bufferPool: \{ pages: 4096 \}/, check: (_ex, r) => {
    const t = data(r.dir, 'table.0');
    expect(t.length).toBe(8 * 8192);
    expect(t.subarray(7 * 8192 + 100, 7 * 8192 + 105).toString()).toBe('row 1');
  } },
  // The WAL's records are its data: a second run replays the first run's note.
  { match: /KIND_NOTE/, check: async (ex, r) => {
    expect(r.stdout).toMatch(/durable up to [0-9A-F]+\/[0-9A-F]{8}/);
    expect(r.stdout).not.toMatch(/replayed:/);
    expect((await rerun(ex, r.dir)).stdout).toMatch(/replayed: note \d+/);
  } },
  // The counter survives the stop in the data file (shutdown checkpoint), and again.
  { match: /setCounter/, check: async (ex, r) => {
    expect(r.stdout).toContain('counter was 0');
    expect(data(r.dir, 'counters.0').readUInt32LE(16)).toBe(3);
    expect((await rerun(ex, r.dir)).stdout).toContain('counter was 3');
    expect(data(r.dir, 'counters.0').readUInt32LE(16)).toBe(6);
  } },
];

describe("README.md's code blocks", () => {
  const blocks = readmeBlocks();
  const exs = examples(blocks);

  it('every fenced block is of a kind this test knows, and the examples are found', () => {
    const unknown = blocks.filter((b) => !['js', 'ts', 'sh', 'text'].includes(b.lang)).map((b) => `README line ${b.line}: \`\`\`${b.lang}`);
    expect(unknown, 'label each block js, ts, sh or text').toEqual([]);
    for (const b of blocks.filter((x) => x.lang === 'sh')) {
      const cmds = b.code.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
      expect(cmds.filter((c) => !/^npm /.test(c)), `README line ${b.line}: shell blocks hold only npm commands`).toEqual([]);
    }
    expect(exs.length).toBeGreaterThanOrEqual(8);
    expect(exs.filter((e) => e.files.length > 1).map((e) => e.files.map((f) => f.name))).toEqual([['primary.mjs', 'worker.mjs'], ['main.mjs', 'task.mjs']]);
    // Every check above applies to some example: none is left behind by a README edit.
    for (const c of CHECKS) expect(exs.some((e) => e.files.some((f) => c.match.test(f.code))), String(c.match)).toBe(true);
    expect(lstatSync(path.join(app, 'node_modules', 'ringmaster')).isSymbolicLink()).toBe(false);
    expect(JSON.parse(readFileSync(path.join(app, 'node_modules', 'ringmaster', 'package.json'), 'utf8')).version).toBe(pkg.version);
    expect(existsSync(path.join(app, 'node_modules', 'ringmaster', 'build', 'Release', 'ringmaster.node'))).toBe(true);
  });

  for (const [i, ex] of exs.entries()) {
    it(`runs: ${ex.id}`, async () => {
      const r = await runExample(ex, `ex${i}`);
      for (const c of CHECKS) if (ex.files.some((f) => c.match.test(f.code))) await c.check(ex, r);
    }, 300000);
  }

  it('fragments (if any) are at least valid syntax', async () => {
    for (const b of blocks.filter((x) => x.lang === 'js' && x.fragment)) {
      const f = path.join(app, `fragment-${b.line}.mjs`);
      writeFileSync(f, b.code);
      const r = await run(process.execPath, ['--check', f], { cwd: app, timeout: 30000 });
      expect(r.code, `README line ${b.line}: ${r.stderr}`).toBe(0);
    }
  });

  it('every interface a ```ts block documents is the one the package exports', () => {
    const tsBlocks = blocks.filter((b) => b.lang === 'ts');
    expect(tsBlocks.length).toBeGreaterThan(0);
    const files: string[] = [];
    for (const b of tsBlocks) {
      const names = [...b.code.matchAll(/^\s*(?:export\s+)?interface (\w+)/gm)].map((m) => m[1]);
      expect(names.length, `README line ${b.line}: a ts block declares interfaces`).toBeGreaterThan(0);
      const same = names.map((n) => [
        `import type { ${n} as Real${n} } from 'ringmaster';`,
        `type Same${n} = [Real${n}] extends [${n}] ? ([${n}] extends [Real${n}] ? true : false) : false;`,
        `export const same${n}: Same${n} = true;`,
      ].join('\n'));
      const f = path.join(app, `readme-${b.line}.mts`);
      writeFileSync(f, `${b.code}\n${same.join('\n')}\n`);
      files.push(f);
    }
    const options: ts.CompilerOptions = {
      module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, target: ts.ScriptTarget.ES2022,
      strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(REPO, 'node_modules', '@types')],
    };
    const program = ts.createProgram(files, options, ts.createCompilerHost(options));
    const diags = ts.getPreEmitDiagnostics(program).map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(diags).toEqual([]);
  });
});
