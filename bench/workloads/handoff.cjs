'use strict';
// Workload 4: cross-process handoff. Process A submits an op (a NOP: it completes inside
// A's io_uring_enter) carrying a completion word; process B waits on that word with
// db.waitCompletionWord(). Handoff = B's JS resumes - A's submit returned (CLOCK_MONOTONIC,
// process.hrtime, comparable across processes). Who reaps depends on the scenario.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const { runPoint, mdTable, svgBars, fmt } = require('../lib/common.cjs');

// The machine's floor, no library: a sleeping process woken by another through a futex,
// blocked in FUTEX_WAIT itself or in epoll on a private io_uring with a FUTEX_WAIT armed
// (how a ringmaster process waits), with the same 1 ms idle gap (bench/wake/handoff.c).
// [key, mode, A's busy ms after its wake, B's slice µs]: idle, then A busy as in the busy
// scenarios, with the kernel's slice and with the one those scenarios' B asks for.
const FLOOR_MODES = [['futex', 'futex', 0, 0], ['ring', 'ring', 0, 0], ['ringBusy', 'ring', 5, 0], ['ringBusySlice', 'ring', 5, 100]];

function machineFloor(iterations) {
  const exe = path.join(os.tmpdir(), `rm-bench-handoff-${process.pid}`);
  try {
    execFileSync('cc', ['-O2', '-o', exe, path.join(__dirname, '..', 'wake', 'handoff.c')], { stdio: 'pipe' });
  } catch {
    return { skipped: 'no C compiler (cc) to build bench/wake/handoff.c (apt-get install gcc)' };
  }
  try {
    const out = {};
    for (const [key, mode, busyMs, sliceUs] of FLOOR_MODES) {
      try {
        const line = execFileSync(exe, [mode, String(iterations), String(busyMs), String(sliceUs)], { encoding: 'utf8', timeout: 60000, stdio: ['ignore', 'pipe', 'pipe'] });
        const m = /p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+)/.exec(line);
        out[key] = m ? { p50us: Number(m[1]), p99us: Number(m[2]), maxUs: Number(m[3]) } : { error: line.trim() };
      } catch (e) {
        out[key] = { error: String((e.stderr || e.message || e)).trim().slice(0, 120) };
      }
    }
    return out;
  } finally {
    fs.rmSync(exe, { force: true });
  }
}

const SCENARIOS = [
  { id: 'b-reaps', label: 'A reaper:false submits, B reaps', aReaper: false, bReaper: true, pmReaper: false },
  { id: 'a-reaps', label: 'A reaps its own IO, B (reaper:false) waits', aReaper: true, bReaper: false, pmReaper: false },
  { id: 'a-busy-b-reaps', label: 'A busy (JS spins 5 ms), B reaps', aReaper: false, bReaper: true, pmReaper: false, busyMs: 5 },
  // B's threads ask for a 100 µs slice: woken on the CPU where A spins, they preempt A
  // instead of waiting for A's slice to end (README, wakeSliceUs).
  { id: 'a-busy-b-slice', label: 'A busy (JS spins 5 ms), B reaps, B wakeSliceUs: 100', aReaper: false, bReaper: true, pmReaper: false, busyMs: 5, bWakeSliceUs: 100 },
  { id: 'all-reap', label: 'defaults: postmaster, A and B all reap', aReaper: true, bReaper: true, pmReaper: true },
];

function floorCells(x) {
  if (!x) return ['–', '–', '–'];
  if (x.error) return [`error: ${x.error.slice(0, 60)}`, '', ''];
  return [fmt(x.p50us), fmt(x.p99us), fmt(x.maxUs)];
}

module.exports = {
  name: 'handoff',
  title: 'Cross-process handoff: IO completion in A -> waiting process B resumes',
  async run(ctx) {
    const iterations = ctx.smoke ? 10 : 400;
    const rows = [];
    let k = 0;
    for (const sc of SCENARIOS) {
      k++;
      ctx.progress(`handoff [${k}/${SCENARIOS.length}] ${sc.id} (${iterations} handoffs)`);
      const r = await runPoint({ engine: 'handoff', dataDir: ctx.dataDir, scenario: sc, iterations, maxMs: ctx.smoke ? 3000 : 20000, durationMs: 20000 });
      rows.push({ scenario: sc.id, label: sc.label, result: r });
    }
    ctx.progress(`handoff: the machine's floor (bench/wake/handoff.c, ${iterations} handoffs per mode)`);
    const floor = machineFloor(iterations);
    const b = rows.map((r) => r.result.handoffP99us).filter((v) => typeof v === 'number');
    const worst = b.length ? Math.max(...b) : null;
    const targets = [{
      key: 'handoffP99us', goal: 100, text: 'cross-process handoff p99 <= 100 µs',
      status: worst === null ? 'not measured' : rows.every((r) => r.result.handoffP99us <= 100) ? 'met' : rows.some((r) => r.result.handoffP99us <= 100) ? `met in ${rows.filter((r) => r.result.handoffP99us <= 100).length}/${rows.length} scenarios` : 'not met',
      worstP99us: worst,
    }];
    return { iterations, scenarios: SCENARIOS, rows, floor, targets };
  },
  render(res) {
    const headers = ['scenario', 'samples', 'handoff p50 µs', 'handoff p99 µs', 'max µs', 'B resumed before A returned', 'from submit start p50/p99 µs', 'A submit call p50/p99 µs', 'A own resolve p50/p99 µs', 'reaped by'];
    const md = mdTable(headers, res.rows.map((r) => {
      const x = r.result;
      if (x.error) return [r.label, `error: ${x.error.slice(0, 80)}`, '', '', '', '', '', '', '', ''];
      return [r.label, x.samples, x.handoffP50us, x.handoffP99us, x.handoffMaxUs, x.negativeHandoffs, `${fmt(x.fromSubmitP50us)} / ${fmt(x.fromSubmitP99us)}`,
        `${fmt(x.submitCallP50us)} / ${fmt(x.submitCallP99us)}`,
        x.issuerResolveP50us === null ? '– (A busy)' : `${fmt(x.issuerResolveP50us)} / ${fmt(x.issuerResolveP99us)}`, Object.entries(x.reapedBy || {}).map(([k, v]) => `${k}:${v}`).join(' ')];
    }));
    const t = res.targets[0];
    const svg = svgBars({
      title: res.title, yLabel: 'µs', groups: res.rows.map((r) => r.scenario), series: ['p50', 'p99'],
      values: res.rows.map((r) => [r.result.handoffP50us || null, r.result.handoffP99us || null]),
    });
    const how = 'Handoff = B\'s JS resumes (waitCompletionWord resolves) minus the moment A\'s submit call returned (a NOP completes inside A\'s io_uring_enter, so that is an upper bound of the completion time; a negative value means B resumed before A\'s JS got the CPU back). "From submit start" adds A\'s whole submit call (JS batch + lock + enter): a conservative bound. B arms its wait, then 1 ms of idle time passes before A submits, so every thread involved is asleep.';
    const f = res.floor || { skipped: 'not measured in this run' };
    const floorMd = f.skipped ? `Machine floor: skipped (${f.skipped}).` : mdTable(['machine floor, no library (bench/wake/handoff.c)', 'p50 µs', 'p99 µs', 'max µs'], [
      ['sleeping process woken by FUTEX_WAKE, blocked in FUTEX_WAIT', ...floorCells(f.futex)],
      ['same, blocked in epoll on a private io_uring with FUTEX_WAIT armed', ...floorCells(f.ring)],
      ['same (ring), A spins 5 ms after its wake', ...floorCells(f.ringBusy)],
      ['same (ring), A spins 5 ms, B asks for a 100 µs slice', ...floorCells(f.ringBusySlice)],
    ]);
    return { md: `${how}\n\n${md}\n\n${floorMd}\n\n**Target**: ${t.text}: **${t.status}** (worst p99 ${fmt(t.worstP99us)} µs)`, svg };
  },
};
