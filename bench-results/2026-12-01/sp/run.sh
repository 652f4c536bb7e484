#!/bin/bash
# Task sp: --preimage fast vs abstract (--method guided) on verivital Convnet_maxpool/avgpool.
# Usage: [NETS=..] [EPSS=..] [IDS=..] [ENGINES=..] [FASTARGS=..] run.sh OUT.jsonl
# (from the worktree root; one process at a time). FASTARGS go to the fast runs only.
OUT=${1:-bench-results/2026-12-01/sp/runs.jsonl}
B=./target/release/certquant
V=/work/shared/benchmarks/vnncomp2021/verivital
D=/work/shared/data/mnist
T=$(mktemp -d)
for net in ${NETS:-Convnet_maxpool Convnet_avgpool}; do
for eps in ${EPSS:-1/255 2/255}; do
for id in ${IDS:-0 5346 6984}; do
for engine in ${ENGINES:-abstract fast}; do
  extra=""; [ $engine = fast ] && extra="$FASTARGS"
  dir=$T/$net-$engine-${eps/\//_}-$id; mkdir -p $dir
  /usr/bin/time -f "%e %M" -o $dir/time timeout 900 $B synth robustness --model $V/$net.onnx --data $D \
    --id $id --eps $eps --preimage $engine --method guided $extra --json --out $dir > $dir/synth.json 2> $dir/synth.err
  rc=$?
  read wall rss < $dir/time
  check=; attack=
  if [ $engine = fast ] && [ -f $dir/certificate.json ]; then
    $B check --certificate $dir/certificate.json --model $V/$net.onnx --qnn $dir/qnn.onnx > $dir/check.txt 2>&1
    crc=$?
    check="$(grep -oE ': (VALID|INVALID) \([0-9.]+ ms\)' $dir/check.txt | head -1) rc=$crc"
    $B attack --model $dir/qnn.onnx --data $D --id $id --eps $eps > $dir/attack.txt 2>&1
    arc=$?
    attack="rc=$arc $(tr '\n' ' ' < $dir/attack.txt | cut -c1-120)"
  fi
  python3 - "$net" "$engine" "$id" "$eps" "$rc" "$wall" "$rss" "$check" "$attack" "$dir/synth.json" >> $OUT <<'PY'
import json, os, sys
net, engine, id_, eps, rc, wall, rss, check, attack, path = sys.argv[1:]
try:
    d = json.load(open(path))
except Exception:
    d = {}
print(json.dumps({"net": net, "engine": engine, "args": os.environ.get("FASTARGS", "") if engine == "fast" else "", "id": int(id_), "eps": eps, "rc": int(rc),
    "wall_s": float(wall), "rss_kb": int(rss), "status": d.get("status"), "chi": d.get("chi"),
    "chi_source": d.get("chi_source"), "preimage_seconds": d.get("preimage_seconds"),
    "milps": d.get("milps"), "pruned": d.get("pruned_escapes"),
    "bits": ["%d,%d" % (l["frac"], l["total"]) for l in d.get("layers") or []],
    "check": check or None, "attack": attack or None}))
PY
  tail -1 $OUT
done; done; done; done
rm -rf $T
