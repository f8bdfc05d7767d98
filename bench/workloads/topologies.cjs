'use strict';
// Workload 5: ring topology, SQPOLL, fixed vs non-fixed buffers, processes vs threads,
// on the cached and the cold random-read workload at one fixed point.
const { runPoint, ratio, mdTable, svgBars, fmt } = require('../lib/common.cjs');
const { medianSample } = require('./reads.cjs');

const VARIANTS = [
  { id: 'default', label: 'defaults (rings = CPUs, shared)', rm: {}, mode: 'fork' },
  { id: 'shared-1ring', label: 'shared, 1 ring', rm: { rings: 1 }, mode: 'fork' },
  { id: 'shared-2rings', label: 'shared, 2 rings', rm: { rings: 2 }, mode: 'fork' },
  { id: 'per-process-2rings', label: 'per-process, 2 rings', rm: { topology: 'per-process', rings: 2 }, mode: 'fork' },
  { id: 'sqpoll', label: 'SQPOLL, 1 ring', rm: { sqpoll: true, rings: 1 }, mode: 'fork' },
  { id: 'no-fixed-buffers', label: 'fixedBuffers: false', rm: { fixedBuffers: false }, mode: 'fork' },
  { id: 'threads', label: 'worker_threads (threadToken)', rm: {}, mode: 'threads' },
];

module.exports = {
  name: 'topologies',
  title: 'Topologies: rings, SQPOLL, fixed buffers, processes vs threads',
  async run(ctx) {
    const point = ctx.smoke ? { bs: 4096, depth: 2, procs: 2 } : { bs: 4096, depth: 32, procs: 2 };
    const rows = [];
    const kinds = ['cached', 'cold'];
    const total = kinds.length * VARIANTS.length * ctx.repeat;
    let k = 0;
    ctx.warm();
    for (const kind of kinds) {
      const samples = new Map(VARIANTS.map((v) => [v.id, []]));
      for (let round = 0; round < ctx.repeat; round++) {
        for (let j = 0; j < VARIANTS.length; j++) {
          const v = VARIANTS[(j + round) % VARIANTS.length];
          k++;
          ctx.progress(`topologies [${k}/${total}] ${kind} ${v.id}${ctx.repeat > 1 ? ` round ${round + 1}/${ctx.repeat}` : ''}`);
          const load1 = ctx.load();
          const r = await runPoint({ engine: 'ringmaster', file: ctx.file, dataDir: ctx.dataDir, fileSize: ctx.fileSize, ...point, direct: kind === 'cold', durationMs: ctx.durationMs, rm: v.rm, mode: v.mode });
          samples.get(v.id).push({ ...r, load1 });
        }
      }
      for (const v of VARIANTS) rows.push({ kind, variant: v.id, label: v.label, result: medianSample(samples.get(v.id)) });
    }
    for (const r of rows) {
      const base = rows.find((x) => x.kind === r.kind && x.variant === 'default');
      r.vsDefault = ratio(r.result.iops, base && base.result.iops);
    }
    return { point, variants: VARIANTS, rows };
  },
  render(res) {
    const headers = ['workload', 'variant', 'IOPS (median)', 'rounds', 'vs default', 'p50 µs', 'p99 µs', 'enters/op', 'features'];
    const md = mdTable(headers, res.rows.map((r) => {
      const x = r.result;
      const rs = x.ringStats || [];
      const enters = rs.reduce((s, q) => s + q.enters, 0);
      const sqes = rs.reduce((s, q) => s + q.sqes, 0);
      const f = x.features ? `${x.features.backend}${x.features.sqpoll ? ' sqpoll' : ''}${x.features.fixedBuffers ? ' fixed-bufs' : ' non-fixed'}${x.features.fixedBuffersReason && x.features.backend === 'io_uring' && !/disabled by option/.test(x.features.fixedBuffersReason) ? ` (${x.features.fixedBuffersReason})` : ''}` : '';
      return [r.kind, r.label, x.error ? `error: ${x.error.slice(0, 80)}` : x.iops, (x.rounds || []).map((v) => (typeof v === 'number' ? Math.round(v / 1000) + 'k' : v)).join(' '), r.vsDefault, fmt(x.p50us), fmt(x.p99us), sqes ? Math.round((enters / sqes) * 100) / 100 : '–', f];
    }));
    const labels = res.variants.map((v) => v.label);
    const svg = svgBars({
      title: `${res.title} (4k, QD${res.point.depth}/process, ${res.point.procs} participants)`,
      yLabel: 'IOPS', groups: ['cached', 'cold'], series: labels,
      values: ['cached', 'cold'].map((kind) => res.variants.map((v) => {
        const r = res.rows.find((x) => x.kind === kind && x.variant === v.id);
        return (r && r.result.iops) || null;
      })),
    });
    return { md: `Point: bs=${res.point.bs}, QD ${res.point.depth} per participant, ${res.point.procs} participants (postmaster + 1 forked worker, or main thread + 1 worker thread).\n\n${md}`, svg };
  },
};
