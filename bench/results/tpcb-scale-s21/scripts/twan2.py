import sys,subprocess,re,bisect
f=sys.argv[1]; rings=set(sys.argv[2].split(','))
out=subprocess.run(['perf','script','-i',f],capture_output=True,text=True).stdout
sub={}; ends=[]; cq=[]
for l in out.split('\n'):
    m=re.match(r'\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)',l)
    if not m: continue
    t=float(m.group(4)); tid=int(m.group(2)); e=m.group(5); a=m.group(6)
    if e=='workqueue:workqueue_execute_end' and 'iomap_dio_complete_work' in a: ends.append(t); continue
    r=re.search(r'ring (\S+),',a); req=re.search(r'req (\S+),',a)
    if not r or r.group(1) not in rings or not req: continue
    req=req.group(1)
    if e=='io_uring:io_uring_submit_req' and 'WRITE_FIXED' in a: sub[req]=(t,tid)
    elif e=='io_uring:io_uring_complete' and req in sub:
        st,stid=sub.pop(req); cq.append((st,t,tid==stid))
ends.sort(); d=[]; dev=[]
for st,t,same in cq:
    i=bisect.bisect_right(ends,t)-1
    if i>=0 and ends[i]>=st: d.append((t-ends[i])*1e6); dev.append((ends[i]-st)*1e6)
def pct(v,p): v=sorted(v); return round(v[min(len(v)-1,int(p*len(v)))],1) if v else None
tot=[(t-st)*1e6 for st,t,_ in cq]
print(f'WAL writes {len(cq)}, CQE posted by the submitting thread: {sum(1 for *_,s in cq if s)}')
print(f'  submit -> CQE posted:          p50 {pct(tot,.5)} p90 {pct(tot,.9)} p99 {pct(tot,.99)} us')
print(f'  submit -> dio completion done: p50 {pct(dev,.5)} p90 {pct(dev,.9)} p99 {pct(dev,.99)} us (n={len(dev)})')
print(f'  dio completion done -> CQE posted by the submitter (task_work wait): p50 {pct(d,.5)} p90 {pct(d,.9)} p99 {pct(d,.99)} max {round(max(d),1)} us; share of submit->CQE time: {round(100*sum(d)/sum(tot),1)}%')
