#!/bin/bash
# strict rows with the default method (guided) on the t250 strict preimages
B=${CERTQUANT:-target/release/certquant}; S=../shared; O=bench-results/2026-12-01/t12
for spec in "$@"; do
  set -- $spec
  /usr/bin/time -f "%U %S %e" -o $O/$1_guided.time $B bench robustness --model $S/models/quadapter/$1.onnx --data $S/data/$2 --ids $S/benchmarks/$3-robustness-ids.txt \
    --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 --timeout 1800 --attack --method guided \
    --preimages-from $O/$1.jsonl --out $O/$1_guided.jsonl --summary $O/$1_guided_summary.json --resume > $O/$1_guided.log 2>&1
done
