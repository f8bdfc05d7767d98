'use strict';
// Workloads 1 (cold random reads, O_DIRECT) and 2 (cached random reads, page-cache hits):
// ringmaster against fio and Node fs, point by point, on the same file in the same run.
const { runPoint, runFio, ratio, round, mdTable, svgBars, fmt } = require('../lib/common.cjs');

const ENGINES = {
  cold: [
    { id: 'ringmaster', label: 'ringmaster', kind: 'rm' },
    { id: 'ringmaster-threads', label: 'ringmaster threads backend', kind: 'rm', env: { RINGMASTER_BACKEND: 'threads' } },
    { id: 'fio-io_uring', label: 'fio io_uring', kind: 'fio', engine: 'io_uring' },
    { id: 'node-fs', label: 'Node fs (threadpool)', kind: 'node', env: { UV_USE_IO_URING: '0' } },
    { id: 'node-uv-io_uring', label: 'Node fs UV_USE_IO_URING=1', kind: 'node', env: { UV_USE_IO_URING: '1' } },
  ],
  cached: [
    { id: 'ringmaster', label: 'ringmaster', kind: 'rm' },
    { id: 'ringmaster-threads', label: 'ringmaster threads backend', kind: 'rm', env: { RINGMASTER_BACKEND: 'threads' } },
    { id: 'fio-psync', label: 'fio psync', kind: 'fio', engine: 'psync' },
    { id: 'fio-io_uring', label: 'fio io_uring', kind: 'fio', engine: 'io_uring' },
    { id: 'node-fs', label: 'Node fs (threadpool)', kind: 'node', env: { UV_USE_IO_URING: '0' } },
    { id: 'node-uv-io_uring', label: 'Node fs UV_USE_IO_URING=1', kind: 'node', env: { UV_USE_IO_URING: '1' } },
  ],
};

function grid(ctx) {
  if (ctx.smoke) return { bs: [4096], depth: [2], procs: [1] };
  // --bs=4,8 (KiB), --qd=8,32 and --procs=1 restrict the grid (to re-measure a few points).
  const pick = (arg, all, scale = 1) => (arg ? String(arg).split(',').map((v) => Number(v) * scale).filter((v) => all.includes(v)) : all);
  return { bs: pick(ctx.bs, [4096, 8192], 1024), depth: pick(ctx.qd, [1, 8, 32, 128]), procs: pick(ctx.procs, [1, 2]) };
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : round((s[s.length / 2 - 1] + s[s.length / 2]) / 2, 2);
}
/** The sample with the median IOPS (its latencies go with it); all rounds' IOPS kept. */
function medianSample(list) {
  const ok = list.filter((s) => typeof s.iops === 'number');
  if (!ok.length) return list[0];
  const sorted = [...ok].sort((a, b) => a.iops - b.iops);
  const m = sorted[Math.floor((sorted.length - 1) / 2)];
  return { ...m, rounds: list.map((s) => (typeof s.iops === 'number' ? s.iops : s.error || s.skipped)), load1: list.map((s) => s.load1) };
}

async function runEngine(e, base, ctx, psyncCache) {
  if (e.kind === 'rm') return runPoint({ ...base, engine: 'ringmaster' }, e.env || {});
  if (e.kind === 'node') return runPoint({ ...base, engine: 'node' }, e.env);
  // fio psync is synchronous: iodepth does not apply, so run it once per (bs, procs).
  if (e.engine === 'psync') {
    const key = `${base.bs}/${base.procs}`;
    if (!psyncCache.has(key)) psyncCache.set(key, await runFio({ ...base, engine: 'psync', depth: 1 }));
    return { ...psyncCache.get(key), note: 'psync is synchronous: iodepth 1 per job' };
  }
  return runFio({ ...base, engine: e.engine });
}

function make(kind) {
  const direct = kind === 'cold';
  const name = direct ? 'cold-reads' : 'cached-reads';
  return {
    name,
    title: direct ? 'Cold random reads (O_DIRECT)' : 'Cached random reads (buffered, page-cache hits)',
    async run(ctx) {
      const engines = ENGINES[kind];
      const g = grid(ctx);
      if (!direct) ctx.warm();
      const points = [];
      const psyncCache = new Map();
      const total = g.bs.length * g.depth.length * g.procs.length * engines.length * ctx.repeat;
      let k = 0;
      for (const bs of g.bs) for (const procs of g.procs) for (const depth of g.depth) {
        const base = { file: ctx.file, dataDir: ctx.dataDir, fileSize: ctx.fileSize, bs, depth, procs, direct, durationMs: ctx.durationMs };
        // Rounds: every engine once per round, the order rotated each round, so that the
        // engines of a point see the same machine conditions; medians over the rounds.
        const samples = {};
        for (const e of engines) samples[e.id] = [];
        for (let round = 0; round < ctx.repeat; round++) {
          const cache = new Map();
          for (let j = 0; j < engines.length; j++) {
            const e = engines[(j + round) % engines.length];
            k++;
            ctx.progress(`${name} [${k}/${total}] bs=${bs / 1024}k qd=${depth} procs=${procs} ${e.id}${ctx.repeat > 1 ? ` round ${round + 1}/${ctx.repeat}` : ''}`);
            const load1 = ctx.load();
            const r = await runEngine(e, base, ctx, cache);
            samples[e.id].push({ ...r, load1 });
          }
        }
        const results = {};
        for (const e of engines) results[e.id] = medianSample(samples[e.id]);
        const ratios = {};
        const pair = (a, b) => {
          const per = samples[a].map((s, i) => ratio(s.iops, samples[b][i] && samples[b][i].iops)).filter((v) => v !== null);
          ratios[`${a}/${b}`] = per.length ? median(per) : null;
        };
        for (const e of engines) if (e.kind !== 'rm') pair('ringmaster', e.id);
        // The threads backend (what Docker and gVisor users get) against Node's threadpool.
        pair('ringmaster-threads', 'node-fs');
        points.push({ bs, depth, procs, results, ratios });
      }
      const qd1 = (p) => p.depth === 1;
      const deeper = (p) => p.depth > 1;
      const targets = direct
        ? [target('ringmaster/node-uv-io_uring', 1.0, points.filter(qd1), 'cold reads QD 1 >= 1.0x Node fs with libuv io_uring'),
          target('ringmaster/fio-io_uring', 0.85, points.filter(qd1), 'cold reads QD 1 >= 0.85x fio io_uring'),
          target('ringmaster/node-uv-io_uring', 1.0, points.filter(deeper), 'cold reads QD > 1 >= 1.0x Node fs with libuv io_uring'),
          target('ringmaster-threads/node-fs', 1.0, points, 'threads backend cold reads >= 1.0x Node fs (threadpool)')]
        : [target('ringmaster/node-uv-io_uring', 1.3, points, 'cached reads >= 1.3x Node fs with libuv io_uring'),
          target('ringmaster/fio-io_uring', 0.6, points.filter(qd1), 'cached reads QD 1 >= 0.6x fio io_uring'),
          target('ringmaster-threads/node-fs', 1.0, points, 'threads backend cached reads >= 1.0x Node fs (threadpool)')];
      return { engines: engines.map((e) => ({ id: e.id, label: e.label, env: e.env || null })), points, targets };
    },
    render(res) {
      const engines = res.engines;
      const keys = Object.keys(res.points[0] ? res.points[0].ratios : {});
      const short = (k) => k.replace('ringmaster-threads/', 'rm-threads/').replace('ringmaster/', 'rm/');
      const headers = ['bs', 'QD', 'procs', ...engines.map((e) => `${e.label} IOPS`), ...keys.map(short), 'rm p50/p99 µs', 'fio io_uring p50/p99 µs'];
      const rows = res.points.map((p) => [
        `${p.bs / 1024}k`, p.depth, p.procs,
        ...engines.map((e) => cell(p.results[e.id])),
        ...keys.map((k) => p.ratios[k]),
        lat(p.results.ringmaster), lat(p.results['fio-io_uring']),
      ]);
      const md = [mdTable(headers, rows), '', '**Targets**', '', ...res.targets.map(targetLine)].join('\n');
      const svg = svgBars({
        title: res.title, yLabel: 'IOPS',
        groups: res.points.map((p) => `${p.bs / 1024}k qd${p.depth} p${p.procs}`),
        series: engines.map((e) => e.label),
        values: res.points.map((p) => engines.map((e) => (p.results[e.id] && p.results[e.id].iops) || null)),
        log: true,
      });
      return { md, svg };
    },
  };
}

function cell(r) {
  if (!r) return '–';
  if (r.skipped) return `skipped (${r.skipped})`;
  if (r.error) return `error: ${String(r.error).slice(0, 60)}`;
  return r.iops;
}
function lat(r) {
  return r && r.iops ? `${fmt(r.p50us)} / ${fmt(r.p99us)}` : '–';
}

function target(key, goal, points, text) {
  const vals = points.map((p) => ({ at: `${p.bs / 1024}k qd${p.depth} p${p.procs}`, r: p.ratios[key] })).filter((x) => x.r !== null && x.r !== undefined);
  if (!vals.length) return { key, goal, text, status: 'not measured (anchor skipped or failed)' };
  const met = vals.filter((x) => x.r >= goal);
  const geo = Math.exp(vals.reduce((s, x) => s + Math.log(x.r), 0) / vals.length);
  const worst = vals.reduce((a, b) => (b.r < a.r ? b : a));
  const best = vals.reduce((a, b) => (b.r > a.r ? b : a));
  return {
    key, goal, text, pointsMet: met.length, points: vals.length, geomean: round(geo, 2), worst, best,
    status: met.length === vals.length ? 'met' : met.length === 0 ? 'not met' : `met at ${met.length}/${vals.length} points`,
  };
}
function targetLine(t) {
  if (t.points === undefined) return `- ${t.text}: ${t.status}`;
  return `- ${t.text}: **${t.status}** (geomean ${t.geomean}×, worst ${t.worst.r}× at ${t.worst.at}, best ${t.best.r}× at ${t.best.at})`;
}

module.exports = { cold: make('cold'), cached: make('cached'), targetLine, median, medianSample };
