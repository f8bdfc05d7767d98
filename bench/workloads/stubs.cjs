'use strict';
// Workloads that need modules still being written (issue 5 is partial this round).
// They are listed, run, and report why they are skipped: never dropped silently.
const STUB = (name, title, needs) => ({
  name,
  title,
  skipped: `skipped: needs the ${needs}`,
  async run() {
    return { skipped: this.skipped, rows: [] };
  },
  render(res) {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="640" height="80" font-family="sans-serif" font-size="13"><rect width="640" height="80" fill="white"/><text x="20" y="45">${title}: ${res.skipped}</text></svg>`;
    return { md: `**${res.skipped}**`, svg };
  },
});

module.exports = {
  durable: STUB('durable-commits', 'Durable commits (group commit) vs fdatasync loops / better-sqlite3', 'WAL/buffer pool (issue 4/3)'),
  tpcb: STUB('tpcb', 'TPC-B-like mix (processes vs threads)', 'WAL/buffer pool (issue 4/3)'),
};
