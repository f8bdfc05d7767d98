// Registered (fixed) buffers are charged to RLIMIT_MEMLOCK: 8 MiB by default for an
// unprivileged user, while root (CAP_IPC_LOCK) is exempt. When the arena does not fit,
// the postmaster must say so in pm.features and IO must still work (non-fixed path).
//
// The 64 MiB case runs test/fixtures/nonroot-memlock.cjs in a child process with
// RLIMIT_MEMLOCK = 8 MiB: as `nobody` (setpriv) when the suite runs as root, else as the
// current user.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { backend, removeDir, rm, tempDir } from '../helpers';

const MiB = 1 << 20;
const MEMLOCK = 8 * MiB;
const REPO = path.resolve(__dirname, '..', '..');
const FIXTURE_REL = path.join('test', 'fixtures', 'nonroot-memlock.cjs');
const isRoot = process.getuid?.() === 0;

interface FixtureOutput {
  features?: { fixedBuffers: boolean; fixedBuffersReason: string; backend: 'io_uring' | 'threads'; backendReason: string };
  uid?: number;
  memlock?: { soft: string; hard: string };
  result?: { ok: boolean; arena: unknown; private: unknown };
  error?: { message: string; code?: string; stack?: string };
}

/** Soft and hard RLIMIT_MEMLOCK of this process in bytes (Infinity for unlimited). */
function memlockLimits(): { soft: number; hard: number } {
  const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max locked memory')) ?? '';
  const [soft, hard] = line.trim().split(/\s{2,}/).slice(1, 3).map((v) => (v === 'unlimited' ? Infinity : Number(v)));
  return { soft, hard };
}

function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000, ...options });
  if (r.error) return { status: null, out: String(r.error.message) };
  return { status: r.status, out: `${r.stdout}${r.stderr}`.trim() };
}

function have(tool: string): boolean {
  return run(tool, ['--version']).status === 0;
}

/**
 * How the fixture gets started: the command prefix (prlimit [+ setpriv]), the package
 * root the fixture is loaded from, and a writable scratch dir. `skip` is set when the
 * environment cannot run it (with the reason).
 */
interface Runner {
  prefix: string[];
  pkgRoot: string;
  scratch: string;
  env: NodeJS.ProcessEnv;
  who: string;
  skip?: string;
}

let scratchRoot: string | undefined;

function prepareRunner(): Runner {
  scratchRoot = tempDir('rm-memlock-');
  const base: Runner = { prefix: [], pkgRoot: REPO, scratch: scratchRoot, env: { ...process.env }, who: `uid ${process.getuid?.()}` };
  if (!isRoot) {
    // Already unprivileged: lower (never raise) our own limit to 8 MiB for the child.
    const { hard } = memlockLimits();
    const limit = Math.min(MEMLOCK, hard);
    if (have('prlimit')) base.prefix = ['prlimit', `--memlock=${limit}:${limit}`];
    else if (memlockLimits().soft > MEMLOCK) base.skip = `prlimit (util-linux) is missing and RLIMIT_MEMLOCK is ${memlockLimits().soft} bytes, above 8 MiB`;
    return base;
  }
  for (const tool of ['setpriv', 'prlimit']) {
    if (!have(tool)) return { ...base, skip: `running as root but '${tool}' (util-linux) is not installed: cannot drop to an unprivileged user` };
  }
  const uid = run('id', ['-u', 'nobody']);
  const gid = run('id', ['-g', 'nobody']);
  if (uid.status !== 0 || gid.status !== 0) return { ...base, skip: `running as root but there is no 'nobody' user (${uid.out})` };
  const ids = { uid: Number(uid.out), gid: Number(gid.out) };
  const setpriv = ['setpriv', `--reuid=${ids.uid}`, `--regid=${ids.gid}`, '--clear-groups', '--inh-caps=-all'];
  const asNobody = (...cmd: string[]) => run(setpriv[0], [...setpriv.slice(1), ...cmd]);
  const home = path.join(scratchRoot, 'home');
  mkdirSync(home);
  chmodSync(scratchRoot, 0o755);
  const chown = run('chown', ['-R', `${ids.uid}:${ids.gid}`, scratchRoot]);
  if (chown.status !== 0) return { ...base, skip: `cannot chown the scratch dir to nobody: ${chown.out}` };
  const canWrite = asNobody('test', '-w', scratchRoot);
  if (canWrite.status !== 0) return { ...base, skip: `nobody cannot reach the scratch dir ${scratchRoot} (a parent of the temp dir is not searchable?): ${canWrite.out || `exit ${canWrite.status}`}` };
  const runner: Runner = {
    prefix: ['prlimit', `--memlock=${MEMLOCK}:${MEMLOCK}`, ...setpriv, 'env', `HOME=${home}`],
    pkgRoot: REPO,
    scratch: scratchRoot,
    env: { ...process.env },
    who: `nobody (uid ${ids.uid}, gid ${ids.gid})`,
  };
  // What the fixture loads: package.json, dist/, the addon, and the fixture itself.
  const needed = ['package.json', path.join('dist', 'core', 'index.js'), path.join('build', 'Release', 'ringmaster.node'), FIXTURE_REL];
  const readable = (root: string) => asNobody('sh', '-c', 'for f; do test -r "$f" || { echo "not readable: $f"; exit 1; }; done', 'sh', ...needed.map((f) => path.join(root, f)));
  let probe = readable(REPO);
  if (probe.status === 0) return runner;
  // The checkout is not readable by nobody (e.g. under /root): run a minimal copy instead.
  const copy = path.join(scratchRoot, 'pkg');
  cpSync(path.join(REPO, 'dist'), path.join(copy, 'dist'), { recursive: true });
  mkdirSync(path.join(copy, 'build', 'Release'), { recursive: true });
  mkdirSync(path.join(copy, 'test', 'fixtures'), { recursive: true });
  for (const f of ['package.json', path.join('build', 'Release', 'ringmaster.node'), FIXTURE_REL]) copyFileSync(path.join(REPO, f), path.join(copy, f));
  run('chown', ['-R', `${ids.uid}:${ids.gid}`, copy]);
  probe = readable(copy);
  if (probe.status !== 0) return { ...runner, skip: `nobody cannot read the package (${REPO}: ${probe.out}), not even a copy in ${copy}` };
  console.warn(`memlock.test: ${REPO} is not readable by nobody; running the fixture from a copy in ${copy}`);
  return { ...runner, pkgRoot: copy };
}

let counter = 0;
function runFixture(r: Runner, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; lines: FixtureOutput[]; raw: string }> {
  const dataDir = path.join(r.scratch, `data-${++counter}`);
  const args = [...r.prefix, process.execPath, path.join(r.pkgRoot, FIXTURE_REL), dataDir];
  return new Promise((resolve) => {
    execFile(args[0], args.slice(1), { env: { ...r.env, ...env }, timeout: 45000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const lines: FixtureOutput[] = [];
      for (const l of stdout.split('\n')) {
        if (!l.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(l));
        } catch {
          /* not ours */
        }
      }
      const code = err ? ((err as { code?: unknown }).code as number | null) ?? null : 0;
      resolve({ code: typeof code === 'number' ? code : null, lines, raw: `${args.join(' ')}\n--- stdout\n${stdout}--- stderr\n${stderr}` });
    });
  });
}

let runner: Runner;
beforeAll(() => {
  runner = prepareRunner();
  if (runner.skip) console.warn(`memlock.test: skipping the RLIMIT_MEMLOCK fixture: ${runner.skip}`);
});
afterAll(() => {
  if (scratchRoot) removeDir(scratchRoot);
});

function expectRoundTrip(out: { code: number | null; lines: FixtureOutput[]; raw: string }): FixtureOutput['features'] {
  const features = out.lines.find((l) => l.features);
  const result = out.lines.find((l) => l.result);
  const error = out.lines.find((l) => l.error);
  expect(error?.error, out.raw).toBeUndefined();
  expect(out.code, out.raw).toBe(0);
  expect(features?.features, out.raw).toBeDefined();
  expect(result?.result, out.raw).toMatchObject({ ok: true });
  // The limit really was 8 MiB in the child, and it was not root.
  if (runner.prefix.includes('setpriv')) expect(features!.uid, out.raw).not.toBe(0);
  if (runner.prefix.includes('prlimit')) expect(Number(features!.memlock!.soft), out.raw).toBeLessThanOrEqual(MEMLOCK);
  return features!.features;
}

describe('RLIMIT_MEMLOCK and fixed buffers', () => {
  it('a 64 MiB arena under an 8 MiB memlock limit: no fixed buffers, says why, IO still round-trips', async (ctx) => {
    if (runner.skip) ctx.skip(runner.skip);
    const out = await runFixture(runner);
    const f = expectRoundTrip(out)!;
    if (backend === 'threads') {
      // RINGMASTER_BACKEND=threads in the environment (the matrix's fallback leg).
      expect(f.backend).toBe('threads');
      expect(f.fixedBuffers).toBe(false);
      return;
    }
    if (f.backend !== 'io_uring') {
      ctx.skip(`io_uring is not available to ${runner.who} (${f.backendReason}); only the threads fallback could be checked (it round-tripped)`);
    }
    expect(f.fixedBuffers, out.raw).toBe(false);
    expect(f.fixedBuffersReason, out.raw).toMatch(/RLIMIT_MEMLOCK/);
    expect(f.fixedBuffersReason).toMatch(/65536 KiB/);
  });

  it('the same under RINGMASTER_BACKEND=threads: threads backend, IO round-trips', async (ctx) => {
    if (runner.skip) ctx.skip(runner.skip);
    const out = await runFixture(runner, { RINGMASTER_BACKEND: 'threads' });
    const f = expectRoundTrip(out)!;
    expect(f.backend).toBe('threads');
    expect(f.fixedBuffers).toBe(false);
    expect(f.fixedBuffersReason).toBe('threads backend');
  });

  describe('in this process, a 1 MiB arena', () => {
    let dir: string;
    beforeAll(() => {
      dir = tempDir('rm-memlock-small-');
    });
    afterAll(() => removeDir(dir));

    async function roundTrip(db: import('../../core/index').Postmaster): Promise<void> {
      const f = await db.files.open('small.dat', { create: true, truncate: true });
      const s = db.allocate(64 * 1024);
      for (let i = 0; i < s.length; i++) s.bytes[i] = (i * 7) & 0xff;
      expect(await db.write(f, 0, s)).toBe(s.length);
      const back = db.allocate(64 * 1024);
      expect(await db.read(f, 0, back)).toBe(s.length);
      expect(Buffer.compare(back.bytes, s.bytes)).toBe(0);
      await f.close();
    }

    it('fits under 8 MiB: fixed buffers on with io_uring (root or not), off with threads', async () => {
      const db = await rm.Postmaster.start({ dataDir: path.join(dir, 'auto'), backend, arenaSize: MiB });
      try {
        const f = db.features;
        if (backend === 'threads' || f.backend === 'threads') {
          if (backend === 'threads') expect(f.backend).toBe('threads');
          expect(f.fixedBuffers).toBe(false);
          expect(f.fixedBuffersReason).toBe('threads backend');
        } else {
          // Only an unprivileged process with a limit far below the default could refuse 1 MiB.
          const { soft } = memlockLimits();
          if (!isRoot && soft < 2 * MiB) {
            expect(f.fixedBuffers).toBe(false);
            expect(f.fixedBuffersReason).toMatch(/RLIMIT_MEMLOCK/);
          } else {
            expect(f.fixedBuffers, f.fixedBuffersReason).toBe(true);
            expect(f.fixedBuffersReason).toBe('');
          }
        }
        await roundTrip(db);
      } finally {
        await db.stop();
      }
    });

    it("backend: 'threads' never has fixed buffers", async () => {
      const db = await rm.Postmaster.start({ dataDir: path.join(dir, 'threads'), backend: 'threads', arenaSize: MiB });
      try {
        expect(db.features.backend).toBe('threads');
        expect(db.features.fixedBuffers).toBe(false);
        expect(db.features.fixedBuffersReason).toBe('threads backend');
        await roundTrip(db);
      } finally {
        await db.stop();
      }
    });
  });
});
