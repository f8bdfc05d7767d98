// The shipped types (dist/**/*.d.ts) as a TypeScript user meets them: no `any` anywhere,
// typed events (each event's listener arguments; an unknown event name is an error),
// typed stats(), and the day-one API (LSN helpers, dataDir, whenAttached, stop options,
// read modes). A consumer resolved through the package's "exports" map is compiled with
// `strict`, as CommonJS and as an ES module; every `@ts-expect-error` must be needed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { REPO, consumerApp, removeDir, strictConsumerOptions } from '../helpers';

const DIST = path.join(REPO, 'dist');

let dir: string;
let app: string;
beforeAll(() => {
  ({ dir, app } = consumerApp('rm-types-'));
});
afterAll(() => removeDir(dir));

function declarationFiles(d: string): string[] {
  return readdirSync(d).flatMap((n) => {
    const p = path.join(d, n);
    if (statSync(p).isDirectory()) return declarationFiles(p);
    return n.endsWith('.d.ts') ? [p] : [];
  });
}

const CONSUMER = `
import {
  Postmaster, attach, open, lsnToString, lsnFromString,
  type RingmasterStats, type ProcessStats, type RingStats, type ProcessExit, type ShutdownCheckpoint,
  type WorkerFailure, type WorkerAttached, type StopOptions, type WalOptions, type RecoveryInfo,
} from 'ringmaster';

export async function consumer(): Promise<void> {
  const wal: WalOptions = { onUnknownKind: 'skip', redo: { 1: (r) => { const k: number = r.kind; void k; } } };
  const pm = await Postmaster.start({ dataDir: 'x', bufferPool: { pages: 8 }, wal });
  pm.on('exit', (e) => { const x: ProcessExit = e; const a: boolean = e.attached; const b: number = e.tornPages.length; void x; void a; void b; });
  pm.on('worker-failed', (f) => { const x: WorkerFailure = f; const c: string = f.error.code; const p: number | undefined = f.pid; void x; void c; void p; });
  pm.on('worker-attached', (w) => { const s: number = w.slot; void s; });
  pm.on('shutdown-checkpoint', (r) => { const x: ShutdownCheckpoint = r; const k: 'checkpoint' | 'pages' | 'wal-flush' = r.kind; const l: bigint | null = r.lsn; void x; void k; void l; });
  pm.on('pages-torn', (i) => { const b: number = i.pages[0].block; const p: number = i.pid; void b; void p; });
  pm.on('wal-failed', (e) => { const c: string = e.code; void c; });
  pm.once('corruption', (r) => { const ok: boolean = r.ok; void ok; });
  pm.once('close', () => {});
  pm.off('close', () => {});
  // @ts-expect-error not an event of the postmaster
  pm.on('no-such-event', () => {});
  // @ts-expect-error 'exit' hands a ProcessExit, not a string
  pm.on('exit', (e: string) => { void e; });
  // @ts-expect-error 'close' has no arguments
  pm.on('close', (x: number) => { void x; });

  const st: RingmasterStats = pm.stats();
  const ring: RingStats | undefined = st.rings[0];
  const proc: ProcessStats | undefined = st.processes[0];
  const n: number = st.handlesInUse + (ring ? ring.sqes + ring.corruptCqes : 0) + (proc ? proc.submitted + proc.reaped : 0);
  const kind: 'postmaster' | 'forked' | 'thread' | undefined = proc?.kind;
  void n; void kind;
  // @ts-expect-error stats() is not any
  void st.noSuchCounter;

  const dataDir: string = pm.dataDir;
  void dataDir;
  const child = pm.fork('./worker.js', [], { serialization: 'advanced' });
  const attached: WorkerAttached = await pm.whenAttached(child, { timeoutMs: 1000 });
  void attached;

  const lsn: bigint = await pm.wal.append(1, new Uint8Array(1));
  const text: string = lsnToString(lsn);
  const back: bigint = lsnFromString(text);
  await pm.wal.flush(back);
  await pm.wal.flush(Number(back));
  const rec: RecoveryInfo | null = pm.wal.recovery;
  const skipped: number | undefined = rec?.skipped;
  void skipped;

  const b = await pm.buffers.read(0, 1, { mode: 'extend' });
  b.release();
  // @ts-expect-error not a read mode
  await pm.buffers.read(0, 1, { mode: 'create' });

  const stop: StopOptions = { checkpoint: false, timeoutMs: 1000 };
  await pm.stop(stop);
  // @ts-expect-error checkpoint is a boolean
  await pm.stop({ checkpoint: 'yes' });

  const db = await attach();
  db.on('stop', () => {});
  db.on('postmaster-exit', () => {});
  db.on('wal-failed', (e) => { void e.message; });
  // @ts-expect-error a worker's handle has no 'exit' event (that is the postmaster's)
  db.on('exit', () => {});
  const workerDir: string = db.dataDir;
  void workerDir;

  const embedded = await open({ dataDir: 'y' });
  await embedded.close({ checkpoint: true });
}
`;

describe('public types', () => {
  it('no declaration file in dist/ uses `any`', () => {
    const files = declarationFiles(DIST);
    expect(files.length).toBeGreaterThan(5);
    const found: string[] = [];
    for (const f of files) {
      const src = ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.ES2022, true);
      const visit = (node: ts.Node) => {
        if (node.kind === ts.SyntaxKind.AnyKeyword) {
          const { line } = src.getLineAndCharacterOfPosition(node.getStart());
          found.push(`${path.relative(REPO, f)}:${line + 1}: ${node.parent.getText().slice(0, 100)}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(src);
    }
    expect(found).toEqual([]);
  });

  it('a strict consumer type-checks: typed events, typed stats, the LSN helpers, dataDir, whenAttached, stop and read options', () => {
    const files = [path.join(app, 'consumer.ts'), path.join(app, 'consumer.mts')];
    for (const f of files) writeFileSync(f, CONSUMER);
    const options = strictConsumerOptions(ts);
    const host = ts.createCompilerHost(options);
    for (const f of files) expect(ts.resolveModuleName('ringmaster', f, options, host).resolvedModule?.resolvedFileName).toBe(path.join(DIST, 'core', 'index.d.ts'));
    const program = ts.createProgram(files, options, host);
    const diags = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file ? `${path.basename(d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : '';
      return where + ts.flattenDiagnosticMessageText(d.messageText, '\n');
    });
    expect(diags).toEqual([]);
  });
});
