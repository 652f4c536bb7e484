#!/usr/bin/env python3
"""mp2_nomargin.jsonl: the MP2 strict run's records with the safety margin of docs/method.md (28)
undone on every chi > 0 (chi_hat = (chi + 1e-4) / (1 - 1e-4)); then, from the repository root:
certquant bench robustness --model ../shared/models/quadapter/mnist_2blk_100_100.onnx --data ../shared/data/mnist \
  --ids ../shared/benchmarks/paper-robustness-ids.txt --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 \
  --timeout 1800 --method paper --relaxed --preimages-from bench-results/2026-12-01/t12/nomargin/mp2_nomargin.jsonl \
  --out mp2_relaxed_nomargin.jsonl"""
import json
D = 'bench-results/2026-12-01/t12'
with open(f'{D}/nomargin/mp2_nomargin.jsonl', 'w') as out:
    for line in open(f'{D}/mnist_2blk_100_100.jsonl'):
        r = json.loads(line)
        r['chi'] = [(c + 1e-4) / (1 - 1e-4) if c > 0 else c for c in r['chi']]
        out.write(json.dumps(r) + '\n')
