#!/usr/bin/env node
// Worker kill soak: `npm run soak -- kill [--workload mixed|raw] [--kills N] [--workers W] [--seconds S]`.
// `--workload mixed` (the default) is kill-mixed.cjs: WAL commits into a buffer pool,
// pool reads and raw batches. `--workload raw` is this file, the foundation workload:
// W forked workers write and fdatasync records; a controller SIGKILLs a random worker
// at random moments and the postmaster restarts it. Checks after each kill and at the
// end: no surviving worker stalls longer than 2 s, no IO handle leaks, every
// acknowledged (fdatasync'd) record is on disk intact. Writes soak/results/kill.json.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));
const { checkRecords } = require('./raw-records.cjs');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const wi = args.indexOf('--workload');
const WORKLOAD = wi >= 0 ? args[wi + 1] : 'mixed';
if (WORKLOAD !== 'mixed' && WORKLOAD !== 'raw') {
  console.error(`--workload must be 'mixed' or 'raw', got '${WORKLOAD}'`);
  process.exit(2);
}
const KILLS = opt('kills', 200);
const WORKERS = opt('workers', 3);
const SECONDS = opt('seconds', 600);
const STALL_MS = 2000;

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-soak-kill-'));
  const pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend: process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'auto', arenaSize: 1 << 20 });
  const f = await pm.files.open('soak.dat', { create: true });
  const acked = new Array(WORKERS).fill(0);    // next unacknowledged seq per worker id
  const lastProgress = new Array(WORKERS).fill(Date.now());
  const alive = new Map();                      // worker id -> child
  const killedByUs = new WeakSet();
  let kills = 0;
  let maxStall = 0;
  let failure = null;
  const started = Date.now();

  function spawn(id) {
    const child = pm.fork(path.join(__dirname, 'kill-worker.cjs'), [String(f.id), String(id), String(acked[id])], { stdio: ['ignore', 'inherit', 'inherit'] });
    alive.set(id, child);
    lastProgress[id] = Date.now();
    child.on('message', (m) => {
      if (m.ack !== undefined) {
        acked[id] = Math.max(acked[id], m.ack);
        lastProgress[id] = Date.now();
      }
      if (m.error) failure = failure ?? `worker ${id}: ${m.error}`;
    });
    child.on('exit', (code, signal) => {
      if (alive.get(id) === child) alive.delete(id);
      // Only our SIGKILLs may end a worker: any other exit is a failure of the run.
      if (!killedByUs.has(child) && !stopping) failure = failure ?? `worker ${id} (pid ${child.pid}) exited on its own (code ${code}, signal ${signal})`;
      if (!stopping) setTimeout(() => spawn(id), Math.random() * 50);  // the postmaster restarts it
    });
  }
  let stopping = false;
  for (let id = 0; id < WORKERS; id++) spawn(id);

  const progressBar = () => {
    const s = ((Date.now() - started) / 1000).toFixed(0);
    process.stderr.write(`\rkills ${kills}/${KILLS}  acked ${acked.reduce((a, b) => a + b, 0)}  max stall ${maxStall} ms  ${s}s   `);
  };
  while (kills < KILLS && !failure && Date.now() - started < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 200));
    const ids = [...alive.keys()];
    if (ids.length === 0) continue;
    const victim = ids[Math.floor(Math.random() * ids.length)];
    const before = Date.now();
    killedByUs.add(alive.get(victim));
    alive.get(victim).kill('SIGKILL');
    kills++;
    // Survivors must keep making progress.
    await new Promise((r) => setTimeout(r, 300));
    for (const [id] of alive) {
      if (id === victim) continue;
      // Time since this survivor last acknowledged anything (it acks many times a second).
      maxStall = Math.max(maxStall, Date.now() - Math.max(lastProgress[id], before));
    }
    if (maxStall > STALL_MS) failure = `a surviving worker made no progress for ${maxStall} ms`;
    if (process.stderr.isTTY) progressBar();
    else if (kills % 25 === 0) process.stderr.write(`kills ${kills}/${KILLS}, max stall ${maxStall} ms\n`);
  }
  stopping = true;
  for (const [, c] of alive) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  // Quiesce: every orphan must be reaped or cancelled; nothing stays in flight.
  const deadline = Date.now() + 10000;
  while (pm.handlesInUse() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const leaked = pm.handlesInUse();
  if (leaked && !failure) failure = `${leaked} IO handles still in use after quiescing`;
  // Every acknowledged record is on disk, intact.
  const { checked, lost } = checkRecords(path.join(pm.dataDir, 'soak.dat'), acked);
  if (lost && !failure) failure = `${lost} acknowledged records missing or wrong`;
  const stats = pm.stats();
  await pm.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  const result = {
    scenario: 'kill', workload: 'raw', backend: pm.features.backend, workers: WORKERS, kills, seconds: (Date.now() - started) / 1000,
    acknowledgedRecordsChecked: checked, losses: lost, maxStallMs: maxStall, leakedHandles: leaked,
    deadProcessesCleaned: stats.deadProcessesCleaned, submitLockRepairs: stats.rings.reduce((a, r) => a + r.submitLockRepairs, 0),
    ok: !failure, failure, command: `${process.env.RINGMASTER_BACKEND === 'threads' ? 'RINGMASTER_BACKEND=threads ' : ''}npm run soak -- kill --workload raw --kills ${KILLS} --workers ${WORKERS}`,
    machine: { kernel: os.release(), cores: os.cpus().length, node: process.version },
  };
  if (process.stderr.isTTY) process.stderr.write('\n');
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  if (!process.env.SOAK_NO_RESULTS) fs.writeFileSync(path.join(__dirname, 'results', `kill-${result.backend}.json`), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result));
  process.exit(failure ? 1 : 0);
}

if (WORKLOAD === 'mixed') {
  require('./kill-mixed.cjs');  // runs on require; reads the same argv
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
