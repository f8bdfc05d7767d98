// The numbers core/constants.ts mirrors from the native headers (op codes, link flags,
// completion kinds, the corrupt-result errno, the buffer pool's and the WAL's status codes)
// equal the headers' values, read from the headers themselves; every mirrored constant is
// in the table below, so a new one cannot skip the check. The kill points are listed
// once for TypeScript (KILL_POINTS) and checked here against the C enum, the addon's name
// table, the code that reaches each one, and RELIABILITY.md's table of them.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as C from '../../core/constants';

const REPO = path.resolve(__dirname, '..', '..');

/** `NAME = <integer>` in enums and constexpr definitions of a header (decimal or hex, signed). */
export function headerValues(text: string): Map<string, number> {
  const noComments = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const values = new Map<string, number>();
  for (const m of noComments.matchAll(/\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(-?)\s*(0[xX][0-9a-fA-F]+|\d+)(?:u|ull|ll|l)?\s*[,;}]/g)) {
    const magnitude = /^0x/i.test(m[3]) ? parseInt(m[3].slice(2), 16) : parseInt(m[3], 10);
    values.set(m[1], m[2] === '-' ? -magnitude : magnitude);
  }
  return values;
}

/** TypeScript name -> [header, C++ name]. */
const MIRRORED: Record<string, [string, string]> = {
  OP_NOP: ['io_handles.h', 'OP_NOP'],
  OP_READ: ['io_handles.h', 'OP_READ'],
  OP_WRITE: ['io_handles.h', 'OP_WRITE'],
  OP_FSYNC: ['io_handles.h', 'OP_FSYNC'],
  OP_FDATASYNC: ['io_handles.h', 'OP_FDATASYNC'],
  LINK: ['io_handles.h', 'LF_LINK'],
  HARDLINK: ['io_handles.h', 'LF_HARDLINK'],
  DRAIN: ['io_handles.h', 'LF_DRAIN'],
  SELF_WAKE: ['io_handles.h', 'LF_SELF_WAKE'],
  CORRUPT_RESULT: ['io_handles.h', 'kCorruptResult'],
  OP_STAGE_FIELDS: ['submission.h', 'kOpFields'],
  KIND_NONE: ['completion_kinds.h', 'CK_NONE'],
  KIND_COMPLETION_WORD: ['completion_kinds.h', 'CK_COMPLETION_WORD'],
  KIND_BUFFER_READ_DONE: ['completion_kinds.h', 'CK_BUFFER_READ_DONE'],
  KIND_BUFFER_WRITE_DONE: ['completion_kinds.h', 'CK_BUFFER_WRITE_DONE'],
  KIND_WAL_WRITE_DONE: ['completion_kinds.h', 'CK_WAL_WRITE_DONE'],
  KIND_WAL_SYNC_DONE: ['completion_kinds.h', 'CK_WAL_SYNC_DONE'],
  KIND_WAL_DSYNC_WRITE_DONE: ['completion_kinds.h', 'CK_WAL_DSYNC_WRITE_DONE'],
  BP_ERR_CHECKSUM: ['buffer_pool.h', 'BP_ERR_CHECKSUM'],
  BP_ERR_SHORT_READ: ['buffer_pool.h', 'BP_ERR_SHORT_READ'],
  BP_ERR_TORN: ['buffer_pool.h', 'BP_ERR_TORN'],
  BP_ERR_PAST_EOF: ['buffer_pool.h', 'BP_ERR_PAST_EOF'],
  PAGE_HEADER_SIZE: ['buffer_pool.h', 'kPageHeaderSize'],
  POOL_RELEASE_ON_HOLDER_DEATH: ['buffer_pool.h', 'POOL_RELEASE_ON_HOLDER_DEATH'],
  PIN_OK: ['buffer_pool.h', 'PIN_OK'],
  PIN_NEED_CLEAN: ['buffer_pool.h', 'PIN_NEED_CLEAN'],
  PIN_EXHAUSTED: ['buffer_pool.h', 'PIN_EXHAUSTED'],
  PIN_TOO_MANY: ['buffer_pool.h', 'PIN_TOO_MANY'],
  PIN_CORRUPT: ['buffer_pool.h', 'PIN_CORRUPT'],
  PIN_ALIASED: ['buffer_pool.h', 'PIN_ALIASED'],
  IO_VALID: ['buffer_pool.h', 'IO_VALID'],
  IO_CLAIMED: ['buffer_pool.h', 'IO_CLAIMED'],
  IO_WAIT: ['buffer_pool.h', 'IO_WAIT'],
  IO_FAILED: ['buffer_pool.h', 'IO_FAILED'],
  IO_CORRUPT: ['buffer_pool.h', 'IO_CORRUPT'],
  WS_STARTED: ['buffer_pool.h', 'WS_STARTED'],
  WS_CLEAN: ['buffer_pool.h', 'WS_CLEAN'],
  WS_BUSY: ['buffer_pool.h', 'WS_BUSY'],
  WS_CORRUPT: ['buffer_pool.h', 'WS_CORRUPT'],
  WAL_FLAG_DIRECT: ['wal_buffer.h', 'kWalFlagDirect'],
  WAL_FLAG_DSYNC: ['wal_buffer.h', 'kWalFlagDsync'],
};

/**
 * Answers the Node-API glue makes up itself (bufferpool_napi.cc translates the lock
 * results): checked against the glue's own comments, which state them.
 */
const GLUE: Record<string, [string, RegExp]> = {
  LOCK_ACQUIRED: ['bufferpool_napi.cc', /case LA_ACQUIRED: return arr\(env, \{(\d+)\}\)/],
  LOCK_QUEUED: ['bufferpool_napi.cc', /case LA_QUEUED: return arr\(env, \{(\d+),/],
  LOCK_NO_CELL: ['bufferpool_napi.cc', /case LA_NO_CELL: return arr\(env, \{(\d+)\}\)/],
  LOCK_BUSY: ['bufferpool_napi.cc', /case LA_BUSY: return arr\(env, \{(\d+)\}\)/],
  LOCK_WAIT_GRANTED: ['bufferpool_napi.cc', /case LW_GRANTED: return Napi::Number::New\(env, (\d+)\)/],
  LOCK_WAIT_CANCELLED: ['bufferpool_napi.cc', /case LW_CANCELLED: return Napi::Number::New\(env, (\d+)\)/],
  LOCK_WAIT_WAITING: ['bufferpool_napi.cc', /case LW_WAITING: return Napi::Number::New\(env, (\d+)\)/],
};

/** Linux errno values Node does not name: checked against the kernel's UAPI header where it is installed. */
const ERRNO: Record<string, string> = { ESHUTDOWN: 'ESHUTDOWN', EUCLEAN: 'EUCLEAN' };
const ERRNO_HEADER = '/usr/include/asm-generic/errno.h';

const headers = new Map<string, Map<string, number>>();
function header(name: string): Map<string, number> {
  let h = headers.get(name);
  if (!h) headers.set(name, (h = headerValues(readFileSync(path.join(REPO, 'native', name), 'utf8'))));
  return h;
}

describe('constants shared with the addon', () => {
  it('the header reader finds enum and constexpr values, and skips comments (positive control)', () => {
    const h = headerValues([
      'enum X : int32_t { A = 0, B = 3, // C = 9',
      '  D = -4 };',
      'constexpr int32_t kE = -117;',
      'constexpr uint32_t kF = 0x10u;',
      '/* G = 5, */',
    ].join('\n'));
    expect(Object.fromEntries(h)).toEqual({ A: 0, B: 3, D: -4, kE: -117, kF: 16 });
  });

  it('every constant in core/constants.ts is checked here', () => {
    const others = Object.keys(C).filter((k) => typeof (C as Record<string, unknown>)[k] !== 'number');
    expect(others).toEqual(['KILL_POINTS']);
    const exported = Object.keys(C).filter((k) => typeof (C as Record<string, unknown>)[k] === 'number').sort();
    expect(exported).toEqual([...Object.keys(MIRRORED), ...Object.keys(GLUE), ...Object.keys(ERRNO)].sort());
  });

  it('equal the native headers', () => {
    const wrong: string[] = [];
    for (const [ts, [file, cName]] of Object.entries(MIRRORED)) {
      const native = header(file).get(cName);
      const mine = (C as Record<string, number>)[ts];
      if (native !== mine) wrong.push(`${ts} = ${mine}, native/${file} ${cName} = ${native}`);
    }
    expect(wrong).toEqual([]);
  });

  it.skipIf(!existsSync(ERRNO_HEADER))('errno values equal the kernel headers, and CORRUPT_RESULT is -EUCLEAN', () => {
    const text = readFileSync(ERRNO_HEADER, 'utf8');
    for (const [ts, cName] of Object.entries(ERRNO)) {
      const m = new RegExp(`#define\\s+${cName}\\s+(\\d+)`).exec(text);
      expect(m && Number(m[1]), ts).toBe((C as Record<string, number>)[ts]);
    }
    expect(C.CORRUPT_RESULT).toBe(-C.EUCLEAN);
  });

  it("equal the Node-API glue's answers", () => {
    const wrong: string[] = [];
    for (const [ts, [file, re]] of Object.entries(GLUE)) {
      const m = re.exec(readFileSync(path.join(REPO, 'native', file), 'utf8'));
      const mine = (C as Record<string, number>)[ts];
      if (!m || Number(m[1]) !== mine) wrong.push(`${ts} = ${mine}, native/${file}: ${m ? m[1] : 'not found'}`);
    }
    expect(wrong).toEqual([]);
  });
});

/** The KillPoint enum's members, in order (KP_COUNT excluded). */
export function killPointEnum(headerText: string): string[] {
  const noComments = headerText.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const body = /enum\s+KillPoint\b[^{]*\{([^}]*)\}/.exec(noComments);
  if (!body) return [];
  return body[1].split(',').map((m) => m.replace(/=.*$/s, '').trim()).filter((m) => m && m !== 'KP_COUNT');
}

/** The strings of kKillPointNames, in order. */
export function killPointNameTable(sourceText: string): string[] {
  const body = /kKillPointNames\s*\[[^\]]*\]\s*=\s*\{([^}]*)\}/.exec(sourceText);
  return body ? [...body[1].matchAll(/"([^"]*)"/g)].map((m) => m[1]) : [];
}

/** KP_CHECKPOINT_REDO_CHOSEN -> checkpoint-redo-chosen */
const kebab = (member: string) => member.replace(/^KP_/, '').toLowerCase().replace(/_/g, '-');

/** Every .ts / .cc file under the given directories of the repository. */
function sourcesUnder(dirs: string[], ext: RegExp): string[] {
  const out: string[] = [];
  for (const d of dirs) {
    for (const f of readdirSync(path.join(REPO, d))) if (ext.test(f) && !f.endsWith('.d.ts')) out.push(path.join(d, f));
  }
  return out;
}

describe('kill points: one list (core/constants.ts KILL_POINTS)', () => {
  const header = readFileSync(path.join(REPO, 'native', 'fault_injection.h'), 'utf8');
  const source = readFileSync(path.join(REPO, 'native', 'fault_injection.cc'), 'utf8');

  it('the readers find an enum and a name table (positive control)', () => {
    expect(killPointEnum('enum KillPoint : uint32_t {\n  KP_A_B = 0,  // x, y\n  KP_C,\n  KP_COUNT\n};')).toEqual(['KP_A_B', 'KP_C']);
    expect(killPointNameTable('const char* const kKillPointNames[KP_COUNT] = {\n "a-b", "c",\n};')).toEqual(['a-b', 'c']);
    expect(kebab('KP_CHECKPOINT_REDO_CHOSEN')).toBe('checkpoint-redo-chosen');
  });

  it('equals the C enum in fault_injection.h, member for member and in order', () => {
    const members = killPointEnum(header);
    expect(members.length).toBeGreaterThan(0);
    expect(members.map(kebab)).toEqual([...C.KILL_POINTS]);
  });

  it("equals the addon's name table in fault_injection.cc (the names debugKillPoint accepts)", () => {
    expect(killPointNameTable(source)).toEqual([...C.KILL_POINTS]);
  });

  it('every kill point is reached: by the native code (kill_point(..., KP_X)) or by TypeScript (killPoint(name))', () => {
    const native = sourcesUnder(['native'], /\.cc$/).filter((f) => !f.endsWith('fault_injection.cc'))
      .map((f) => readFileSync(path.join(REPO, f), 'utf8')).join('\n');
    const ts = sourcesUnder(['core', 'wal', 'bufferpool'], /\.ts$/).map((f) => readFileSync(path.join(REPO, f), 'utf8')).join('\n');
    const reached = new Set<string>();
    for (const m of native.matchAll(/kill_point(?:_armed)?\([^;]*?\b(KP_[A-Z_]+)\)/g)) reached.add(kebab(m[1]));
    for (const m of ts.matchAll(/\.killPoint\(\s*'([a-z-]+)'/g)) reached.add(m[1]);
    expect(C.KILL_POINTS.filter((k) => !reached.has(k))).toEqual([]);
    expect([...reached].filter((k) => !(C.KILL_POINTS as readonly string[]).includes(k))).toEqual([]);
  });

  it("RELIABILITY.md's kill-point table lists exactly these, in order", () => {
    const doc = readFileSync(path.join(REPO, 'RELIABILITY.md'), 'utf8');
    const table = doc.slice(doc.indexOf('| kill point |'));
    const rows: string[] = [];
    for (const line of table.split('\n').slice(2)) {
      const m = /^\s*\| `([a-z-]+)` \|/.exec(line);
      if (!m) break;
      rows.push(m[1]);
    }
    expect(rows).toEqual([...C.KILL_POINTS]);
  });
});
