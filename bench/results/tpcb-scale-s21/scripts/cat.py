import sys,subprocess,collections
f=sys.argv[1]; commits=int(sys.argv[2]); hz=1999
out=subprocess.run(['perf','script','-i',f,'-F','pid,tid,ip,sym,dso'],capture_output=True,text=True).stdout
cat=collections.Counter(); thr=collections.Counter(); path=collections.Counter()
for block in out.split('\n\n'):
    lines=[l for l in block.strip().split('\n') if l.strip()]
    if not lines: continue
    pid,tid=lines[0].split()[0].split('/')
    frames=[l.strip() for l in lines[1:]]
    top=frames[0] if frames else ''
    main = pid==tid
    allst=' '.join(frames)
    if '[kernel' in top: c='kernel'
    elif 'compiler::' in top or 'maglev' in top.lower() or 'Compile' in top: c='v8-compiler'
    elif 'Scavenge' in top or 'Heap' in top or 'MarkCompact' in top or 'Sweeper' in top or 'GC' in top: c='v8-gc'
    elif 'ringmaster.node' in top: c='ringmaster.node'
    elif 'JS:' in top or 'perf-' in top: c='JS-jit'
    elif 'Builtins_Interpreter' in top or 'Baseline' in top: c='interp/baseline'
    elif 'Builtins_' in top: c='builtins'
    else: c='other-native'
    thread = 'main' if main else ('uv-worker/libuv' if 'uv_' in allst and 'worker' in allst else 'other-thread')
    if not main:
        if 'compiler' in allst or 'Compile' in allst: thread='v8-compile-thread'
        elif 'Scaveng' in allst or 'Heap' in allst or 'Marking' in allst or 'Sweep' in allst: thread='v8-gc-thread'
    cat[c]+=1; thr[thread]+=1
    # main thread path
    if main:
        if 'epoll_pwait' in allst and '[kernel' in top: path['main: in epoll']+=1
        if 'Session::Deliver' in allst: path['main: under Session::Deliver']+=1
        if 'uv__io_poll' in allst: path['main: under uv__io_poll']+=1
        if 'futex' in allst: path['main: futex']+=1
        if 'io_uring_enter' in allst: path['main: io_uring_enter']+=1
        if 'schedule' in allst: path['main: schedule']+=1
        if 'uv__run_timers' in allst: path['main: timers']+=1
        if 'RunMicrotasks' in allst: path['main: microtasks']+=1
tot=sum(cat.values())
us=lambda n: n/hz*1e6/commits
print(f'total {tot} samples, {us(tot):.1f} us/commit')
for k,v in cat.most_common(): print(f'  cat {k:22s} {us(v):7.1f} us/commit')
for k,v in thr.most_common(): print(f'  thr {k:22s} {us(v):7.1f} us/commit')
for k,v in path.most_common(): print(f'  {k:30s} {us(v):7.1f} us/commit')
