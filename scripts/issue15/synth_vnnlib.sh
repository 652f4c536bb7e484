#!/bin/sh
# synth vnnlib on mnistfc 256x2 holds instances: bits, time, `check` verdict, QNN accuracy.
# Usage: scripts/issue15/synth_vnnlib.sh OUTDIR [extra synth flags, e.g. --accuracy-data DIR]
set -u
B=${B:-../shared/benchmarks/vnncomp2021}
BIN=${BIN:-target/release/certquant}
DATA=${DATA:-../shared/data/mnist}
OUT=$1; shift
mkdir -p "$OUT"
echo "property,status,layers,memory_bits,candidates,seconds,qnn_worst_upper,check,qnn_accuracy"
for p in prop_2_0.03 prop_4_0.03 prop_6_0.03 prop_8_0.03 prop_10_0.03 prop_11_0.03 prop_12_0.03 \
         prop_2_0.05 prop_4_0.05 prop_11_0.05; do
    "$BIN" synth vnnlib --model "$B/mnistfc/mnist-net_256x2.onnx" --vnnlib "$B/mnistfc/$p.vnnlib" \
        --timeout 300 --out "$OUT/$p" --json "$@" > "$OUT/$p.json"
    c=$("$BIN" check --certificate "$OUT/$p/certificate.json" 2>&1 | head -1 | grep -o 'INVALID\|VALID')
    a=$("$BIN" eval --model "$OUT/$p/qnn.onnx" --data "$DATA" --json 2>/dev/null)
    python3 - "$OUT/$p.json" "$p" "$c" "$a" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
acc = json.loads(sys.argv[4])["accuracy"] if sys.argv[4] else ""
layers = " ".join("<%d,%d>" % (l["total"], l["frac"]) for l in v["layers"])
print(",".join(str(x) for x in [sys.argv[2], v["status"], layers, v["memory_bits"], v["candidates"],
      "%.2f" % v["seconds"], "%.4g" % v["qnn_worst_upper"], sys.argv[3], acc]))
PY
done
