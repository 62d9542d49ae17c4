#!/usr/bin/env bash
# Train on an image store bigger than a memory cap, under that cap, and report peak memory.
#
#   sudo scripts/store_memory_check.sh [WORK] [CAP]      (defaults /tmp/store-memory-check, 4G)
#
# Generates WORK/data (100 classes x 200 images of the default recipe, 384 px: an 8.8 GB store),
# builds its store in WORK/stores, drops the page cache (so the run's reads are charged to it),
# then runs one pre-training epoch that reads every image whole (random-resized crop) plus a
# short fine-tuning on Fashion-MNIST (`make downstream`), inside a cgroup whose memory is capped
# at CAP. A sampler records the cgroup's peak usage and its split: anonymous memory (the
# processes' own) vs page cache (the memory map's pages, which the kernel reclaims under the
# cap). Needs root and the cgroup v1 memory controller (/sys/fs/cgroup/memory); elsewhere use
# `systemd-run --scope -p MemoryMax=CAP` around the run command printed below.
# Generation and the store build resume when rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/tmp/store-memory-check}
CAP=${2:-4G}
PY=.venv/bin/python
CGROUP_ROOT=/sys/fs/cgroup/memory
if [ "$(id -u)" != 0 ] || [ ! -w "$CGROUP_ROOT" ]; then
    echo "error: needs root and a writable cgroup v1 memory controller at $CGROUP_ROOT" >&2
    exit 2
fi
[ -d data/FashionMNIST/raw ] || { echo "error: no Fashion-MNIST under data/: run make downstream" >&2; exit 2; }
mkdir -p "$WORK"
export LOCAL_EVAL_STORES="$WORK/stores"

"$PY" -m submission generate "$WORK/data" --classes 100 --images-per-class 200 --workers 2
"$PY" -m local_eval store "$WORK/data" --workers 2
stat -c %s "$LOCAL_EVAL_STORES"/*/images.u8 | awk '{printf "store: %.2f GB (%.0f bytes)\n", $1 / 1e9, $1}'

GROUP="$CGROUP_ROOT/store-memory-check-$$"
mkdir "$GROUP"
trap 'rmdir "$GROUP" 2>/dev/null || true' EXIT
numfmt --from=iec "$CAP" > "$GROUP/memory.limit_in_bytes"
sync
echo 3 > /proc/sys/vm/drop_caches

# Sample the group every 0.5 s: peak anonymous memory (rss) and peak page cache (cache).
(
    peak_rss=0 peak_cache=0
    while [ -d "$GROUP" ]; do
        rss=$(awk '$1 == "total_rss" {print $2}' "$GROUP/memory.stat" 2>/dev/null || echo 0)
        cache=$(awk '$1 == "total_cache" {print $2}' "$GROUP/memory.stat" 2>/dev/null || echo 0)
        [ "${rss:-0}" -gt "$peak_rss" ] && peak_rss=$rss
        [ "${cache:-0}" -gt "$peak_cache" ] && peak_cache=$cache
        echo "$peak_rss $peak_cache" > "$WORK/peaks"
        sleep 0.5
    done
) &
SAMPLER=$!

RUN=("$PY" -m local_eval run --data "$WORK/data" --out "$WORK/run" --preset kit-mobilenet-cpu
     --pretrain-crop random_resized_crop --pretrain-classes 100 --pretrain-images-per-class 200
     --pretrain-epochs 1 --finetune-epochs 2 --downstream fashion-mnist --data-root data
     --finetune-train-per-class 20 --finetune-test-per-class 20 --workers 2 --no-progress)
echo "run (under a $CAP cap): LOCAL_EVAL_STORES=$LOCAL_EVAL_STORES ${RUN[*]}"
rm -rf "$WORK/run"
began=$(date +%s)
status=0
sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec "$@"' sh "$GROUP" env OMP_NUM_THREADS=1 "${RUN[@]}" || status=$?
sleep 1
read -r peak_rss peak_cache < "$WORK/peaks"
awk -v status="$status" -v seconds="$(( $(date +%s) - began ))" -v cap="$CAP" \
    -v peak="$(cat "$GROUP/memory.max_usage_in_bytes")" -v rss="$peak_rss" -v cache="$peak_cache" \
    -v hits="$(cat "$GROUP/memory.failcnt")" \
    -v kills="$(awk '$1 == "oom_kill" {print $2}' "$GROUP/memory.oom_control")" \
    'BEGIN {printf "exit %s after %s s; cap %s; peak usage %.2f GB (anonymous %.2f GB, page cache %.2f GB); limit reached %s times; OOM kills %s\n", status, seconds, cap, peak / 1e9, rss / 1e9, cache / 1e9, hits, kills}'
kill "$SAMPLER" 2>/dev/null || true
exit "$status"
