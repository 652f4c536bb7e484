#!/bin/bash
# Self-test of the Slurm scripts: installs Slurm and MUNGE from Debian's packages, starts a
# one-node cluster on this machine (no systemd, no cgroups: the daemons are started directly,
# their state under $WORK), runs the MP1 bench as a 4-shard job array
# (scripts/slurm/bench-array.sh), merges the shards with `certquant bench merge`, runs the
# same bench locally without shards, and checks with scripts/compare-table2.py that both give
# the same status, χ and bit-widths task by task. Stops the daemons it started on exit.
#
# Needs root, network access to the Debian mirrors (unless Slurm and MUNGE are installed),
# ../shared (or CERTQUANT_SHARED) and a few minutes.
#
#     sudo scripts/slurm/selftest.sh
#
# Environment: CERTQUANT (binary; default target/release/certquant, built if missing),
# CERTQUANT_SHARED (default ../shared), IDS, EPS (the bench's tasks), SHARDS (default 4),
# WORK (default /tmp/certquant-slurm-selftest, wiped first).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
if [ "$(id -u)" != 0 ]; then
    echo "selftest: needs root (it installs packages and starts the Slurm and MUNGE daemons)" >&2
    exit 2
fi

shared=${CERTQUANT_SHARED:-$repo/../shared}
model=$shared/models/quadapter/mnist_1blk_100.onnx
data=$shared/data/mnist
ids=${IDS:-5346,8564,7059,371,6984}
eps=${EPS:-1/255,2/255,3/255,4/255}
shards=${SHARDS:-4}
work=${WORK:-/tmp/certquant-slurm-selftest}
for f in "$model" "$data"; do
    [ -e "$f" ] || { echo "selftest: $f not found (set CERTQUANT_SHARED)" >&2; exit 2; }
done
shared=$(cd "$shared" && pwd)
model=$shared/models/quadapter/mnist_1blk_100.onnx
data=$shared/data/mnist

bin=${CERTQUANT:-$repo/target/release/certquant}
if [ ! -x "$bin" ]; then
    echo "== building certquant" >&2
    cargo build --release
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

echo "== installing slurm-wlm and munge" >&2
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    echo "   already installed: $(slurmctld -V)" >&2
else
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y slurm-wlm munge
fi

rm -rf "$work"
mkdir -p "$work"/{state,spool,log,shards}
chmod 755 "$work"

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.95 }' /proc/meminfo)
export SLURM_CONF=$work/slurm.conf
cat > "$SLURM_CONF" <<CONF
# one-node cluster of the certquant Slurm self-test
ClusterName=certquant-selftest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=selftest Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

munged_pid=""
cleanup() {
    echo "== stopping the daemons" >&2
    for f in "$work/slurmd.pid" "$work/slurmctld.pid"; do
        if [ -s "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
    done
    if [ -n "$munged_pid" ]; then kill "$munged_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

echo "== starting munged, slurmctld, slurmd on $host ($cpus CPUs, ${mem_mb} MB)" >&2
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "   munged already running" >&2
else
    runuser -u munge -- /usr/sbin/munged
    munged_pid=$(cat /run/munge/munged.pid)
    munge -n | unmunge >/dev/null
fi
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 60); do
    state=$(sinfo -h -N -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 1
done
if [ "$state" != idle ]; then
    echo "selftest: the node did not come up (state '${state}'); logs in $work/log" >&2
    tail -n 20 "$work/log/slurmctld.log" "$work/log/slurmd.log" >&2 || true
    exit 1
fi
sinfo >&2

bench=(--model "$model" --data "$data" --ids "$ids" --eps "$eps")
echo "== sbatch: bench robustness as a $shards-shard array job" >&2
start=$(date +%s)
export CERTQUANT=$bin
job=$(sbatch --parsable --wait --array=1-"$shards" --cpus-per-task=1 \
    --output="$work/log/bench-%A_%a.log" \
    scripts/slurm/bench-array.sh "$work/shards" robustness "${bench[@]}") || {
    echo "selftest: the array job failed; logs in $work/log" >&2
    tail -n 20 "$work"/log/bench-*.log >&2 || true
    exit 1
}
echo "   job $job done in $(( $(date +%s) - start )) s" >&2

echo "== bench merge" >&2
"$bin" bench merge --out "$work/merged.jsonl" --summary "$work/merged-summary.json" \
    "$work"/shards/shard-*-of-"$shards".jsonl

echo "== the same bench locally, unsharded" >&2
start=$(date +%s)
"$bin" bench robustness "${bench[@]}" --jobs "$cpus" --out "$work/local.jsonl" \
    --summary "$work/local-summary.json"
echo "   done in $(( $(date +%s) - start )) s" >&2

echo "== compare" >&2
python3 scripts/compare-table2.py "$work/local.jsonl" "$work/merged.jsonl" --label local-vs-merged
python3 scripts/compare-table2.py "$work/merged.jsonl" "$work/local.jsonl" --label merged-vs-local
echo "selftest: PASS ($(wc -l < "$work/merged.jsonl") tasks; files in $work)"
