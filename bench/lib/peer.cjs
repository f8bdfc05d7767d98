'use strict';
// What a point process (bench/lib/point.cjs, bench/tpcb/point.cjs) shares: the RPC wrapper
// around its participants, and what it says when the harness stops it for being overdue.

/** An RPC wrapper around a child process or a worker thread running a participant script. */
class Peer {
  constructor(target, kind) {
    this.target = target;
    this.kind = kind;
    this.next = 1;
    this.waiting = new Map();
    this.ready = new Promise((r) => (this._ready = r));
    this.isReady = false;
    target.on('message', (m) => {
      if (m && m.event === 'ready') { this.isReady = true; return this._ready(); }
      const w = this.waiting.get(m && m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(m.error));
    });
    const gone = (e) => {
      for (const [, w] of this.waiting) w.reject(new Error(`participant ended: ${e && e.message ? e.message : e}`));
      this.waiting.clear();
    };
    target.on('exit', gone);
    target.on('error', gone);
  }

  call(cmd, args = {}) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, cmd, since: Date.now() });
      if (this.kind === 'thread') this.target.postMessage({ id, cmd, args });
      else this.target.send({ id, cmd, args });
    });
  }

  /** What this participant has not answered yet, e.g. "run for 61234 ms" (or "not ready"). */
  pending() {
    const now = Date.now();
    const calls = [...this.waiting.values()].map((w) => `${w.cmd} for ${now - w.since} ms`);
    return calls.length ? calls.join(', ') : this.isReady ? 'idle' : 'not ready';
  }
}

/** Asks each participant to close, then ends the worker threads among them. */
async function closePeers(peers) {
  for (const p of peers) await p.call('close').catch(() => {});
  for (const p of peers) if (p.kind === 'thread') await p.target.terminate();
}

// Where this point is, for the harness's SIGTERM (bench/lib/common.cjs runPointScript): the
// point prints it as its error line and exits, so an overdue point says where it stuck
// (its phase, what each participant has not answered, and what its probes report).
let phaseName = 'starting';
let phaseSince = Date.now();
const probes = new Set();
function phase(name) {
  phaseName = name;
  phaseSince = Date.now();
}
/** fn() -> an object of facts merged into the overdue report; returns its remover. */
function addProbe(fn) {
  probes.add(fn);
  return () => probes.delete(fn);
}
process.on('SIGTERM', () => {
  const facts = {};
  for (const fn of probes) {
    try { Object.assign(facts, fn()); } catch (e) { facts.probeError = String(e && e.message); }
  }
  const error = `stopped by the harness in phase '${phaseName}' after ${Date.now() - phaseSince} ms in it${Object.keys(facts).length ? `: ${JSON.stringify(facts)}` : ''}`;
  process.stdout.write(`${JSON.stringify({ error, phase: phaseName, ...facts })}\n`);
  process.exit(1);
});

module.exports = { Peer, closePeers, phase, addProbe };
