'use strict';
// PostgreSQL as a TPC-B anchor: a throwaway cluster (initdb into a temp dir, Unix socket
// only, no TCP), `pgbench -b tpcb-like` against it at the same durability as ringmaster's
// durable commits (fsync = on, synchronous_commit = on, full_page_writes = on), then
// stopped and removed -- also when a run fails or the bench is interrupted.
//
// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user if
// there is one, else as `nobody` (setpriv), in a temp dir owned by that user. pgbench is a
// client: it runs as the bench's own user over the socket (trust authentication).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { round } = require('./common.cjs');

const PG_HINT = 'PostgreSQL server binaries (initdb, pg_ctl, postgres, pgbench) not found: apt-get install postgresql (Debian/Ubuntu) or dnf install postgresql-server postgresql-contrib, then rerun; the pgbench anchor is skipped';

function runSync(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: opts.timeout || 120000, ...opts });
  return { status: r.error ? null : r.status, out: `${r.stdout || ''}${r.stderr || ''}`.trim(), error: r.error };
}

function exe(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/** The directory holding initdb, pg_ctl, postgres and pgbench, or null. */
function findBinDir() {
  const dirs = [];
  if (process.env.PG_BINDIR) dirs.push(process.env.PG_BINDIR);
  for (const d of (process.env.PATH || '').split(':')) if (d) dirs.push(d);
  // Debian/Ubuntu keep the server binaries out of PATH, one directory per major version.
  for (const base of ['/usr/lib/postgresql']) {
    try {
      const versions = fs.readdirSync(base).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
      for (const v of versions) dirs.push(path.join(base, v, 'bin'));
    } catch { /* not installed */ }
  }
  try {
    for (const d of fs.readdirSync('/usr').filter((x) => /^pgsql-\d+$/.test(x)).sort().reverse()) dirs.push(path.join('/usr', d, 'bin'));
  } catch { /* none */ }
  for (const d of dirs) {
    if (['initdb', 'pg_ctl', 'postgres', 'pgbench'].every((b) => exe(path.join(d, b)))) {
      // A PATH entry may hold symlinks into the versioned directory: use the real one.
      try {
        return path.dirname(fs.realpathSync(path.join(d, 'postgres')));
      } catch {
        return d;
      }
    }
  }
  return null;
}

/** null if PostgreSQL can be used here, else why not (with the install hint). */
function pgUnavailable() {
  const bin = findBinDir();
  if (!bin) return PG_HINT;
  if (process.getuid && process.getuid() === 0 && runSync('setpriv', ['--version']).status !== 0) return 'running as root without setpriv (util-linux): cannot start PostgreSQL as another user';
  return null;
}

function userIds(name) {
  const u = runSync('id', ['-u', name]);
  const g = runSync('id', ['-g', name]);
  if (u.status !== 0 || g.status !== 0) return null;
  return { name, uid: Number(u.out), gid: Number(g.out) };
}

const live = new Set();
function cleanupAll() {
  for (const c of [...live]) c.stopSync();
}
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      cleanupAll();
      process.kill(process.pid, sig);
    });
  }
}

class PgCluster {
  constructor({ maxConnections = 100, sharedBuffers = '256MB' } = {}) {
    this.bin = findBinDir();
    if (!this.bin) throw new Error(PG_HINT);
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-pg-'));
    this.data = path.join(this.dir, 'data');
    this.log = path.join(this.dir, 'server.log');
    this.maxConnections = maxConnections;
    this.sharedBuffers = sharedBuffers;
    this.as = null;
    if (process.getuid && process.getuid() === 0) {
      this.as = userIds('postgres') || userIds('nobody');
      if (!this.as) throw new Error('running as root and there is neither a postgres nor a nobody user to run PostgreSQL as');
      fs.chmodSync(this.dir, 0o755);  // the socket must be reachable by pgbench (root) and the server user
      fs.chownSync(this.dir, this.as.uid, this.as.gid);
    }
    this.started = false;
    live.add(this);
    hookExit();
  }

  // A server-side command, as the server's user when we are root.
  #serverCmd(cmd, args) {
    if (!this.as) return [cmd, args];
    return ['setpriv', [`--reuid=${this.as.uid}`, `--regid=${this.as.gid}`, '--init-groups', '--inh-caps=-all', cmd, ...args]];
  }
  #server(bin, args, timeout = 300000) {
    const [c, a] = this.#serverCmd(path.join(this.bin, bin), args);
    const r = runSync(c, a, { cwd: this.dir, timeout, env: { ...process.env, LC_ALL: 'C', HOME: this.dir } });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.out.split('\n').slice(-4).join(' | ')}`);
    return r.out;
  }

  /** The settings the server runs with (reported beside the numbers). */
  settings() {
    return {
      fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', wal_sync_method: 'fdatasync (Linux default)',
      listen_addresses: "'' (Unix socket only)", max_connections: this.maxConnections, shared_buffers: this.sharedBuffers,
      // No checkpoint during a measured run (ringmaster does not checkpoint in its runs either).
      checkpoint_timeout: '1h', max_wal_size: '16GB',
    };
  }

  start() {
    this.#server('initdb', ['-D', this.data, '-U', 'bench', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    const opts = [
      "-c listen_addresses=''", `-c unix_socket_directories=${this.dir}`, '-c fsync=on', '-c synchronous_commit=on',
      '-c full_page_writes=on', `-c max_connections=${this.maxConnections}`, `-c shared_buffers=${this.sharedBuffers}`,
      '-c checkpoint_timeout=3600', '-c max_wal_size=16GB', '-c log_min_messages=warning',
    ].join(' ');
    this.started = true;
    this.#server('pg_ctl', ['-D', this.data, '-l', this.log, '-w', '-t', '120', '-o', opts, 'start'], 180000);
    this.version = this.#server('postgres', ['--version']).trim();
  }

  #pgbenchArgs(extra) {
    return [...extra, '-h', this.dir, '-U', 'bench', 'postgres'];
  }

  /** pgbench -i at `scale` (drops and recreates the pgbench tables). */
  async init(scale) {
    const r = await spawnAsync(path.join(this.bin, 'pgbench'), this.#pgbenchArgs(['-i', '-q', '-s', String(scale)]), { cwd: this.dir });
    if (r.code !== 0) throw new Error(`pgbench -i -s ${scale} failed (${r.code}): ${r.out.split('\n').slice(-4).join(' | ')}`);
    this.scale = scale;
  }

  /**
   * One measured pgbench run: `clients` sessions on `threads` pgbench threads for
   * `durationMs`, after a warm-up run of `warmupMs` (not counted). Latency percentiles come
   * from pgbench's per-transaction log.
   */
  async run({ clients, threads, durationMs, warmupMs = 0 }) {
    const base = ['-b', 'tpcb-like', '-c', String(clients), '-j', String(Math.max(1, Math.min(threads, clients)))];
    if (warmupMs > 0) await spawnAsync(path.join(this.bin, 'pgbench'), this.#pgbenchArgs([...base, '-n', '-T', String(Math.max(1, Math.round(warmupMs / 1000)))]), { cwd: this.dir });
    const logDir = fs.mkdtempSync(path.join(this.dir, 'log-'));
    const secs = Math.max(1, Math.round(durationMs / 1000));
    const args = this.#pgbenchArgs([...base, '-n', '-T', String(secs), '-l', `--log-prefix=${path.join(logDir, 'tx')}`]);
    const r = await spawnAsync(path.join(this.bin, 'pgbench'), args, { cwd: this.dir });
    try {
      if (r.code !== 0) return { error: `pgbench exited ${r.code}: ${r.out.split('\n').slice(-4).join(' | ')}` };
      const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(r.out) || /tps = ([\d.]+)/.exec(r.out);
      const lat = [];
      for (const f of fs.readdirSync(logDir)) {
        for (const line of fs.readFileSync(path.join(logDir, f), 'utf8').split('\n')) {
          const c = line.split(' ');
          if (c.length >= 3) lat.push(Number(c[2]));  // client, tx no, latency µs, ...
        }
      }
      lat.sort((a, b) => a - b);
      const pct = (p) => (lat.length ? round(lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)], 1) : null);
      const failed = /number of failed transactions: (\d+)/.exec(r.out);
      return {
        commitsPerSec: m ? round(Number(m[1])) : null, commits: lat.length, p50us: pct(50), p99us: pct(99),
        failedTransactions: failed ? Number(failed[1]) : 0, scale: this.scale, clients, threads: Number(base[5]),
        cmd: `pgbench ${args.join(' ')}`, server: this.version, settings: this.settings(),
      };
    } finally {
      fs.rmSync(logDir, { recursive: true, force: true });
    }
  }

  stopSync() {
    if (this.started) {
      try {
        const [c, a] = this.#serverCmd(path.join(this.bin, 'pg_ctl'), ['-D', this.data, '-m', 'immediate', '-w', '-t', '60', 'stop']);
        runSync(c, a, { cwd: this.dir, timeout: 90000 });
      } catch { /* best effort: the directory goes anyway */ }
      this.started = false;
    }
    try { fs.rmSync(this.dir, { recursive: true, force: true }); } catch { /* gone */ }
    live.delete(this);
  }
}

function spawnAsync(cmd, args, opts) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (e) => resolve({ code: null, out: String(e.message) }));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

module.exports = { PgCluster, pgUnavailable, findBinDir, PG_HINT };
