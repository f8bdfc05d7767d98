'use strict';
// Workload: the cost of checkpoints that make data files durable. TPC-B (2 forked workers x
// 16 sessions) with a pool that holds all the data, while the postmaster checkpoints every
// second: checkpoint duration (and its phases: writing the dirty pages, waiting for writes in
// flight, syncing the data files) and commit latency during a checkpoint vs outside one.
// Variants in the same run: data-file syncs on (the library), and skipped with the test hook
// RINGMASTER_DEBUG_SKIP_DATA_SYNC (the checkpoint as it was before it synced data files).
// To compare with an older build, run this workload there too (bench/README.md, "checkpoint").
const { mdTable, svgBars, ratio, round } = require('../lib/common.cjs');
const { runTpcbPoint } = require('./durable.cjs');

function median(xs) {
  const a = xs.filter((x) => typeof x === 'number').sort((x, y) => x - y);
  return a.length ? a[Math.floor((a.length - 1) / 2)] : null;
}

module.exports = {
  name: 'checkpoint',
  title: 'Checkpoints with data-file syncs: checkpoint duration and commit latency during a checkpoint (TPC-B, 2 forked workers)',
  async run(ctx) {
    // At least 40 s: the kernel writes dirty pages back by itself only once they are 30 s
    // old, so in a shorter run the variant without syncs never pays for writing its pages
    // at all, and its throughput looks better than any steady state.
    const dur = ctx.smoke ? 600 : Math.max(ctx.durationMs * 3, 40000);
    const every = ctx.smoke ? 200 : 1000;
    const g = ctx.smoke ? { scale: 1, accounts: 2000 } : { scale: 1 };
    const P = 2;
    const S = ctx.smoke ? 4 : 16;
    const base = { kind: 'tpcb', durationMs: dur, dataDir: ctx.dataDir, g, historyRows: ctx.smoke ? 4000 : 100000, engine: 'rm', procs: P, sessions: S, mode: 'fork', checkpointEveryMs: every };
    const variants = [
      { name: 'data-file syncs', env: {} },
      { name: 'syncs skipped (test hook)', env: { RINGMASTER_TEST_HOOKS: '1', RINGMASTER_DEBUG_SKIP_DATA_SYNC: '1' } },
    ];
    const rows = [];
    for (let round = 0; round < ctx.repeat; round++) {
      // Alternate the order each round: the machine's load drifts.
      for (const v of round % 2 ? variants.slice().reverse() : variants) {
        ctx.progress(`checkpoint [${v.name}] round ${round + 1}: ${P} forked workers x ${S} sessions, a checkpoint every ${every} ms, ${dur} ms`);
        const saved = {};
        for (const [k, val] of Object.entries(v.env)) { saved[k] = process.env[k]; process.env[k] = val; }
        try {
          rows.push({ variant: v.name, round, P, S, everyMs: every, load1: ctx.load(), result: await runTpcbPoint(base) });
        } finally {
          for (const k of Object.keys(v.env)) { if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k]; }
        }
      }
    }
    return { durationMs: dur, rows };
  },
  render(res) {
    const x = (r) => r.result || {};
    const summarize = (r) => {
      const c = x(r).checkpoints || [];
      return {
        n: c.length, ms: median(c.map((k) => k.ms)), maxMs: c.length ? Math.max(...c.map((k) => k.ms)) : null,
        flushMs: median(c.map((k) => k.flushMs)), barrierMs: median(c.map((k) => k.barrierMs)), syncMs: median(c.map((k) => k.syncMs)),
        pages: median(c.map((k) => k.pages)), files: median(c.map((k) => k.files)),
      };
    };
    const f = (v, d = 1) => (v === null || v === undefined ? '–' : round(v, d));
    const md = mdTable(
      ['variant', 'round', 'tps', 'checkpoints', 'checkpoint ms p50 / max', 'pages written p50', 'write pages ms', 'barrier ms', 'sync files ms', 'files synced', 'commit p50/p99 µs outside', 'commit p50/p99 µs during', 'commits during', 'p99 during ÷ outside', 'load1'],
      res.rows.map((r) => {
        const y = x(r);
        if (y.error) return [r.variant, r.round + 1, '–', '–', '–', '–', '–', '–', '–', '–', '–', '–', '–', '–', String(y.error).slice(0, 80)];
        const s = summarize(r);
        return [r.variant, r.round + 1, y.commitsPerSec, s.n, `${f(s.ms)} / ${f(s.maxMs)}`, f(s.pages, 0), f(s.flushMs), f(s.barrierMs), f(s.syncMs), f(s.files, 0),
          `${f(y.outside && y.outside.p50us)} / ${f(y.outside && y.outside.p99us)}`, `${f(y.during && y.during.p50us)} / ${f(y.during && y.during.p99us)}`,
          y.during ? y.during.commits : '–', y.during && y.outside ? ratio(y.during.p99us, y.outside.p99us) : '–', r.load1];
      }),
    );
    const ok = res.rows.filter((r) => !x(r).error);
    const svg = svgBars({
      title: 'Checkpoint duration and commit p99 during a checkpoint',
      yLabel: 'ms',
      groups: ok.map((r) => `${r.variant} #${r.round + 1}`),
      series: ['checkpoint p50 ms', 'commit p99 during ms', 'commit p99 outside ms'],
      values: ok.map((r) => { const s = summarize(r); const y = x(r); return [s.ms, y.during && y.during.p99us / 1000, y.outside && y.outside.p99us / 1000]; }),
    });
    const by = (name) => ok.filter((r) => r.variant === name);
    const on = by('data-file syncs'), off = by('syncs skipped (test hook)');
    const rel = (get) => {
      const rs = on.map((r, i) => (off[i] ? ratio(get(r), get(off[i])) : null)).filter((v) => v !== null);
      return rs.length ? median(rs) : '–';
    };
    const text = `Checkpoint every ${res.rows[0] ? res.rows[0].everyMs : '?'} ms during a ${res.durationMs} ms TPC-B run; "during" = commits that saw the checkpoint running at their start or end. ` +
      `With syncs ÷ syncs skipped (median of per-round ratios): checkpoint duration **${rel((r) => summarize(r).ms)}×**, commit p99 during a checkpoint **${rel((r) => x(r).during && x(r).during.p99us)}×**, tps **${rel((r) => x(r).commitsPerSec)}×**.`;
    return { md: `${text}\n\n${md}`, svg };
  },
};
