import sys,subprocess,threading,time,os,re,collections
WORK=os.environ.get('WORK','/tmp/tpcb-s21'); TREE=os.environ.get('TREE', os.path.abspath(os.path.join(os.path.dirname(__file__),'..','..','..','..'))); os.makedirs(WORK, exist_ok=True)
# usage: [TREE=checkout] [WORK=scratch dir] tl.py P scale warmupMs durationMs [node flags, e.g. --trace-opt --trace-deopt]
# Timestamps every line of the point's output (and the measured window's start/end, through TPCB_PERF_CTL)
# and counts V8 compiles and deopts before / inside / after the window.
P,scale,warm,dur=sys.argv[1:5]; flags=sys.argv[5:]
fifo=WORK+'/tlfifo%d'%os.getpid(); os.mkfifo(fifo)
t0=time.time(); ev=[]
def rd():
    while True:
        with open(fifo) as f:
            for l in f: ev.append((time.time()-t0,'CTL '+l.strip()))
threading.Thread(target=rd,daemon=True).start()
spec='{"engine":"rm","kind":"tpcb","procs":%s,"sessions":16,"durationMs":%s,"warmupMs":%s,"dataDir":"%s/dtl","mode":"fork","g":{"scale":%s},"historyRows":100000}'%(P,dur,warm,WORK,scale)
env=dict(os.environ,TPCB_PERF_CTL=fifo)
p=subprocess.Popen(['node']+flags+[TREE+'/bench/tpcb/point.cjs',spec],stdout=subprocess.PIPE,stderr=subprocess.STDOUT,text=True,env=env)
for l in p.stdout: ev.append((time.time()-t0,l.rstrip()))
p.wait(); os.unlink(fifo)
ev.sort()
open(WORK+'/tl-raw.txt','w').write('\n'.join('%.3f %s'%(t,l) for t,l in ev))
en=[t for t,l in ev if l=='CTL enable']; dis=[t for t,l in ev if l=='CTL disable']
print('window',en,dis)
w0=en[0] if en else 0; w1=dis[0] if dis else 1e9
cnt=collections.Counter(); ms=collections.Counter()
for t,l in ev:
    ph='pre' if t<w0 else ('in' if t<w1 else 'post')
    m=re.search(r'completed compiling.*<JSFunction ([^ >]*).*took ([0-9.e+]+), ([0-9.e+]+), ([0-9.e+]+) ms',l)
    if m: cnt[(ph,'compile')]+=1; ms[(ph,m.group(1))]+=float(m.group(3))
    if 'bailout (kind' in l:
        cnt[(ph,'deopt')]+=1
        m2=re.search(r'reason: ([^)]*)\).*deoptimizing [^<]*<JSFunction ([^ >]*)',l)
        if m2: cnt[(ph+'-deopt',m2.group(2),m2.group(1))]+=1
    if l.startswith('{'): print(l[:300])
[print(k,v) for k,v in sorted(cnt.items(), key=lambda x:-x[1])]
print('in-window compile ms by fn:',sorted([(round(v),k[1]) for k,v in ms.items() if k[0]=='in'],reverse=True)[:15])
# compile time histogram per second
h=collections.Counter()
for t,l in ev:
    if 'completed compiling' in l: h[int(t)]+=1
print('compiles per second:',[h[i] for i in range(int(max(t for t,_ in ev))+1)])
