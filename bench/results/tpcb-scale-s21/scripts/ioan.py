import sys,subprocess,re,collections,statistics
f=sys.argv[1]
out=subprocess.run(['perf','script','-i',f],capture_output=True,text=True).stdout
ev=[]
for l in out.split('\n'):
    m=re.match(r'\s*(\S.*?)\s+(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s+(.*)',l)
    if m: ev.append((float(m.group(4)),m.group(1),int(m.group(2)),m.group(5),m.group(6)))
# ring with most WRITE_FIXED/WRITE submits
rc=collections.Counter()
for t,comm,tid,e,a in ev:
    if e=='io_uring:io_uring_submit_req' and re.search(r'opcode (WRITE_FIXED|WRITE|FSYNC)',a):
        rc[re.search(r'ring (\S+),',a).group(1)]+=1
rings=set(sys.argv[2].split(','))
sub={}; blk_issue={}; pend_blk={}
lat=[]; tw=[]; poster=collections.Counter(); sametid=0; n=0; reqblk={}
lastissue_by_tid={}
for t,comm,tid,e,a in ev:
    if e=='io_uring:io_uring_submit_req' and re.search(r'ring (\S+),',a).group(1) in rings and re.search(r'opcode (WRITE_FIXED|WRITE|FSYNC)',a):
        req=re.search(r'req (\S+),',a).group(1); op=re.search(r'opcode (\S+),',a).group(1)
        sub[req]=(t,tid,op)
    elif e=='block:block_rq_issue' and ' W' in a:
        sec=a.split()[3] if False else re.search(r'\) (\d+) \+',a)
        if sec: blk_issue[sec.group(1)]=(t,tid)
    elif e=='block:block_rq_complete':
        sec=re.search(r'\) (\d+) \+',a)
        if sec and sec.group(1) in blk_issue:
            it,itid=blk_issue.pop(sec.group(1)); lastissue_by_tid.setdefault(itid,[]).append(t)
    elif e=='io_uring:io_uring_complete' and re.search(r'ring (\S+),',a).group(1) in rings:
        req=re.search(r'req (\S+),',a).group(1)
        if req in sub:
            st,stid,op=sub.pop(req); n+=1
            lat.append((op,(t-st)*1e6))
            poster[(op,'submitter' if tid==stid else comm.split('-')[0])]+=1
            # task-work delay: latest block completion for a request issued by the submitter tid before this
            cs=[x for x in lastissue_by_tid.get(stid,[]) if st<=x<=t]
            if cs and tid==stid: tw.append((t-max(cs))*1e6)
def pct(v,p): v=sorted(v); return round(v[min(len(v)-1,int(p*len(v)))],1) if v else None
print('rings',rings,'ops',n)
for op in sorted(set(o for o,_ in lat)):
    v=[x for o,x in lat if o==op]; print(f'  {op}: n={len(v)} submit->CQE posted p50 {pct(v,.5)} p90 {pct(v,.9)} p99 {pct(v,.99)} us')
print('  posted by:',dict(poster))
if tw: print(f'  device done -> CQE posted by submitter (task_work): n={len(tw)} p50 {pct(tw,.5)} p90 {pct(tw,.9)} p99 {pct(tw,.99)} max {round(max(tw),1)} us')
