# Issue 19 cross-check (bench-results/2026-12-01/grb, see BENCHMARKS.md section tag grb). Optional, not part of
# the tests: needs `pip install gurobipy scipy numpy` (Gurobi's size-limited pip licence). Run from this folder.
# Re-formulation (own code) of the published Quadapter MILPs (DeepPoly, quantization, preimage MILPs),
# solved with Gurobi (size-limited pip licence); drive2.py runs the forward search on top.
import numpy as np, json, sys, math, gurobipy as gp
from gurobipy import GRB
from onnxw import load
from tasks import images
TOLE=1e-6
def qround(a):  # round half away from zero
    return np.where(a<0, np.ceil(a-0.5), np.floor(a+0.5))
def int_bits(W,b):
    mx=np.round(max(W.max(),b.max())); mn=np.round(min(W.min(),b.min())); m=max(abs(mx),abs(mn))
    return 1 if m==0 else 2 if m==1 else int(math.ceil(math.log2(m))+1)
def quant(a,Q,F):
    lo=-(2**(Q-1))/2**F; hi=(2**(Q-1)-1)/2**F
    return qround(np.clip(a,lo,hi)*2**F)/2**F
def deeppoly(Ws,bs,lo,hi):
    """forms[k] = (Al, cl, Au, cu) of pre-activation of hidden layer k wrt x; bounds."""
    forms=[];relus=[]
    for k,(W,b) in enumerate(zip(Ws,bs)):
        # back-substitute W z_{k-1} + b
        Al=W.copy(); cl=b.copy(); Au=W.copy(); cu=b.copy()
        for j in range(k-1,-1,-1):
            (sl,il,su,iu)=relus[j]  # z >= sl*y+il ; z <= su*y+iu
            Wp,bp=Ws[j],bs[j]
            pos=Al>=0
            nl=np.where(pos,Al*sl,Al*su); cl=cl+np.where(pos,Al*il,Al*iu).sum(1)
            pos=Au>=0
            nu=np.where(pos,Au*su,Au*sl); cu=cu+np.where(pos,Au*iu,Au*il).sum(1)
            Al=nl@Wp; cl=cl+nl@bp; Au=nu@Wp; cu=cu+nu@bp
        lb=cl+np.minimum(Al*lo,Al*hi).sum(1); ub=cu+np.maximum(Au*lo,Au*hi).sum(1)
        forms.append((Al,cl,Au,cu,lb,ub))
        if k<len(Ws)-1:
            sl=np.where(ub<=0,0.0,np.where(lb>=0,1.0,np.where(lb+ub<=0,0.0,1.0)))
            mu=np.where((lb<0)&(ub>0),ub/np.where(ub-lb==0,1,ub-lb),0.0)
            su=np.where(ub<=0,0.0,np.where(lb>=0,1.0,mu)); iu=np.where((lb<0)&(ub>0),-mu*lb,0.0)
            relus.append((sl, np.zeros_like(sl), su, iu))
    return forms
def model():
    m=gp.Model(); m.Params.OutputFlag=0; m.Params.IntFeasTol=1e-9; m.Params.FeasibilityTol=TOLE
    m.Params.DualReductions=0; m.Params.Threads=1; return m
def chi_last(W3,b3,tmpl2,lo,hi,g):
    Al,cl,Au,cu,alpha,beta=tmpl2
    m=model(); x=m.addMVar(784,lb=lo,ub=hi); s=m.addMVar(1,lb=0,ub=100)
    y=m.addMVar(len(cl),lb=-GRB.INFINITY,ub=1000); z=m.addMVar(len(cl),lb=0,ub=1000)
    m.addConstr(y>=Al@x+cl-alpha.reshape(-1,1)@s); m.addConstr(y<=Au@x+cu+beta.reshape(-1,1)@s)
    for i in range(len(cl)): m.addGenConstrMax(z[i].item(),[y[i].item()],constant=0)
    out=m.addMVar(W3.shape[0],lb=-GRB.INFINITY); m.addConstr(out==W3@z+b3)
    om=m.addVar(lb=-1000); m.addGenConstrMax(om,[out[j].item() for j in range(W3.shape[0]) if j!=g])
    m.addConstr(om>=out[g].item()+TOLE); m.setObjective(s,GRB.MINIMIZE); m.optimize()
    return float(s.X[0]) if m.Status==GRB.OPTIMAL else (None if m.Status!=GRB.INFEASIBLE else 'inf')
def chi_mid(Wn,bn,tmpl1,tmpl2exp,lo,hi):
    Al,cl,Au,cu,alpha,beta=tmpl1
    (L2A,L2c,U2A,U2c,act2)=tmpl2exp
    m=model(); x=m.addMVar(784,lb=lo,ub=hi); s=m.addMVar(1,lb=0,ub=100); n=len(cl)
    y=m.addMVar(n,lb=-GRB.INFINITY,ub=1000); z=m.addMVar(n,lb=0,ub=1000)
    m.addConstr(y>=Al@x+cl-alpha.reshape(-1,1)@s); m.addConstr(y<=Au@x+cu+beta.reshape(-1,1)@s)
    for i in range(n): m.addGenConstrMax(z[i].item(),[y[i].item()],constant=0)
    y2=m.addMVar(Wn.shape[0],lb=-GRB.INFINITY,ub=1000); m.addConstr(y2==Wn@z+bn)
    kl=m.addMVar(Wn.shape[0],vtype=GRB.BINARY); ku=m.addMVar(Wn.shape[0],vtype=GRB.BINARY)
    Tl=L2A@x+L2c
    m.addConstr(y2<=Tl-1000*(kl-1)-2*TOLE); m.addConstr(y2>=Tl-1000*kl+2*TOLE)
    # upper: 0 for template-inactive
    UA=U2A*act2[:,None]; Uc=U2c*act2
    Tu=UA@x+Uc
    m.addConstr(y2>=Tu+1000*(ku-1)+2*TOLE); m.addConstr(y2<=Tu+1000*ku-2*TOLE)
    m.addConstr(kl.sum()+ku.sum()>=1); m.setObjective(s,GRB.MINIMIZE); m.optimize()
    return float(s.X[0]) if m.Status==GRB.OPTIMAL else ('inf' if m.Status==GRB.INFEASIBLE else m.Status)
