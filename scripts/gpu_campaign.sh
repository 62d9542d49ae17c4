#!/usr/bin/env bash
# One GPU slot of the calibration campaign (docs/compare.md "GPU time in short pieces"): as many
# units of the committed comparison docs/measurements/gpu-campaign as fit an 8-minute budget,
# as one device-tool call from the repo root (timeout_s 600, carry .whl and .fmnist):
#   OUT=$OUT bash scripts/gpu_campaign.sh
# The finished runs come back as $OUT/runs.tar.gz (what ran and how long: $OUT/slot.json, all
# output: $OUT/log.txt); merge them here with
#   tar xzf runs.tar.gz -C /tmp/slot && .venv/bin/python -m local_eval compare \
#       docs/measurements/gpu-campaign --merge /tmp/slot/gpu-campaign-slot
# DRY=1 bash scripts/gpu_campaign.sh: the same steps at toy size on CPU (preset smoke, a run
# estimated at 20 s, generation at 40 images/s at 224 px, a 240 s budget) to check it first;
# PREVIEW=1: the slot's plan and timing at GPU size, nothing run (any machine).
set -u
OUT=${OUT:-/tmp/gpu-campaign}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
PY=${PY:-python3}
[ "${DRY:-0}${PREVIEW:-0}" != 00 ] && [ -x .venv/bin/python ] && PY=.venv/bin/python
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then  # what the GPU image lacks (albumentations)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
COMMITTED=${COMMITTED:-docs/measurements/gpu-campaign}
WORK=${WORK:-/tmp/gpu-campaign-work}
mkdir -p "$WORK"
# Fashion-MNIST: data/ is a link to a folder outside the repo and does not travel; the carried
# .fmnist/*.gz (30 MB) unpack to the same bytes, so the runs' downstream_sha256 matches.
DATA_ROOT=data
if [ ! -f data/FashionMNIST/raw/train-images-idx3-ubyte ]; then
    DATA_ROOT=$WORK/data
    mkdir -p "$DATA_ROOT/FashionMNIST/raw"
    for f in .fmnist/*.gz; do
        gunzip -c "$f" > "$DATA_ROOT/FashionMNIST/raw/$(basename "$f" .gz)" || exit 1
    done
fi
if [ "${DRY:-0}" = 1 ]; then
    BUDGET=${BUDGET:-240}
    FLAGS="--presets smoke --run-seconds 20 --generate-rate 40"
else
    BUDGET=${BUDGET:-480}
    FLAGS=""
    [ "${PREVIEW:-0}" = 1 ] && FLAGS="--preview" || nvidia-smi -L
fi
echo "=== $(date +%T) setup took ${SECONDS} s of the ${BUDGET} s budget"
# shellcheck disable=SC2086  # FLAGS is a list of flags
$PY -m local_eval gpu-campaign "$COMMITTED" --work "$WORK/cmp" --out "$OUT" \
    --data-root "$DATA_ROOT" --budget $((BUDGET - SECONDS)) $FLAGS
echo "=== $(date +%T) done after ${SECONDS} s"
