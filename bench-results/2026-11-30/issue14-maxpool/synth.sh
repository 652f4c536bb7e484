#!/bin/bash
cd /work/wt-sparse
M=/work/shared/benchmarks/vnncomp2021/verivital/Convnet_maxpool.onnx
D=/work/shared/data/mnist
for eps in 1/255 2/255; do
for id in 0 5346 6984; do
for method in paper guided; do
  dir=/tmp/sp/b/run-$method-${eps/\//_}-$id; mkdir -p $dir
  r=$(/usr/bin/time -f "TIME %e %M" ./target/release/certquant synth robustness --model $M --data $D --id $id --eps $eps --preimage abstract --method $method --out $dir 2>&1)
  echo "SYNTH $method $eps $id | $(echo "$r" | grep -E "CERTIFIED|UNKNOWN|NOT|TIME|margin|^\s+[0-9]" | tr '\n' ' ' | tr -s ' ')"
  if [ -f $dir/certificate.json ]; then
    c=$(/usr/bin/time -f "TIME %e %M" ./target/release/certquant check --certificate $dir/certificate.json --model $M --qnn $dir/qnn.onnx 2>&1; echo "rc=$?")
    echo "CHECK $method $eps $id | $(echo "$c" | grep -E "VALID|INVALID|TIME|rc=" | tr '\n' ' ')"
    a=$(/usr/bin/time -f "TIME %e %M" ./target/release/certquant attack --model $dir/qnn.onnx --data $D --id $id --eps $eps 2>&1; echo "rc=$?")
    echo "ATTACK $method $eps $id | $(echo "$a" | tr '\n' ' ')"
  fi
done; done; done
