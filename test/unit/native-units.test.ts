// The native unit tests (test/native/*.cc): small C++ programs that drive the mechanism
// files of native/ directly, without Node, built by test/native/build.cjs with debug
// assertions on (RM_DEBUG) and the address and undefined-behaviour sanitizers, and run
// here one by one. The build is cached by source hash (build/native-tests/), so only the
// first run after a change compiles. Skipped, saying why, where g++ (or its sanitizer
// runtime) is missing.
//
// Also here: the split that makes those programs possible. A mechanism file includes no
// Node-API header (napi.h, node_api.h), directly or through the headers it includes; only
// the glue files listed under "Glue" in native/README.md do. And the README's map names
// every file in native/.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(REPO, 'native');
const TESTS = path.join(REPO, 'test', 'native');

interface Built { dir?: string; tests?: string[]; skip?: string; cached?: boolean }
interface NativeTests {
  build(): Promise<Built>;
  runTest(dir: string, name: string): Promise<{ code: number | null; signal: string | null; output: string }>;
  testNames(): string[];
  needsNode(file: string): boolean;
  missingToolchain(): string | null;
}
const nativeTests = createRequire(__filename)(path.join(TESTS, 'build.cjs')) as NativeTests;

const missing = nativeTests.missingToolchain();
if (missing) console.warn(`native unit tests skipped: ${missing}`);

/** The files native/README.md lists in its "Glue (Node-API)" table (a row may name `a.{h,cc}`). */
function glueFiles(): Set<string> {
  const readme = readFileSync(path.join(NATIVE, 'README.md'), 'utf8');
  const section = readme.split(/^## /m).find((s) => s.startsWith('Glue'));
  if (!section) throw new Error('native/README.md has no "## Glue" section');
  return filesNamed(section);
}

/** Every file named in the first column of a markdown table: `x.cc`, `x.h`, `x.{h,cc}`. */
function filesNamed(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.matchAll(/^\| `([a-z0-9_]+)\.(\{[a-z,]+\}|[a-z]+)`/gm)) {
    const exts = m[2].startsWith('{') ? m[2].slice(1, -1).split(',') : [m[2]];
    for (const e of exts) out.add(`${m[1]}.${e}`);
  }
  return out;
}

describe('native mechanism files are Node-free', () => {
  const files = readdirSync(NATIVE).filter((f) => /\.(h|cc)$/.test(f)).sort();

  it('the README map names every file in native/', () => {
    const mapped = filesNamed(readFileSync(path.join(NATIVE, 'README.md'), 'utf8'));
    expect(files.filter((f) => !mapped.has(f))).toEqual([]);
  });

  it('no mechanism file includes napi.h or node_api.h, directly or through a header', () => {
    const glue = glueFiles();
    expect(glue.size).toBeGreaterThan(3);
    const direct = files.filter((f) => /#include\s*[<"](napi\.h|node_api\.h)[>"]/.test(readFileSync(path.join(NATIVE, f), 'utf8')));
    expect(direct.filter((f) => !glue.has(f))).toEqual([]);
    // loop_wake.cc is libuv on purpose (the environment's loop handles), not Node-API.
    const bound = files.filter((f) => !glue.has(f) && f !== 'loop_wake.cc' && f !== 'loop_wake.h' && nativeTests.needsNode(f));
    expect(bound).toEqual([]);
  });

  it('the include scan sees Node-API through a header (positive control)', () => {
    // modules.h includes napi.h; bufferpool_napi.cc reaches it only through modules.h and js_bytes.h.
    expect(nativeTests.needsNode('bufferpool_napi.cc')).toBe(true);
    expect(nativeTests.needsNode('crc32c.cc')).toBe(false);
  });
});

describe.skipIf(missing !== null)('native unit tests (test/native, RM_DEBUG + ASan + UBSan)', () => {
  let built: Built = {};
  beforeAll(async () => {
    built = await nativeTests.build();
  }, 600_000);

  it('every test program says in its first line what it checks', () => {
    const bad = nativeTests.testNames().filter((t) => !/^\/\/ Description: \S.{20,}$/m.test(readFileSync(path.join(TESTS, `${t}.cc`), 'utf8').split('\n')[0]));
    expect(bad).toEqual([]);
  });

  it.each(nativeTests.testNames())('%s', async (name) => {
    expect(built.dir, 'the native tests were built').toBeTruthy();
    const r = await nativeTests.runTest(built.dir!, name);
    expect({ code: r.code, signal: r.signal }, r.output).toEqual({ code: 0, signal: null });
    expect(r.output).not.toMatch(/FAIL|ERROR: AddressSanitizer|runtime error:/);
  });
});
