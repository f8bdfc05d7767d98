import sys,subprocess,collections,json
# usage: symdiff.py DATA_A SLICES_A DATA_B SLICES_B HZ FROM_S [TO_S]  -> self µs/tx by symbol and thread, slices with s in (FROM_S, TO_S]
def load(data,slices,hz,fr,to):
    S=[json.loads(l) for l in open(slices)]
    win=[]; n=0
    for i,s in enumerate(S):
        a=S[i-1]['mono'] if i else s['mono']-10
        if fr < s['s'] <= to: win.append((a,s['mono'])); n+=s['tps']*(s['mono']-a)
    out=subprocess.run(['perf','script','-i',data,'-F','pid,tid,time,ip,sym,dso','-G' if False else '--no-inline'],capture_output=True,text=True).stdout
    c=collections.Counter(); tot=0
    for block in out.split('\n\n'):
        lines=[l for l in block.strip().split('\n') if l.strip()]
        if not lines: continue
        h=lines[0].split(); pid,tid=h[0].split('/'); t=float(h[1].rstrip(':'))
        if not any(a<=t<b for a,b in win): continue
        fr_=[l.strip().split(None,1)[1] if len(l.strip().split(None,1))>1 else '?' for l in lines[1:]]
        top=fr_[0] if fr_ else '?'
        import re
        top=re.sub(r'\(/tmp/perf-\d+\.map\)','(JIT)',top)
        c[('M ' if pid==tid else 'T ')+top[:100]]+=1; tot+=1
    return {k:v/hz*1e6/n for k,v in c.items()}, tot/hz*1e6/n, n
hz=int(sys.argv[5]); fr=float(sys.argv[6]); to=float(sys.argv[7]) if len(sys.argv)>7 else 1e9
A,ta,na=load(sys.argv[1],sys.argv[2],hz,fr,to); B,tb,nb=load(sys.argv[3],sys.argv[4],hz,fr,to)
print(f'A total {ta:.1f} us/tx ({na:.0f} tx)   B total {tb:.1f} us/tx ({nb:.0f} tx)')
keys=set(A)|set(B)
d=sorted(keys,key=lambda k:-(B.get(k,0)-A.get(k,0)))
print('largest growth A->B:')
for k in d[:45]: print(f'  {A.get(k,0):6.2f} -> {B.get(k,0):6.2f}  {B.get(k,0)-A.get(k,0):+6.2f}  {k}')
print('largest drop:')
for k in d[-8:]: print(f'  {A.get(k,0):6.2f} -> {B.get(k,0):6.2f}  {B.get(k,0)-A.get(k,0):+6.2f}  {k}')
