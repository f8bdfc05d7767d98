#!/usr/bin/env node
// Power-cut recovery soak: `npm run soak -- crash [--rounds N] [--workers W] [--tear]`.
// Each round: a postmaster with a WAL and W committing workers runs; the whole process
// group is SIGKILLed at a random moment (a power cut, as far as the WAL knows, except
// that written pages stay in the page cache); with --tear, bytes of the WAL past the
// last acknowledged LSN are flipped or the segment is truncated there (a torn tail);
// then a new postmaster recovers. The recovered records must include every
// acknowledged one (never less), may include unacknowledged ones, and nothing else.
// Acknowledgements are logged to acks.log beside the data directory. Writes soak/results/crash-<backend>.json.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const rm = require(path.join(__dirname, '..'));

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const ROUNDS = opt('rounds', 50);
const WORKERS = opt('workers', 3);
const TEAR = args.includes('--tear');
const SEG = 256 << 10;
const backend = process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'auto';

// The controller, outside the process group it kills, appends every acknowledgement to
// acks.log (next to the data directory, never inside it) as it arrives; the checks read
// the round's acknowledgements back from that file. A failed run keeps both for a look.
function runRound(dataDir, acked, written, round, ackFd) {
  return new Promise((resolve, reject) => {
    const host = fork(path.join(__dirname, 'crash-host.cjs'), [dataDir, String(WORKERS), String(SEG), String(round)], { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const target = 20 + Math.floor(Math.random() * 400);
    let n = 0;
    let maxLsn = 0n;
    const timer = setTimeout(() => finish(new Error(`only ${n} acks in 30 s`)), 30000);
    function finish(err) {
      clearTimeout(timer);
      try { process.kill(-host.pid, 'SIGKILL'); } catch { /* gone */ }
      host.once('exit', () => (err ? reject(err) : resolve(maxLsn)));
      if (host.exitCode !== null || host.signalCode !== null) err ? reject(err) : resolve(maxLsn);
    }
    host.on('message', (m) => {
      if (m.error) return finish(new Error(m.error));
      if (m.ack) {
        fs.writeSync(ackFd, `${round} ${m.ack} ${m.lsn}\n`);
        acked.add(m.ack);
        written.add(m.ack);
        const l = BigInt(m.lsn);
        if (l > maxLsn) maxLsn = l;
        if (++n === target) finish(null);  // the power cut: the whole group, at once
      }
    });
  });
}

function tearTail(dataDir, maxAckedLsn) {
  // Damage only bytes after the last acknowledged record: those may be lost, nothing before.
  const walDir = path.join(dataDir, 'pg_wal');
  const segno = Number(maxAckedLsn / BigInt(SEG));
  const file = path.join(walDir, rm.segmentName(segno));
  if (!fs.existsSync(file)) return 'none';
  const off = Number(maxAckedLsn % BigInt(SEG));
  const size = fs.statSync(file).size;
  if (off >= size) return 'none';
  if (Math.random() < 0.5) {
    fs.truncateSync(file, off + Math.floor(Math.random() * Math.min(64, size - off)));
    return 'truncate';
  }
  const fd = fs.openSync(file, 'r+');
  for (let k = 0; k < 4; k++) {
    const at = off + Math.floor(Math.random() * Math.min(512, size - off));
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, at);
    b[0] ^= 0xff;
    fs.writeSync(fd, b, 0, 1, at);
  }
  fs.closeSync(fd);
  return 'flip';
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-soak-crash-'));
  const dataDir = path.join(dir, 'data');
  const ackLog = path.join(dir, 'acks.log');
  const ackFd = fs.openSync(ackLog, 'a', 0o600);
  const ackedInRound = (round) => new Set(fs.readFileSync(ackLog, 'latin1').split('\n')
    .filter((l) => l.startsWith(`${round} `)).map((l) => l.split(' ')[1]));
  const acked = new Set();             // every acknowledged record, all rounds
  let sinceCheckpoint = new Set();     // durable records a recovery must replay again
  const started = Date.now();
  let failure = null;
  let recoveredTotal = 0;
  let unacknowledgedRecovered = 0;
  const tears = { none: 0, truncate: 0, flip: 0 };
  for (let round = 0; round < ROUNDS && !failure; round++) {
    const seen = new Set();
    const written = new Set();
    let maxLsn;
    try {
      maxLsn = await runRound(dataDir, seen, written, round, ackFd);
    } catch (e) {
      failure = `round ${round}: ${e.message}`;
      break;
    }
    const roundAcked = ackedInRound(round);
    if (roundAcked.size !== seen.size) {
      failure = `round ${round}: the ack log has ${roundAcked.size} acknowledgements, ${seen.size} arrived`;
      break;
    }
    if (TEAR) tears[tearTail(dataDir, maxLsn)]++;
    const found = new Set();
    let pm;
    try {
      pm = await rm.Postmaster.start({
        dataDir, arenaSize: 4 << 20, backend,
        wal: { segmentSize: SEG, bufferSize: 256 << 10, redo: { 1: (r) => found.add(r.payload.toString().replace(/\.+$/, '')) } },
      });
    } catch (e) {
      failure = `round ${round}: recovery failed: ${e.message}`;
      break;
    }
    // Every record acknowledged in this round is replayed now; so is everything durable
    // since the last checkpoint (it is replayed again: history never shrinks);
    // unacknowledged records may appear (durable before the cut); nothing else may.
    const missing = [...roundAcked].filter((id) => !found.has(id));
    const shrunk = [...sinceCheckpoint].filter((id) => !found.has(id));
    const foreign = [...found].filter((id) => !/^r\d+w\d+:\d+$/.test(id));
    recoveredTotal += found.size;
    unacknowledgedRecovered += [...found].filter((id) => !roundAcked.has(id) && !sinceCheckpoint.has(id)).length;
    for (const id of roundAcked) acked.add(id);
    for (const id of found) sinceCheckpoint.add(id);
    if (missing.length) failure = `round ${round}: ${missing.length} acknowledged records lost (e.g. ${missing.slice(0, 3).join(', ')})`;
    if (shrunk.length) failure = `round ${round}: ${shrunk.length} records durable earlier are gone (e.g. ${shrunk[0]})`;
    if (foreign.length) failure = `round ${round}: ${foreign.length} records that were never written (e.g. ${foreign[0]})`;
    // A checkpoint now and then: later recoveries start from it.
    if (!failure && round % 5 === 4) {
      await pm.wal.checkpoint();
      sinceCheckpoint = new Set();
    }
    await pm.stop();
    process.stderr.write(`round ${round + 1}/${ROUNDS}: ${roundAcked.size} acknowledged (${acked.size} in all), ${found.size} replayed${TEAR ? `, tear ${JSON.stringify(tears)}` : ''}\n`);
  }
  fs.closeSync(ackFd);
  if (failure) process.stderr.write(`kept for inspection: ${dir} (data/ and acks.log)\n`);
  else fs.rmSync(dir, { recursive: true, force: true });
  const result = {
    scenario: TEAR ? 'crash+tear' : 'crash', backend: backend === 'threads' ? 'threads' : 'io_uring', rounds: ROUNDS, workers: WORKERS,
    acknowledgedRecordsChecked: acked.size, losses: failure && /lost|gone/.test(failure) ? Number(failure.split(': ')[1].split(' ')[0]) : 0,
    unacknowledgedRecovered, tears: TEAR ? tears : undefined, seconds: (Date.now() - started) / 1000,
    ok: !failure, failure, command: `${backend === 'threads' ? 'RINGMASTER_BACKEND=threads ' : ''}npm run soak -- crash --rounds ${ROUNDS} --workers ${WORKERS}${TEAR ? ' --tear' : ''}`,
    machine: { kernel: os.release(), cores: os.cpus().length, node: process.version },
  };
  if (!process.env.SOAK_NO_RESULTS) {
    fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'results', `${result.scenario}-${result.backend}.json`), JSON.stringify(result, null, 2));
  }
  console.log(JSON.stringify(result));
  process.exit(failure ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
