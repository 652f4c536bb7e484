#!/usr/bin/env bash
# Summarises scripts/issue14/verivital.sh's runs.jsonl: per (kind, eps) the certified / other
# counts, mean bits per layer, check and attack results, median seconds; DeepPoly's median
# time per property. Usage: scripts/issue14/summarize.sh OUTDIR/runs.jsonl
set -euo pipefail
jq -s -r '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length/2|floor] else (.[length/2 - 1] + .[length/2]) / 2 end;
  (map(select(.kind == "verify")) | group_by(.eps) | .[] |
    "verify eps \(.[0].eps * 255 | round)/255: \(map(select(.verified)) | length)/\(length) proven, DeepPoly median \(map(.seconds) | median * 1000 | round) ms"),
  (map(select(.kind != "verify")) | group_by([.kind, .eps]) | .[] |
    (map(select(.report.status == "certified"))) as $c |
    "\(.[0].kind) eps \(.[0].eps): #S \($c | length) #F \(length - ($c | length)); bits/layer \([range(0; ($c[0].report.layers // []) | length)] | map(. as $i | ($c | map(.report.layers[$i].total) | add / length * 100 | round / 100)))); check valid \(map(select(.check == "valid")) | length), attack unbroken \(map(select(.attack == "unbroken")) | length); median s/task \(map(.wall_seconds) | median * 100 | round / 100)")
' "$1"
