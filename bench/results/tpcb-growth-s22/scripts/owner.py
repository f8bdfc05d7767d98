import sys,subprocess,collections,json,re
# usage: owner.py HZ FROM_S TO_S DATA SLICES [DATA SLICES ...] -> main-thread µs/tx by nearest JS frame (file:function), or native context
hz=int(sys.argv[1]); fr=float(sys.argv[2]); to=float(sys.argv[3]); runs=sys.argv[4:]
res=[]
for data,slices in zip(runs[0::2],runs[1::2]):
    S=[json.loads(l) for l in open(slices)]
    win=[]; n=0
    for i,s in enumerate(S):
        a=S[i-1]['mono'] if i else s['mono']-10
        if fr < s['s'] <= to: win.append((a,s['mono'])); n+=s['tps']*(s['mono']-a)
    out=subprocess.run(['perf','script','-i',data,'-F','pid,tid,time,ip,sym,dso'],capture_output=True,text=True).stdout
    c=collections.Counter()
    for block in out.split('\n\n'):
        lines=[l for l in block.strip().split('\n') if l.strip()]
        if not lines: continue
        h=lines[0].split(); pid,tid=h[0].split('/'); t=float(h[1].rstrip(':'))
        if not any(a<=t<b for a,b in win): continue
        fs_=[l.strip().split(None,1)[1] if len(l.strip().split(None,1))>1 else '?' for l in lines[1:]]
        if pid!=tid:
            allst=' '.join(fs_)
            c['[thread] '+('compile' if ('Compile' in allst or 'compiler::' in allst or 'maglev' in allst) else 'gc' if ('Heap' in allst or 'Scaveng' in allst or 'Marking' in allst or 'Sweep' in allst) else 'other')]+=1
            continue
        leaf=fs_[0] if fs_ else '?'
        kern='[kernel' in leaf
        key=None
        for f in fs_:
            m=re.search(r'JS:\S*? ?(\S+?):(\d+):\d+',f)
            if 'JS:' in f:
                mm=re.search(r'JS:\*?~?\^?(\S*) (\S+?):\d+:\d+',f)
                if mm:
                    fn,file=mm.group(1),mm.group(2)
                    file=file.split('/')[-1]
                    key=f'{file}:{fn}'
                else: key='JS:?'
                break
        if key is None:
            st=' '.join(fs_)
            if 'uv__io_poll' in st and 'epoll' in st: key='(loop) epoll wait/return'
            elif 'uv__io_poll' in st: key='(loop) uv io poll, no JS'
            elif 'RunMicrotasks' in st: key='(microtasks, no JS frame)'
            elif 'uv__run_timers' in st: key='(loop) timers'
            elif 'GC' in st or 'Heap' in st or 'Scaveng' in st: key='(main GC)'
            else: key='(other native)'
        if kern and not key.startswith('(loop) epoll'): key+=' [k]'
        c[key]+=1
    res.append(({k:v/hz*1e6/n for k,v in c.items()},n))
keys=set().union(*[r[0] for r in res])
ks=sorted(keys,key=lambda k:-(res[-1][0].get(k,0)-res[0][0].get(k,0)))
print('tx:', [round(r[1]) for r in res], 'total us/tx:', [round(sum(r[0].values()),1) for r in res])
import os
for k in (ks if os.environ.get("ALL") else ks[:40]): print('  '+'  '.join(f'{r[0].get(k,0):6.2f}' for r in res)+f'  {res[-1][0].get(k,0)-res[0][0].get(k,0):+6.2f}  {k}')
print('  ...')
for k in ks[-6:]: print('  '+'  '.join(f'{r[0].get(k,0):6.2f}' for r in res)+f'  {res[-1][0].get(k,0)-res[0][0].get(k,0):+6.2f}  {k}')
