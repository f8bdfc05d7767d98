// The TPC-B-like demo (demo/demo.cjs, bench/tpcb/engine.cjs): a worker is SIGKILLed
// mid-run, the postmaster forks it again, the load goes on; after a restart on the same
// data dir with WAL recovery, sum(accounts) == sum(tellers) == sum(branches) == sum(history)
// and every acknowledged transaction is there. No timing assertions.
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { removeDir, tempDir } from '../helpers';

const REPO = path.resolve(__dirname, '..', '..');
const dir = tempDir('rm-tpcb-');
afterAll(() => removeDir(dir));

function demo(tag: string, extra: string[]): any {
  const json = path.join(dir, `${tag}.json`);
  const r = spawnSync(process.execPath, [path.join(REPO, 'demo', 'demo.cjs'), '--seconds=2', '--accounts=1000', '--sessions=4', '--pool-pages=48', '--min-commits=50', '--quiet', `--data-dir=${path.join(dir, tag)}`, ...extra], {
    cwd: REPO, encoding: 'utf8', timeout: 90000, env: { ...process.env, DEMO_JSON: json },
  });
  expect(r.error, String(r.stderr)).toBeUndefined();
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
  return JSON.parse(readFileSync(json, 'utf8'));
}

describe('TPC-B invariant', () => {
  it('holds after kill -9 of a forked worker mid-run and after restart + recovery', () => {
    const j = demo('fork', ['--kill-at=0.8']);
    expect(j.restarts).toBe(1);
    expect(j.killedPid).toEqual(expect.any(Number));
    expect(j.commits).toBeGreaterThan(0);
    expect(j.liveInvariant.ok).toBe(true);
    expect(j.invariantAfterRecovery.ok).toBe(true);
    expect(j.invariantAfterRecovery.historyRows).toBeGreaterThanOrEqual(j.commits);
    expect(j.allAcknowledgedDurable).toBe(true);
  });

  it('holds with worker threads (piscina) and after restart + recovery', () => {
    const j = demo('threads', ['--threads']);
    expect(j.commits).toBeGreaterThan(0);
    expect(j.invariantAfterRecovery.ok).toBe(true);
    expect(j.invariantAfterRecovery.historyRows).toBeGreaterThanOrEqual(j.commits);
  });
});
