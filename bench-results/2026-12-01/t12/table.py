#!/usr/bin/env python3
"""Table 2 on all 250 tasks: strict and relaxed rows of one directory, next to the paper's
(docs/method.md) and, if given, a reference directory of the same layout (per-task deltas).
usage: table.py DIR [REFDIR]"""
import json, os, statistics as st, sys
D = sys.argv[1]; REF = sys.argv[2] if len(sys.argv) > 2 else None
NETS = [('MP1', 'mnist_1blk_100'), ('MP2', 'mnist_2blk_100_100'), ('MP3', 'mnist_3blk_100_100_100'),
        ('FP1', 'fashion-mnist_1blk_100'), ('FP2', 'fashion-mnist_2blk_100_100'), ('FP3', 'fashion-mnist_3blk_100_100_100')]
PAPER = {  # #S/#F, bits, acc, PTime, QTime (strict, then relaxed)
 ('MP1', ''): ('250/0', '(6,3)', '95.57%', 8.17, 10.80), ('MP1', '_relaxed'): ('250/0', '(4,4)', '96.59%', 8.75, 3.96),
 ('MP2', ''): ('248/2', '(8,6,3)', '94.11%', 30.49, 29.18), ('MP2', '_relaxed'): ('249/1', '(5,4,4)', '96.35%', 31.60, 13.38),
 ('MP3', ''): ('175/75', '(11,9,6,3)', '95.47%', 39.55, 58.63), ('MP3', '_relaxed'): ('208/32', '(8,5,4,4)', '96.08%', 42.37, 78.22),
 ('FP1', ''): ('250/0', '(6,4)', '78.54%', 6.93, 10.48), ('FP1', '_relaxed'): ('250/0', '(4,4)', '83.89%', 7.80, 3.63),
 ('FP2', ''): ('249/1', '(8,6,3)', '79.43%', 29.82, 28.86), ('FP2', '_relaxed'): ('248/2', '(5,4,4)', '84.56%', 33.13, 11.39),
 ('FP3', ''): ('180/70', '(11,9,6,3)', '74.23%', 36.90, 59.45), ('FP3', '_relaxed'): ('222/26', '(7,5,4,4)', '85.74%', 39.71, 39.44)}
def load(p):
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else None
def key(r): return (r['id'], r['eps_text'])
print("| row | tasks | #S/#F | avg bits per layer (certified) | median bits | QNN acc | preimage s mean (median) | quantization s mean (median, max) | attack found | paper: #S/#F, bits, acc, PTime, QTime |" + (" vs REF: fewer / more bits, newly certified / lost |" if REF else ""))
print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if REF else ""))
for name, n in NETS:
    for suf in ('', '_relaxed'):
        R = load(f'{D}/{n}{suf}.jsonl')
        if not R: continue
        S = [r for r in R if r['status'] == 'certified']
        L = len(R[0]['layers']) if S else 0
        L = max(len(r['layers']) for r in S) if S else 0
        bits = ", ".join(f"{st.fmean(r['layers'][i]['total'] for r in S):.2f}" for i in range(L)) if S else "—"
        med = ",".join(f"{st.median(r['layers'][i]['total'] for r in S):g}" for i in range(L)) if S else "—"
        acc = f"{100*st.fmean(r['qnn_accuracy'] for r in S):.2f}%" if S else "—"
        # relaxed rows reuse the strict run's preimages: report that run's seconds
        pre = [r.get('reused_preimage_seconds') or r['preimage_seconds'] for r in R]
        q = [r['quantize_seconds'] for r in R]
        att = sum(1 for r in R if r.get('attack_counterexample'))
        p = PAPER[(name, suf)]
        row = f"| {name}{' relaxed' if suf else ' strict'} | {len(R)} | {len(S)}/{len(R)-len(S)} | ({bits}) | ({med}) | {acc} | {st.fmean(pre):.2f} ({st.median(pre):.2f}){' (strict run)' if suf else ''} | {st.fmean(q):.3f} ({st.median(q):.3f}, {max(q):.2f}) | {att} | {p[0]}, {p[1]}, {p[2]}, {p[3]}, {p[4]} |"
        if REF:
            F = load(f'{REF}/{n}{suf}.jsonl')
            if F:
                old = {key(r): r for r in F}
                fewer = more = new = lost = 0
                for r in R:
                    o = old.get(key(r))
                    if not o: continue
                    a, b = r['status'] == 'certified', o['status'] == 'certified'
                    if a and not b: new += 1
                    elif b and not a: lost += 1
                    elif a and b:
                        t1 = sum(l['total'] for l in r['layers']); t0 = sum(l['total'] for l in o['layers'])
                        fewer += t1 < t0; more += t1 > t0
                row += f" {fewer} / {more}, {new} / {lost} |"
            else:
                row += " — |"
        print(row)
