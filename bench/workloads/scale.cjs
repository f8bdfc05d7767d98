'use strict';
// Workload: scaling with processes. For P = 1, 2, 4, 8, 16 participants:
//  - cached 4 KiB random reads, QD 16 per process: ringmaster with its default
//    configuration and with one ring per process (per-process topology, the best measured),
//    Node fs (threadpool, and UV_USE_IO_URING=1), fio io_uring with numjobs=P;
//  - durable commits: P processes x 32 sessions (append + flush per commit) vs
//    better-sqlite3 (WAL, synchronous=FULL) with P processes;
//  - TPC-B-like: P workers x 16 sessions at scale 1 and at a scale >= the sessions of the
//    largest point (pgbench's advice), vs better-sqlite3 with P processes and, when
//    PostgreSQL is installed, pgbench -b tpcb-like with the same number of sessions.
// Every engine runs once per round at each point, the order rotated each round (--repeat);
// the tables show the median round and the JSON keeps them all.
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');
const { runPoint, runFio, ratio, round, mdTable, svgLines, svgStack, fmt } = require('../lib/common.cjs');
const { runTpcbPoint, sqliteAvailable } = require('./durable.cjs');
const { PgCluster, pgUnavailable } = require('../lib/pg.cjs');

// PostgreSQL's shared_buffers in the pgbench anchor; ringmaster's pool gets the same 256 MiB
// (32,768 pages of 8 KiB, bench/tpcb/point.cjs) or the whole data set when that is smaller.
const PG_SHARED_BUFFERS = '256MB';

const READ_ENGINES = [
  { id: 'rm-default', label: 'ringmaster (defaults)', kind: 'rm', rm: {} },
  { id: 'rm-per-process', label: 'ringmaster (rings = P, per-process)', kind: 'rm', rm: (P) => ({ rings: P, topology: 'per-process' }) },
  { id: 'node-fs', label: 'Node fs (threadpool)', kind: 'node', env: { UV_USE_IO_URING: '0' } },
  { id: 'node-uv-io_uring', label: 'Node fs UV_USE_IO_URING=1', kind: 'node', env: { UV_USE_IO_URING: '1' } },
  { id: 'fio-io_uring', label: 'fio io_uring (numjobs = P)', kind: 'fio' },
];

/** The round with the median throughput (its latencies go with it), all rounds' throughput kept. */
function pick(samples, key) {
  const ok = samples.filter((s) => typeof s[key] === 'number');
  if (!ok.length) return samples[0];
  const sorted = [...ok].sort((a, b) => a[key] - b[key]);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], rounds: samples.map((s) => (typeof s[key] === 'number' ? s[key] : s.error || s.skipped)) };
}

function parseList(v, def) {
  if (!v) return def;
  return String(v).split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

module.exports = {
  name: 'scale',
  title: 'Scaling with processes: cached reads, durable commits and TPC-B at P = 1..16',
  async run(ctx) {
    const smoke = ctx.smoke;
    const PS = parseList(ctx.procs, smoke ? [1, 2] : [1, 2, 4, 8, 16]);
    const parts = new Set(String(ctx.parts || 'reads,commits,tpcb').split(','));
    const readMs = ctx.durationMs;
    const txMs = smoke ? Math.min(ctx.durationMs, 300) : Math.max(ctx.durationMs, 3000);
    // Warm-up before each measured point, growing with P: on few cores every process needs
    // its share of CPU for its JIT first (TPC-B at 16 workers on 2 cores: 4.2 K tps and 306 µs
    // of CPU per transaction after 1 s of warm-up, 13.9 K and 85 µs after 4 s).
    // Warm-up before each measured window. On few cores every process's JIT needs its share
    // of CPU first; TPC-B's engine is the most code, and with 5 s at P = 16 a third of the
    // measured CPU was still V8's optimising compiler (perf record -D), against 6% at P = 4
    // and a flat CPU per transaction once warmed for 8 s or more.
    const warmFor = (P) => (smoke ? 0 : 1000 + 250 * P);
    // --tpcb-warmup=<ms> replaces it for every point: on 2 cores 16 processes were still
    // compiling after 10 s (7-9 µs of the CPU per transaction in V8's compiler threads even
    // after 40 s, 22-44 µs after 10 s; bench/results/tpcb-scale-s21/), so a comparison of
    // P = 2 with P = 16 there needs 40 s to measure the library rather than the JIT.
    const warmTpcb = (P) => (smoke ? 0 : ctx.tpcbWarmupMs ?? 2000 + 500 * P);
    const S_COMMITS = smoke ? 2 : 32;
    const S_TPCB = smoke ? 2 : 16;
    const maxP = Math.max(...PS);
    const highScale = ctx.scaleHigh || maxP * S_TPCB;
    const scales = [1, highScale].filter((v, i, a) => a.indexOf(v) === i);
    const sqliteSkip = sqliteAvailable();
    const pgSkip = pgUnavailable();
    const rows = [];
    const templateDir = path.join(ctx.dataDir, `scale-templates-${process.pid}`);
    let k = 0;
    const progress = (m) => ctx.progress(`scale [${++k}] ${m}`);
    const rounds = ctx.repeat;

    if (parts.has('reads')) {
      ctx.warm();
      for (const P of PS) {
        const samples = Object.fromEntries(READ_ENGINES.map((e) => [e.id, []]));
        for (let r = 0; r < rounds; r++) {
          for (let j = 0; j < READ_ENGINES.length; j++) {
            const e = READ_ENGINES[(j + r) % READ_ENGINES.length];
            progress(`cached reads P=${P} ${e.id}${rounds > 1 ? ` round ${r + 1}/${rounds}` : ''}`);
            const base = { file: ctx.file, dataDir: ctx.dataDir, fileSize: ctx.fileSize, bs: 4096, depth: 16, procs: P, direct: false, durationMs: readMs, warmupMs: warmFor(P) };
            const load1 = ctx.load();
            let res;
            if (e.kind === 'rm') res = await runPoint({ ...base, engine: 'ringmaster', rm: typeof e.rm === 'function' ? e.rm(P) : e.rm });
            else if (e.kind === 'node') res = await runPoint({ ...base, engine: 'node' }, e.env);
            else res = await runFio({ ...base, engine: 'io_uring', fioExtra: [`--ramp_time=${base.warmupMs}ms`] });
            samples[e.id].push({ ...res, load1 });
          }
        }
        for (const e of READ_ENGINES) {
          const x = pick(samples[e.id], 'iops');
          rows.push({ part: 'reads', engine: e.id, label: e.label, P, result: { ...x, throughput: x.iops } });
        }
      }
    }

    if (parts.has('commits')) {
      for (const P of PS) {
        const base = { kind: 'commits', durationMs: txMs, warmupMs: warmFor(P), dataDir: ctx.dataDir };
        const rm = [];
        const sq = [];
        for (let r = 0; r < rounds; r++) {
          const order = r % 2 ? ['sqlite', 'rm'] : ['rm', 'sqlite'];
          for (const which of order) {
            if (which === 'rm') {
              progress(`durable commits P=${P} x ${S_COMMITS} ringmaster`);
              rm.push(await runTpcbPoint({ ...base, ...(ctx.walSync ? { walSync: ctx.walSync } : {}), ...(ctx.walDirect !== undefined ? { walDirect: ctx.walDirect } : {}), engine: 'rm', procs: P, sessions: S_COMMITS }));
            } else {
              progress(`durable commits P=${P} better-sqlite3`);
              sq.push(sqliteSkip ? { skipped: sqliteSkip } : await runTpcbPoint({ ...base, engine: 'sqlite', procs: P, synchronous: 'FULL' }));
            }
          }
        }
        const a = pick(rm, 'commitsPerSec');
        const b = pick(sq, 'commitsPerSec');
        rows.push({ part: 'commits', engine: 'ringmaster', label: `ringmaster (P x ${S_COMMITS} sessions)`, P, S: S_COMMITS, result: { ...a, throughput: a.commitsPerSec } });
        rows.push({ part: 'commits', engine: 'sqlite', label: 'better-sqlite3 WAL FULL (P processes)', P, S: 1, result: { ...b, throughput: b.commitsPerSec } });
      }
    }

    if (parts.has('tpcb')) {
      let pg = null;
      let pgError = pgSkip;
      if (!pgSkip) {
        try {
          pg = new PgCluster({ maxConnections: maxP * S_TPCB + 10, sharedBuffers: PG_SHARED_BUFFERS });
          progress('PostgreSQL: initdb + start (throwaway cluster)');
          pg.start();
        } catch (e) {
          pgError = `PostgreSQL could not be started: ${e.message}`;
          if (pg) pg.stopSync();
          pg = null;
        }
      }
      try {
        for (const scale of scales) {
          const part = scale === 1 ? 'tpcb-s1' : 'tpcb-high';
          if (pg) {
            try {
              progress(`PostgreSQL: pgbench -i -s ${scale}`);
              await pg.init(scale);
            } catch (e) {
              pgError = e.message;
              pg.stopSync();
              pg = null;
            }
          }
          const g = smoke ? { scale, accounts: 2000 * scale } : { scale };
          for (const P of PS) {
            // The pool holds the history the whole run appends (warm-up included; 30 K tps at
            // most here): sized for 100 K rows, a 40 s warm-up outgrew it and the window
            // measured evictions (9 µs per transaction of clock sweep at P = 16).
            const historyRows = smoke ? 4000 : Math.max(100000, Math.ceil(30 * (warmTpcb(P) + txMs)));
            const base = { kind: 'tpcb', durationMs: txMs, warmupMs: warmTpcb(P), dataDir: ctx.dataDir, g, historyRows, templateDir };
            const s = { rm: [], sqlite: [], pg: [] };
            for (let r = 0; r < rounds; r++) {
              const order = ['rm', 'sqlite', 'pg'];
              for (let j = 0; j < order.length; j++) {
                const which = order[(j + r) % order.length];
                if (which === 'rm') {
                  progress(`TPC-B scale ${scale} P=${P} x ${S_TPCB} ringmaster`);
                  s.rm.push(await runTpcbPoint({ ...base, engine: 'rm', procs: P, sessions: S_TPCB, mode: 'fork' }));
                } else if (which === 'sqlite') {
                  progress(`TPC-B scale ${scale} P=${P} better-sqlite3`);
                  s.sqlite.push(sqliteSkip ? { skipped: sqliteSkip } : await runTpcbPoint({ ...base, engine: 'sqlite', procs: P, synchronous: 'FULL' }));
                } else {
                  progress(`TPC-B scale ${scale} P=${P} pgbench -c ${P * S_TPCB}`);
                  s.pg.push(pg ? await pg.run({ clients: P * S_TPCB, threads: P, durationMs: txMs, warmupMs: warmTpcb(P) }) : { skipped: pgError });
                }
              }
            }
            const a = pick(s.rm, 'commitsPerSec');
            const b = pick(s.sqlite, 'commitsPerSec');
            const c = pick(s.pg, 'commitsPerSec');
            rows.push({ part, scale, engine: 'ringmaster', label: `ringmaster (P workers x ${S_TPCB} sessions)`, P, S: S_TPCB, result: { ...a, throughput: a.commitsPerSec } });
            rows.push({ part, scale, engine: 'sqlite', label: 'better-sqlite3 WAL FULL (P processes)', P, S: 1, result: { ...b, throughput: b.commitsPerSec } });
            rows.push({ part, scale, engine: 'pgbench', label: `PostgreSQL pgbench (P x ${S_TPCB} clients)`, P, S: S_TPCB, result: { ...c, throughput: c.commitsPerSec } });
          }
        }
      } finally {
        if (pg) pg.stopSync();
        fs.rmSync(templateDir, { recursive: true, force: true });
      }
    }

    return {
      procs: PS, parts: [...parts], durations: { readMs, txMs, warmupMs: PS.map(warmFor), tpcbWarmupMs: PS.map(warmTpcb) }, sessions: { commits: S_COMMITS, tpcb: S_TPCB }, scales, highScale, walSync: ctx.walSync || 'library default',
      cpus: os.availableParallelism(), rows, targets: targets(rows, PS, S_COMMITS),
      // What each engine is given to cache pages in (both also have the OS page cache below).
      pgSharedBuffers: parts.has('tpcb') ? PG_SHARED_BUFFERS : undefined,
      durability: 'ringmaster: wal.flush(commit LSN) (group commit; write -> fdatasync, or one O_DSYNC write with walSync dsync: the commits part honours --wal-sync) before a commit is acknowledged; better-sqlite3: journal_mode=WAL, synchronous=FULL, BEGIN IMMEDIATE; PostgreSQL: fsync=on, synchronous_commit=on, full_page_writes=on (wal_sync_method fdatasync)',
    };
  },
  render(res) {
    const PS = res.procs;
    const byPart = (part) => res.rows.filter((r) => r.part === part);
    const at = (part, engine, P) => res.rows.find((r) => r.part === part && r.engine === engine && r.P === P);
    const cell = (x) => (x.error ? `error: ${String(x.error).slice(0, 60)}` : x.skipped ? 'skipped' : fmt(x.throughput));
    const sections = [];
    const charts = [];
    const table = (part, title, unit) => {
      const rows = byPart(part);
      if (!rows.length) return;
      const engines = [...new Map(rows.map((r) => [r.engine, r.label])).entries()];
      const cpuOf = (x) => x.cpuPerOpUs ?? x.cpuPerCommitUs;
      const withCpu = engines.filter(([e]) => PS.some((P) => typeof cpuOf(at(part, e, P).result) === 'number'));
      const headers = ['P', ...engines.map(([, l]) => `${l} ${unit}`), ...engines.map(([, l]) => `${l} p50 / p99 µs`), ...withCpu.map(([, l]) => `${l} CPU µs/op`)];
      const body = PS.map((P) => [P, ...engines.map(([e]) => cell(at(part, e, P).result)), ...engines.map(([e]) => {
        const x = at(part, e, P).result;
        return x && typeof x.p50us === 'number' ? `${fmt(x.p50us)} / ${fmt(x.p99us)}` : '–';
      }), ...withCpu.map(([e]) => fmt(cpuOf(at(part, e, P).result)))]);
      sections.push(`### ${title}\n\n${mdTable(headers, body)}`);
      const pool = rows.find((r) => r.engine === 'ringmaster' && r.result && r.result.poolPages);
      if (part.startsWith('tpcb') && pool) {
        const x = pool.result;
        const mib = (pages) => Math.round((pages * 8192) / 1048576);
        sections.push(`Page cache of each engine: ringmaster's buffer pool ${fmt(x.poolPages)} pages x 8 KiB = ${mib(x.poolPages)} MiB for ${fmt(x.dataPages)} pages of data (${mib(x.dataPages)} MiB)${x.bgWriter ? `, with the pool's background writer (every ${x.bgWriter.intervalMs} ms, at most ${x.bgWriter.maxPages} pages)` : ''}; PostgreSQL shared_buffers=${res.pgSharedBuffers || '256MB'}; both read through the OS page cache; better-sqlite3 its default page cache per connection.`);
      }
      const skipped = engines.map(([e]) => at(part, e, PS[0]).result).filter((x) => x.skipped);
      for (const x of skipped) sections.push(`(skipped: ${x.skipped})`);
      const xs = PS.map((p) => `P=${p}`);
      charts.push(svgLines({ title: `${title}: ${unit}`, xLabel: 'processes (P)', yLabel: unit, xs, series: engines.map(([e, l]) => ({ name: l, values: PS.map((P) => at(part, e, P).result.throughput || null) })), log: true }));
      charts.push(svgLines({ title: `${title}: p99 latency`, xLabel: 'processes (P)', yLabel: 'p99 µs', xs, series: engines.map(([e, l]) => ({ name: l, values: PS.map((P) => at(part, e, P).result.p99us || null) })), log: true }));
    };
    table('reads', 'Cached 4 KiB random reads, QD 16 per process', 'reads/s');
    table('commits', `Durable commits (${res.sessions.commits} sessions per ringmaster process, wal.walSync ${res.walSync || 'library default'})`, 'commits/s');
    table('tpcb-s1', `TPC-B-like, scale 1 (${res.sessions.tpcb} sessions per worker)`, 'tps');
    table('tpcb-high', `TPC-B-like, scale ${res.highScale} (>= every point's sessions)`, 'tps');
    const t = res.targets.map((x) => `- ${x.text}: **${x.status}**`).join('\n');
    const md = `${res.cpus} CPUs. "CPU µs/op": CPU time of every participating process (all threads) in the measured window, per op: on C cores no engine can exceed C / (CPU per op). Points: P = ${PS.join(', ')}; reads ${res.durations.readMs} ms, commits and TPC-B ${res.durations.txMs} ms, each after a warm-up of the same load (${[].concat(res.durations.warmupMs).join(', ')} ms for P = ${PS.join(', ')}; TPC-B ${[].concat(res.durations.tpcbWarmupMs || res.durations.warmupMs).join(', ')} ms: on few cores every process's JIT needs its share of CPU first). Durability: ${res.durability}.\n\n${sections.join('\n\n')}\n\n**Goals**\n\n${t}`;
    return { md, svg: charts.length ? svgStack(charts) : '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">nothing measured</text></svg>' };
  },
};

function targets(rows, PS, S_COMMITS) {
  const at = (part, engine, P) => rows.find((r) => r.part === part && r.engine === engine && r.P === P);
  const tp = (part, engine, P) => { const r = at(part, engine, P); return r && typeof r.result.throughput === 'number' ? r.result.throughput : null; };
  const top = Math.max(...PS);
  const lo = Math.min(...PS);
  const out = [];
  const st = (ok, v) => (v === null ? 'not measured' : ok ? `met (${v})` : `not met (${v})`);
  if (rows.some((r) => r.part === 'reads')) {
    const s = ratio(tp('reads', 'rm-default', top), tp('reads', 'rm-default', lo));
    out.push({ key: 'readsScale', text: `cached reads, default configuration: P=${top} >= 8x P=${lo}`, value: s, status: st(s >= 8, s === null ? null : `${s}x`) });
    const n = ratio(tp('reads', 'rm-default', top), tp('reads', 'node-uv-io_uring', top));
    out.push({ key: 'readsVsNode', text: `cached reads, default configuration at P=${top} >= 2x Node fs UV_USE_IO_URING=1`, value: n, status: st(n >= 2, n === null ? null : `${n}x`) });
  }
  if (rows.some((r) => r.part === 'commits')) {
    const c = ratio(tp('commits', 'ringmaster', top), tp('commits', 'sqlite', top));
    out.push({ key: 'commitsVsSqlite', text: `durable commits ${top} x ${S_COMMITS} >= 15x better-sqlite3 (${top} processes)`, value: c, status: st(c >= 15, c === null ? null : `${c}x`) });
  }
  for (const part of ['tpcb-s1', 'tpcb-high']) {
    const r0 = rows.find((r) => r.part === part);
    if (!r0) continue;
    const label = part === 'tpcb-s1' ? 'TPC-B scale 1' : `TPC-B scale ${r0.scale}`;
    const from2 = PS.filter((p) => p >= 2);
    const series = from2.map((P) => tp(part, 'ringmaster', P));
    let falls = [];
    for (let i = 1; i < series.length; i++) if (series[i] !== null && series[i - 1] !== null && series[i] < series[i - 1]) falls.push(`P=${from2[i - 1]}->${from2[i]}: ${ratio(series[i], series[i - 1])}x`);
    out.push({ key: `${part}-monotonic`, text: `${label}: tps never falls from P=2 to P=${top}`, status: series.some((v) => v === null) ? 'not measured' : falls.length ? `not met (${falls.join(', ')})` : `met (${series.map((v) => fmt(v)).join(' -> ')})` });
    const sq = ratio(tp(part, 'ringmaster', top), tp(part, 'sqlite', top));
    out.push({ key: `${part}-vsSqlite`, text: `${label} at P=${top} >= 2x better-sqlite3`, value: sq, status: st(sq >= 2, sq === null ? null : `${sq}x`) });
    const pg = ratio(tp(part, 'ringmaster', top), tp(part, 'pgbench', top));
    out.push({ key: `${part}-vsPg`, text: `${label} at P=${top} >= 3x pgbench`, value: pg, status: st(pg >= 3, pg === null ? null : `${pg}x`) });
    const worst = PS.map((P) => { const x = at(part, 'ringmaster', P).result; return x.p50us ? round(x.p99us / x.p50us, 1) : null; });
    const w = Math.max(...worst.filter((v) => v !== null));
    out.push({ key: `${part}-tail`, text: `${label}: p99 <= 10x p50 at every P`, value: w, status: Number.isFinite(w) ? (w <= 10 ? `met (worst ${w}x)` : `not met (worst ${w}x: ${worst.map((v, i) => `P=${PS[i]} ${v}x`).join(', ')})`) : 'not measured' });
  }
  return out;
}
