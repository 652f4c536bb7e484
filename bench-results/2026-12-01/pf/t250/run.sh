#!/bin/bash
# strict Table-2 rows on all 250 tasks (50 ids x r=1..5), busy machine; binary of commit aa210da
B=/tmp/s8/cq-s8c; S=/work/shared; O=/tmp/s8/t250
for spec in "mnist_1blk_100 mnist paper" "fashion-mnist_1blk_100 fashion-mnist fashion" "mnist_2blk_100_100 mnist paper" "fashion-mnist_2blk_100_100 fashion-mnist fashion" "mnist_3blk_100_100_100 mnist paper" "fashion-mnist_3blk_100_100_100 fashion-mnist fashion"; do
  set -- $spec
  $B bench robustness --model $S/models/quadapter/$1.onnx --data $S/data/$2 --ids $S/benchmarks/$3-robustness-ids.txt \
    --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 --timeout 900 --attack --method paper \
    --out $O/$1.jsonl --summary $O/$1_summary.json --resume > $O/$1.log 2>&1
done
