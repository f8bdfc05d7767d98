import sys,subprocess,collections
hz=1999
def load(f,commits,mainonly=True,depth=0):
    out=subprocess.run(['perf','script','-i',f,'-F','pid,tid,ip,sym,dso'],capture_output=True,text=True).stdout
    c=collections.Counter()
    for block in out.split('\n\n'):
        lines=[l for l in block.strip().split('\n') if l.strip()]
        if not lines: continue
        pid,tid=lines[0].split()[0].split('/')
        if mainonly and pid!=tid: continue
        fr=lines[1].strip().split(None,1)[1] if len(lines)>1 else '?'
        fr=fr.rsplit(' (',1)[0]
        if fr.startswith('JS:'): fr='JS:'+fr.split()[0][3:]+' '+fr.split('/')[-1]
        c[fr]+=1
    return {k:v/hz*1e6/commits for k,v in c.items()}
a=load(sys.argv[1],int(sys.argv[2])); b=load(sys.argv[3],int(sys.argv[4]))
keys=sorted(set(a)|set(b), key=lambda k: -(b.get(k,0)-a.get(k,0)))
print('sum a %.1f b %.1f'%(sum(a.values()),sum(b.values())))
for k in keys[:40]: print('%7.2f %7.2f %+7.2f  %s'%(a.get(k,0),b.get(k,0),b.get(k,0)-a.get(k,0),k[:110]))
