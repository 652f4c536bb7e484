#!/bin/bash
# MP2 relaxed row on all 250 tasks, on the strict run's preimages (wait until that run is complete)
O=/tmp/s8/t250; S=/work/shared
while [ "$(wc -l < $O/mnist_2blk_100_100.jsonl)" -lt 250 ]; do sleep 20; done
/tmp/s8/cq-s8c bench robustness --model $S/models/quadapter/mnist_2blk_100_100.onnx --data $S/data/mnist --ids $S/benchmarks/paper-robustness-ids.txt \
  --eps 1/255,2/255,3/255,4/255,5/255 --jobs 1 --time-limit 300 --timeout 1800 --attack --method paper --relaxed \
  --preimages-from $O/mnist_2blk_100_100.jsonl --out $O/mnist_2blk_100_100_relaxed.jsonl --summary $O/mnist_2blk_100_100_relaxed_summary.json --resume > $O/mnist_2blk_100_100_relaxed.log 2>&1
