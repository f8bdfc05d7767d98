// Model-based fuzzing of the shared buffer pool: random command sequences
// (read, modify, prefetch, read-ahead stream, eviction pressure, flushAll, pins held across commands,
// file close/reopen, misuse) against a model Map (file:block -> page bytes + LSN), run
// by the postmaster alone and split between the postmaster and a REAL forked worker.
// Checked after every command: every page read matches the model, no pin or IO is left
// over, misuse throws a coded error and changes nothing; after flushAll the files on disk
// equal the model (bytes, LSN, valid checksum).
// Reproduce / explore: RINGMASTER_FC_SEED=<n> RINGMASTER_FC_RUNS=<n> npx vitest run test/model/model-bufferpool.test.ts
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, removeDir, rm, startPm, tempDir, pageImage } from '../helpers';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { makeOps } = require('../fixtures/model-bp-ops.cjs');

const OPS_FIXTURE = path.join(__dirname, '..', 'fixtures', 'model-bp-ops.cjs');
const PS = 4096;
const POOL = 6;           // buffers
const BLOCKS = 8;         // per file: 2 files = 16 pages > 6 buffers
const NAMES = ['a', 'b'];
const MAX_HOLDS = 2;      // pins kept across commands; leaves room for every other command
const SEED = Number(process.env.RINGMASTER_FC_SEED ?? 20240606);
const RUNS = process.env.RINGMASTER_FC_RUNS ? Number(process.env.RINGMASTER_FC_RUNS) : undefined;
// Exploring with many runs takes longer than the suite's 60 s default.
const TIMEOUT = Math.max(60000, (RUNS ?? 0) * 2000);

type Proc = 'pm' | 'w';
interface Model {
  pages: Map<string, { bytes: Buffer; lsn: bigint }>;  // bytes: the whole page; header bytes 8..16 ignored
  dirty: Set<string>;                                   // may be dirty (evictions clean some)
  held: { tag: string; proc: Proc; key: string }[];
  procs: Proc[];
  nextTag: number;
}
interface Real {
  dir: string;
  pm: import('../../core/index').Postmaster;
  files: import('../../core/index').FileHandle[];
  call: Record<Proc, (cmd: string, args?: Record<string, unknown>) => Promise<any>>;
  worker: Worker | null;
}
type Cmd = fc.AsyncCommand<Model, Real>;

const key = (f: number, b: number) => `${f}:${b}`;

const initialPage = (f: number, b: number): Buffer => pageImage(1 + f * BLOCKS + b, PS);

function freshModel(procs: Proc[]): Model {
  const pages = new Map<string, { bytes: Buffer; lsn: bigint }>();
  for (let f = 0; f < NAMES.length; f++) for (let b = 0; b < BLOCKS; b++) pages.set(key(f, b), { bytes: initialPage(f, b), lsn: 0n });
  return { pages, dirty: new Set(), held: [], procs, nextTag: 1 };
}

// Page contents equal the model: LSN in the header, every byte after it.
function expectPage(m: Model, k: string, got: { page: string; lsn: string }, where: string): void {
  const want = m.pages.get(k)!;
  const page = Buffer.from(got.page, 'base64');
  expect(BigInt(got.lsn), `${where}: LSN of ${k}`).toBe(want.lsn);
  if (Buffer.compare(page.subarray(16), want.bytes.subarray(16)) !== 0) {
    let i = 16;
    while (page[i] === want.bytes[i]) i++;
    expect.fail(`${where}: page ${k} differs from the model at byte ${i}: ${page[i]} != ${want.bytes[i]}`);
  }
}

// Quiescence: pins are exactly the held ones, no IO in flight, never more dirty than the model allows.
async function checkQuiet(m: Model, r: Real): Promise<void> {
  const s = r.pm.buffers.stats();
  expect(s.pinned, 'pinned buffers at quiescence').toBe(new Set(m.held.map((h) => h.key)).size);
  expect(s.ioInProgress, 'IO in progress at quiescence').toBe(0);
  expect(s.dirty, 'dirty buffers').toBeLessThanOrEqual(m.dirty.size);
}

function checkDisk(m: Model, r: Real): void {
  for (let f = 0; f < NAMES.length; f++) {
    const disk = readFileSync(path.join(r.pm.dataDir, NAMES[f]));
    for (let b = 0; b < BLOCKS; b++) {
      const page = Buffer.from(disk.subarray(b * PS, (b + 1) * PS));
      const want = m.pages.get(key(f, b))!;
      expect(page.readBigUInt64LE(0), `disk LSN of ${key(f, b)}`).toBe(want.lsn);
      expect(Buffer.compare(page.subarray(16), want.bytes.subarray(16)), `disk bytes of ${key(f, b)}`).toBe(0);
      const crc = page.readUInt32LE(8);
      expect(rm.setPageChecksum(page) >>> 0, `disk checksum of ${key(f, b)}`).toBe(crc >>> 0);
    }
  }
}

// ---- commands ---------------------------------------------------------------------------

class Read implements Cmd {
  constructor(readonly proc: Proc, readonly f: number, readonly b: number) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    expectPage(m, key(this.f, this.b), await r.call[this.proc]('read', { file: r.files[this.f].id, block: this.b }), this.toString());
    await checkQuiet(m, r);
  }
  toString() { return `read(${this.proc}, ${this.f}:${this.b})`; }
}

interface Edit { at: number; len: number; value: number }
class Modify implements Cmd {
  constructor(readonly proc: Proc, readonly f: number, readonly b: number, readonly edits: Edit[], readonly lsn: number) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    await r.call[this.proc]('modify', { file: r.files[this.f].id, block: this.b, edits: this.edits, lsn: String(this.lsn) });
    apply(m, this.f, this.b, this.edits, this.lsn);
    await checkQuiet(m, r);
  }
  toString() { return `modify(${this.proc}, ${this.f}:${this.b}, ${JSON.stringify(this.edits)}, lsn ${this.lsn})`; }
}

function apply(m: Model, f: number, b: number, edits: Edit[], lsn: number): void {
  const p = m.pages.get(key(f, b))!;
  for (const e of edits) p.bytes.fill(e.value, e.at, e.at + e.len);
  if (BigInt(lsn) > p.lsn) p.lsn = BigInt(lsn);
  m.dirty.add(key(f, b));
}

// Both processes change the same page at once, in disjoint byte ranges: the exclusive
// lock serialises them, so both changes survive.
class ParallelModify implements Cmd {
  constructor(readonly f: number, readonly b: number, readonly v1: number, readonly v2: number) {}
  check(m: Model) { return m.procs.includes('w'); }
  async run(m: Model, r: Real) {
    const e1 = [{ at: 1000, len: 100, value: this.v1 }];
    const e2 = [{ at: 3000, len: 100, value: this.v2 }];
    const file = r.files[this.f].id;
    await Promise.all([
      r.call.pm('modify', { file, block: this.b, edits: e1, lsn: '5' }),
      r.call.w('modify', { file, block: this.b, edits: e2, lsn: '6' }),
    ]);
    apply(m, this.f, this.b, e1, 5);
    apply(m, this.f, this.b, e2, 6);
    await checkQuiet(m, r);
  }
  toString() { return `parallelModify(${this.f}:${this.b}, ${this.v1}, ${this.v2})`; }
}

class Prefetch implements Cmd {
  constructor(readonly proc: Proc, readonly f: number, readonly blocks: number[]) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    await r.call[this.proc]('prefetch', { file: r.files[this.f].id, blocks: this.blocks });
    await checkQuiet(m, r);
    for (const b of this.blocks) expectPage(m, key(this.f, b), await r.call[this.proc]('read', { file: r.files[this.f].id, block: b }), this.toString());
  }
  toString() { return `prefetch(${this.proc}, ${this.f}, [${this.blocks}])`; }
}

class Pressure implements Cmd {
  constructor(readonly proc: Proc, readonly order: [number, number][]) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const got = await r.call[this.proc]('pressure', { reads: this.order.map(([f, b]) => ({ file: r.files[f].id, block: b })) });
    this.order.forEach(([f, b], i) => expectPage(m, key(f, b), got[i], this.toString()));
    await checkQuiet(m, r);
  }
  toString() { return `pressure(${this.proc}, ${this.order.length} pages)`; }
}

class Stream implements Cmd {
  constructor(readonly proc: Proc, readonly f: number, readonly from: number, readonly to: number, readonly depth: number) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const got = await r.call[this.proc]('stream', { file: r.files[this.f].id, from: this.from, to: this.to, depth: this.depth });
    expect(got.length).toBe(this.to - this.from);
    got.forEach((g: any, i: number) => expectPage(m, key(this.f, this.from + i), g, this.toString()));
    await checkQuiet(m, r);
  }
  toString() { return `stream(${this.proc}, ${this.f}, ${this.from}..${this.to}, depth ${this.depth})`; }
}

class FlushAll implements Cmd {
  constructor(readonly proc: Proc) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const n = await r.call[this.proc]('flushAll');
    expect(n).toBeLessThanOrEqual(m.dirty.size);
    m.dirty.clear();
    expect(r.pm.buffers.stats().dirty, 'dirty after flushAll').toBe(0);
    checkDisk(m, r);
    await checkQuiet(m, r);
  }
  toString() { return `flushAll(${this.proc})`; }
}

class Hold implements Cmd {
  constructor(readonly proc: Proc, readonly f: number, readonly b: number) {}
  check(m: Model) { return m.procs.includes(this.proc) && m.held.length < MAX_HOLDS; }
  async run(m: Model, r: Real) {
    const tag = `h${m.nextTag++}`;
    await r.call[this.proc]('hold', { file: r.files[this.f].id, block: this.b, tag });
    m.held.push({ tag, proc: this.proc, key: key(this.f, this.b) });
    await checkQuiet(m, r);
  }
  toString() { return `hold(${this.proc}, ${this.f}:${this.b})`; }
}

class Unhold implements Cmd {
  constructor(readonly pick: number) {}
  check(m: Model) { return m.held.length > 0; }
  async run(m: Model, r: Real) {
    const [h] = m.held.splice(this.pick % m.held.length, 1);
    await r.call[h.proc]('unhold', { tag: h.tag });
    await checkQuiet(m, r);
  }
  toString() { return `unhold(#${this.pick})`; }
}

// Another handle on the same file, then the old one closed: the file never left the
// table, so its id and its cached pages stay.
class Reopen implements Cmd {
  constructor(readonly f: number) {}
  check() { return true; }
  async run(m: Model, r: Real) {
    const old = r.files[this.f];
    const h = await r.pm.files.open(NAMES[this.f]);
    expect(h.id).toBe(old.id);
    await old.close();
    r.files[this.f] = h;
    await checkQuiet(m, r);
  }
  toString() { return `reopen(${this.f})`; }
}

// flushAll, close the last handle (the file leaves the table), open it again.
class CloseReopen implements Cmd {
  constructor(readonly f: number) {}
  check(m: Model) { return m.held.length === 0; }
  async run(m: Model, r: Real) {
    await r.pm.buffers.flushAll();
    m.dirty.clear();
    await r.files[this.f].close();
    r.files[this.f] = await r.pm.files.open(NAMES[this.f]);
    checkDisk(m, r);
    await checkQuiet(m, r);
  }
  toString() { return `closeReopen(${this.f})`; }
}

const MISUSE: Record<string, string> = {
  'double-release': 'ERR_RINGMASTER_BUFFER_RELEASED',
  'unlock-unlocked': 'ERR_RINGMASTER_NOT_LOCKED',
  'markdirty-unlocked': 'ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE',
  'markdirty-shared': 'ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE',
  'lock-twice': 'ERR_RINGMASTER_LOCK_HELD',
  'lock-released': 'ERR_RINGMASTER_BUFFER_RELEASED',
  'negative-block': 'ERR_OUT_OF_RANGE',
  'huge-block': 'ERR_OUT_OF_RANGE',
  'past-eof': 'ERR_RINGMASTER_PAST_EOF',
  'bad-file': 'ERR_RINGMASTER_BAD_FILE',
};

class Misuse implements Cmd {
  constructor(readonly proc: Proc, readonly what: string, readonly f: number, readonly b: number) {}
  check(m: Model) { return m.procs.includes(this.proc); }
  async run(m: Model, r: Real) {
    const dirty = r.pm.buffers.stats().dirty;
    const block = this.what === 'past-eof' ? BLOCKS + 100 + this.b : this.b;
    expect(await r.call[this.proc]('bad', { what: this.what, file: r.files[this.f].id, block }), this.toString()).toBe(MISUSE[this.what]);
    // (The read it makes may evict, i.e. write back, a dirty page: never more dirty.)
    expect(r.pm.buffers.stats().dirty, 'misuse dirtied a page').toBeLessThanOrEqual(dirty);
    await checkQuiet(m, r);
    // ... and the page it touched is still exactly the model's.
    expectPage(m, key(this.f, this.b), await r.call[this.proc]('read', { file: r.files[this.f].id, block: this.b }), this.toString());
  }
  toString() { return `misuse(${this.proc}, ${this.what}, ${this.f}:${this.b})`; }
}

function commands(procs: Proc[]) {
  const proc = fc.constantFrom(...procs);
  const file = fc.integer({ min: 0, max: NAMES.length - 1 });
  const block = fc.integer({ min: 0, max: BLOCKS - 1 });
  const edit = fc.record({ at: fc.integer({ min: 16, max: PS - 64 }), len: fc.integer({ min: 1, max: 64 }), value: fc.integer({ min: 0, max: 255 }) });
  // LSN 0: markDirty() without an LSN (the page keeps its LSN).
  const lsnArb = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1000 }));
  const all: [number, number][] = [];
  for (let f = 0; f < NAMES.length; f++) for (let b = 0; b < BLOCKS; b++) all.push([f, b]);
  const list: fc.Arbitrary<Cmd>[] = [
    fc.tuple(proc, file, block).map(([p, f, b]) => new Read(p, f, b)),
    fc.tuple(proc, file, block, fc.array(edit, { minLength: 1, maxLength: 3 }), lsnArb).map(([p, f, b, e, l]) => new Modify(p, f, b, e, l)),
    fc.tuple(proc, file, block, fc.array(edit, { minLength: 1, maxLength: 3 }), lsnArb).map(([p, f, b, e, l]) => new Modify(p, f, b, e, l)),
    fc.tuple(proc, file, fc.uniqueArray(block, { minLength: 1, maxLength: POOL - MAX_HOLDS })).map(([p, f, bs]) => new Prefetch(p, f, bs)),
    fc.tuple(proc, fc.shuffledSubarray(all, { minLength: POOL + 1 })).map(([p, o]) => new Pressure(p, o)),
    proc.map((p) => new FlushAll(p)),
    // depth <= free buffers: the stream's own pins must fit next to the held ones.
    fc.tuple(proc, file, block, block, fc.integer({ min: 1, max: POOL - MAX_HOLDS - 1 }))
      .map(([p, f, a, b, d]) => new Stream(p, f, Math.min(a, b), Math.max(a, b) + 1, d)),
    fc.tuple(proc, file, block).map(([p, f, b]) => new Hold(p, f, b)),
    fc.nat().map((i) => new Unhold(i)),
    file.map((f) => new Reopen(f)),
    file.map((f) => new CloseReopen(f)),
    fc.tuple(proc, fc.constantFrom(...Object.keys(MISUSE)), file, block).map(([p, w, f, b]) => new Misuse(p, w, f, b)),
  ];
  if (procs.includes('w')) {
    list.push(fc.tuple(file, block, fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([f, b, x, y]) => new ParallelModify(f, b, x, y)));
  }
  return fc.commands(list, { maxCommands: 60, size: 'max' });
}

async function setup(procs: Proc[]): Promise<Real> {
  const dir = tempDir('rm-model-bp-');
  const pm = await startPm(dir, { arenaSize: 1 << 20, bufferPool: { pages: POOL, pageSize: PS } });
  pm.buffers.configure({ pinWaitMs: 20000 });
  const files = [];
  for (let f = 0; f < NAMES.length; f++) {
    writeFileSync(path.join(pm.dataDir, NAMES[f]), Buffer.concat(Array.from({ length: BLOCKS }, (_, b) => initialPage(f, b))));
    files.push(await pm.files.open(NAMES[f]));
  }
  const local = makeOps(() => pm);
  const real: Real = {
    dir, pm, files, worker: null,
    call: {
      pm: (cmd, args = {}) => local[cmd](args),
      w: () => Promise.reject(new Error('no worker')),
    },
  };
  if (procs.includes('w')) {
    const w = new Worker(pm.fork(OPS_FIXTURE, []));
    real.worker = w;
    await w.ready;
    await w.call('attach');
    real.call.w = (cmd, args = {}) => w.call(cmd, args);
  }
  return real;
}

async function teardown(r: Real, failed: boolean): Promise<void> {
  try {
    if (r.worker && r.worker.child.exitCode === null) {
      if (failed) await r.worker.kill9();
      else {
        await r.worker.call('close');
        r.worker.child.disconnect();
        await r.worker.exited;
      }
    }
    await r.pm.stop();
  } finally {
    removeDir(r.dir);
  }
}

async function runModel(procs: Proc[], numRuns: number): Promise<void> {
  const params = { seed: SEED, numRuns: RUNS ?? numRuns };
  try {
    await fc.assert(
      fc.asyncProperty(commands(procs), async (cmds) => {
        const real = await setup(procs);
        let failed = true;
        try {
          const model = freshModel(procs);
          await fc.asyncModelRun(() => ({ model, real }), cmds);
          // Quiescence at the end: give every pin back, write everything, compare the disk.
          for (const h of model.held.splice(0)) await real.call[h.proc]('unhold', { tag: h.tag });
          await real.pm.buffers.flushAll();
          model.dirty.clear();
          checkDisk(model, real);
          await checkQuiet(model, real);
          failed = false;
        } finally {
          await teardown(real, failed);
        }
      }),
      params,
    );
  } catch (e) {
    (e as Error).message = `[reproduce: RINGMASTER_FC_SEED=${params.seed} RINGMASTER_FC_RUNS=${params.numRuns}] ${(e as Error).message}`;
    throw e;
  }
}

describe('buffer pool: model-based command sequences', () => {
  it('postmaster alone: random reads, changes, prefetches, eviction pressure, flushes, pins, reopen, misuse match the model', async () => {
    await runModel(['pm'], 100);
 }, TIMEOUT);

  it('postmaster + a forked worker: each command runs in a randomly chosen process; cross-process changes match the model', async () => {
    await runModel(['pm', 'w'], 40);
 }, TIMEOUT);
});
