import json,statistics as st,os,sys
PAPER={'mnist_1blk_100':('MP1','250/0, (6,3), 95.57%, 8.17'),'mnist_2blk_100_100':('MP2','248/2, (8,6,3), 94.11%, 30.49'),'mnist_3blk_100_100_100':('MP3','175/75, (11,9,6,3), 95.47%, 39.55'),
 'fashion-mnist_1blk_100':('FP1','250/0, (6,4), 78.54%, 6.93'),'fashion-mnist_2blk_100_100':('FP2','249/1, (8,6,3), 79.43%, 29.82'),'fashion-mnist_3blk_100_100_100':('FP3','180/70, (11,9,6,3), 74.23%, 36.90')}
print("| net | tasks done | #S/#F | avg bits per layer (certified) | QNN acc (certified) | preimage s mean (median) | attack found | paper: #S/#F, bits, acc, PTime |")
print("|---|---|---|---|---|---|---|---|")
for n,(name,paper) in PAPER.items():
    f=f'/tmp/s8/t250/{n}.jsonl'
    if not os.path.exists(f): continue
    R=[json.loads(l) for l in open(f)]
    S=[r for r in R if r['status']=='certified']
    L=len(R[0]['layers'])
    bits=", ".join(f"{st.fmean(r['layers'][i]['total'] for r in S):.2f}" for i in range(L)) if S else "—"
    acc=f"{100*st.fmean(r['qnn_accuracy'] for r in S):.2f}%" if S else "—"
    pre=[r['preimage_seconds'] for r in R]
    att=sum(1 for r in R if r.get('attack_counterexample'))
    other={}
    for r in R:
        if r['status']!='certified': other[r['status']]=other.get(r['status'],0)+1
    print(f"| {name} | {len(R)} of 250 | {len(S)}/{len(R)-len(S)} | ({bits}) | {acc} | {st.fmean(pre):.2f} ({st.median(pre):.2f}) | {att} | {paper} |")
