#!/usr/bin/env node
// `npm run soak -- <scenario> [options]`: reliability soaks (see RELIABILITY.md).
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const [scenario, ...rest] = process.argv.slice(2);
const scenarios = { kill: 'kill.cjs', crash: 'crash.cjs', powercut: 'powercut.cjs' };
if (!scenarios[scenario]) {
  console.error(`usage: npm run soak -- <${Object.keys(scenarios).join('|')}> [--workload mixed|raw] [--kills N | --rounds N [--tear]] [--workers W] [--seconds S]\n` +
    '       powercut: [--rounds N] [--workers W] [--backend io_uring|threads] [--variant fdatasync|direct|dsync|direct-dsync] [--faults clear,torn-op,torn-op-wal,torn-seq] [--control none|skip-data-sync|skip-fdatasync|skip-dsync|no-page-images] [--fs lazyfs|ext4-lazyfs] [--keep-going] (soak/powercut.cjs)');
  process.exit(2);
}
const r = spawnSync(process.execPath, [path.join(__dirname, scenarios[scenario]), ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
