#!/bin/bash
# the MP2 relaxed row on all 250 tasks with the authors' carried rejections
B=${CERTQUANT:-target/release/certquant}; S=../shared; O=bench-results/2026-12-01/t12/carry; P=bench-results/2026-12-01/t12
$B bench robustness --model $S/models/quadapter/mnist_2blk_100_100.onnx --data $S/data/mnist --ids $S/benchmarks/paper-robustness-ids.txt \
  --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 --timeout 1800 --attack --method paper --relaxed --carry-rejections \
  --preimages-from $P/mnist_2blk_100_100.jsonl --out $O/mnist_2blk_100_100_relaxed_carry.jsonl --summary $O/mnist_2blk_100_100_relaxed_carry_summary.json > $O/mnist_2blk_100_100_relaxed_carry.log 2>&1
