// The exported walInsertedUpto / walRole calls of a tree without walBind (the code before):
//   node bench/results/commit-cpu-s21/call-cost-before.cjs /path/to/before-tree
const path=require('path'),fs=require('fs'),os=require('os');
(async()=>{const root=path.resolve(process.argv[2]);const dir=fs.mkdtempSync(path.join(os.tmpdir(),'cc-'));const rm=require(root);const db=await rm.open({dataDir:dir,arenaSize:8<<20,wal:{}});
const addon=require(path.join(root,'dist/core/native')).native;const s=db._native();const N=200000;const cpu=()=>{const u=process.cpuUsage();return u.user+u.system};
for(let r=0;r<3;r++){let t=cpu();for(let i=0;i<N;i++)addon.walInsertedUpto(s);const a=(cpu()-t)/N;t=cpu();for(let i=0;i<N;i++){addon.walRole(s,'flusher',true);addon.walRole(s,'flusher',false);}const b=(cpu()-t)/N;
console.log(JSON.stringify({tree:path.basename(root),exportedCallUs:+a.toFixed(3),roleTakeAndReleaseExportedUs:+b.toFixed(3),load:os.loadavg()[0]}));}
await db.close();fs.rmSync(dir,{recursive:true,force:true});})();
