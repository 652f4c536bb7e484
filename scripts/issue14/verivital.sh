#!/usr/bin/env bash
# Issue 14 acceptance on VNN-COMP 2021's verivital convnets: for the first 10 ids of
# ../shared/benchmarks/paper-robustness-ids.txt that DeepPoly proves at both eps 1/255 and
# 2/255, run Algorithm 1 (strict and relaxed) per task and the property-set search (--ids with
# --accuracy-data) per eps; re-check every certificate with `check`, attack every QNN, and
# record one JSON line per run in $OUT/runs.jsonl. Usage:
#   scripts/issue14/verivital.sh MODEL.onnx OUTDIR [extra synth options, e.g. --preimage abstract]
# Environment: MODES (default "strict relaxed") the per-task runs, SET=0 skips the set search,
# EPSS (default "1/255 2/255") the radii.
set -euo pipefail
MODEL=$1; OUT=$2; shift 2
BIN=${CERTQUANT:-target/release/certquant}
DATA=${DATA:-../shared/data/mnist}
IDS_FILE=${IDS_FILE:-../shared/benchmarks/paper-robustness-ids.txt}
MODES=${MODES:-strict relaxed}
SET=${SET:-1}
EPSS=${EPSS:-1/255 2/255}
mkdir -p "$OUT"
: > "$OUT/runs.jsonl"
ids=()
for id in $(tr ',' ' ' < "$IDS_FILE"); do
  t0=$(date +%s.%N)
  if "$BIN" verify --model "$MODEL" --data "$DATA" --id "$id" --eps 1/255 >/dev/null 2>&1 &&
     "$BIN" verify --model "$MODEL" --data "$DATA" --id "$id" --eps 2/255 >/dev/null 2>&1; then
    ids+=("$id")
  fi
  [ ${#ids[@]} -ge 10 ] && break
done
echo "ids: ${ids[*]}" | tee "$OUT/ids.txt"
# DeepPoly's time per property (verify prints it in --json).
for eps in $EPSS; do
  for id in "${ids[@]}"; do
    "$BIN" verify --model "$MODEL" --data "$DATA" --id "$id" --eps "$eps" --json |
      jq -c --arg kind verify '. + {kind: $kind}' >> "$OUT/runs.jsonl"
  done
done
record() { # kind id eps dir start
  local kind=$1 id=$2 eps=$3 dir=$4 start=$5 end status check attack
  end=$(date +%s.%N)
  status=$(jq -r '.status // .results[0].status // "?"' "$dir/report.json" 2>/dev/null || echo "?")
  if [ -f "$dir/certificate.json" ]; then
    "$BIN" check --certificate "$dir/certificate.json" --model "$MODEL" --qnn "$dir/qnn.onnx" >/dev/null 2>&1 && check=valid || check=invalid
    attack=unbroken
    for i in $(echo "$id" | tr ',' ' '); do
      "$BIN" attack --model "$dir/qnn.onnx" --data "$DATA" --id "$i" --eps "$eps" >/dev/null 2>&1 || attack=broken
    done
  else check=none; attack=none; fi
  jq -c --arg kind "$kind" --arg id "$id" --arg eps "$eps" --arg check "$check" --arg attack "$attack" \
     --argjson seconds "$(echo "$end - $start" | bc)" \
     '{kind: $kind, id: $id, eps: $eps, check: $check, attack: $attack, wall_seconds: $seconds, report: .}' \
     "$dir/report.json" >> "$OUT/runs.jsonl"
}
for eps in $EPSS; do
  for mode in $MODES; do
    flag=(); [ $mode = relaxed ] && flag=(--relaxed)
    for id in "${ids[@]}"; do
      dir="$OUT/$mode-${eps/\//_}-$id"; mkdir -p "$dir"; start=$(date +%s.%N)
      "$BIN" synth robustness --model "$MODEL" --data "$DATA" --id "$id" --eps "$eps" \
        "${flag[@]}" "$@" --out "$dir" --json > "$dir/report.json" || true
      record "$mode" "$id" "$eps" "$dir" "$start"
    done
  done
  [ "$SET" = 1 ] || continue
  dir="$OUT/set-${eps/\//_}"; mkdir -p "$dir"; start=$(date +%s.%N)
  list=$(IFS=,; echo "${ids[*]}")
  "$BIN" synth robustness --model "$MODEL" --data "$DATA" --ids "$list" --eps "$eps" \
    --accuracy-data "$DATA" "$@" --out "$dir" --json > "$dir/report.json" || true
  record set "$list" "$eps" "$dir" "$start"
done
