#!/bin/bash
# the 50 Table-2 tasks (first 10 ids x r=1..5) per network, one job, CPU time of the whole bench recorded
B=/tmp/s8/cq-s8c; S=/work/shared; O=/tmp/s8/q50
for spec in "mnist_3blk_100_100_100 mnist 5346,8564,7059,371,6984,5782,2127,8517,4520,8685" "fashion-mnist_3blk_100_100_100 fashion-mnist 7701,4016,5802,3483,2276,5359,6394,3295,9301,3350" "mnist_2blk_100_100 mnist 5346,8564,7059,371,6984,5782,2127,8517,4520,8685" "fashion-mnist_2blk_100_100 fashion-mnist 7701,4016,5802,3483,2276,5359,6394,3295,9301,3350"; do
  set -- $spec
  /usr/bin/time -f "%U %S %e" -o $O/$1.time $B bench robustness --model $S/models/quadapter/$1.onnx --data $S/data/$2 --ids $3 \
    --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 --timeout 900 --method paper \
    --out $O/$1.jsonl > $O/$1.log 2>&1
done
