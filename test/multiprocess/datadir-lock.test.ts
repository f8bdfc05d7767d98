// One owner per data directory: a second postmaster (another process, or the same
// process twice) is refused with ERR_RINGMASTER_DATADIR_LOCKED naming the holder, before
// anything in the directory changes; the lock of a SIGKILLed postmaster is taken over,
// but not while workers it forked still run (they may still write); read-only tools
// work on a live directory. Real processes, real files, real kernel locks.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChildProcess, execFile, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { backend, removeDir, rm, tempDir, waitFor } from '../helpers';

const HOST = path.join(__dirname, '..', 'fixtures', 'datadir-host.cjs');
// Records of kind 1 are opaque to these tests: recovery skips them unless a test registers a handler.
const WAL = { segmentSize: 64 << 10, bufferSize: 64 << 10, onUnknownKind: 'skip' };

let dir: string;
let dataDir: string;
let pms: import('../../core/index').Postmaster[];
// Workers that are not this process's children (a host forked them): their pid and start
// time, so afterEach kills only them and never a later process given the same pid.
let procs: { pid: number; start: string | null }[];
let hosts: ChildProcess[];

beforeEach(() => {
  dir = tempDir('rm-datadir-');
  dataDir = path.join(dir, 'data');
  pms = [];
  procs = [];
  hosts = [];
});
afterEach(async () => {
  for (const { pid, start } of procs) {
    if (start === null || processStart(pid) !== start) continue;  // gone, or the pid is someone else's now
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const h of hosts) if (h.exitCode === null && h.signalCode === null) h.kill('SIGKILL');
  for (const pm of pms) await pm.stop();
  removeDir(dir);
});

async function start(extra: Record<string, unknown> = {}) {
  const pm = await rm.Postmaster.start({ dataDir, backend, arenaSize: 1 << 20, wal: WAL, ...extra } as any);
  pms.push(pm);
  return pm;
}

async function refused(p: Promise<unknown>): Promise<any> {
  const e: any = await p.then(() => null, (err) => err);
  expect(e, 'the second start must be refused').not.toBeNull();
  expect(e).toBeInstanceOf(rm.RingmasterError);
  expect(e.code).toBe('ERR_RINGMASTER_DATADIR_LOCKED');
  return e;
}

/** Every file under `root` with its size, mtime and content hash (the lock file by content only). */
function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) {
        out[path.relative(root, p) + '/'] = String(st.mtimeMs);
        walk(p);
        continue;
      }
      const hash = createHash('sha256').update(readFileSync(p)).digest('hex');
      out[path.relative(root, p)] = name === 'postmaster.pid' ? hash : `${st.size}:${st.mtimeMs}:${hash}`;
    }
  };
  walk(root);
  return out;
}

function host(args: string[]): { h: ChildProcess; next: (key: string) => Promise<any> } {
  const h = fork(HOST, [dataDir, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  hosts.push(h);
  const queue: any[] = [];
  const waiters: (() => void)[] = [];
  h.on('message', (m) => {
    queue.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (key: string): Promise<any> => {
    for (;;) {
      const i = queue.findIndex((m) => m && (key in m || 'refused' in m));
      if (i >= 0) return queue.splice(i, 1)[0];
      if (h.exitCode !== null || h.signalCode !== null) throw new Error(`host exited (${h.exitCode ?? h.signalCode}) before '${key}'`);
      await new Promise<void>((r) => {
        waiters.push(r);
        h.once('exit', () => r());
      });
    }
  };
  return { h, next };
}

function kill9(h: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (h.exitCode !== null || h.signalCode !== null) return resolve();
    h.once('exit', () => resolve());
    h.kill('SIGKILL');
  });
}

// The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or null if
// there is no such process: with the pid it names one process for good.
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** fds of `pid` that point at the data directory's lock file. */
function lockFds(pid: number): number {
  const lock = path.join(dataDir, 'postmaster.pid');
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === lock;
    } catch {
      return false;
    }
  }).length;
}

describe('one postmaster per data directory', () => {
  it('a second start in the same process is refused, naming the holder, and changes nothing in the directory', async () => {
    const pm = await start();
    await pm.wal.flush(await pm.wal.append(1, Buffer.from('first')));
    const f = await pm.files.open('table.0', { create: true });
    await pm.write(f, 0, Buffer.from('data'));
    const before = snapshot(dataDir);
    const e = await refused(rm.Postmaster.start({ dataDir, backend, arenaSize: 1 << 20, wal: WAL } as any));
    expect(e.message).toContain(`pid ${process.pid}`);
    expect(e.holder.pid).toBe(process.pid);
    expect(Date.parse(e.holder.startedAt)).toBeGreaterThan(0);
    expect(e.lockFile).toBe(path.join(pm.dataDir, 'postmaster.pid'));
    // Embedded open() is a postmaster too.
    await refused(rm.open({ dataDir, backend }));
    expect(snapshot(dataDir)).toEqual(before);
    // The first postmaster is unaffected.
    await pm.wal.flush(await pm.wal.append(1, Buffer.from('second')));
    expect(await pm.write(f, 4, Buffer.from('more'))).toBe(4);
  });

  it('two starts in one process at once: exactly one wins', async () => {
    const r = await Promise.allSettled([start(), start(), start()]);
    expect(r.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    for (const x of r) if (x.status === 'rejected') expect(x.reason.code).toBe('ERR_RINGMASTER_DATADIR_LOCKED');
  });

  it('stop() releases the directory: the next start works and the lock file names it', async () => {
    const pm = await start();
    await pm.stop();
    pms = [];
    expect(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8')).toBe('');  // a clean stop empties it
    const pm2 = await start();
    expect(readFileSync(path.join(pm2.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]).toBe(String(process.pid));
    // A failed start (bad module option) releases it too.
    await pm2.stop();
    pms = [];
    await expect(rm.Postmaster.start({ dataDir, backend, wal: { ...WAL, segmentSize: 128 << 10 } } as any)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_CONTROL' });
    await start();
  });

  it('two postmaster processes started at the same instant on a directory with a WAL: exactly one starts, the other gets the coded error', async () => {
    (await start()).wal;  // a WAL to recover: the refused one must not touch it
    await pms.pop()!.stop();
    for (let round = 0; round < 3; round++) {
      const a = host(['none', 'go']);
      const b = host(['none', 'go']);
      a.h.send({ go: true });
      b.h.send({ go: true });
      const [ra, rb] = await Promise.all([a.next('started'), b.next('started')]);
      const results = [ra, rb];
      expect(results.filter((m) => m.started)).toHaveLength(1);
      const loser = results.find((m) => m.refused)!;
      expect(loser.refused.code).toBe('ERR_RINGMASTER_DATADIR_LOCKED');
      const winner = results.find((m) => m.started)!;
      expect(loser.refused.message).toContain(`pid ${winner.started}`);
      for (const x of [a, b]) x.h.send({ stop: true });
      await Promise.all([a, b].map((x) => new Promise((r) => (x.h.exitCode !== null ? r(null) : x.h.once('exit', r)))));
    }
    // Every record both rounds' winners appended is still there.
    const found: string[] = [];
    await start({ wal: { ...WAL, redo: { 1: (r: any) => { found.push(r.payload.toString()); } } } });
    expect(found.filter((s) => s.startsWith('host '))).toHaveLength(3);
  });

  it("a SIGKILLed postmaster's lock is taken over (the kernel drops it with its holder)", async () => {
    const a = host(['none']);
    const m = await a.next('started');
    expect(m.started).toBe(a.h.pid);
    await refused(start());
    await kill9(a.h);
    const pm = await start();
    expect(readFileSync(path.join(pm.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]).toBe(String(process.pid));
  });

  it('a postmaster SIGKILLed while its worker lives on: refused (naming the worker) until the worker is gone, then taken over', async () => {
    const a = host(['stay']);
    await a.next('started');
    const { worker } = await a.next('worker');
    procs.push({ pid: worker, start: processStart(worker) });
    // The worker holds its own shared lock on the file, never the postmaster's fd.
    expect(lockFds(worker)).toBe(1);
    await kill9(a.h);
    expect(alive(worker)).toBe(true);
    const before = snapshot(dataDir);
    const e = await refused(start());
    expect(e.message).toMatch(/forked workers of an earlier postmaster/);
    expect(e.message).toContain(`pid ${a.h.pid}`);
    expect(e.holderPids).toContain(worker);
    expect(snapshot(dataDir)).toEqual(before);  // no recovery ran, nothing renamed or created
    process.kill(worker, 'SIGKILL');
    await waitFor(() => !alive(worker), 10000, 'the worker to die');
    await start();
  });

  it("a worker that follows README ('postmaster-exit' -> exit) frees the directory for the next postmaster by itself", async () => {
    const a = host(['readme']);
    await a.next('started');
    const { worker } = await a.next('worker');
    procs.push({ pid: worker, start: processStart(worker) });
    await kill9(a.h);
    await waitFor(() => !alive(worker), 10000, 'the worker to exit on postmaster-exit');
    await start();
  });

  it('a worker forked before its postmaster died and attaching after another postmaster took the directory is refused (ESHUTDOWN)', async () => {
    const a = host(['late']);
    await a.next('started');
    const { worker } = await a.next('worker');
    procs.push({ pid: worker, start: processStart(worker) });
    expect(lockFds(worker)).toBe(0);  // forked workers never inherit the postmaster's lock fd
    await kill9(a.h);
    await start();  // nothing holds the directory: the worker has not attached yet
    const result = path.join(dir, 'late-result.json');
    process.kill(worker, 'SIGUSR2');
    await waitFor(() => existsSync(result) && readFileSync(result, 'utf8').length > 0, 10000, 'the late attach');
    const r = JSON.parse(readFileSync(result, 'utf8'));
    expect(r).toMatchObject({ attached: false, code: 'ESHUTDOWN' });
    expect(r.message).toMatch(/no longer owns data directory/);
  });

  it('ringmaster waldump reads a live data directory', async () => {
    const pm = await start();
    await pm.wal.flush(await pm.wal.append(7, Buffer.from('live')));
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [path.join(__dirname, '..', '..', 'dist', 'wal', 'cli.js'), 'waldump', pm.dataDir], (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    expect(out).toMatch(/USER\(7\)/);
    expect(await pm.wal.append(1, Buffer.from('still the owner'))).toBeGreaterThan(0n);
  });

  it('a symlink planted as the lock file is refused, never followed', async () => {
    mkdirSync(dataDir, { recursive: true });
    const target = path.join(dir, 'victim.txt');
    writeFileSync(target, 'precious');
    symlinkSync(target, path.join(dataDir, 'postmaster.pid'));
    await expect(start()).rejects.toMatchObject({ code: 'ELOOP' });
    expect(readFileSync(target, 'utf8')).toBe('precious');
    expect(existsSync(path.join(dataDir, 'pg_wal'))).toBe(false);
  });
});
