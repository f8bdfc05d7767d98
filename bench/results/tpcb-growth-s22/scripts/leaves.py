import sys,subprocess,collections,json,re
# usage: leaves.py HZ FROM TO DATA SLICES BUCKET  (bucket: poll | other)
hz=int(sys.argv[1]); fr=float(sys.argv[2]); to=float(sys.argv[3]); data,slices,bucket=sys.argv[4:7]
S=[json.loads(l) for l in open(slices)]
win=[]; n=0
for i,s in enumerate(S):
    a=S[i-1]['mono'] if i else s['mono']-10
    if fr < s['s'] <= to: win.append((a,s['mono'])); n+=s['tps']*(s['mono']-a)
out=subprocess.run(['perf','script','-i',data,'-F','pid,tid,time,ip,sym,dso'],capture_output=True,text=True).stdout
c=collections.Counter(); callers=collections.Counter()
for block in out.split('\n\n'):
    lines=[l for l in block.strip().split('\n') if l.strip()]
    if not lines: continue
    h=lines[0].split(); pid,tid=h[0].split('/'); t=float(h[1].rstrip(':'))
    if pid!=tid or not any(a<=t<b for a,b in win): continue
    fs_=[l.strip().split(None,1)[1] if len(l.strip().split(None,1))>1 else '?' for l in lines[1:]]
    if any('JS:' in f for f in fs_): continue
    st=' '.join(fs_)
    b='poll' if ('uv__io_poll' in st and 'epoll' not in st) else 'other' if not ('uv__io_poll' in st or 'RunMicrotasks' in st or 'uv__run_timers' in st) else None
    if b!=bucket: continue
    c[fs_[0][:90]]+=1
    # the chain of frames, shortened
    ch=' < '.join(re.sub(r'\s*\(.*\)$','',f)[:40] for f in fs_[:8])
    callers[ch]+=1
for k,v in c.most_common(25): print(f'  {v/hz*1e6/n:6.2f} {k}')
print('chains:')
for k,v in callers.most_common(15): print(f'  {v/hz*1e6/n:6.2f} {k}')
