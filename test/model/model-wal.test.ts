// Model-based fuzzing of the WAL: random sequences of appends (small,
// multi-block and segment-crossing; serial and concurrent), flushes, checkpoints, misuse,
// clean restarts and crashes (SIGKILL of the whole host process group, optionally with
// commits in flight), run in a detached host postmaster (and a forked worker of it)
// against a model of the log. Checked: every append's LSN is exactly where the model puts
// it (monotonic, no gaps); a resolved flush(lsn) means the flushed LSN covers it and the
// records are in the segment files (scanned by this process); recovery replays exactly a
// prefix of the records since the last checkpoint's redo point, in LSN order, with their
// payloads, never fewer than were flushed; commits in flight at a crash either appear
// whole or not at all; misuse throws a coded error and appends nothing.
// Reproduce / explore: RINGMASTER_FC_SEED=<n> RINGMASTER_FC_RUNS=<n> npx vitest run test/model/model-wal.test.ts
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { constants as fsc } from 'node:fs';
import { Worker, backend, removeDir, rm, tempDir } from '../helpers';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { scanWal } = require('../../dist/wal/format.js');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { payload, sha1 } = require('../fixtures/model-wal-host.cjs');

const HOST = path.join(__dirname, '..', 'fixtures', 'model-wal-host.cjs');
const SEG = 64 << 10;            // segment files (bufferSize is 128 KiB: records up to 64 KiB)
const HDR = 24;
const SEED = Number(process.env.RINGMASTER_FC_SEED ?? 20240607);
const RUNS = process.env.RINGMASTER_FC_RUNS ? Number(process.env.RINGMASTER_FC_RUNS) : undefined;
// Exploring with many runs takes longer than the suite's 60 s default.
const TIMEOUT = Math.max(60000, (RUNS ?? 0) * 2000);

const align8 = (n: number) => (n + 7) & ~7;
const recLen = (size: number) => BigInt(align8(HDR + size));

type Proc = 'pm' | 'w';
interface Rec { id: number; kind: number; size: number; sha1: string; start: bigint; end: bigint }
type Cand = Omit<Rec, 'start' | 'end'>;
// [start, end) of the WAL written by a process killed mid-commit: any of `cands`, whole, or padding.
interface Gap { gap: true; start: bigint; end: bigint; cands: Cand[] }
type Item = Rec | Gap;
const isGap = (x: Item): x is Gap => 'gap' in x;
interface Got { lsn: bigint | string; kind: number; payload?: Uint8Array; len?: number; sha1?: string }
interface Model {
  recs: Item[];       // records since the redo point, LSN order: what recovery may replay
  insert: bigint;     // exact end of the WAL
  durable: bigint;    // highest LSN a resolved flush or checkpoint covered
  redo: bigint;
  nextId: number;
  procs: Proc[];
}
interface Host { child: ChildProcess; exited: Promise<{ code: number | null; signal: string | null }>; call: (cmd: string, args?: Record<string, unknown>) => Promise<any> }
interface Real { dir: string; dataDir: string; host: Host | null; withWorker: boolean; config: Record<string, unknown> }
type Cmd = fc.AsyncCommand<Model, Real>;

let live: Real | null = null;
afterEach(() => {
  if (live) killGroup(live);
  live = null;
});

function killGroup(r: Real): void {
  if (r.host?.child.pid) {
    try {
      process.kill(-r.host.child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function startHost(r: Real): Promise<Host> {
  const child = fork(HOST, ['host', r.dataDir, r.withWorker ? '1' : '0', JSON.stringify(r.config)], { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (v: any) => void; reject: (e: any) => void }>();
  let next = 1;
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => {
    for (const [, w] of waiting) w.reject(new Error(`host exited (${code ?? signal})`));
    waiting.clear();
    resolve({ code, signal });
  }));
  return new Promise((resolve, reject) => {
    child.on('message', (m: any) => {
      if (m?.event === 'ready') {
        resolve({ child, exited, call });
        return;
      }
      if (m?.event === 'error') reject(new Error(m.error));
      const w = waiting.get(m?.id);
      if (!w) return;
      waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(Object.assign(new Error(m.error.message), { code: m.error.code }));
    });
    exited.then(({ code, signal }) => reject(new Error(`host exited before ready (${code ?? signal})`)));
    function call(cmd: string, args: Record<string, unknown> = {}): Promise<any> {
      const id = next++;
      return new Promise((res, rej) => {
        waiting.set(id, { resolve: res, reject: rej });
        child.send({ id, cmd, args });
      });
    }
  });
}

const newRec = (m: Model, kind: number, size: number): Omit<Rec, 'start' | 'end'> => {
  const id = m.nextId++;
  return { id, kind, size, sha1: sha1(payload(id, size)) };
};

// After every command: the WAL ends exactly where the model says; flushed covers every
// resolved flush; nothing failed.
async function checkState(m: Model, r: Real, proc: Proc = 'pm'): Promise<void> {
  const st = await r.host!.call('state', { proc });
  expect(BigInt(st.insert), 'insert LSN').toBe(m.insert);
  expect(BigInt(st.flushed), 'flushed LSN covers every resolved flush').toBeGreaterThanOrEqual(m.durable);
  expect(BigInt(st.flushed)).toBeLessThanOrEqual(m.insert);
  expect(st.failed, `the WAL failed (errno ${st.errno})`).toBe(false);
}

// A log read back (user records in LSN order) against the model: a prefix of it, in
// order, with the payloads; inside a gap only whole candidates. Every record the model
// knows durable must be there. Returns the records proven (the model after a recovery).
function matchLog(items: Item[], got: Got[], durable: bigint, where: string): Rec[] {
  const kept: Rec[] = [];
  let j = 0;
  for (const it of items) {
    if (j >= got.length) break;
    if (!isGap(it)) {
      expectRec(it, got[j++], where);
      kept.push(it);
      continue;
    }
    const cands = [...it.cands];
    while (j < got.length && BigInt(got[j].lsn) < it.end) {
      const g = got[j++];
      const sha = g.sha1 ?? sha1(Buffer.from(g.payload!));
      const len = g.len ?? g.payload!.length;
      const i = cands.findIndex((c) => c.sha1 === sha && c.kind === g.kind && c.size === len);
      expect(i, `${where}: the record at ${g.lsn} is one that was in flight`).toBeGreaterThanOrEqual(0);
      const [c] = cands.splice(i, 1);
      const start = BigInt(g.lsn);
      expect(start, `${where}: in-flight record inside its gap`).toBeGreaterThanOrEqual(kept.length ? kept[kept.length - 1].end : it.start);
      kept.push({ ...c, start, end: start + recLen(c.size) });
      expect(kept[kept.length - 1].end).toBeLessThanOrEqual(it.end);
    }
  }
  expect(j, `${where}: records past the end of the model`).toBe(got.length);
  const ids = new Set(kept.map((x) => x.id));
  for (const it of items) {
    if (!isGap(it) && it.end <= durable) expect(ids.has(it.id), `${where}: flushed record #${it.id} (ends at ${it.end}, durable ${durable}) is missing`).toBe(true);
  }
  return kept;
}

// The segment files (read by this process) hold every record up to the durable LSN.
function checkDisk(m: Model, r: Real): void {
  const scan = scanWal(r.dataDir, SEG, Number(m.redo));
  matchLog(m.recs, scan.records.filter((x: any) => x.kind >= 1 && x.kind <= 8), m.durable, `on disk (scan stopped: ${scan.stop})`);
}

function expectRec(want: Rec, got: Got, where: string): void {
  expect(BigInt(got.lsn), `${where}: LSN of record #${want.id}`).toBe(want.start);
  expect(got.kind, `${where}: kind of record #${want.id}`).toBe(want.kind);
  const h = got.sha1 ?? sha1(Buffer.from(got.payload!));
  const len = got.len ?? got.payload!.length;
  expect(len, `${where}: length of record #${want.id}`).toBe(want.size);
  expect(h, `${where}: payload of record #${want.id}`).toBe(want.sha1);
}

// ---- commands ---------------------------------------------------------------------------

class Append implements Cmd {
  constructor(readonly proc: Proc, readonly kind: number, readonly size: number) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const rec = newRec(m, this.kind, this.size);
    const end = BigInt(await r.host!.call('append', { proc: this.proc, ...rec }));
    expect(end, 'append: end LSN right after the previous record').toBe(m.insert + recLen(this.size));
    m.recs.push({ ...rec, start: m.insert, end });
    m.insert = end;
    await checkState(m, r, this.proc);
  }
  toString() { return `append(${this.proc}, kind ${this.kind}, ${this.size} B)`; }
}

// Concurrent appends: the records tile the WAL with no gap or overlap.
class AppendMany implements Cmd {
  constructor(readonly proc: Proc, readonly sizes: number[]) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const items = this.sizes.map((s, i) => newRec(m, 1 + (i % 8), s));
    const ends: bigint[] = (await r.host!.call('appendMany', { proc: this.proc, items })).map(BigInt);
    const placed = items.map((it, i) => ({ ...it, end: ends[i], start: ends[i] - recLen(it.size) })).sort((a, b) => (a.start < b.start ? -1 : 1));
    let at = m.insert;
    for (const p of placed) {
      expect(p.start, 'concurrent appends tile the WAL').toBe(at);
      at = p.end;
    }
    m.recs.push(...placed);
    m.insert = at;
    await checkState(m, r, this.proc);
  }
  toString() { return `appendMany(${this.proc}, [${this.sizes}])`; }
}

class Flush implements Cmd {
  constructor(readonly proc: Proc, readonly pick: number | null) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const target = this.pick === null || m.recs.length === 0 ? m.insert : m.recs[this.pick % m.recs.length].end;  // a gap: its end
    const flushed = BigInt(await r.host!.call('flush', { proc: this.proc, lsn: this.pick === null ? undefined : target.toString() }));
    expect(flushed, 'flush resolved: the flushed LSN covers the target').toBeGreaterThanOrEqual(target);
    if (target > m.durable) m.durable = target;
    checkDisk(m, r);
    await checkState(m, r, this.proc);
  }
  toString() { return `flush(${this.proc}, ${this.pick === null ? 'all' : `#${this.pick}`})`; }
}

class Checkpoint implements Cmd {
  constructor(readonly proc: Proc) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const { before, ckpt } = await r.host!.call('checkpoint', { proc: this.proc });
    expect(BigInt(before)).toBe(m.insert);
    expect(BigInt(ckpt), 'the checkpoint record comes right after the last record').toBe(m.insert);
    m.redo = m.insert;
    m.insert += recLen(8);
    m.durable = m.insert;
    m.recs = [];  // everything before the redo point is never replayed again
    checkDisk(m, r);
    await checkState(m, r, this.proc);
  }
  toString() { return `checkpoint(${this.proc})`; }
}

const MISUSE: Record<string, string> = { 'too-big': 'ERR_OUT_OF_RANGE', 'flush-beyond': 'ERR_OUT_OF_RANGE', 'kind-0': 'ERR_OUT_OF_RANGE', 'kind-reserved': 'ERR_OUT_OF_RANGE' };
class Misuse implements Cmd {
  constructor(readonly proc: Proc, readonly what: string) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const res = await r.host!.call('bad', { proc: this.proc, what: this.what, size: 70000 });
    expect(res, this.toString()).toEqual({ code: MISUSE[this.what], moved: false });
    await checkState(m, r, this.proc);
  }
  toString() { return `misuse(${this.proc}, ${this.what})`; }
}

// SIGKILL of the host's whole process group (with `inflight` commits just issued), or a
// clean stop; then a new host recovers.
class Restart implements Cmd {
  constructor(readonly mode: 'crash' | 'stop', readonly proc: Proc, readonly inflight: number[]) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const host = r.host!;
    const pending = this.inflight.map((s, i) => newRec(m, 1 + (i % 8), s));
    if (pending.length) await host.call('inflight', { proc: this.proc, items: pending });
    if (this.mode === 'crash') {
      process.kill(-host.child.pid!, 'SIGKILL');
      await host.exited;
    } else {
      await host.call('stop');
      expect((await host.exited).code, 'clean stop').toBe(0);
    }
    r.host = null;
    r.host = await startHost(r);
    const rec = await r.host.call('recovery');
    expect(BigInt(rec.fromLsn), 'recovery starts at the redo point').toBe(m.redo);
    const got: Got[] = rec.records;
    // A prefix of the model's records (never short of the flushed ones), then only whole
    // commits that were in flight.
    const tail: Gap = { gap: true, start: m.insert, end: 1n << 62n, cands: pending };
    const kept = matchLog([...m.recs, tail], got, m.durable, 'replay');
    const at = kept.length ? kept[kept.length - 1].end : m.redo;
    const end = BigInt(rec.endLsn);
    expect(end, 'recovery ends after every replayed and durable record').toBeGreaterThanOrEqual(at > m.durable ? at : m.durable);
    expect(end).toBeLessThanOrEqual(at > m.insert ? at : m.insert);
    m.recs = kept;
    m.insert = end;
    if (at > m.durable) m.durable = at;  // replayed = on disk (the page cache survives SIGKILL)
    await checkState(m, r);
  }
  toString() { return `${this.mode}(${this.inflight.length ? `${this.inflight.length} in flight from ${this.proc}` : 'idle'})`; }
}

// SIGKILL of the worker alone, right after it issued `inflight` commits; the postmaster
// cleans its slot (pads a record it was copying) and forks a new worker. The WAL goes on:
// what the dead worker reserved becomes a gap of whole records or padding.
class KillWorker implements Cmd {
  constructor(readonly inflight: number[]) {}
  check(m: Model) { return m.procs.includes('w'); }
  async run(m: Model, r: Real) {
    const cands = this.inflight.map((s, i) => newRec(m, 1 + (i % 8), s));
    await r.host!.call('killWorker', { items: cands });
    const insert = BigInt((await r.host!.call('state', { proc: 'pm' })).insert);
    expect(insert).toBeGreaterThanOrEqual(m.insert);
    if (insert > m.insert) m.recs.push({ gap: true, start: m.insert, end: insert, cands });
    m.insert = insert;
    await checkState(m, r, 'w');
  }
  toString() { return `killWorker(${this.inflight.length} in flight)`; }
}

// Sizes: small, multi-block (> 4 KiB) and segment-crossing (up to 60 KiB of a 64 KiB segment).
const sizeArb = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 200 }) },
  { weight: 2, arbitrary: fc.integer({ min: 4000, max: 20000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 30000, max: 60000 }) },
);

function commands(procs: Proc[]) {
  const proc = fc.constantFrom(...procs);
  return fc.commands([
    fc.tuple(proc, fc.integer({ min: 1, max: 8 }), sizeArb).map(([p, k, s]) => new Append(p, k, s)),
    fc.tuple(proc, fc.integer({ min: 1, max: 8 }), sizeArb).map(([p, k, s]) => new Append(p, k, s)),
    fc.tuple(proc, fc.array(fc.integer({ min: 0, max: 6000 }), { minLength: 2, maxLength: 6 })).map(([p, s]) => new AppendMany(p, s)),
    fc.tuple(proc, fc.option(fc.nat(), { nil: null })).map(([p, k]) => new Flush(p, k)),
    proc.map((p) => new Checkpoint(p)),
    fc.tuple(proc, fc.constantFrom(...Object.keys(MISUSE))).map(([p, w]) => new Misuse(p, w)),
    // Kept small, so the in-flight appends never wait for buffer space (their order is then their call order).
    fc.tuple(fc.constantFrom<'crash' | 'stop'>('crash', 'crash', 'stop'), proc, fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 4 }))
      .map(([mode, p, s]) => new Restart(mode, p, mode === 'stop' ? [] : s)),
    fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 4 }).map((s) => new KillWorker(s)),
  ], { maxCommands: 25, size: 'max' });
}

async function runModel(procs: Proc[], numRuns: number): Promise<void> {
  const params = { seed: SEED, numRuns: RUNS ?? numRuns };
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.record({ direct: fc.boolean(), walSync: fc.constantFrom('fdatasync', 'dsync') }),
        commands(procs),
        async (config, cmds) => {
          const dir = tempDir('rm-model-wal-');
          const real: Real = { dir, dataDir: path.join(dir, 'data'), host: null, withWorker: procs.includes('w'), config };
          live = real;
          try {
            real.host = await startHost(real);
            const model: Model = { recs: [], insert: BigInt(SEG), durable: 0n, redo: BigInt(SEG), nextId: 1, procs };
            const rec = await real.host.call('recovery');
            expect(rec.records).toEqual([]);
            expect(BigInt(rec.endLsn)).toBe(model.insert);
            await fc.asyncModelRun(() => ({ model, real }), cmds);
            // At the end everything flushed is on disk.
            await real.host!.call('flush', { proc: 'pm' });
            model.durable = model.insert;
            checkDisk(model, real);
          } finally {
            killGroup(real);
            if (real.host) await real.host.exited;
            live = null;
            removeDir(dir);
          }
        },
      ),
      params,
    );
  } catch (e) {
    (e as Error).message = `[reproduce: RINGMASTER_FC_SEED=${params.seed} RINGMASTER_FC_RUNS=${params.numRuns}] ${(e as Error).message}`;
    throw e;
  }
}

describe('wal: model-based command sequences', () => {
  it('postmaster: appends, flushes, checkpoints, misuse, crashes and restarts match the model', async () => {
    await runModel(['pm'], 20);
 }, TIMEOUT);

  it('postmaster + a forked worker: commands in a randomly chosen process, crashes kill both', async () => {
    await runModel(['pm', 'w'], 15);
 }, TIMEOUT);
});

// Found by the model test above (direct: true, a checkpoint from a worker): a worker's
// environment did not know the postmaster's wal.direct / wal.walSync, so as flusher it
// wrote unaligned ranges to the O_DIRECT segment (EINVAL: the WAL failed for good), and a
// segment it opened lacked O_DIRECT/O_DSYNC (with 'dsync' the postmaster's later flushes
// to it sent no fdatasync: reported durable while only in the page cache).
describe('wal: a forked worker flushes with the postmaster\'s segment settings', () => {
  for (const [name, wal, flag, flagName] of [
    ['direct', { direct: true }, fsc.O_DIRECT, 'O_DIRECT'],
    ['dsync', { walSync: 'dsync' }, fsc.O_DSYNC, 'O_DSYNC'],
    ['direct + walSync dsync', { direct: true, walSync: 'dsync' }, fsc.O_DIRECT | fsc.O_DSYNC, 'O_DIRECT | O_DSYNC'],
  ] as const) {
    it(`wal.${name}: a worker's flushes, across a segment end, succeed and use ${flagName} segments`, async () => {
      const dir = tempDir('rm-wal-wk-');
      const pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, arenaSize: 2 << 20, wal: { segmentSize: SEG, bufferSize: 128 << 10, ...wal } } as any);
      const w = new Worker(pm.fork(path.join(__dirname, '..', 'fixtures', 'wal-worker.cjs'), []));
      try {
        await w.ready;
        await w.call('attach');
        // Odd sizes: unaligned record ends; 3 x 30000 B crosses into segment 2, which the worker opens.
        let last = '';
        for (const size of [100, 30001, 30003, 30005]) {
          last = await w.call('append', { data: 'x'.repeat(size) });
          expect(await w.call('flushCode', { lsn: last })).toBe('ok');
        }
        expect(pm.wal.failed).toBe(false);
        expect(BigInt(last)).toBeGreaterThan(BigInt(2 * SEG));
        const seg2 = await pm.wal._segmentFileId(BigInt(2 * SEG));
        expect(pm._native().fileInfo(seg2)!.flags & flag).toBe(flag);
        // The postmaster flushes into the worker-opened segment, then a checkpoint from the worker.
        await pm.wal.flush(await pm.wal.append(1, Buffer.alloc(77)));
        const scan = scanWal(pm.dataDir, SEG, SEG);
        expect(scan.records.filter((r: any) => r.kind === 1).length).toBe(5);
        expect(await w.call('checkpoint')).toMatch(/^\d+$/);
        expect(pm.wal.failed).toBe(false);
        await w.call('close');
      } finally {
        if (w.child.exitCode === null) await w.kill9();
        await pm.stop();
        removeDir(dir);
      }
    });
  }
});

// Found by the model test (direct: true, killWorker): io_uring completes the fdatasync
// linked after a dead worker's WAL write with EFAULT (issued from the task_work of an
// exiting task), and the reaper's completion action took that as an fsync failure: the
// WAL failed for good. Here the fdatasync's EFAULT is injected in a worker that dies the
// moment it submitted, so only the completion action sees it.
describe('wal: a dead issuer\'s EFAULT', () => {
  it('a worker killed as it submits its commit, whose fdatasync completes with EFAULT: the WAL does not fail and the next flush rewrites the record', async () => {
    const dir = tempDir('rm-wal-efault-');
    const pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, arenaSize: 2 << 20, wal: { segmentSize: SEG, bufferSize: 128 << 10, direct: false } } as any);
    const w = new Worker(pm.fork(path.join(__dirname, '..', 'fixtures', 'wal-worker.cjs'), []));
    try {
      await w.ready;
      await w.call('attach');
      expect(pm._native().debugSetFault(0, { opMask: 1 << 4, kind: 5, error: -14 })).toBe(true);
      w.call('commitAndDieAtSubmit', { data: 'dead issuer' }).catch(() => {});
      await w.exited;
      expect(pm._native().debugFaultFired(0)).toBe(1);
      pm._native().debugSetFault(0, null);
      expect(pm.wal.failed).toBe(false);
      await pm.wal.flush(await pm.wal.append(1, Buffer.from('after')));
      const got = scanWal(pm.dataDir, SEG, SEG).records.map((r: any) => Buffer.from(r.payload).toString());
      expect(got).toEqual(['dead issuer', 'after']);
    } finally {
      pm._native().debugSetFault(0, null);
      if (w.child.exitCode === null && w.child.signalCode === null) await w.kill9();
      await pm.stop();
      removeDir(dir);
    }
  });
});
