# Issue 19 cross-check (bench-results/2026-12-01/grb, see BENCHMARKS.md section tag grb): the summaries quoted there.
import json,sys,collections
def rows(fs): return [json.loads(l) for f in fs for l in open(f) if l.startswith("{")]
def mean(v): return [round(sum(c)/len(v),3) for c in zip(*v)] if v else None
for name,fs in [("MP2",["f_mp2_a.jsonl","f_mp2_b.jsonl"]),("MP3",["f_mp3_a.jsonl","f_mp3_b1.jsonl","f_mp3_b2.jsonl","f_mp3_c.jsonl"])]:
    R=rows(fs); print(name,"tasks",len(R))
    for e in range(1,6):
        s=[r for r in R if r["eps"]==e]
        o=[r["our_bits"] for r in s if r["our_bits"]]; g=[r["grb_bits"] for r in s if r["grb_status"]=="certified"]
        print("  r=%d n=%d ours %d %s  grb %d %s"%(e,len(s),len(o),mean(o),len(g),mean(g)))
    unk=[r for r in R if r["grb_status"]!="certified"]
    col=[r for r in unk if any(isinstance(c,float) and c==0.0 for c in r["grb_chi"][1:])]
    print("  grb unknown",len(unk),"with a collapsed chi (=0) after layer 1:",len(col),"carry kept on unknown:",sum(bool(r.get("carried_all")) for r in unk))
    both=[r for r in R if r["our_status"]=="certified" and r["grb_status"]=="certified"]
    same=sum(r["our_bits"]==r["grb_bits"] for r in both); print("  identical bits on",same,"of",len(both),"common certified")
    for r in R:
        if (r["our_status"]=="certified")!=(r["grb_status"]=="certified"): print("   status differs",r["id"],r["eps"],r["our_status"],r["grb_status"],r["our_bits"],r.get("grb_bits"),[round(c,4) if isinstance(c,float) else c for c in r["grb_chi"]],r.get("carried_all"))
    ss=sorted(r["s"] for r in R); print("  gurobi seconds per task: mean %.1f median %.1f max %.1f"%(sum(ss)/len(ss),ss[len(ss)//2],ss[-1]))
