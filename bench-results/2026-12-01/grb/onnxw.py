# Issue 19 cross-check (bench-results/2026-12-01/grb, see BENCHMARKS.md section tag grb). Optional, not part of
# the tests: needs `pip install gurobipy scipy numpy` (Gurobi's size-limited pip licence). Run from this folder.
import numpy as np, sys
def varint(b,i):
    r=0;s=0
    while True:
        c=b[i];i+=1;r|=(c&0x7f)<<s;s+=7
        if c<0x80: return r,i
def fields(b):
    i=0;out=[]
    while i<len(b):
        k,i=varint(b,i);f=k>>3;t=k&7
        if t==0: v,i=varint(b,i)
        elif t==2:
            l,i=varint(b,i);v=b[i:i+l];i+=l
        elif t==1: v=b[i:i+8];i+=8
        elif t==5: v=b[i:i+4];i+=4
        out.append((f,t,v))
    return out
def load(p):
    m=open(p,'rb').read()
    g=[v for f,t,v in fields(m) if f==7][0]
    inits={}
    for f,t,v in fields(g):
        if f==5:
            dims=[];name=None;raw=None;fd=[]
            for ff,tt,vv in fields(v):
                if ff==1: dims.append(vv)
                elif ff==8: name=vv.decode()
                elif ff==9: raw=vv
                elif ff==4:
                    if tt==2: fd+=list(np.frombuffer(vv,dtype='<f4'))
                    else: fd.append(np.frombuffer(vv,'<f4')[0])
            a=np.frombuffer(raw,dtype='<f4') if raw is not None else np.array(fd,dtype=np.float32)
            inits[name]=a.reshape(dims)
    return inits
if __name__=="__main__":
    for k,v in load(sys.argv[1]).items(): print(k,v.shape,float(np.abs(v).max()))
