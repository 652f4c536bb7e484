#!/usr/bin/env python3
"""The default method (guided) against Algorithm 1 (paper) on the same tasks and preimages.
usage: guided_table.py DIR"""
import json, os, statistics as st, sys
D = sys.argv[1]
ROWS = [('MP3 strict', 'mnist_3blk_100_100_100', '', '_guided'), ('MP3 relaxed', 'mnist_3blk_100_100_100', '_relaxed', '_relaxed_guided'),
        ('FP2 relaxed', 'fashion-mnist_2blk_100_100', '_relaxed', '_relaxed_guided'),
        ('FP3 strict', 'fashion-mnist_3blk_100_100_100', '', '_guided'), ('FP3 relaxed', 'fashion-mnist_3blk_100_100_100', '_relaxed', '_relaxed_guided')]
def load(p): return [json.loads(l) for l in open(p)] if os.path.exists(p) else None
def bits(S):
    if not S: return "—"
    L = len(S[0]['layers'])
    return "(" + ", ".join(f"{st.fmean(r['layers'][i]['total'] for r in S):.2f}" for i in range(L)) + ")"
print("| row | tasks | Algorithm 1: #S/#F, bits | guided: #S/#F, bits | guided on the tasks both certify | tasks only guided certifies: bits | guided QNN acc | guided quantization s mean (median, max) | attack found |")
print("|---|---|---|---|---|---|---|---|---|")
for name, n, a, g in ROWS:
    A, G = load(f'{D}/{n}{a}.jsonl'), load(f'{D}/{n}{g}.jsonl')
    if not A or not G: continue
    idx = {(r['id'], r['eps_text']): r for r in A}
    G = [r for r in G if (r['id'], r['eps_text']) in idx]
    A = [idx[(r['id'], r['eps_text'])] for r in G]
    SA = [r for r in A if r['status'] == 'certified']; SG = [r for r in G if r['status'] == 'certified']
    both = [g for g, a in zip(G, A) if g['status'] == a['status'] == 'certified']
    only = [g for g, a in zip(G, A) if g['status'] == 'certified' and a['status'] != 'certified']
    q = [r['quantize_seconds'] for r in G]
    acc = f"{100*st.fmean(r['qnn_accuracy'] for r in SG):.2f}%" if SG else "—"
    print(f"| {name} | {len(G)} | {len(SA)}/{len(A)-len(SA)}, {bits(SA)} | {len(SG)}/{len(G)-len(SG)}, {bits(SG)} | {bits(both)} | {len(only)}: {bits(only)} | {acc} | {st.fmean(q):.2f} ({st.median(q):.2f}, {max(q):.1f}) | {sum(1 for r in G if r.get('attack_counterexample'))} |")
