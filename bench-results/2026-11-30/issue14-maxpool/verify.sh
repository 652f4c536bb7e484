#!/bin/bash
cd /work/wt-sparse
M=/work/shared/benchmarks/vnncomp2021/verivital/Convnet_maxpool.onnx
for eps in 1/255 2/255; do
for id in 0 5346 8564 7059 371 6984 5782 2127 8517 4520 8685; do
  r=$(/usr/bin/time -f "TIME %e %M" ./target/release/certquant verify --model $M --data /work/shared/data/mnist --id $id --eps $eps 2>&1)
  echo "$eps $id | $(echo "$r" | tr '\n' ' ')"
done; done
