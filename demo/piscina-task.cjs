'use strict';
// A piscina task: attach this worker thread to the postmaster (db.threadToken()) once,
// run the TPC-B-like load until the shared stop flag is set, report through a MessagePort.
const { workerData } = require('node:worker_threads');
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));
const { runLoad } = require('./worker.cjs');

let dbp = null;
module.exports = async function task({ g, worker, sessions, stopFlag, port }) {
  if (!dbp) dbp = rm.attach(workerData.token);
  const db = await dbp;
  const flag = new Int32Array(stopFlag);
  await runLoad(db, { g, worker, sessions }, () => Atomics.load(flag, 0) === 1, (d) => port.postMessage({ progress: d }));
  const pool = db.buffers.stats().process;
  await db.close();
  dbp = null;
  port.close();
  return { pool };
};
