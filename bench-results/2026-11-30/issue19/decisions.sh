#!/bin/bash
# usage: diag.sh model jsonl out
model=$1; src=$2; out=$3; : > $out
python3 -c "
import json
for r in map(json.loads,open('$src')):
  print(r['id'], r['eps_text'], ','.join(repr(c) for c in r['chi']))
" | while read id eps chi; do
  echo "TASK $id $eps" >> $out
  CERTQUANT_LOG=certquant_synth=debug ./target/release/certquant synth robustness --model $model --data /work/shared/data/mnist --id $id --eps $eps --relaxed --chi $chi --json 2>&1 >/dev/null | grep "relaxed count" | sed 's/\x1b\[[0-9;]*m//g' | cut -c60-600 >> $out
done
