'use strict';
// Workload: TPC-B-like ("tpcb-like" of pgbench) on the bench/tpcb engine: P forked workers
// (and P worker threads) x S sessions for N seconds vs the same transactions in
// better-sqlite3 (WAL, synchronous=FULL, BEGIN IMMEDIATE) with P processes, and pgbench
// -b tpcb-like with P x S clients against a throwaway PostgreSQL cluster (when installed).
const { mdTable, svgBars, ratio } = require('../lib/common.cjs');
const { runTpcbPoint, sqliteAvailable } = require('./durable.cjs');
const { PgCluster, pgUnavailable } = require('../lib/pg.cjs');

module.exports = {
  name: 'tpcb',
  title: 'TPC-B-like transactions: ringmaster engine (processes vs threads) vs better-sqlite3 and PostgreSQL',
  async run(ctx) {
    const dur = ctx.smoke ? Math.min(ctx.durationMs, 300) : Math.max(ctx.durationMs, 3000);
    const g = ctx.smoke ? { scale: 1, accounts: 2000 } : { scale: 1 };
    const S = ctx.smoke ? 4 : 16;
    const PS = [1, 2];
    const sqliteSkip = sqliteAvailable();
    const rows = [];
    const n = PS.length * 3;
    let k = 0;
    const base = { kind: 'tpcb', durationMs: dur, dataDir: ctx.dataDir, g, historyRows: ctx.smoke ? 4000 : 100000 };
    for (const P of PS) {
      ctx.progress(`tpcb [${++k}/${n}] ringmaster ${P} forked workers x ${S} sessions`);
      rows.push({ engine: 'ringmaster', mode: 'processes', P, S, result: await runTpcbPoint({ ...base, engine: 'rm', procs: P, sessions: S, mode: 'fork' }) });
      ctx.progress(`tpcb [${++k}/${n}] ringmaster ${P} worker threads x ${S} sessions`);
      rows.push({ engine: 'ringmaster', mode: 'threads', P, S, result: await runTpcbPoint({ ...base, engine: 'rm', procs: P, sessions: S, mode: 'threads' }) });
      ctx.progress(`tpcb [${++k}/${n}] better-sqlite3 ${P} processes`);
      rows.push({ engine: 'better-sqlite3 WAL FULL', mode: 'processes', P, S: 1, result: sqliteSkip ? { skipped: sqliteSkip } : await runTpcbPoint({ ...base, engine: 'sqlite', procs: P, synchronous: 'FULL' }) });
    }
    // PostgreSQL (when installed): a throwaway cluster, pgbench -b tpcb-like with the same
    // number of sessions (P x S clients), at the same durability.
    const pgSkip = pgUnavailable();
    if (pgSkip) {
      rows.push({ engine: 'PostgreSQL pgbench', mode: '–', P: '–', S: '–', result: { skipped: pgSkip } });
    } else {
      const pg = new PgCluster({ maxConnections: Math.max(...PS) * S + 10 });
      try {
        ctx.progress('tpcb: PostgreSQL initdb, start, pgbench -i');
        pg.start();
        await pg.init(g.scale);
        for (const P of PS) {
          ctx.progress(`tpcb: pgbench -b tpcb-like -c ${P * S}`);
          rows.push({ engine: 'PostgreSQL pgbench', mode: 'processes', P, S, result: await pg.run({ clients: P * S, threads: P, durationMs: dur }) });
        }
      } catch (e) {
        rows.push({ engine: 'PostgreSQL pgbench', mode: '–', P: '–', S: '–', result: { error: `PostgreSQL: ${e.message}` } });
      } finally {
        pg.stopSync();
      }
    }
    const at = (e, m, P) => rows.find((r) => r.engine === e && r.mode === m && r.P === P);
    const rp = at('ringmaster', 'processes', 2);
    const sq = at('better-sqlite3 WAL FULL', 'processes', 2);
    const targets = [{
      key: 'tpcbRatio', text: 'ringmaster TPC-B 2 forked workers vs better-sqlite3 WAL+FULL 2 processes (tps ratio; no goal set)',
      status: `${ratio(rp.result.commitsPerSec, sq.result.commitsPerSec) ?? 'not measured'}x`,
    }];
    return {
      durationMs: dur, geometry: g, sessions: S, rows, targets,
      durability: 'ringmaster: one WAL record per transaction, pages changed under exclusive page locks (account -> history -> teller -> branch: the hottest rows last, as the pgbench script updates them; released before the commit flush), markDirty(commit LSN), wal.flush(commit LSN) (write -> fdatasync, group commit) before the transaction is acknowledged; better-sqlite3: journal_mode=WAL, synchronous=FULL, busy_timeout=10000, BEGIN IMMEDIATE, one connection per process; PostgreSQL (when installed): fsync=on, synchronous_commit=on, full_page_writes=on, pgbench -b tpcb-like with P x S clients',
    };
  },
  render(res) {
    const md = mdTable(['engine', 'mode', 'P', 'S', 'tps', 'p50 µs', 'p99 µs', 'fdatasyncs/commit', 'invariant', 'notes'], res.rows.map((r) => {
      const x = r.result;
      if (x.error || x.skipped) return [r.engine, r.mode, r.P, r.S, '–', '–', '–', '–', '–', (x.error || x.skipped).slice(0, 240)];
      return [r.engine, r.mode, r.P, r.S, x.commitsPerSec, x.p50us, x.p99us, x.fdatasyncsPerCommit ?? '–', x.invariant ? (x.invariant.ok ? 'holds' : 'BROKEN') : '–', x.pool ? `pool hits ${x.pool.hits}, completedByOther ${x.pool.completedByOther}` : x.server ? `${x.server}; ${x.cmd}` : ''];
    }));
    const ok = res.rows.filter((r) => !r.result.error && !r.result.skipped);
    const svg = svgBars({ title: 'TPC-B-like tps', yLabel: 'tps', groups: ok.map((r) => `${r.engine} ${r.mode} P${r.P}`), series: ['tps'], values: ok.map((r) => [r.result.commitsPerSec]) });
    const t = res.targets[0];
    return { md: `Scale ${res.geometry.scale} (${res.geometry.accounts || 100000} accounts), ${res.sessions} sessions per ringmaster worker. Durability: ${res.durability}.\n\n${md}\n\n**Target**: ${t.text}: **${t.status}**`, svg };
  },
};
