// The default ring count (core/ring-defaults.ts): rings from the CPU count, capped at 16,
// at maxProcesses and by RLIMIT_MEMLOCK for users without CAP_IPC_LOCK; the ring memory
// estimate it relies on matches what the kernel charges; several rings share one
// fixed-buffer registration (IORING_REGISTER_CLONE_BUFFERS) where the kernel has it.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync } from 'node:fs';
import { release } from 'node:os';
import path from 'node:path';
import { backend, removeDir, startPm, tempDir, WORKER, Worker } from '../helpers';

const REPO = path.resolve(__dirname, '..', '..');
const FIXTURE = path.join(REPO, 'test', 'fixtures', 'rings-memlock.cjs');
const { defaultRings, ringMemoryBytes, MAX_DEFAULT_RINGS } = require('../../dist/core/ring-defaults.js');
const MiB = 1 << 20;
const isRoot = process.getuid?.() === 0;
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) removeDir(d); });

function have(tool: string): boolean {
  return spawnSync(tool, ['--version']).status === 0;
}

// io_uring charges RLIMIT_MEMLOCK per user, summed over every ring of that user. A uid of
// its own (no passwd entry needed) keeps other processes' rings (the rest of the suite, as
// nobody) out of the measurement. Root only; the package must be readable by that uid.
const ownUid = 40000 + Math.floor(Math.random() * 20000);
function runAs(memlock: number, options: Record<string, unknown>): any {
  const d = tempDir('rm-ringmem-');
  dirs.push(d);
  chmodSync(d, 0o777);
  mkdirSync(path.join(d, 'data'), { mode: 0o777 });
  chmodSync(path.join(d, 'data'), 0o777);
  const r = spawnSync('prlimit', [`--memlock=${memlock}:${memlock}`, 'setpriv', `--reuid=${ownUid}`, `--regid=${ownUid}`, '--clear-groups', '--inh-caps=-all',
    'env', `HOME=${d}`, process.execPath, FIXTURE, path.join(d, 'data'), JSON.stringify({ backend: 'io_uring', ...options })], { encoding: 'utf8', timeout: 60000 });
  const line = `${r.stdout}`.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`fixture printed nothing: ${r.status} ${r.stderr}`);
  return JSON.parse(line);
}
function canRunAsOwnUid(): string | null {
  if (!isRoot) return 'needs root (setpriv to a uid of its own)';
  if (backend === 'threads') return 'io_uring only';
  if (!have('prlimit') || !have('setpriv')) return 'prlimit/setpriv (util-linux) missing';
  const r = spawnSync('setpriv', [`--reuid=${ownUid}`, `--regid=${ownUid}`, '--clear-groups', 'test', '-r', path.join(REPO, 'dist', 'core', 'index.js')]);
  if (r.status !== 0) return `the checkout is not readable by uid ${ownUid}`;
  return null;
}

describe('default ring count', () => {
  it('follows the CPU count, capped at 16 and at maxProcesses, and keeps ring memory within a third of RLIMIT_MEMLOCK', () => {
    expect(defaultRings(64, 256, 2, Infinity)).toBe(2);
    expect(defaultRings(64, 256, 16, Infinity)).toBe(16);
    expect(defaultRings(64, 256, 96, Infinity)).toBe(MAX_DEFAULT_RINGS);
    expect(defaultRings(4, 256, 16, Infinity)).toBe(4);
    expect(defaultRings(64, 4096, 64, Infinity)).toBe(16);  // rings x ringEntries <= 65536
    expect(defaultRings(64, 256, 1, Infinity)).toBe(1);
    expect(defaultRings(64, 256, 16, 8 * MiB)).toBe(16);  // 2.3 MiB of rings: fits a third of the 8 MiB default
    expect(defaultRings(64, 256, 16, 64 * 1024)).toBe(1);  // the old 64 KiB default: one ring
    for (const budget of [256 * 1024, 2 * MiB, 8 * MiB]) {
      for (const entries of [256, 1024, 4096]) {
        const r = defaultRings(64, entries, 32, budget);
        if (r > 1) expect(ringMemoryBytes(r, entries)).toBeLessThanOrEqual(budget / 3);
        if (r < Math.min(16, 65536 / entries)) expect(ringMemoryBytes(r + 1, entries)).toBeGreaterThan(budget / 3);
      }
    }
  });

  it('Postmaster.start without `rings` uses it, and spreads process slots over the rings', async () => {
    const d = tempDir('rm-ringdef-');
    dirs.push(d);
    const pm = await startPm(d, { maxProcesses: 8 });
    try {
      const want = defaultRings(8, 256);
      expect(pm.features.rings).toBe(want);
      const w = new Worker(pm.fork(WORKER, []));
      await w.ready;
      await w.call('attach');
      const info = await w.call('info');
      // The threads backend maps no rings (its drain is segment-wide): every slot's home is 0.
      expect(info.homeRing).toBe(pm.features.backend === 'threads' ? 0 : info.slot % want);
      await w.call('close');
      await w.call('exit');
    } finally {
      await pm.stop();
    }
  });

  it('the ring memory estimate is what the kernel charges to RLIMIT_MEMLOCK (a user of its own)', (ctx) => {
    const why = canRunAsOwnUid();
    if (why) ctx.skip(why);
    for (const rings of [2, 8, 16]) {
      const need = ringMemoryBytes(rings, 256);
      // Room for the estimate (plus the probe ring, whose charge the kernel may release late).
      const ok = runAs(need + 64 * 1024, { rings, fixedBuffers: false });
      expect(ok.error, JSON.stringify(ok)).toBeUndefined();
      expect(ok.features).toMatchObject({ backend: 'io_uring', rings });
      const short = runAs(Math.floor(need / 2), { rings, fixedBuffers: false });
      expect(short.error?.code, JSON.stringify(short)).toBe('ENOMEM');
    }
  });

  it('several rings share one fixed-buffer registration: 4 rings and a 3 MiB arena fit an 8 MiB limit (Linux 6.12+)', (ctx) => {
    const why = canRunAsOwnUid();
    if (why) ctx.skip(why);
    const [maj, min] = release().split('.').map(Number);
    const clone = maj > 6 || (maj === 6 && min >= 12);
    const r = runAs(8 * MiB, { rings: 4, arenaSize: 3 * MiB });
    expect(r.error, JSON.stringify(r)).toBeUndefined();
    expect(r.features.rings).toBe(4);
    if (clone) {
      expect(r.features.fixedBuffers, JSON.stringify(r)).toBe(true);
      expect(r.fixedBuffersCloned).toBe(true);
    } else {
      expect(r.features.fixedBuffers).toBe(false);  // 4 x 3 MiB registered separately
      expect(r.features.fixedBuffersReason).toMatch(/RLIMIT_MEMLOCK/);
    }
    // The default ring count under the same limit, for this uid.
    const dflt = runAs(8 * MiB, { arenaSize: 3 * MiB });
    expect(dflt.features.rings).toBe(dflt.expectedRings);
    expect(dflt.ringMemory).toBeLessThanOrEqual(2 * MiB);
  });
});
