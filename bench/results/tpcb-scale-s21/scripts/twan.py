import sys,subprocess,re,collections,bisect
f=sys.argv[1]; rings=set(sys.argv[2].split(','))
out=subprocess.run(['perf','script','-i',f],capture_output=True,text=True).stdout
sub={}; lat=[]; comp=[]; cq=[]
for l in out.split('\n'):
    m=re.match(r'\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)',l)
    if not m: continue
    t=float(m.group(4)); tid=int(m.group(2)); e=m.group(5); a=m.group(6)
    if e=='block:block_rq_complete' and (' FF ' in a or ') 0 + 0' in a): comp.append(t); continue
    r=re.search(r'ring (\S+),',a)
    if not r or r.group(1) not in rings: continue
    req=re.search(r'req (\S+),',a)
    if not req: continue
    req=req.group(1)
    if e=='io_uring:io_uring_submit_req' and 'WRITE_FIXED' in a: sub[req]=(t,tid)
    elif e=='io_uring:io_uring_complete' and req in sub:
        st,stid=sub.pop(req); cq.append((st,t,tid==stid))
comp.sort(); d=[]
for st,t,same in cq:
    i=bisect.bisect_right(comp,t)-1
    if i>=0 and comp[i]>=st: d.append((t-comp[i])*1e6)
def pct(v,p): v=sorted(v); return round(v[min(len(v)-1,int(p*len(v)))],1) if v else None
tot=[(t-st)*1e6 for st,t,_ in cq]
print(f'writes {len(cq)} (CQE posted by the submitter: {sum(1 for *_,s in cq if s)}); submit->CQE p50 {pct(tot,.5)} p90 {pct(tot,.9)} p99 {pct(tot,.99)} us; last device flush completion -> CQE posted (a lower bound of the task_work wait), n={len(d)}: p50 {pct(d,.5)} p90 {pct(d,.9)} p99 {pct(d,.99)} max {round(max(d),1) if d else None} us')
