'use strict';
// Workload: WAL-before-data writeback strategies, on the TPC-B engine with a buffer pool
// much smaller than the data (so evictions keep writing dirty pages back): 'link' (one
// linked submission WAL write -> fdatasync -> page write) vs 'wait' (wait for the WAL
// flush, then write the page). Same data, same duration, same process/session counts.
const { mdTable, svgBars, ratio } = require('../lib/common.cjs');
const { runTpcbPoint } = require('./durable.cjs');

module.exports = {
  name: 'writeback',
  title: "WAL-before-data writeback: linked chain ('link') vs wait-for-LSN ('wait'), TPC-B with a small pool",
  async run(ctx) {
    const dur = ctx.smoke ? Math.min(ctx.durationMs, 300) : Math.max(ctx.durationMs, 3000);
    const g = ctx.smoke ? { scale: 1, accounts: 2000 } : { scale: 1 };
    const poolPages = ctx.smoke ? 16 : 128;  // scale 1 has ~1250 account pages: most reads evict
    const S = ctx.smoke ? 4 : 16;
    const P = 2;
    const base = { kind: 'tpcb', durationMs: dur, dataDir: ctx.dataDir, g, historyRows: ctx.smoke ? 4000 : 100000, engine: 'rm', procs: P, sessions: S, mode: 'fork', poolPages };
    const rows = [];
    for (const strategy of ['link', 'wait']) {
      ctx.progress(`writeback [${strategy}] ${P} forked workers x ${S} sessions, ${poolPages}-page pool`);
      rows.push({ strategy, P, S, poolPages, result: await runTpcbPoint({ ...base, walBeforeData: strategy }) });
    }
    return { durationMs: dur, rows };
  },
  render(res) {
    const x = (r) => r.result || {};
    const md = mdTable(
      ['strategy', 'P', 'S', 'pool pages', 'tps', 'p50 µs', 'p99 µs', 'fdatasyncs/commit', 'pool writes', 'evictions', 'invariant'],
      res.rows.map((r) => x(r).error
        ? [r.strategy, r.P, r.S, r.poolPages, '–', '–', '–', '–', '–', '–', String(x(r).error).slice(0, 100)]
        : [r.strategy, r.P, r.S, r.poolPages, x(r).commitsPerSec, x(r).p50us, x(r).p99us, x(r).fdatasyncsPerCommit,
          x(r).pool ? x(r).pool.writes : '–', x(r).pool ? x(r).pool.evictions : '–', x(r).invariant ? (x(r).invariant.ok === false ? 'BROKEN' : 'holds') : '–']),
    );
    const ok = res.rows.filter((r) => !x(r).error);
    const svg = svgBars({ title: 'TPC-B tps by writeback strategy (small pool)', yLabel: 'tps', groups: ok.map((r) => r.strategy), series: ['tps'], values: ok.map((r) => [x(r).commitsPerSec]) });
    const [l, w] = res.rows.map(x);
    const rel = l.commitsPerSec && w.commitsPerSec ? ratio(l.commitsPerSec, w.commitsPerSec) : '–';
    return { md: `Every eviction of a dirty page must first make the WAL durable up to the page's LSN. 'link': one submission WAL write → fdatasync → page write; 'wait': wait for the WAL flush (group commit), then write the page.\n\n${md}\n\nlink ÷ wait throughput: **${rel}×**.`, svg };
  },
};
