// An attached handle must not be garbage-collected while IO is awaited through it.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { removeDir, tempDir } from '../helpers';

/** Runs a fixture under `--expose-gc` in a child: it prints 'ok', and nothing crashed. */
function expectGcFixtureOk(fixture: string): void {
  const dir = tempDir();
  try {
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, '..', 'fixtures', fixture), dir], { encoding: 'utf8', timeout: 60000 });
    expect(r.stderr).not.toMatch(/Error|FATAL|Segmentation/);
    expect(r.stdout.trim()).toBe('ok');
    expect(r.status).toBe(0);
  } finally {
    removeDir(dir);
  }
}

describe('handle lifetime', () => {
  it('an awaited write completes although GC runs while only the awaiting frame holds the handle', () => {
    expectGcFixtureOk('gc-await.cjs');
  });
});

describe('flush function lifetime', () => {
  it('the receiver-less flush function throws ERR_RINGMASTER_DETACHED after close and after its session is collected and destroyed', () => {
    expectGcFixtureOk('gc-flush-function.cjs');
  });
});

describe('event loop', () => {
  it('stays alive while IO is in flight, with nothing else keeping it (30000 reads at depth 16)', () => {
    const dir = tempDir();
    try {
      for (let round = 0; round < 3; round++) {
        const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'fixtures', 'loop-alive.cjs'), path.join(dir, String(round))], { encoding: 'utf8', timeout: 60000 });
        expect(r.stderr).not.toMatch(/Error|FATAL/);
        expect(r.stdout.trim()).toBe('ok');
        expect(r.status).toBe(0);
      }
    } finally {
      removeDir(dir);
    }
  });
});
