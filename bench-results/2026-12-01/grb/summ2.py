# Issue 19 cross-check (bench-results/2026-12-01/grb, see BENCHMARKS.md section tag grb). Optional, not part of
# the tests: needs `pip install gurobipy scipy numpy` (Gurobi's size-limited pip licence). Run from this folder.
import json,sys,collections
rows=[json.loads(l) for f in sys.argv[1:] for l in open(f) if l.startswith("{")]
print("tasks",len(rows))
def mean(v): return [round(sum(c)/len(v),3) for c in zip(*v)] if v else None
ours=[r for r in rows if r["our_status"]=="certified"]; grb=[r for r in rows if r["grb_status"]=="certified"]
both=[r for r in rows if r["our_status"]=="certified" and r["grb_status"]=="certified"]
print("ours #S",len(ours),"bits",mean([r["our_bits"] for r in ours]))
print("gurobi(authors' formulation) #S",len(grb),"bits",mean([r["grb_bits"] for r in grb]), "carried everywhere",sum(r.get("carried_all",False) for r in grb))
print("common",len(both),"ours",mean([r["our_bits"] for r in both]),"gurobi",mean([r["grb_bits"] for r in both]))
d=collections.Counter(tuple(a-b for a,b in zip(r["grb_bits"],r["our_bits"])) for r in both); print("per-task (gurobi - ours):",sorted(d.items()))
print("status pairs",collections.Counter((r["our_status"],r["grb_status"]) for r in rows))
ch=[r["grb_chi"][0]/r["our_chi"][0] for r in rows if isinstance(r["grb_chi"][0],float) and r["our_chi"][0]>0]
ch.sort(); print("chi1 authors/ours min %.3f median %.4f max %.4f"%(ch[0],ch[len(ch)//2],ch[-1]))
for r in rows:
    if r["our_status"]=="certified" and r["grb_status"]=="certified" and r["grb_bits"]!=r["our_bits"]:
        print("  ",r["id"],r["eps"],"ours",r["our_bits"],"gurobi",r["grb_bits"],"chi ours",[round(c,4) for c in r["our_chi"]],"grb",[round(c,4) for c in r["grb_chi"]],r["carried_all"])
