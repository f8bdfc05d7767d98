import sys,subprocess,collections,json
# usage: bucket.py DATA SLICES HZ [topN]
data,slices,hz=sys.argv[1],sys.argv[2],int(sys.argv[3]); topn=int(sys.argv[4]) if len(sys.argv)>4 else 25
S=[json.loads(l) for l in open(slices)]
bounds=[(s['mono']-10.0 if i==0 else S[i-1]['mono'], s['mono'], s) for i,s in enumerate(S)]
out=subprocess.run(['perf','script','-i',data,'-F','pid,tid,time,ip,sym,dso'],capture_output=True,text=True).stdout
B=[dict(thr=collections.Counter(),top=collections.Counter(),dso=collections.Counter(),incl=collections.Counter(),n=0) for _ in S]
def cls(frames):
    top=frames[0] if frames else ''
    return top
for block in out.split('\n\n'):
    lines=[l for l in block.strip().split('\n') if l.strip()]
    if not lines: continue
    h=lines[0].split()
    pid,tid=h[0].split('/'); t=float(h[1].rstrip(':'))
    bi=None
    for i,(a,b,s) in enumerate(bounds):
        if a<=t<b: bi=i;break
    if bi is None: continue
    frames=[l.strip().split(None,1)[1] if len(l.strip().split(None,1))>1 else '' for l in lines[1:]]
    top=frames[0] if frames else '?'
    main=pid==tid
    d=B[bi]; d['n']+=1
    allst=' '.join(frames)
    if main: th='main'
    elif 'Compile' in allst or 'compiler::' in allst or 'maglev' in allst: th='v8-compile'
    elif 'Heap' in allst or 'Scaveng' in allst or 'Marking' in allst or 'Sweep' in allst or 'Concurrent' in allst: th='v8-gc'
    else: th='other-thread'
    d['thr'][th]+=1
    if main:
        sym=top.split('(')[-1].rstrip(')') if False else top
        d['top'][top[:110]]+=1
        dso=top[top.rfind('(')+1:].rstrip(')') if '(' in top else '?'
        if '[kernel' in dso: dso='kernel'
        elif 'perf-' in dso: dso='JIT'
        elif 'node' in dso.split('/')[-1]: dso='node(V8/builtins/uv)'
        d['dso'][dso]+=1
        seen=set()
        for f in frames:
            for k in ('Scavenge','MarkCompact','Heap::CollectGarbage','epoll_pwait','io_uring_enter','futex','RunMicrotasks','uv__io_poll','uv__run_timers','Sweeper','do_syscall_64','schedule','napi_','ringmaster.node'):
                if k in f and k not in seen: seen.add(k); d['incl'][k]+=1
for i,(a,b,s) in enumerate(bounds):
    n=s['tps']*(b-a)
    us=lambda c: c/hz*1e6/n
    d=B[i]
    print(f"== slice {s['s']}s  tps {s['tps']}  cpu/tx(proc) {s['cpuUsPerTx']}  perf {us(d['n']):.1f} us/tx  load {s['load1']}")
    print('   thr:', ', '.join(f'{k} {us(v):.1f}' for k,v in d['thr'].most_common()))
    print('   main dso:', ', '.join(f'{k} {us(v):.1f}' for k,v in d['dso'].most_common()))
    print('   main incl:', ', '.join(f'{k} {us(v):.1f}' for k,v in d['incl'].most_common()))
    if topn:
        for k,v in d['top'].most_common(topn): print(f'      {us(v):6.2f} {k}')
