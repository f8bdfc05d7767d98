// The bench harness (bench/run.cjs) runs every workload for a fraction of a second with
// minimal points. Only the shape of the JSON (and that md/svg were written) is checked:
// no timing assertions. Runs as root, as non-root (fixed buffers may be refused by
// RLIMIT_MEMLOCK: the harness must still work) and with RINGMASTER_BACKEND=threads.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeDir, tempDir } from '../helpers';

const REPO = path.resolve(__dirname, '..', '..');
const dir = tempDir('rm-bench-smoke-');
const out = path.join(dir, 'out');
const data = path.join(dir, 'data');
afterAll(() => removeDir(dir));

function load(name: string): any {
  return JSON.parse(readFileSync(path.join(out, `${name}.json`), 'utf8'));
}

// pgbench: measured against a throwaway cluster when PostgreSQL is installed, else skipped
// with the install hint; never an error.
function expectPg(r: any): void {
  if (r.skipped) expect(r.skipped).toMatch(/apt-get install postgresql/);
  else expect(r, JSON.stringify(r)).toMatchObject({ commitsPerSec: expect.any(Number), p50us: expect.any(Number), p99us: expect.any(Number), settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' } });
}

function isMeasured(r: any): boolean {
  return r && typeof r.iops === 'number' && typeof r.p50us === 'number' && typeof r.p99us === 'number';
}

describe('bench harness smoke', () => {
  let run: ReturnType<typeof spawnSync>;

  // Two harness runs: every workload but `scale` (as `all` does, with the names spelled
  // out), then `scale` alone (together they took 92 s on the loaded 2-core machine). Each
  // test has its own wall-clock budget: they time the harness's process starts, not IO.
  it('npm run bench -- <every workload> --smoke writes every workload', () => {
    const names = ['cold-reads', 'cached-reads', 'durable-commits', 'handoff', 'topologies', 'tpcb', 'writeback', 'shutdown', 'checkpoint'];
    run = spawnSync(process.execPath, [path.join(REPO, 'bench', 'run.cjs'), ...names, '--smoke', '--duration=100', '--file-size=8', `--out=${out}`, `--data-dir=${data}`], {
      cwd: REPO, encoding: 'utf8', timeout: 180000, env: { ...process.env, BENCH_QUIET: '1' },
    });
    expect(run.error, String(run.stderr)).toBeUndefined();
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    for (const name of names) {
      for (const ext of ['json', 'md', 'svg']) expect(existsSync(path.join(out, `${name}.${ext}`)), `${name}.${ext}`).toBe(true);
      expect(readFileSync(path.join(out, `${name}.svg`), 'utf8').startsWith('<svg')).toBe(true);
      const j = load(name);
      expect(j.name).toBe(name);
      expect(['ok', 'skipped']).toContain(j.status);
      expect(j.machine).toMatchObject({ kernel: expect.any(String), cores: expect.any(Number), node: process.version, fio: expect.any(String) });
      expect(j.config.durationMsPerPoint).toBe(100);
    }
    expect(existsSync(path.join(out, 'summary.md'))).toBe(true);
  // ~60 point processes and a PostgreSQL cluster (tpcb): 85 s under the matrix's load. The
  // bound is spawnSync's own 180 s, not the suite's 60 s default.
  }, 190_000);

  it('npm run bench -- scale --smoke writes its JSON, table and chart', () => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'bench', 'run.cjs'), 'scale', '--smoke', '--duration=100', '--file-size=8', `--out=${out}`, `--data-dir=${data}`], {
      cwd: REPO, encoding: 'utf8', timeout: 180000, env: { ...process.env, BENCH_QUIET: '1' },
    });
    expect(r.error, String(r.stderr)).toBeUndefined();
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    for (const ext of ['json', 'md', 'svg']) expect(existsSync(path.join(out, `scale.${ext}`)), `scale.${ext}`).toBe(true);
    expect(readFileSync(path.join(out, 'scale.svg'), 'utf8').startsWith('<svg')).toBe(true);
    const j = load('scale');
    expect(j.name).toBe('scale');
    expect(j.machine).toMatchObject({ kernel: expect.any(String), cores: expect.any(Number) });
  }, 190_000);  // ~30 process starts and a PostgreSQL initdb: 42 s on the loaded 2-core machine; spawnSync's own bound is 180 s

  it('read workloads: every engine at every point is measured, or an anchor is skipped with the install hint', () => {
    for (const name of ['cold-reads', 'cached-reads']) {
      const j = load(name);
      expect(j.status).toBe('ok');
      expect(j.points.length).toBeGreaterThan(0);
      expect(j.targets.length).toBeGreaterThan(0);
      for (const p of j.points) {
        expect(p).toMatchObject({ bs: expect.any(Number), depth: expect.any(Number), procs: expect.any(Number) });
        for (const e of j.engines) {
          const r = p.results[e.id];
          if (e.id.startsWith('fio') && r.skipped) expect(r.skipped).toMatch(/apt-get install -y fio/);
          else expect(isMeasured(r), `${name} ${e.id}: ${JSON.stringify(r)}`).toBe(true);
        }
        expect(p.results.ringmaster.errors).toBe(0);
        expect(p.results.ringmaster.features.backend).toMatch(/^(io_uring|threads)$/);
        expect(Object.keys(p.ratios).length).toBe(j.engines.length - 1);
      }
    }
  });

  it('handoff: every scenario has samples and percentiles', () => {
    const j = load('handoff');
    expect(j.rows.length).toBe(5);  // four layouts, and the busy one again with B's wakeSliceUs
    expect(j.rows.map((r: { scenario: string }) => r.scenario)).toContain('a-busy-b-slice');
    // The floor: idle (futex, ring), and ring with A busy, with and without B's slice (or skipped without cc).
    if (!j.floor.skipped) expect(Object.keys(j.floor).sort()).toEqual(['futex', 'ring', 'ringBusy', 'ringBusySlice']);
    for (const r of j.rows) {
      expect(r.result.error, JSON.stringify(r.result)).toBeUndefined();
      expect(r.result.samples).toBeGreaterThan(0);
      expect(r.result.failed).toBe(0);
      expect(typeof r.result.handoffP50us).toBe('number');
      expect(typeof r.result.handoffP99us).toBe('number');
    }
    expect(j.targets[0].text).toMatch(/p99/);
  });

  it('topologies: every variant runs (fixed buffers may be refused, never an error)', () => {
    const j = load('topologies');
    expect(j.rows.length).toBe(14);  // 7 variants x cached, cold
    for (const r of j.rows) {
      expect(isMeasured(r.result), `${r.kind} ${r.variant}: ${JSON.stringify(r.result)}`).toBe(true);
      expect(r.result.errors).toBe(0);
      expect(typeof r.result.features.fixedBuffers).toBe('boolean');
    }
  });

  it('durable-commits: ringmaster points measured with fdatasyncs/commit; sqlite and fio anchors measured or skipped with a reason', () => {
    const j = load('durable-commits');
    expect(j.status).toBe('ok');
    expect(j.targets[0].text).toMatch(/5x better-sqlite3/);
    const rmRows = j.rows.filter((r: any) => r.engine === 'ringmaster');
    expect(rmRows.length).toBeGreaterThan(0);
    for (const r of rmRows) {
      expect(r.result.error, JSON.stringify(r.result)).toBeUndefined();
      expect(r.result).toMatchObject({ commits: expect.any(Number), commitsPerSec: expect.any(Number), fdatasyncsPerCommit: expect.any(Number), backend: expect.stringMatching(/^(io_uring|threads)$/) });
      expect(r.result.commits).toBeGreaterThan(0);
      // No --wal-sync or --wal-direct: the library's defaults, as the WAL reports them (O_DIRECT | O_DSYNC where the file system has direct IO).
      expect(r.result.walSync).toBe(r.result.walDirect ? 'dsync' : 'fdatasync');
    }
    expect(j.config.walSync).toBe('library default');
    for (const r of j.rows.filter((x: any) => x.engine !== 'ringmaster')) {
      if (r.result.skipped) expect(r.result.skipped).toMatch(/install/);
      else expect(r.result, JSON.stringify(r.result)).toMatchObject({ commitsPerSec: expect.any(Number) });
    }
  });

  it('durable-commits --wal-sync=fdatasync and --wal-direct=false: every ringmaster point, the threads backend one included, runs with it; a bad value is refused', () => {
    const out2 = path.join(dir, 'out-fdatasync');
    // Not quiet: the harness's progress lines on stderr say which point was running if it fails.
    const r = spawnSync(process.execPath, [path.join(REPO, 'bench', 'run.cjs'), 'durable-commits', '--smoke', '--duration=100', '--wal-sync=fdatasync', `--out=${out2}`, `--data-dir=${data}`], {
      cwd: REPO, encoding: 'utf8', timeout: 120000, env: { ...process.env, BENCH_QUIET: '' },
    });
    expect(r.error, `${r.error}\n${r.stdout}\n${r.stderr}`).toBeUndefined();
    expect(r.status, `signal ${r.signal}\n${r.stdout}\n${r.stderr}`).toBe(0);
    const j = JSON.parse(readFileSync(path.join(out2, 'durable-commits.json'), 'utf8'));
    expect(j.config.walSync).toBe('fdatasync');
    const rmRows = j.rows.filter((x: any) => x.engine.startsWith('ringmaster'));
    expect(rmRows.map((x: any) => x.engine)).toContain('ringmaster threads backend');
    for (const x of rmRows) expect(x.result.walSync, JSON.stringify(x.result)).toBe('fdatasync');
    expect(readFileSync(path.join(out2, 'durable-commits.md'), 'utf8')).toMatch(/walSync fdatasync/);
    // --wal-direct=false: buffered segments (and so the fdatasync chain) at every ringmaster point, as the WAL reports them.
    const out3 = path.join(dir, 'out-buffered');
    const d = spawnSync(process.execPath, [path.join(REPO, 'bench', 'run.cjs'), 'durable-commits', '--smoke', '--duration=100', '--wal-direct=false', `--out=${out3}`, `--data-dir=${data}`], {
      cwd: REPO, encoding: 'utf8', timeout: 120000, env: { ...process.env, BENCH_QUIET: '' },
    });
    expect(d.status, `signal ${d.signal}\n${d.stdout}\n${d.stderr}`).toBe(0);
    const jd = JSON.parse(readFileSync(path.join(out3, 'durable-commits.json'), 'utf8'));
    expect(jd.config.walDirect).toBe(false);
    for (const x of jd.rows.filter((y: any) => y.engine.startsWith('ringmaster'))) expect(x.result, JSON.stringify(x.result)).toMatchObject({ walDirect: false, walSync: 'fdatasync' });
    const bad = spawnSync(process.execPath, [path.join(REPO, 'bench', 'run.cjs'), 'durable-commits', '--wal-sync=sometimes'], { cwd: REPO, encoding: 'utf8', timeout: 30000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--wal-sync must be fdatasync or dsync/);
  }, 250_000);

  // An overdue point must become an error row that says where it stuck, never a harness
  // that waits for ever (a point's own limit is its duration plus a minute).
  it('a point that overruns its limit is stopped and reported with the phase it was in; one whose JS thread is blocked is killed and reported so', async () => {
    const { runPointScript } = require(path.join(REPO, 'bench', 'lib', 'common.cjs'));
    const spec = { kind: 'commits', engine: 'rm', procs: 1, sessions: 1, durationMs: 60000, dataDir: data };
    const r = await runPointScript(path.join(REPO, 'bench', 'tpcb', 'point.cjs'), spec, {}, 3000);
    expect(r.error).toMatch(/^point did not finish within 3 s \(SIGTERM sent\): stopped by the harness in phase '(postmaster start|participants start|run)'/);
    const blocked = path.join(dir, 'blocked-point.cjs');
    writeFileSync(blocked, "process.on('SIGTERM', () => process.exit(1)); for (;;) {}\n");
    const b = await runPointScript(blocked, {}, {}, 1000);
    expect(b.error).toMatch(/did not answer SIGTERM within 5 s \(its JS thread was blocked\): SIGKILLed: no output/);
  }, 30_000);

  it('tpcb: processes and threads measured, the invariant holds in every ringmaster and sqlite point; pgbench measured or skipped with the hint', () => {
    const j = load('tpcb');
    expect(j.status).toBe('ok');
    expect(j.durability).toMatch(/wal\.flush/);
    for (const r of j.rows) {
      if (r.engine === 'PostgreSQL pgbench') { expectPg(r.result); continue; }
      if (r.result.skipped) { expect(r.engine).toMatch(/sqlite/); continue; }
      expect(r.result.error, JSON.stringify(r.result)).toBeUndefined();
      expect(r.result.commits).toBeGreaterThan(0);
      expect(r.result.invariant.ok, JSON.stringify(r.result.invariant)).toBe(true);
    }
    expect(j.rows.some((r: any) => r.engine === 'ringmaster' && r.mode === 'threads')).toBe(true);
  });

  it('checkpoint: both variants ran checkpoints under load; the invariant holds; the skipped variant synced nothing', () => {
    const j = load('checkpoint');
    expect(j.status).toBe('ok');
    expect(j.rows.map((r: any) => r.variant)).toEqual(['data-file syncs', 'syncs skipped (test hook)']);
    for (const r of j.rows) {
      expect(r.result.error, JSON.stringify(r.result)).toBeUndefined();
      expect(r.result.commits).toBeGreaterThan(0);
      expect(r.result.invariant.ok, JSON.stringify(r.result.invariant)).toBe(true);
      expect(r.result.checkpoints.length).toBeGreaterThan(0);
      for (const c of r.result.checkpoints) expect(c).toMatchObject({ ms: expect.any(Number), syncMs: expect.any(Number), skipped: r.variant !== 'data-file syncs' });
      if (r.variant !== 'data-file syncs') for (const c of r.result.checkpoints) expect(c.files).toBe(0);
    }
  });

  it('scale: every part at every P is measured (anchors measured or skipped with the hint), the goals are reported, no PostgreSQL cluster is left behind', () => {
    const j = load('scale');
    expect(j.status).toBe('ok');
    expect(j.procs).toEqual([1, 2]);
    for (const part of ['reads', 'commits', 'tpcb-s1', 'tpcb-high']) {
      const rows = j.rows.filter((r: any) => r.part === part);
      expect(rows.length, part).toBeGreaterThan(0);
      for (const r of rows) {
        const x = r.result;
        if (r.engine === 'pgbench') { expectPg(x); continue; }
        if (x.skipped) { expect(x.skipped, `${part} ${r.engine}`).toMatch(/install/); continue; }
        expect(x.error, `${part} ${r.engine} P=${r.P}: ${JSON.stringify(x)}`).toBeUndefined();
        expect(typeof x.throughput, `${part} ${r.engine} P=${r.P}`).toBe('number');
        if (x.invariant) expect(x.invariant.ok, JSON.stringify(x.invariant)).toBe(true);
      }
    }
    expect(j.highScale).toBeGreaterThanOrEqual(4);  // >= the sessions of the largest point (2 x 2)
    expect(j.targets.map((t: any) => t.key)).toEqual(expect.arrayContaining(['readsScale', 'readsVsNode', 'commitsVsSqlite', 'tpcb-s1-monotonic', 'tpcb-high-vsPg']));
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('ringmaster-pg-'))).toEqual([]);
  });

  it('writeback: both strategies measured on a pool smaller than the data, and the invariant holds', () => {
    const j = load('writeback');
    expect(j.status).toBe('ok');
    expect(j.rows.map((r: any) => r.strategy)).toEqual(['link', 'wait']);
    for (const r of j.rows) {
      expect(r.result.error, JSON.stringify(r.result)).toBeUndefined();
      expect(r.result.commits).toBeGreaterThan(0);
      expect(r.result.invariant.ok, JSON.stringify(r.result.invariant)).toBe(true);
    }
  });

  it('shutdown: both stops measured at each size; with the shutdown checkpoint the next start replays nothing, without it every record', () => {
    const j = load('shutdown');
    expect(j.status).toBe('ok');
    expect(j.rows.length).toBeGreaterThanOrEqual(4);
    for (const r of j.rows) {
      expect(r.stopMs).toBeGreaterThan(0);
      expect(r.replayed).toBe(r.checkpoint ? 0 : r.dirty);
      if (r.checkpoint) expect(r.ok).toBe(true);
    }
  });
});
