'use strict';
// Shared helpers of the bench harness: machine facts, fio detection and runs, latency
// histograms, output writers (JSON, markdown, SVG), progress line.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync, spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const KiB = 1024;
const MiB = 1024 * 1024;

// ---- latency histogram (log buckets, ~2% resolution, mergeable across processes) ----
const H_BASE = Math.log(1.02);
const H_BUCKETS = 1100;  // 1.02^1100 ns ~ 2.8e9 ns: anything slower lands in the last bucket
function newHist() {
  return new Array(H_BUCKETS).fill(0);
}
function histAdd(h, ns) {
  let b = ns <= 1 ? 0 : Math.floor(Math.log(ns) / H_BASE);
  if (b >= H_BUCKETS) b = H_BUCKETS - 1;
  h[b]++;
}
function histMerge(into, h) {
  for (let i = 0; i < H_BUCKETS; i++) into[i] += h[i] || 0;
  return into;
}
function histPct(h, p) {
  let total = 0;
  for (const c of h) total += c;
  if (!total) return null;
  const want = Math.ceil((p / 100) * total);
  let seen = 0;
  for (let i = 0; i < H_BUCKETS; i++) {
    seen += h[i];
    if (seen >= want) return Math.pow(1.02, i + 0.5) / 1000;  // µs, bucket middle
  }
  return null;
}
function histSummary(h) {
  return { p50us: round(histPct(h, 50), 1), p99us: round(histPct(h, 99), 1) };
}

function round(v, d = 0) {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  const m = 10 ** d;
  return Math.round(v * m) / m;
}

// ---- machine facts ----
function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10000 });
  if (r.error || r.status !== 0) return null;
  return `${r.stdout}`.trim();
}
function fioVersion() {
  return run('fio', ['--version']);
}
function memlock() {
  try {
    const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max locked memory'));
    return line.trim().split(/\s{2,}/)[1];
  } catch {
    return 'unknown';
  }
}
function fsOf(dir) {
  try {
    const mounts = fs.readFileSync('/proc/mounts', 'utf8').trim().split('\n').map((l) => l.split(' '));
    const real = fs.realpathSync(dir);
    let best = null;
    for (const m of mounts) if ((real === m[1] || real.startsWith(m[1].endsWith('/') ? m[1] : `${m[1]}/`)) && (!best || m[1].length > best[1].length)) best = m;
    return best ? `${best[2]} on ${best[0]} (${best[1]})` : 'unknown';
  } catch {
    return 'unknown';
  }
}
function machineFacts(dataDir) {
  const cpus = os.cpus();
  return {
    kernel: os.release(),
    cores: cpus.length,
    cpuModel: cpus[0] ? cpus[0].model : 'unknown',
    memoryGiB: round(os.totalmem() / 2 ** 30, 1),
    node: process.version,
    libuv: process.versions.uv,
    fio: fioVersion() || 'not installed',
    uid: process.getuid ? process.getuid() : null,
    memlock: memlock(),
    filesystem: fsOf(dataDir),
    ringmasterBackendEnv: process.env.RINGMASTER_BACKEND || null,
    date: new Date().toISOString(),
    load1: round(os.loadavg()[0], 2),
  };
}

const FIO_HINT = 'fio is not installed: apt-get install -y fio (Debian/Ubuntu) or dnf install fio';

// ---- data file ----
function ensureFile(file, size) {
  try {
    if (fs.statSync(file).size === size) return false;
  } catch { /* create */ }
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(4 * MiB);
  let x = 0x9e3779b9;
  for (let i = 0; i < chunk.length; i += 4) {  // incompressible-ish content
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    chunk.writeUInt32LE(x, i);
  }
  for (let off = 0; off < size; off += chunk.length) fs.writeSync(fd, chunk, 0, Math.min(chunk.length, size - off), off);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return true;
}
function warmPageCache(file) {
  const fd = fs.openSync(file, 'r');
  const b = Buffer.allocUnsafe(4 * MiB);
  let off = 0;
  for (;;) {
    const n = fs.readSync(fd, b, 0, b.length, off);
    if (n <= 0) break;
    off += n;
  }
  fs.closeSync(fd);
}

// ---- running a measured point in a fresh process ----
const POINT = path.join(__dirname, 'point.cjs');
const TERM_GRACE_MS = 5000;

// Runs `script` with the point's spec in a fresh process and resolves with the JSON line it
// prints last ({ error } if it printed none or exited non-zero). A point that has not
// finished `limitMs` after its start is sent SIGTERM: a point script answers with where it
// was (its phase) and exits; one that does not within 5 s (its JS thread blocked) is
// SIGKILLed. Either way the point becomes an error row that says so, and the run goes on:
// a harness that waits forever reports nothing.
function runPointScript(script, spec, env, limitMs) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, JSON.stringify(spec)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    let overdue = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    let kill = null;
    const limit = setTimeout(() => {
      overdue = `did not finish within ${Math.round(limitMs / 1000)} s (SIGTERM sent)`;
      child.kill('SIGTERM');
      kill = setTimeout(() => {
        overdue = `did not finish within ${Math.round(limitMs / 1000)} s and did not answer SIGTERM within ${TERM_GRACE_MS / 1000} s (its JS thread was blocked): SIGKILLed`;
        child.kill('SIGKILL');
      }, TERM_GRACE_MS);
    }, limitMs);
    // Its stdout is read to the end at 'close'; but a participant it forked that outlives it
    // holds the same pipe, so 'close' is awaited at most 2 s after 'exit'.
    let done = false;
    const finish = (code, signal) => {
      if (done) return;
      done = true;
      clearTimeout(limit);
      if (kill) clearTimeout(kill);
      const line = out.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      let res = null;
      try { res = line ? JSON.parse(line) : null; } catch { /* below */ }
      if (!res || code !== 0 || overdue) {
        const why = (res && res.error) || err.trim().split('\n').slice(-3).join(' | ') || 'no output';
        resolve({ error: `point ${overdue || `exited ${code ?? signal}`}: ${why}` });
      } else {
        if (err.trim()) res.stderr = err.trim().split('\n').filter((l) => !/ExperimentalWarning|--trace-warnings/.test(l)).slice(-3).join(' | ') || undefined;
        resolve(res);
      }
    };
    child.on('exit', (code, signal) => setTimeout(() => finish(code, signal), 2000));
    child.on('close', finish);
  });
}

function runPoint(spec, env = {}) {
  return runPointScript(POINT, spec, env, (spec.durationMs || 1000) + (spec.warmupMs || 0) + 60000);
}

// ---- fio ----
function fioArgs(o) {
  const a = [
    '--name=bench', `--filename=${o.file}`, `--size=${o.fileSize}`, '--rw=randread', `--bs=${o.bs}`,
    `--direct=${o.direct ? 1 : 0}`, `--ioengine=${o.engine}`, `--iodepth=${o.depth}`, `--numjobs=${o.procs}`,
    '--group_reporting', '--time_based', `--runtime=${Math.max(1, Math.round(o.durationMs))}ms`,
    '--norandommap', '--randrepeat=0', '--invalidate=0', '--lat_percentiles=1', '--percentile_list=50:99',
    '--output-format=json',
  ];
  if (o.fioExtra) a.push(...o.fioExtra);
  return a;
}
// Runs fio with `args` (its JSON output) and resolves with summarize(job) of its first job,
// or { error } with fio's last words; fio is SIGKILLed past `limitMs`, like a point.
function runFioJson(args, limitMs, summarize) {
  return new Promise((resolve) => {
    if (!fioVersion()) return resolve({ skipped: FIO_HINT });
    const cmd = `fio ${args.join(' ')}`;
    const child = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    let overdue = false;
    const limit = setTimeout(() => { overdue = true; child.kill('SIGKILL'); }, limitMs);
    child.on('close', (code, signal) => {
      clearTimeout(limit);
      if (overdue) return resolve({ error: `fio did not finish within ${Math.round(limitMs / 1000)} s: SIGKILLed`, cmd });
      try {
        resolve({ ...summarize(JSON.parse(out.slice(out.indexOf('{'))).jobs[0]), cmd });
      } catch {
        resolve({ error: `fio exited ${code ?? signal}: ${err.trim().split('\n').slice(-2).join(' | ')}`, cmd });
      }
    });
  });
}

function runFio(o) {
  return runFioJson(fioArgs(o), o.durationMs + (o.warmupMs || 0) + 60000, (job) => {
    const r = job.read;
    const pct = (r.lat_ns && r.lat_ns.percentile) || (r.clat_ns && r.clat_ns.percentile) || {};
    return {
      iops: round(r.iops), mbps: round(r.bw_bytes / MiB, 1),
      p50us: round((pct['50.000000'] || 0) / 1000, 1), p99us: round((pct['99.000000'] || 0) / 1000, 1),
    };
  });
}

// ---- progress ----
let progressWidth = 0;
function progress(msg) {
  if (process.env.BENCH_QUIET) return;
  if (process.stderr.isTTY) {
    const s = msg.slice(0, (process.stderr.columns || 120) - 1);
    process.stderr.write(`\r${s}${' '.repeat(Math.max(0, progressWidth - s.length))}`);
    progressWidth = s.length;
  } else {
    process.stderr.write(`${msg}\n`);
  }
}
function progressDone() {
  if (process.stderr.isTTY && progressWidth) process.stderr.write('\n');
  progressWidth = 0;
}

// ---- outputs ----
function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
function fmt(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return v >= 1000 ? Math.round(v).toLocaleString('en-US') : String(v);
  return String(v);
}
function mdTable(headers, rows) {
  const lines = [`| ${headers.join(' | ')} |`, `|${headers.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(fmt).join(' | ')} |`);
  return lines.join('\n');
}

/**
 * A grouped bar chart: groups (x labels), series (legend), values[g][s] (null = no bar).
 */
function svgBars({ title, yLabel, groups, series, values, log = false }) {
  const W = Math.max(640, 90 + groups.length * (series.length * 14 + 24));
  const H = 420;
  const L = 70, R = 20, T = 40, B = 110;
  const plotW = W - L - R, plotH = H - T - B;
  let max = 0, min = Infinity;
  for (const row of values) for (const v of row) if (v !== null && v !== undefined && v > 0) { max = Math.max(max, v); min = Math.min(min, v); }
  if (!max) max = 1;
  if (!Number.isFinite(min)) min = 1;
  const lo = log ? Math.pow(10, Math.floor(Math.log10(min))) : 0;
  const hi = log ? Math.pow(10, Math.ceil(Math.log10(max))) : niceMax(max);
  const y = (v) => {
    if (log) return T + plotH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
    return T + plotH - (v / hi) * plotH;
  };
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  const ticks = log ? [] : [0, 0.25, 0.5, 0.75, 1].map((f) => f * hi);
  if (log) for (let v = lo; v <= hi * 1.0001; v *= 10) ticks.push(v);
  for (const t of ticks) {
    const yy = y(t || (log ? lo : 0));
    out.push(`<line x1="${L}" x2="${W - R}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`);
    out.push(`<text x="${L - 4}" y="${yy + 4}" text-anchor="end">${esc(short(t))}</text>`);
  }
  out.push(`<text transform="translate(14,${T + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}${log ? ' (log)' : ''}</text>`);
  const gw = plotW / Math.max(1, groups.length);
  const bw = Math.max(2, Math.min(14, (gw - 8) / Math.max(1, series.length)));
  groups.forEach((g, gi) => {
    const x0 = L + gi * gw + (gw - bw * series.length) / 2;
    series.forEach((s, si) => {
      const v = values[gi][si];
      if (v === null || v === undefined || !(v > 0)) return;
      const yy = y(v);
      out.push(`<rect x="${(x0 + si * bw).toFixed(1)}" y="${yy.toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(T + plotH - yy).toFixed(1)}" fill="${colors[si % colors.length]}"><title>${esc(`${g} / ${s}: ${fmt(v)}`)}</title></rect>`);
    });
    const cx = L + gi * gw + gw / 2;
    out.push(`<text transform="translate(${cx},${T + plotH + 8}) rotate(45)" text-anchor="start">${esc(g)}</text>`);
  });
  out.push(`<line x1="${L}" x2="${W - R}" y1="${T + plotH}" y2="${T + plotH}" stroke="#333"/>`);
  // Legend below the x labels, wrapped onto as many lines as it needs.
  let lx = L;
  let ly = H - 14;
  const items = [];
  series.forEach((s, si) => {
    const w = 24 + s.length * 6.2;
    if (lx + w > W - R && lx > L) { lx = L; ly += 16; }
    items.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${colors[si % colors.length]}"/>`, `<text x="${lx + 14}" y="${ly}">${esc(s)}</text>`);
    lx += w;
  });
  out.push(...items);
  out[0] = out[0].replace(/height="\d+" viewBox="0 0 (\d+) \d+"/, `height="${ly + 10}" viewBox="0 0 $1 ${ly + 10}"`);
  out[1] = `<rect width="${W}" height="${ly + 10}" fill="white"/>`;
  out.push('</svg>');
  return out.join('\n');
}
/**
 * A line chart of y against x (x placed evenly, labelled as given): one line per series,
 * null = no point. Several charts stack into one SVG with svgStack.
 */
function svgLines({ title, xLabel, yLabel, xs, series, log = false, width = 640, height = 320 }) {
  const L = 70, R = 20, T = 34, B = 44;
  const legendRows = Math.ceil(series.length / 3);
  const H = height + legendRows * 16;
  const plotW = width - L - R, plotH = height - T - B;
  let max = 0, min = Infinity;
  for (const s of series) for (const v of s.values) if (v !== null && v !== undefined && v > 0) { max = Math.max(max, v); min = Math.min(min, v); }
  if (!max) max = 1;
  if (!Number.isFinite(min)) min = 1;
  const lo = log ? Math.pow(10, Math.floor(Math.log10(min))) : 0;
  const hi = log ? Math.pow(10, Math.ceil(Math.log10(max))) : niceMax(max);
  const y = (v) => (log ? T + plotH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH : T + plotH - (v / hi) * plotH);
  const x = (i) => L + (xs.length === 1 ? plotW / 2 : (i / (xs.length - 1)) * plotW);
  const colors = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${H}" fill="white"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${esc(title)}</text>`];
  const ticks = [];
  if (log) for (let v = lo; v <= hi * 1.0001; v *= 10) ticks.push(v);
  else for (const f of [0, 0.25, 0.5, 0.75, 1]) ticks.push(f * hi);
  for (const t of ticks) {
    const yy = y(t || (log ? lo : 0));
    out.push(`<line x1="${L}" x2="${width - R}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`, `<text x="${L - 4}" y="${yy + 4}" text-anchor="end">${esc(short(t))}</text>`);
  }
  xs.forEach((v, i) => out.push(`<text x="${x(i)}" y="${T + plotH + 14}" text-anchor="middle">${esc(v)}</text>`));
  out.push(`<text x="${L + plotW / 2}" y="${T + plotH + 30}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(14,${T + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}${log ? ' (log)' : ''}</text>`);
  out.push(`<line x1="${L}" x2="${width - R}" y1="${T + plotH}" y2="${T + plotH}" stroke="#333"/>`);
  series.forEach((s, si) => {
    const c = colors[si % colors.length];
    const pts = s.values.map((v, i) => (v !== null && v !== undefined && v > 0 ? [x(i), y(v), v] : null));
    let d = '';
    for (const p of pts) if (p) d += `${d ? 'L' : 'M'}${p[0].toFixed(1)},${p[1].toFixed(1)} `;
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${c}" stroke-width="2"/>`);
    pts.forEach((p, i) => { if (p) out.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="3" fill="${c}"><title>${esc(`${s.name} at ${xs[i]}: ${fmt(p[2])}`)}</title></circle>`); });
    const lx = L + (si % 3) * (plotW / 3);
    const ly = height + 4 + Math.floor(si / 3) * 16;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${c}"/>`, `<text x="${lx + 14}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Stacks SVG charts vertically into one SVG. */
function svgStack(svgs) {
  let y = 0;
  let w = 0;
  const parts = [];
  for (const s of svgs) {
    const m = /width="(\d+)" height="(\d+)"/.exec(s);
    const sw = m ? Number(m[1]) : 640, sh = m ? Number(m[2]) : 320;
    parts.push(s.replace('<svg ', `<svg x="0" y="${y}" `));
    y += sh + 10;
    w = Math.max(w, sw);
  }
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${y}" viewBox="0 0 ${w} ${y}" font-family="sans-serif" font-size="11">`, `<rect width="${w}" height="${y}" fill="white"/>`, ...parts, '</svg>'].join('\n');
}

function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function short(v) {
  if (v >= 1e6) return `${round(v / 1e6, 1)}M`;
  if (v >= 1e3) return `${round(v / 1e3, 1)}k`;
  return String(round(v, 1));
}

function writeOutputs(outDir, name, json, md, svg) {
  fs.mkdirSync(outDir, { recursive: true });
  const base = path.join(outDir, name);
  fs.writeFileSync(`${base}.json.tmp`, `${JSON.stringify(json, null, 2)}\n`);
  fs.renameSync(`${base}.json.tmp`, `${base}.json`);
  fs.writeFileSync(`${base}.md`, `${md}\n`);
  fs.writeFileSync(`${base}.svg`, `${svg}\n`);
  return [`${base}.json`, `${base}.md`, `${base}.svg`];
}

function ratio(a, b) {
  if (!a || !b) return null;
  return round(a / b, 2);
}

module.exports = {
  ROOT, KiB, MiB, newHist, histAdd, histMerge, histPct, histSummary, round, machineFacts, fioVersion, FIO_HINT,
  ensureFile, warmPageCache, runPoint, runPointScript, runFio, runFioJson, fioArgs, progress, progressDone, mdTable, svgBars, svgLines, svgStack, writeOutputs, ratio, fmt,
};
