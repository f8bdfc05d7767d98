'use strict';
// Workload: durable commits. P processes x S sessions each append a 100-byte WAL record and
// flush it (group commit) per commit, vs better-sqlite3 (WAL mode, synchronous FULL and
// NORMAL, P processes, one-row INSERT per transaction) and fio's fdatasync loop (floor).
const path = require('node:path');
const fs = require('node:fs');
const { mdTable, svgBars, fmt, ratio, round, runFioJson, runPointScript } = require('../lib/common.cjs');

const TPCB_POINT = path.join(__dirname, '..', 'tpcb', 'point.cjs');

function sqliteAvailable() {
  try {
    require('better-sqlite3');
    return null;
  } catch (e) {
    return `skipped: better-sqlite3 is not installed or did not build (${String(e.message).split('\n')[0]}): npm install (it builds from source with node-gyp)`;
  }
}

// A TPC-B data set of scale 256 takes minutes to load (and check) on a small machine; a
// durable-commits point loads nothing.
function runTpcbPoint(spec, env = {}) {
  const loadMs = spec.kind === 'tpcb' ? 600000 : 60000;
  return runPointScript(TPCB_POINT, spec, env, spec.durationMs + (spec.warmupMs || 0) + loadMs);
}

function fioSync(dataDir, durationMs) {
  const file = path.join(dataDir, 'fio-fdatasync.dat');
  const args = ['--name=fdatasync', `--filename=${file}`, '--size=64m', '--ioengine=sync', '--fdatasync=1', '--rw=write', '--bs=4k', '--iodepth=1',
    '--time_based', `--runtime=${Math.max(1, Math.round(durationMs))}ms`, '--lat_percentiles=1', '--percentile_list=50:99', '--output-format=json'];
  return runFioJson(args, durationMs + 60000, (job) => {
    const w = job.write;
    const wl = (w.lat_ns && w.lat_ns.percentile) || {};
    const sl = (job.sync && job.sync.lat_ns && job.sync.lat_ns.percentile) || {};
    // one commit = write + fdatasync: p50/p99 of the write latency plus the sync latency
    return {
      commitsPerSec: round(w.iops), writeP50us: round((wl['50.000000'] || 0) / 1000, 1),
      syncP50us: round((sl['50.000000'] || 0) / 1000, 1), syncP99us: round((sl['99.000000'] || 0) / 1000, 1),
      p50us: round(((wl['50.000000'] || 0) + (sl['50.000000'] || 0)) / 1000, 1), p99us: round(((wl['99.000000'] || 0) + (sl['99.000000'] || 0)) / 1000, 1),
    };
  }).finally(() => fs.rmSync(file, { force: true }));
}

async function oneRound(ctx, roundIndex) {
  const dur = ctx.smoke ? Math.min(ctx.durationMs, 300) : ctx.durationMs;
  const PS = ctx.smoke ? [1, 2] : [1, 2];
  const SS = ctx.smoke ? [1, 8] : [1, 8, 32];
  const sqliteSkip = sqliteAvailable();
  const rows = [];
  const sqlite = {};
  const n = PS.length * SS.length + PS.length * 2 + 1 + 3;
  let k = 0;
  const base = { kind: 'commits', durationMs: dur, dataDir: ctx.dataDir };
  // --wal-sync, --wal-direct: ringmaster's points only
  const rmWal = { ...(ctx.walSync ? { walSync: ctx.walSync } : {}), ...(ctx.walDirect !== undefined ? { walDirect: ctx.walDirect } : {}) };
  for (const P of PS) {
    for (const S of SS) {
      ctx.progress(`durable-commits [${++k}/${n}]${ctx.repeat > 1 ? ` round ${roundIndex + 1}/${ctx.repeat}` : ''} ringmaster P=${P} S=${S}`);
      rows.push({ engine: 'ringmaster', P, S, result: await runTpcbPoint({ ...base, ...rmWal, engine: 'rm', procs: P, sessions: S }) });
    }
    for (const sync of ['FULL', 'NORMAL']) {
      ctx.progress(`durable-commits [${++k}/${n}]${ctx.repeat > 1 ? ` round ${roundIndex + 1}/${ctx.repeat}` : ''} better-sqlite3 P=${P} synchronous=${sync}`);
      const r = sqliteSkip ? { skipped: sqliteSkip } : await runTpcbPoint({ ...base, engine: 'sqlite', procs: P, synchronous: sync });
      sqlite[`${P}:${sync}`] = r;
      rows.push({ engine: `better-sqlite3 WAL ${sync}`, P, S: 1, result: r });
    }
  }
  // One committing session on the threads backend, and Node's own fs doing the same
  // (write + datasync per commit) on its threadpool: the anchor that backend must meet.
  ctx.progress(`durable-commits [${++k}/${n}]${ctx.repeat > 1 ? ` round ${roundIndex + 1}/${ctx.repeat}` : ''} ringmaster threads backend P=1 S=1`);
  rows.push({ engine: 'ringmaster threads backend', P: 1, S: 1, result: await runTpcbPoint({ ...base, ...rmWal, engine: 'rm', procs: 1, sessions: 1 }, { RINGMASTER_BACKEND: 'threads' }) });
  for (const uv of ['0', '1']) {
    ctx.progress(`durable-commits [${++k}/${n}]${ctx.repeat > 1 ? ` round ${roundIndex + 1}/${ctx.repeat}` : ''} Node fs write+datasync UV_USE_IO_URING=${uv}`);
    rows.push({ engine: uv === '0' ? 'Node fs (threadpool)' : 'Node fs UV_USE_IO_URING=1', P: 1, S: 1, result: await runTpcbPoint({ ...base, engine: 'node', procs: 1, sessions: 1 }, { UV_USE_IO_URING: uv }) });
  }
  ctx.progress(`durable-commits [${++k}/${n}]${ctx.repeat > 1 ? ` round ${roundIndex + 1}/${ctx.repeat}` : ''} fio fdatasync loop`);
  const fio = await fioSync(ctx.dataDir, dur);
  rows.push({ engine: 'fio sync+fdatasync 4k', P: 1, S: 1, result: fio });
  const top = rows.find((r) => r.engine === 'ringmaster' && r.P === 2 && r.S === 32) || rows.filter((r) => r.engine === 'ringmaster').pop();
  const anchor = sqlite['2:FULL'];
  const rt = ratio(top.result.commitsPerSec, anchor && anchor.commitsPerSec);
  const spc = top.result.fdatasyncsPerCommit;
  const one = rows.find((r) => r.engine === 'ringmaster' && r.P === 1 && r.S === 1);
  const oneSqlite = sqlite['1:FULL'];
  const r1 = one && ratio(one.result.commitsPerSec, oneSqlite && oneSqlite.commitsPerSec);
  const fioP50 = fio && fio.p50us;
  const p50r = one && fioP50 ? round(one.result.p50us / fioP50, 2) : null;
  const th = rows.find((r) => r.engine === 'ringmaster threads backend');
  const nodeTp = rows.find((r) => r.engine === 'Node fs (threadpool)');
  const rth = th && nodeTp && ratio(th.result.commitsPerSec, nodeTp.result.commitsPerSec);
  const verdict = (ok, text) => (ok === null ? 'not measured' : ok ? `met (${text})` : `not met (${text})`);
  const targets = [{
    key: 'durableRatio', text: `ringmaster ${top.P} processes x ${top.S} sessions >= 5x better-sqlite3 WAL+FULL (2 processes) commits/s, fdatasyncs/commit <= 0.1`,
    ratio: rt, fdatasyncsPerCommit: spc,
    status: rt === null ? 'not measured' : rt >= 5 && spc <= 0.1 ? `met (${rt}x, ${spc} fdatasyncs/commit)` : `not met (${rt}x, ${spc} fdatasyncs/commit)`,
  }, {
    key: 'oneSession', text: 'one committing session >= 1.0x better-sqlite3 WAL+FULL commits/s', ratio: r1,
    status: verdict(r1 === null || r1 === undefined ? null : r1 >= 1, `${r1}x`),
  }, {
    key: 'oneSessionP50', text: 'one committing session p50 <= 1.2x fio write+fdatasync p50', ratio: p50r,
    status: verdict(p50r === null ? null : p50r <= 1.2, `${p50r}x: ${one && one.result.p50us} vs ${fioP50} µs`),
  }, {
    key: 'threadsOneSession', text: 'threads backend, one committing session >= 1.0x Node fs threadpool (UV_USE_IO_URING=0)', ratio: rth,
    status: verdict(rth === null || rth === undefined ? null : rth >= 1, `${rth}x`),
  }];
  return { durationMs: dur, rows, targets, durability: 'ringmaster: wal.flush(lsn) before a commit is acknowledged (group commit; walSync fdatasync: write -> fdatasync of the WAL segment; dsync: one O_DSYNC write); Node fs: write + datasync of a preallocated log per commit; better-sqlite3: journal_mode=WAL with synchronous=FULL (fsync of the WAL at every commit) or NORMAL (no fsync at commit: not durable on power loss); fio: write(4k) + fdatasync per op' };
}

module.exports = {
  name: 'durable-commits',
  title: 'Durable commits: WAL group commit (P processes x S sessions) vs better-sqlite3 and fio fdatasync',
  runTpcbPoint,
  sqliteAvailable,
  async run(ctx) {
    // Rounds (--repeat): the whole grid once per round, every engine in the same round;
    // each row is the round with the median commits/s, each ratio the median of the
    // per-round ratios (the disk is shared: one round alone says little on a busy VM).
    const rounds = [];
    for (let r = 0; r < ctx.repeat; r++) rounds.push(await oneRound(ctx, r));
    const keyOf = (row) => `${row.engine}|${row.P}|${row.S}`;
    const rows = rounds[0].rows.map((row0) => {
      const all = rounds.map((rd) => rd.rows.find((x) => keyOf(x) === keyOf(row0))).filter(Boolean);
      const ok = all.filter((x) => typeof x.result.commitsPerSec === 'number').sort((x, y) => x.result.commitsPerSec - y.result.commitsPerSec);
      const pick = ok.length ? ok[Math.floor((ok.length - 1) / 2)] : all[0];
      return { ...pick, rounds: all.map((x) => (typeof x.result.commitsPerSec === 'number' ? x.result.commitsPerSec : x.result.error || x.result.skipped)) };
    });
    const med = (vals) => {
      const v = vals.filter((x) => typeof x === 'number').sort((x, y) => x - y);
      return v.length ? v[Math.floor((v.length - 1) / 2)] : null;
    };
    const targets = rounds[0].targets.map((t0, i) => {
      const per = rounds.map((rd) => rd.targets[i].ratio);
      const ratioMed = med(per);
      const t = { ...t0, ratio: ratioMed, perRound: per };
      if (t.key === 'durableRatio') {
        const spc = med(rounds.map((rd) => rd.targets[i].fdatasyncsPerCommit));
        t.fdatasyncsPerCommit = spc;
        t.status = ratioMed === null ? 'not measured' : ratioMed >= 5 && spc <= 0.1 ? `met (${ratioMed}x, ${spc} fdatasyncs/commit)` : `not met (${ratioMed}x, ${spc} fdatasyncs/commit)`;
      } else {
        const ok = ratioMed === null ? null : t.key === 'oneSessionP50' ? ratioMed <= 1.2 : ratioMed >= 1;
        t.status = ok === null ? 'not measured' : `${ok ? 'met' : 'not met'} (${ratioMed}x${ctx.repeat > 1 ? `, median of ${ctx.repeat} rounds: ${per.join(', ')}` : ''})`;
      }
      return t;
    });
    return { durationMs: rounds[0].durationMs, repeat: ctx.repeat, walSync: ctx.walSync || 'library default', rows, targets, durability: rounds[0].durability };
  },
  render(res) {
    const multi = (res.repeat || 1) > 1;
    // CPU and voluntary switches per commit (all threads of every process of the point, the
    // postmaster's included): the counts other load on the machine distorts least.
    const sw = (x) => (x.cswPerCommit || x.pmCswPerCommit ? round(((x.cswPerCommit && x.cswPerCommit.vol) || 0) + ((x.pmCswPerCommit && x.pmCswPerCommit.vol) || 0), 2) : '–');
    const md = mdTable(['engine', 'P', 'S', 'commits/s', ...(multi ? ['all rounds'] : []), 'p50 µs', 'p99 µs', 'syncs/commit', 'CPU µs/commit', 'vol. switches/commit', 'notes'], res.rows.map((r) => {
      const x = r.result;
      const all = multi ? [(r.rounds || []).join(' / ')] : [];
      if (x.error || x.skipped) return [r.engine, r.P, r.S, '–', ...all, '–', '–', '–', '–', '–', (x.error || x.skipped).slice(0, 120)];
      return [r.engine, r.P, r.S, x.commitsPerSec, ...all, x.p50us, x.p99us, x.fdatasyncsPerCommit ?? (r.engine.startsWith('fio') ? 1 : '–'), x.cpuPerCommitUs ?? '–', sw(x), x.settings || x.cmd || `backend ${x.backend}${x.walSync ? `, walSync ${x.walSync}` : ''}${x.walDirect ? ', wal direct' : ''}`];
    }));
    const ok = res.rows.filter((r) => !r.result.error && !r.result.skipped);
    const svg = svgBars({ title: 'Durable commits/s', yLabel: 'commits/s', groups: ok.map((r) => `${r.engine} P${r.P} S${r.S}`), series: ['commits/s'], values: ok.map((r) => [r.result.commitsPerSec]), log: true });
    const targets = res.targets.map((t) => `- ${t.text}: **${t.status}**`).join('\n');
    return { md: `Durability: ${res.durability}. better-sqlite3 is synchronous: one connection per process (S does not apply). ringmaster's wal.walSync: ${res.walSync || 'library default'} (syncs/commit counts its sync ops: fdatasyncs, or O_DSYNC writes).\n\n${md}\n\n**Targets**\n\n${targets}`, svg };
  },
};
