// One table of every ERR_RINGMASTER_* code (core/error-codes.ts): every code the
// TypeScript or the C++ sources can raise is in it and in README's errors table, and
// neither lists a code nothing raises. Error messages name the file where the process
// knows it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { backend, removeDir, rm, tempDir } from '../helpers';

const REPO = path.resolve(__dirname, '..', '..');
const CODE = /\bERR_RINGMASTER(?:_[A-Z0-9]+)*\b/g;

function sources(): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|cc|h|cjs|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push({ file: path.relative(REPO, p), text: readFileSync(p, 'utf8') });
    }
  };
  for (const d of ['core', 'wal', 'bufferpool', 'native']) walk(path.join(REPO, d));
  return out;
}

function readmeCodes(): string[] {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf('The `ERR_RINGMASTER_*` codes');
  expect(start, "README has the errors table").toBeGreaterThan(0);
  const table = readme.slice(start, readme.indexOf('\n\n', readme.indexOf('| code | when |', start)));
  return [...table.matchAll(/^\| `(ERR_RINGMASTER[A-Z0-9_]*)` \|/gm)].map((m) => m[1]);
}

describe('error codes: one table', () => {
  it('every code used in core/, wal/, bufferpool/ and native/ is in ERROR_CODES', () => {
    const table = new Set(Object.keys(rm.ERROR_CODES));
    const missing: string[] = [];
    for (const { file, text } of sources()) {
      if (file === path.join('core', 'error-codes.ts')) continue;
      // 'ERR_RINGMASTER_*' in prose is the family, not a code.
      for (const m of text.replace(/ERR_RINGMASTER_\*/g, '').matchAll(CODE)) if (!table.has(m[0])) missing.push(`${m[0]} (${file})`);
    }
    expect(missing).toEqual([]);
  });

  it("README's errors table lists exactly the codes of ERROR_CODES", () => {
    expect(readmeCodes().sort()).toEqual(Object.keys(rm.ERROR_CODES).sort());
  });

  it('no code in the table is dead: each is raised somewhere in the sources', () => {
    const used = new Set<string>();
    for (const { file, text } of sources()) {
      if (file === path.join('core', 'error-codes.ts')) continue;
      for (const m of text.matchAll(CODE)) used.add(m[0]);
    }
    expect(Object.keys(rm.ERROR_CODES).filter((c) => !used.has(c))).toEqual([]);
  });

  it('every entry says when it happens', () => {
    for (const [code, when] of Object.entries(rm.ERROR_CODES)) expect((when as string).length, code).toBeGreaterThan(20);
  });
});

describe('error messages name the file', () => {
  let dir: string;
  let pm: import('../../core/index').Postmaster;
  beforeEach(async () => {
    dir = tempDir('rm-errcodes-');
    pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, arenaSize: 1 << 20 } as any);
  });
  afterEach(async () => {
    await pm.stop();
    removeDir(dir);
  });

  it('an IO error names the path and offset, by handle or by id', async () => {
    const f = await pm.files.open('table.0', { create: true });
    const OP_WRITE = 2;
    pm._native().debugSetFault(0, { opMask: 1 << OP_WRITE, fileSlot: f.id % 65536, error: -5, repeat: 1 });
    await expect(pm.write(f, 8192, Buffer.from('x'))).rejects.toThrow("write of 'table.0' at offset 8192 (op 0) failed: EIO");
    await expect(pm.write(f.id, 0, Buffer.from('x'))).rejects.toThrow("write of 'table.0' at offset 0 (op 0) failed: EIO");
    pm._native().debugSetFault(0, null);
    const ro = await pm.files.open('table.0', { readOnly: true });
    const [r] = await pm.batch().nop().write(ro, 4096, Buffer.from('x')).submit().then((x) => [x[1]]);
    expect(r.error?.message).toContain("write of 'table.0' at offset 4096 (op 1) failed: EBADF");
  });

  it('opening a missing file names its path', async () => {
    await expect(pm.files.open('no/such/file')).rejects.toThrow(/'no\/such\/file'/);
    await expect(pm.files.open('no/such/file')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a buffer-pool read error names the file', async () => {
    await pm.stop();
    pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data2'), backend, arenaSize: 1 << 20, bufferPool: { pages: 8, pageSize: 4096 } } as any);
    const f = await pm.files.open('heap.1', { create: true });
    await expect(pm.buffers.read(f, 3)).rejects.toThrow(/block 3 of file 'heap\.1'/);
  });
});
