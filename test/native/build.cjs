#!/usr/bin/env node
// Builds the native unit tests (test/native/*.cc) with g++ directly: no Node-API, no
// node-gyp. Every mechanism file of native/ (one that includes neither napi.h, node_api.h
// nor uv.h) is compiled once into a static library; each test program is linked against
// it. Debug assertions on (RM_DEBUG), address and undefined-behaviour sanitizers, -O1 -g.
//
// The build is cached by hashes of the compiler, the flags and every source and header it
// reads: build/native-tests/objects/ holds one object per mechanism file (a changed .cc
// recompiles only itself; a changed header, all of them), build/native-tests/<hash>/ the
// linked programs. A repeated run with nothing changed compiles nothing.
//
//   node test/native/build.cjs          build (or reuse) and print the directory
//   node test/native/build.cjs --run    build, then run every test program
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(REPO, 'native');
const TESTS = __dirname;
const CACHE = path.join(REPO, 'build', 'native-tests');
const CXX = process.env.CXX || 'g++';
const FLAGS = [
  '-std=c++17', '-D_GNU_SOURCE', '-DRM_DEBUG', '-O1', '-g', '-pthread',
  '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer',
  '-Wall', '-Wextra', '-Wno-unused-parameter', '-Wno-missing-field-initializers',
];
// How the programs are run: any sanitizer report fails the test (UBSan included).
// Leak checking is off: LeakSanitizer stops the world with ptrace, which containers and
// the non-root CI leg may forbid; the tests leave their shared mappings to exit.
const RUN_ENV = {
  ASAN_OPTIONS: 'detect_leaks=0',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
};

const NODE_HEADER = /#include\s*[<"](napi\.h|node_api\.h|uv\.h)[>"]/;

/** Whether native/<file> includes a Node or libuv header, itself or through the native headers it includes. */
function needsNode(file, seen = new Set()) {
  if (seen.has(file)) return false;
  seen.add(file);
  const p = path.join(NATIVE, file);
  if (!fs.existsSync(p)) return false;
  const text = fs.readFileSync(p, 'utf8');
  if (NODE_HEADER.test(text)) return true;
  for (const m of text.matchAll(/#include\s*"([^"]+)"/g)) if (needsNode(m[1], seen)) return true;
  return false;
}

/** Files of native/ that a Node-free program can link: no Node or libuv header, directly or not. */
function mechanismSources() {
  return fs.readdirSync(NATIVE).filter((f) => f.endsWith('.cc') && !needsNode(f)).sort();
}

/** The test programs: test/native/<name>.cc. */
function testNames() {
  return fs.readdirSync(TESTS).filter((f) => f.endsWith('.cc')).map((f) => f.slice(0, -3)).sort();
}

/** Why the tests cannot be built here (no compiler, no sanitizer runtime), or null. */
function missingToolchain() {
  const v = spawnSync(CXX, ['--version'], { encoding: 'utf8' });
  if (v.error || v.status !== 0) return `${CXX} not found (install g++ to run the native unit tests)`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-native-probe-'));
  try {
    fs.writeFileSync(path.join(dir, 'p.cc'), 'int main() { return 0; }\n');
    const p = spawnSync(CXX, [...FLAGS, 'p.cc', '-o', 'p'], { cwd: dir, encoding: 'utf8' });
    if (p.status !== 0) return `${CXX} cannot build with -fsanitize=address,undefined (libasan/libubsan missing?): ${(p.stderr || '').trim().split('\n')[0]}`;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return null;
}

function hashOf(parts) {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

/** What every compile depends on besides its own file: the compiler, the flags, the headers. */
function commonInputs() {
  const parts = [spawnSync(CXX, ['--version'], { encoding: 'utf8' }).stdout || '', JSON.stringify(FLAGS)];
  const headers = [
    ...fs.readdirSync(NATIVE).filter((f) => f.endsWith('.h')).map((f) => path.join(NATIVE, f)),
    ...fs.readdirSync(TESTS).filter((f) => f.endsWith('.h')).map((f) => path.join(TESTS, f)),
  ].sort();
  for (const f of headers) parts.push(path.relative(REPO, f), fs.readFileSync(f));
  return parts;
}

/** Runs jobs (functions returning promises) with at most `limit` at a time. */
async function pool(jobs, limit) {
  const results = [];
  let next = 0;
  async function worker() {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await jobs[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, jobs.length) }, worker));
  return results;
}

function run(cmd, args, cwd) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code, out, what: `${cmd} ${args.join(' ')}` }));
    p.on('error', (e) => resolve({ code: -1, out: String(e), what: cmd }));
  });
}

/**
 * Builds (or finds cached) test programs. Resolves to { dir, tests } or { skip: reason };
 * rejects with the compiler's output if something does not compile.
 */
async function build() {
  const missing = missingToolchain();
  if (missing) return { skip: missing };
  const sources = mechanismSources();
  const tests = testNames();
  const common = commonInputs();
  // One object per mechanism file, named by the hash of what it is built from: a change
  // to one .cc recompiles that file only.
  const objects = sources.map((s) => {
    const text = fs.readFileSync(path.join(NATIVE, s));
    return path.join(CACHE, 'objects', `${s.slice(0, -3)}.${hashOf([...common, s, text])}.o`);
  });
  // The programs: named by everything they are linked from (the build.cjs and the tests too).
  const own = fs.readdirSync(TESTS).filter((f) => /\.(cc|cjs)$/.test(f)).sort();
  const key = hashOf([...common, ...objects.map((o) => path.basename(o)), ...own.flatMap((f) => [f, fs.readFileSync(path.join(TESTS, f))])]);
  const dir = path.join(CACHE, key);
  if (fs.existsSync(path.join(dir, 'complete'))) return { dir, tests, cached: true };

  fs.mkdirSync(path.join(CACHE, 'objects'), { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE, `${key}.tmp-`));
  const jobs = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  try {
    const compiled = await pool(sources.map((s, i) => async () => {
      if (fs.existsSync(objects[i])) return { code: 0 };
      const tmp = path.join(work, path.basename(objects[i]));
      const r = await run(CXX, [...FLAGS, '-c', path.join(NATIVE, s), '-o', tmp], work);
      if (r.code === 0) fs.renameSync(tmp, objects[i]);
      return r;
    }), jobs);
    const failed = compiled.filter((r) => r.code !== 0);
    if (failed.length) throw new Error(failed.map((r) => `${r.what}\n${r.out}`).join('\n'));
    const lib = path.join(work, 'libmechanism.a');
    const ar = await run('ar', ['rcs', lib, ...objects], work);
    if (ar.code !== 0) throw new Error(`${ar.what}\n${ar.out}`);
    const linked = await pool(tests.map((t) => () => run(CXX, [...FLAGS, path.join(TESTS, `${t}.cc`), lib, '-o', path.join(work, t)], work)), jobs);
    const bad = linked.filter((r) => r.code !== 0);
    if (bad.length) throw new Error(bad.map((r) => `${r.what}\n${r.out}`).join('\n'));
    fs.writeFileSync(path.join(work, 'complete'), `${new Date().toISOString()}\n`);
    // Another run may have finished the same build meanwhile: either copy is good.
    try {
      fs.renameSync(work, dir);
    } catch {
      fs.rmSync(work, { recursive: true, force: true });
    }
  } catch (e) {
    fs.rmSync(work, { recursive: true, force: true });
    throw e;
  }
  // Older programs and objects (other sources) are of no use any more.
  const keep = new Set(objects.map((o) => path.basename(o)));
  for (const old of fs.readdirSync(CACHE)) {
    if (old !== key && old !== 'objects' && !old.includes('.tmp-')) fs.rmSync(path.join(CACHE, old), { recursive: true, force: true });
  }
  for (const old of fs.readdirSync(path.join(CACHE, 'objects'))) {
    if (!keep.has(old)) fs.rmSync(path.join(CACHE, 'objects', old), { force: true });
  }
  return { dir, tests, cached: false };
}

/** Runs one test program; resolves to { code, signal, output }. */
function runTest(dir, name) {
  return new Promise((resolve) => {
    const p = spawn(path.join(dir, name), [], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...RUN_ENV } });
    let output = '';
    p.stdout.on('data', (d) => (output += d));
    p.stderr.on('data', (d) => (output += d));
    p.on('close', (code, signal) => resolve({ code, signal, output }));
  });
}

module.exports = { build, runTest, testNames, mechanismSources, needsNode, missingToolchain, FLAGS };

if (require.main === module) {
  (async () => {
    const started = Date.now();
    const b = await build();
    if (b.skip) {
      console.log(`native unit tests skipped: ${b.skip}`);
      return;
    }
    console.log(`${b.cached ? 'cached' : 'built'}: ${path.relative(REPO, b.dir)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    if (!process.argv.includes('--run')) return;
    let failed = 0;
    for (const t of b.tests) {
      const r = await runTest(b.dir, t);
      const ok = r.code === 0;
      if (!ok) failed++;
      console.log(`${ok ? 'PASS' : 'FAIL'} ${t}${ok ? '' : ` (exit ${r.code}, signal ${r.signal})\n${r.output}`}`);
    }
    process.exitCode = failed ? 1 : 0;
  })().catch((e) => {
    console.error(e.message);
    process.exitCode = 1;
  });
}
