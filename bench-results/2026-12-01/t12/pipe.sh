#!/bin/bash
# one pipeline: for each net, the strict Table-2 row on all 250 tasks, then the relaxed row on its preimages
# usage: pipe.sh "net data idsfile" ...   binary: $CERTQUANT (default: target/release/certquant of the commit that adds this directory; default --chi-max 100); run from the repository root
B=${CERTQUANT:-target/release/certquant}; S=../shared; O=bench-results/2026-12-01/t12
for spec in "$@"; do
  set -- $spec
  /usr/bin/time -f "%U %S %e" -o $O/$1.time $B bench robustness --model $S/models/quadapter/$1.onnx --data $S/data/$2 --ids $S/benchmarks/$3-robustness-ids.txt \
    --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 --timeout 900 --attack --method paper \
    --out $O/$1.jsonl --summary $O/$1_summary.json --resume > $O/$1.log 2>&1
  /usr/bin/time -f "%U %S %e" -o $O/$1_relaxed.time $B bench robustness --model $S/models/quadapter/$1.onnx --data $S/data/$2 --ids $S/benchmarks/$3-robustness-ids.txt \
    --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 --timeout 1800 --attack --method paper --relaxed \
    --preimages-from $O/$1.jsonl --out $O/$1_relaxed.jsonl --summary $O/$1_relaxed_summary.json --resume > $O/$1_relaxed.log 2>&1
done
