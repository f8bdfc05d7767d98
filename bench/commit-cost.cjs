'use strict';
// Per-commit costs of one committing session, which other load on the machine distorts far
// less than commits/s: CPU (all threads of the process), context switches (voluntary and
// involuntary, all threads: each voluntary one is a thread going to sleep, so a hop), and
// which thread the wake came through. One engine per process run:
//   node bench/commit-cost.cjs ringmaster [commits]      (RINGMASTER_BACKEND=threads for the threads backend)
//   node bench/commit-cost.cjs sqlite [commits]          (better-sqlite3, WAL, synchronous=FULL)
//   node bench/commit-cost.cjs node [commits]            (fs.promises write + datasync; UV_USE_IO_URING=0/1)
// ringmaster options come from RM_WAL (JSON merged into the wal start option), e.g.
//   RM_WAL='{"walSync":"dsync"}'.
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');

function threads() {
  let cpu = 0, vol = 0, invol = 0;
  const names = {};
  for (const t of fs.readdirSync('/proc/self/task')) {
    try {
      const st = fs.readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
      const f = st.split(') ')[1].split(' ');
      const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const status = fs.readFileSync(`/proc/self/task/${t}/status`, 'utf8');
      const v = Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)[1]);
      const nv = Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)[1]);
      cpu += (Number(f[11]) + Number(f[12])) * 10;
      vol += v; invol += nv;
      names[`${t === String(process.pid) ? 'main' : name}`] = (names[`${t === String(process.pid) ? 'main' : name}`] || 0) + v;
    } catch { /* thread gone */ }
  }
  return { cpu, vol, invol, names };
}

function report(what, n, t0, t1, lat, extra = '') {
  lat.sort((a, b) => a - b);
  const dn = {};
  for (const k of Object.keys(t1.names)) { const d = t1.names[k] - (t0.names[k] || 0); if (d / n >= 0.05) dn[k] = +(d / n).toFixed(2); }
  const wall = lat.reduce((a, b) => a + b, 0);
  console.log(JSON.stringify({
    what, commits: n, perSec: Math.round(n / (wall / 1e6)), p10us: +lat[Math.floor(n * 0.1)].toFixed(1), p50us: +lat[n >> 1].toFixed(1), p90us: +lat[Math.floor(n * 0.9)].toFixed(1), p99us: +lat[Math.floor(n * 0.99)].toFixed(1),
    cpuUsPerCommit: +(((t1.cpu - t0.cpu) * 1000) / n).toFixed(1), volCsPerCommit: +((t1.vol - t0.vol) / n).toFixed(2),
    involCsPerCommit: +((t1.invol - t0.invol) / n).toFixed(2), volByThread: dn, load: os.loadavg()[0], extra,
  }));
}

(async () => {
  const engine = process.argv[2] || 'ringmaster';
  const N = Number(process.argv[3]) || 3000;
  const dir = path.join(os.tmpdir(), `rm-commit-cost-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const lat = [];
  const payload = Buffer.alloc(100, 0x61);
  try {
    if (engine === 'ringmaster') {
      const rm = require(path.join(__dirname, '..'));
      const db = await rm.open({ dataDir: dir, arenaSize: 8 << 20, wal: { ...(process.env.RM_WAL ? JSON.parse(process.env.RM_WAL) : {}) } });
      for (let i = 0; i < 300; i++) await db.wal.flush(await db.wal.append(1, payload));  // warm: segment open, file marks
      const w = db._native().wakeInfo();
      const t0 = threads();
      for (let i = 0; i < N; i++) {
        const s = process.hrtime.bigint();
        await db.wal.flush(await db.wal.append(1, payload));
        lat.push(Number(process.hrtime.bigint() - s) / 1000);
      }
      const t1 = threads();
      const st = db.wal.stats();
      report(`ringmaster ${db.features.backend} wake ${w.channel}${w.selfWake ? '+self' : ''} ${process.env.RM_WAL || ''}`, N, t0, t1, lat, `fdatasyncs/commit ${(st.fdatasyncs / st.commits).toFixed(2)}`);
      await db.close();
    } else if (engine === 'sqlite') {
      const Database = require('better-sqlite3');
      const d = new Database(path.join(dir, 'db.sqlite'));
      d.pragma('journal_mode = WAL');
      d.pragma('synchronous = FULL');
      d.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
      const ins = d.prepare('INSERT INTO t (v) VALUES (?)');
      const begin = d.prepare('BEGIN IMMEDIATE');
      const commit = d.prepare('COMMIT');
      const one = () => { begin.run(); ins.run(payload); commit.run(); };
      for (let i = 0; i < 300; i++) one();
      const t0 = threads();
      for (let i = 0; i < N; i++) {
        const s = process.hrtime.bigint();
        one();
        lat.push(Number(process.hrtime.bigint() - s) / 1000);
      }
      report('better-sqlite3 WAL FULL', N, t0, threads(), lat);
      d.close();
    } else if (engine === 'node') {
      const file = path.join(dir, 'log');
      const size = 16 << 20;
      fs.writeFileSync(file, Buffer.alloc(size));
      const fh = await fs.promises.open(file, 'r+');
      let pos = 0;
      const one = async () => { await fh.write(payload, 0, payload.length, pos); await fh.datasync(); pos = (pos + 100) % (size - 100); };
      for (let i = 0; i < 300; i++) await one();
      const t0 = threads();
      for (let i = 0; i < N; i++) {
        const s = process.hrtime.bigint();
        await one();
        lat.push(Number(process.hrtime.bigint() - s) / 1000);
      }
      report(`node fs UV_USE_IO_URING=${process.env.UV_USE_IO_URING ?? 'default'}`, N, t0, threads(), lat);
      await fh.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
