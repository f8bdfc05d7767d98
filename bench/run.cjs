#!/usr/bin/env node
'use strict';
// The bench harness. Usage:
//   npm run bench -- <name>|all [--smoke] [--duration=<ms>] [--repeat=<rounds>] [--file-size=<MiB>] [--out=<dir>] [--data-dir=<dir>]
//     scale only: [--procs=1,2,4,8,16] [--bs=4,8] [--qd=1,8,32,128] [--parts=reads,commits,tpcb] [--scale-high=<TPC-B scale>]
//       [--tpcb-warmup=<ms>] (every TPC-B point's warm-up; default 2 s + 0.5 s per worker)
//     durable-commits, scale (commits): [--wal-sync=fdatasync|dsync] (ringmaster's wal.walSync; default: the library's)
//       [--wal-direct[=false]] (ringmaster's wal.direct: O_DIRECT WAL segments, or not; default: the library's)
// Workloads: cold-reads, cached-reads, durable-commits, handoff, topologies, tpcb, writeback, shutdown, checkpoint, scale.
// Each writes <out>/<name>.json (machine facts, options, every point), <name>.md and <name>.svg.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const common = require('./lib/common.cjs');
const reads = require('./workloads/reads.cjs');

const WORKLOADS = [reads.cold, reads.cached, require('./workloads/durable.cjs'), require('./workloads/handoff.cjs'), require('./workloads/topologies.cjs'), require('./workloads/tpcb.cjs'), require('./workloads/writeback.cjs'), require('./workloads/shutdown.cjs'), require('./workloads/checkpoint.cjs'), require('./workloads/scale.cjs')];

function usage(msg) {
  if (msg) console.error(`bench: ${msg}`);
  console.error(`usage: npm run bench -- <${WORKLOADS.map((w) => w.name).join('|')}|all> [--smoke] [--duration=ms] [--repeat=N] [--file-size=MiB] [--out=dir] [--data-dir=dir] [--procs=1,2,4,8,16] [--bs=4,8] [--qd=1,8,32,128] [--parts=reads,commits,tpcb] [--scale-high=N] [--tpcb-warmup=ms] [--wal-sync=fdatasync|dsync] [--wal-direct[=false]]`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { names: [], smoke: false };
  for (const a of argv) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) { o.names.push(a); continue; }
    const [, k, v] = m;
    if (k === 'smoke') o.smoke = true;
    else if (k === 'duration') o.durationMs = Number(v);
    else if (k === 'repeat') o.repeat = Math.max(1, Math.floor(Number(v)) || 1);
    else if (k === 'file-size') o.fileSizeMiB = Number(v);
    else if (k === 'out') o.out = v;
    else if (k === 'data-dir') o.dataDir = v;
    else if (k === 'render-only') o.renderOnly = true;
    else if (k === 'procs') o.procs = v;
    else if (k === 'bs') o.bs = v;
    else if (k === 'qd') o.qd = v;
    else if (k === 'parts') o.parts = v;
    else if (k === 'scale-high') o.scaleHigh = Math.max(1, Math.floor(Number(v)) || 1);
    else if (k === 'tpcb-warmup') {
      if (!/^\d+$/.test(v || '')) usage(`--tpcb-warmup takes milliseconds, not '${v}'`);
      o.tpcbWarmupMs = Number(v);
    }
    else if (k === 'wal-sync') {
      if (v !== 'fdatasync' && v !== 'dsync') usage(`--wal-sync must be fdatasync or dsync, not '${v}'`);
      o.walSync = v;
    } else if (k === 'wal-direct') {
      if (v !== undefined && v !== 'true' && v !== 'false') usage(`--wal-direct takes no value, or true or false, not '${v}'`);
      o.walDirect = v !== 'false';
    }
    else if (k === 'help') usage();
    else usage(`unknown option --${k}`);
  }
  return o;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!args.names.length) usage('name a workload or all');
  let selected = [];
  for (const n of args.names) {
    if (n === 'all') selected = WORKLOADS.slice();
    else {
      const w = WORKLOADS.find((x) => x.name === n);
      if (!w) usage(`unknown workload '${n}'`);
      selected.push(w);
    }
  }
  if (!fs.existsSync(path.join(common.ROOT, 'dist', 'core', 'index.js')) || !fs.existsSync(path.join(common.ROOT, 'build', 'Release', 'ringmaster.node'))) {
    console.error('bench: the package is not built: run `npm run install && npm run build:ts` first');
    process.exit(2);
  }
  if (args.renderOnly) return renderOnly(selected, path.resolve(args.out || path.join(__dirname, 'results')));
  const durationMs = args.durationMs || (args.smoke ? 150 : 2000);
  const fileSize = (args.fileSizeMiB || (args.smoke ? 16 : 512)) * common.MiB;
  const uid = process.getuid ? process.getuid() : 'x';
  const dataDir = path.resolve(args.dataDir || path.join(os.tmpdir(), `ringmaster-bench-${uid}`));
  const outDir = path.resolve(args.out || path.join(__dirname, 'results'));
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'bench.dat');
  const facts = common.machineFacts(dataDir);
  if (!common.fioVersion()) console.error(`bench: ${common.FIO_HINT}; the fio anchors are reported as skipped`);
  common.progress(`bench: preparing ${fileSize / common.MiB} MiB data file ${file}`);
  common.ensureFile(file, fileSize);
  let warmed = false;
  const ctx = {
    smoke: args.smoke, durationMs, fileSize, file, dataDir, repeat: args.repeat || 1, procs: args.procs, bs: args.bs, qd: args.qd, parts: args.parts, scaleHigh: args.scaleHigh, tpcbWarmupMs: args.tpcbWarmupMs, walSync: args.walSync, walDirect: args.walDirect,
    load: () => Math.round(os.loadavg()[0] * 100) / 100,
    progress: (m) => common.progress(`${m}  (${Math.round((Date.now() - t0) / 1000)} s)`),
    warm: () => {
      if (!warmed) common.warmPageCache(file);
      warmed = true;
    },
  };
  const t0 = Date.now();
  const written = [];
  const summary = [];
  let failed = false;
  for (const w of selected) {
    const start = Date.now();
    let res;
    try {
      res = await w.run(ctx);
    } catch (e) {
      res = { error: `${e.code || ''} ${e.stack || e.message}` };
      failed = true;
    }
    const json = {
      name: w.name, title: w.title,
      status: res.error ? 'error' : res.skipped ? 'skipped' : 'ok',
      machine: facts,
      config: { command: `npm run bench -- ${process.argv.slice(2).join(' ')}`, durationMsPerPoint: durationMs, repeat: ctx.repeat, fileSize, file, smoke: args.smoke, walSync: args.walSync || 'library default', walDirect: args.walDirect ?? 'library default' },
      elapsedSec: Math.round((Date.now() - start) / 100) / 10,
      ...res,
    };
    let md = `# ${w.title}\n\n`;
    let svg = '';
    if (res.error) {
      md += `**error**: ${res.error}\n`;
      svg = '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="40"><text x="10" y="25">error: see JSON</text></svg>';
    } else {
      const r = w.render({ ...json });
      md += `${r.md}\n`;
      svg = r.svg;
    }
    md += footer(json);
    written.push(...common.writeOutputs(outDir, w.name, json, md, svg));
    common.progressDone();
    summary.push({ name: w.name, status: json.status, targets: res.targets || [], elapsedSec: json.elapsedSec });
    console.log(`${w.name}: ${json.status}${res.skipped ? ` (${res.skipped})` : ''} in ${json.elapsedSec} s`);
    for (const t of res.targets || []) console.log(`  target: ${t.text}: ${t.status}${t.geomean ? ` (geomean ${t.geomean}x, worst ${t.worst.r}x at ${t.worst.at})` : ''}${t.worstP99us !== undefined ? ` (worst p99 ${t.worstP99us} us)` : ''}`);
  }
  if (selected.length > 1) {
    const lines = ['# Bench summary', '', `\`${`npm run bench -- ${process.argv.slice(2).join(' ')}`}\` on Linux ${facts.kernel}, ${facts.cores} cores, Node ${facts.node}, ${facts.fio}; ${durationMs} ms per point; total ${Math.round((Date.now() - t0) / 1000)} s.`, ''];
    for (const s of summary) {
      lines.push(`- **${s.name}**: ${s.status} (${s.elapsedSec} s)`);
      for (const t of s.targets) lines.push(`  - ${t.text}: **${t.status}**${t.geomean ? ` (geomean ${t.geomean}×, worst ${t.worst.r}× at ${t.worst.at})` : ''}${t.worstP99us !== undefined ? ` (worst p99 ${t.worstP99us} µs)` : ''}`);
    }
    fs.writeFileSync(path.join(outDir, 'summary.md'), `${lines.join('\n')}\n`);
    written.push(path.join(outDir, 'summary.md'));
  }
  console.log(`bench: wrote ${written.length} files to ${outDir} in ${Math.round((Date.now() - t0) / 1000)} s`);
  process.exit(failed ? 1 : 0);
}

function footer(json) {
  const f = json.machine;
  const c = json.config;
  return `\nMachine: Linux ${f.kernel}, ${f.cores} cores (${f.cpuModel}), Node ${f.node}, ${f.fio}, uid ${f.uid}, memlock ${f.memlock}, ${f.filesystem}. ${c.durationMsPerPoint} ms per point, ${c.repeat || 1} round(s) per point (median; ratios are medians of per-round ratios). 1-min load average at start ${f.load1}.${c.walSync ? ` ringmaster wal.walSync: ${c.walSync}.` : ''}${typeof c.walDirect === 'boolean' ? ` ringmaster wal.direct: ${c.walDirect}.` : ''} Command: \`${c.command}\`.\n`;
}

/** Re-renders <name>.md and <name>.svg from an existing <name>.json (no measuring). */
function renderOnly(selected, outDir) {
  for (const w of selected) {
    const file = path.join(outDir, `${w.name}.json`);
    if (!fs.existsSync(file)) { console.error(`bench: no ${file}`); continue; }
    const json = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (json.status === 'error') continue;
    const r = w.render(json);
    fs.writeFileSync(path.join(outDir, `${w.name}.md`), `# ${w.title}\n\n${r.md}\n${footer(json)}\n`);
    fs.writeFileSync(path.join(outDir, `${w.name}.svg`), `${r.svg}\n`);
    console.log(`bench: re-rendered ${w.name}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
