# Issue 19 cross-check (bench-results/2026-12-01/grb, see BENCHMARKS.md section tag grb). Optional, not part of
# the tests: needs `pip install gurobipy scipy numpy` (Gurobi's size-limited pip licence). Run from this folder.
# Full forward step of the published method (own re-formulation), solved by Gurobi, per task:
# preimages (Problem (3) as the authors' code poses it), then layer by layer the smallest F whose
# count MILP is infeasible (relaxed: >= int(0.25 n)+1 failing checks; strict: >= 1), rejected
# candidates carried while the size-limited licence allows, output: the authors' MILP.
import sys, json, numpy as np, time
from gq import *
net=sys.argv[1]; ids=[int(a) for a in sys.argv[2].split(",")]; radii=[int(a) for a in sys.argv[3].split(",")]
relaxed = sys.argv[4]=="relaxed"; ds = "fashion-mnist" if net.startswith("fashion") else "mnist"
w=load(f"/work/shared/models/quadapter/{net}.onnx")
L=len(w)//2
Ws=[w[f"W{k}"].T.astype(np.float64) for k in range(L)]; bs=[w[f"B{k}"].astype(np.float64) for k in range(L)]
X=images(ds)
suffix="_relaxed" if relaxed else ""
ours={}
for l in open(f"/work/main/bench-results/2026-12-01/t12/{net}{suffix}.jsonl"):
    r=json.loads(l); ours[(r["id"],r["eps_text"])]=r
Is=[int_bits(Ws[k],bs[k]) for k in range(L)]
Fmin = 2 if relaxed else 1
def count_layer(m, x, qf, T):
    """add one candidate's count constraints; returns (cons, vars)"""
    (qAl,qcl,qAu,qcu)=qf; (TAl,Tcl,TAu,Tcu,act)=T
    n=len(qcl); kl=m.addMVar(n,vtype=GRB.BINARY); ku=m.addMVar(n,vtype=GRB.BINARY); cons=[]
    ql=qAl@x+qcl; qu=qAu@x+qcu; Tl=TAl@x+Tcl; Tu=(TAu*act[:,None])@x+Tcu*act
    idx=np.where(act)[0]; 
    for i in range(n):
        if not act[i]: kl[i].ub=0
    if len(idx):
        cons.append(m.addConstr(ql[idx]<=Tl[idx]-1000*(kl[idx]-1)-TOLE)); cons.append(m.addConstr(ql[idx]>=Tl[idx]-1000*kl[idx]+TOLE))
    cons.append(m.addConstr(qu>=Tu+1000*(ku-1)+TOLE)); cons.append(m.addConstr(qu<=Tu+1000*ku-TOLE))
    numK=int(act.sum())+n; K=int(numK*0.25)+1 if relaxed else 1
    cons.append(m.addConstr(kl.sum()+ku.sum()>=K))
    return cons,[kl,ku]
for i in ids:
    x0=X[i]/255
    for e in radii:
        key=(i,f"{e}/255")
        if key not in ours: continue
        o=ours[key]; g=o["label"]
        lo=np.clip(X[i]-e,0,255)/255; hi=np.clip(X[i]+e,0,255)/255
        t0=time.time()
        forms=deeppoly(Ws,bs,lo,hi)
        v=[];z=x0
        for k in range(L):
            yk=Ws[k]@z+bs[k]; v.append(yk); z=np.maximum(yk,0)
        tm=[]
        for k in range(L-1):
            Al,cl,Au,cu,lb,ub=forms[k]
            tm.append((Al,cl,Au,cu,np.maximum(v[k]-lb,1e-3),np.maximum(ub-v[k],1e-3),lb,ub))
        chis=[None]*(L-1)
        k=L-2; Al,cl,Au,cu,alpha,beta,lb,ub=tm[k]
        chis[k]=chi_last(Ws[L-1],bs[L-1],(Al,cl,Au,cu,alpha,beta),lo,hi,g)
        for k in range(L-3,-1,-1):
            c=chis[k+1]
            if not isinstance(c,float): break
            Al2,cl2,Au2,cu2,a2,b2,lb2,ub2=tm[k+1]
            exp2=(Al2,cl2-a2*c,Au2,cu2+b2*c,(ub2+b2*c>0).astype(float))
            Al,cl,Au,cu,alpha,beta,lb,ub=tm[k]
            chis[k]=chi_mid(Ws[k+1],bs[k+1],(Al,cl,Au,cu,alpha,beta),exp2,lo,hi)
        out={"id":i,"eps":e,"our_status":o["status"],"our_chi":o["chi"],"grb_chi":chis,
             "our_bits":[l["total"] for l in o["layers"]] if o["status"]=="certified" else None}
        if not all(isinstance(c,float) for c in chis):
            out["grb_status"]="preimage-fails"; out["s"]=round(time.time()-t0,1); print(json.dumps(out),flush=True); continue
        m=model(); x=m.addMVar(784,lb=lo,ub=hi)
        Fs=[]; carried=True; status="certified"
        for k in range(L):
            acc=None
            if k<L-1:
                Al,cl,Au,cu,alpha,beta,lb,ub=tm[k]; c=chis[k]
                T=(Al,cl-alpha*c,Au,cu+beta*c,(ub+beta*c>0).astype(float))
            for F in range(Fmin,17):
                Wq=[quant(Ws[j],Is[j]+Fs[j],Fs[j]) for j in range(k)]+[quant(Ws[k],Is[k]+F,F)]
                bq=[quant(bs[j],Is[j]+Fs[j],Fs[j]) for j in range(k)]+[quant(bs[k],Is[k]+F,F)]
                qfm=deeppoly(Wq,bq,lo,hi)[k]
                if k<L-1:
                    cons,vs=count_layer(m,x,qfm[:4],T)
                else:
                    qAl,qcl,qAu,qcu=qfm[:4]
                    tl=qAl[g]@x+qcl[g]; others=[j for j in range(10) if j!=g]
                    kk=m.addMVar(9,vtype=GRB.BINARY); cons=[]
                    ou=qAu[others]@x+qcu[others]
                    cons.append(m.addConstr(ou>=tl+1000*(kk-1)+TOLE)); cons.append(m.addConstr(ou<=tl+1000*kk-TOLE))
                    cons.append(m.addConstr(kk.sum()>=1)); vs=[kk]
                try:
                    m.optimize(); st=m.Status
                except gp.GurobiError:
                    # licence size: drop the carried rows and retry without them
                    carried=False
                    m=model(); x=m.addMVar(784,lb=lo,ub=hi)
                    if k<L-1: cons,vs=count_layer(m,x,qfm[:4],T)
                    else:
                        tl=qAl[g]@x+qcl[g]; kk=m.addMVar(9,vtype=GRB.BINARY); ou=qAu[others]@x+qcu[others]; cons=[]
                        cons.append(m.addConstr(ou>=tl+1000*(kk-1)+TOLE)); cons.append(m.addConstr(ou<=tl+1000*kk-TOLE)); cons.append(m.addConstr(kk.sum()>=1)); vs=[kk]
                    m.optimize(); st=m.Status
                if st==GRB.INFEASIBLE:
                    acc=F; m.remove(cons); m.remove([v_ for vv in vs for v_ in vv.tolist()]); break
            if acc is None: status="unknown"; break
            Fs.append(acc)
        out["grb_status"]=status; out["grb_bits"]=[Is[j]+Fs[j] for j in range(len(Fs))] if status=="certified" else None
        out["carried_all"]=carried; out["s"]=round(time.time()-t0,1)
        print(json.dumps(out),flush=True)
