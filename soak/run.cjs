#!/usr/bin/env node
// `npm run soak -- <scenario> [options]`: reliability soaks (see RELIABILITY.md).
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const [scenario, ...rest] = process.argv.slice(2);
const scenarios = { kill: 'kill.cjs', crash: 'crash.cjs', powercut: 'powercut.cjs' };
if (!scenarios[scenario]) {
  console.error(`usage: npm run soak -- <${Object.keys(scenarios).join('|')}> [--workload mixed|raw] [--kills N | --rounds N [--tear]] [--workers W] [--seconds S] [--backend io_uring|threads]\n` +
    '       powercut: [--rounds N] [--workers W] [--backend io_uring|threads] [--variant fdatasync|direct|dsync|direct-dsync] [--faults clear,torn-op,torn-op-wal,torn-seq] [--control none|skip-data-sync|skip-fdatasync|skip-dsync|no-page-images] [--fs lazyfs|ext4-lazyfs] [--keep-going] (soak/powercut.cjs)');
  process.exit(2);
}
// `--backend io_uring|threads` works for every scenario: the kill and crash soaks take the
// backend from RINGMASTER_BACKEND (what their workers inherit), so the flag is turned into it
// here instead of being ignored by their numeric option parsers.
const env = { ...process.env };
const b = rest.indexOf('--backend');
if (b >= 0) {
  const value = rest[b + 1];
  if (value !== 'io_uring' && value !== 'threads') {
    console.error(`--backend must be io_uring or threads, got ${value === undefined ? 'nothing' : JSON.stringify(value)}`);
    process.exit(2);
  }
  if (value === 'threads') env.RINGMASTER_BACKEND = 'threads';
  else delete env.RINGMASTER_BACKEND;
  if (scenario !== 'powercut') rest.splice(b, 2);
}
const r = spawnSync(process.execPath, [path.join(__dirname, scenarios[scenario]), ...rest], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
