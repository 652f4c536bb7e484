#!/bin/bash
# A certquant bench as a Slurm job array: array task K of N runs shard K/N of the bench's
# tasks (`certquant bench … --shard K/N`) and writes OUTDIR/shard-K-of-N.jsonl (with its
# .meta.json sidecar). Join the shards afterwards with
#     certquant bench merge --out OUTDIR/all.jsonl OUTDIR/shard-*-of-N.jsonl
#
# Usage (from the directory the bench's relative paths are relative to):
#     sbatch --array=1-N [--cpus-per-task=C] scripts/slurm/bench-array.sh \
#         OUTDIR robustness|backdoor|preimages BENCH-OPTIONS…
# e.g.
#     sbatch --array=1-4 scripts/slurm/bench-array.sh out/mp1 robustness \
#         --model ../shared/models/quadapter/mnist_1blk_100.onnx --data ../shared/data/mnist \
#         --ids 5346,8564,7059 --eps 1/255,2/255
#
# The array must be 1-N with step 1 (task ids are the shard numbers). Each array task runs
# --jobs = its --cpus-per-task workers and always passes --resume, so a requeued or resubmitted
# task continues its shard instead of starting over. CERTQUANT names the binary (default:
# `certquant` on PATH, else target/release/certquant under the submit directory).
#SBATCH --job-name=certquant-bench
#SBATCH --array=1-4
#SBATCH --cpus-per-task=1
#SBATCH --output=certquant-bench-%A_%a.log
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: sbatch --array=1-N $0 OUTDIR robustness|backdoor|preimages BENCH-OPTIONS…" >&2
    exit 2
fi
out_dir=$1
kind=$2
shift 2

k=${SLURM_ARRAY_TASK_ID:?not an array task: submit with sbatch --array=1-N}
n=${SLURM_ARRAY_TASK_COUNT:?not an array task: submit with sbatch --array=1-N}
if [ "${SLURM_ARRAY_TASK_MIN:-1}" != 1 ] || [ "${SLURM_ARRAY_TASK_MAX:-$n}" != "$n" ]; then
    echo "the array must be 1-N with step 1 (got ${SLURM_ARRAY_TASK_MIN:-?}-${SLURM_ARRAY_TASK_MAX:-?} for $n tasks)" >&2
    exit 2
fi

bin=${CERTQUANT:-}
if [ -z "$bin" ]; then
    if command -v certquant >/dev/null 2>&1; then
        bin=certquant
    else
        bin=${SLURM_SUBMIT_DIR:-.}/target/release/certquant
    fi
fi

mkdir -p "$out_dir"
echo "certquant bench $kind shard $k/$n on $(hostname -s): $bin" >&2
exec "$bin" bench "$kind" "$@" \
    --shard "$k/$n" \
    --jobs "${SLURM_CPUS_PER_TASK:-1}" \
    --resume \
    --out "$out_dir/shard-$k-of-$n.jsonl"
