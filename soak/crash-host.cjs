// Power-cut soak host: a postmaster with a WAL, in its own process group (the
// controller SIGKILLs the whole group), forking workers that commit records.
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));

(async () => {
  const [dataDir, workers, segmentSize, round] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), process.argv[5]];
  const pm = await rm.Postmaster.start({
    dataDir,
    arenaSize: 4 << 20,
    backend: process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'auto',
    // The controller recovers (with its redo handler) between rounds; this host only appends.
    wal: { segmentSize, bufferSize: 256 << 10, onUnknownKind: 'skip' },
  });
  for (let i = 0; i < workers; i++) {
    const w = pm.fork(path.join(__dirname, 'crash-worker.cjs'), [String(i), round], { stdio: ['ignore', 'inherit', 'inherit'] });
    w.on('message', (m) => process.send(m));
  }
  process.send({ hostReady: true });
})().catch((e) => process.send({ error: String(e && e.stack) }));
