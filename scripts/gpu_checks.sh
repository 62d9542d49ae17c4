#!/usr/bin/env bash
# The GPU checks (README "Measured on a GPU"), as one call of the device tool from the repo root:
#   OUT=/tmp/gpu bash scripts/gpu_checks.sh
# PyTorch3D travels unpacked in .p3d/ and the missing wheels in .whl/ (see README). Every figure
# goes to $OUT/results.jsonl (one JSON object per line), all output to $OUT/log.txt, the whole
# test suite's output to $OUT/suite.log. Steps run in order of value; each has its own time limit.
set -u
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
PY=${PY:-python3}
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d .p3d ] && export PYTHONPATH=$PWD/.p3d${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
WORK=${WORK:-/tmp/gpu-work}
rm -rf "$WORK"; mkdir -p "$WORK"
stamp() { echo "=== $(date +%T) $*"; }
record() {  # stdin: one JSON document (or an error text, kept as such)
    $PY -c '
import json, sys
text = sys.stdin.read()
try:
    result = json.loads(text)
except ValueError:
    result = {"error": text[-2000:]}
print(json.dumps({"step": sys.argv[1], "result": result}))' "$1" >> "$OUT/results.jsonl"
}
CORES=$(nproc)
# DRY=1: the same steps at toy sizes on CPU, to check the script before spending device time.
if [ "${DRY:-0}" = 1 ]; then
    DEV=cpu; CLASSES=4; PER_CLASS=64; IMAGES=4; STEPS="--steps 2 --warmup 1 --batch-size 16"; EVAL_BATCH="--batch-size 16"
else
    DEV=cuda; CLASSES=20; PER_CLASS=1000; IMAGES=800; STEPS="--steps 30"; EVAL_BATCH=""
fi

stamp "stack"
nvidia-smi -L
$PY - <<'PY' | record stack
import importlib, json, sys, torch
stack = {"python": sys.version.split()[0], "cuda": torch.cuda.is_available(),
         "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
for name in ("torch", "pytorch3d.renderer", "albumentations", "timm", "numpy", "PIL", "cv2", "torchvision"):
    try:
        module = importlib.import_module(name)
        stack[name] = getattr(module, "__version__", None) or getattr(sys.modules[name.split(".")[0]], "__version__", "?")
    except Exception as error:
        stack[name] = f"failed: {error}"
print(json.dumps(stack))
PY

stamp "cuda tests"
timeout 180 $PY -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15

stamp "renderers, 224 px, 10k points"
if [ "${SKIP_BENCH:-0}" != 1 ]; then
for batch in 50 200; do
    for backends in splat,pytorch3d splat; do  # splat alone only if PyTorch3D failed
        result=$(timeout 120 $PY -m submission bench --device $DEV --backends $backends --images $IMAGES \
                 --points 10000 --image-size 224 --batch-size $batch --min-seconds 3 --json)
        echo "$result" | record "bench_${DEV}_batch${batch}_$backends"
        echo "$result" | $PY -c 'import json,sys; json.loads(sys.stdin.read())' 2>/dev/null && break
    done
done
timeout 120 $PY -m submission bench --device cpu --backends splat --images 32 --points 10000 --image-size 224 \
    --threads 1 --json | record bench_cpu_one_thread
fi

stamp "generate end to end, 20 x 1000 images at 224 px"
gen() {  # name, then generate's flags
    local name=$1; shift
    local began=$(date +%s.%N) ended
    timeout 240 $PY -m submission generate "$WORK/$name" --classes $CLASSES --images-per-class $PER_CLASS --image-size 224 \
        --quiet "$@" 2>&1 | tail -2
    ended=$(date +%s.%N)
    echo "{\"flags\": \"$*\", \"wall_s\": $($PY -c "print($ended - $began)"), \"images\": $(find "$WORK/$name" -name '*.png' | wc -l)}" | record "generate_$name"
}
gen cuda_default --device $DEV
gen cuda_workers$CORES --device $DEV --workers $CORES
gen cuda_splat --device $DEV --backend splat --workers $CORES
rm -rf "$WORK/cuda_workers$CORES" "$WORK/cuda_splat"
gen cpu --device cpu --workers $CORES
rm -rf "$WORK/cpu"

stamp "local_eval pre-training throughput (ViT-Tiny 224, batch 256)"
timeout 200 $PY -m local_eval throughput --data "$WORK/cuda_default" --preset contest --workers 8,$CORES \
    $STEPS --json | record throughput_contest
timeout 90 $PY -m local_eval throughput --data "$WORK/cuda_default" --preset kit-resnet --workers $CORES \
    --variants $([ $DEV = cuda ] && echo bf16,bf16-channels-last || echo fp32) $STEPS --json | record throughput_kit_resnet

stamp "local_eval: one real pre-training epoch (contest preset, 20k images)"
timeout 60 $PY -m local_eval digits "$WORK/digits" --train-per-class 100 --size 32 | tail -1
timeout 150 $PY -m local_eval --data "$WORK/cuda_default" --out "$WORK/run" --preset contest \
    --downstream-dir "$WORK/digits" --stop-after-epochs 1 --no-progress --workers $CORES $EVAL_BATCH 2>&1 | tail -3
$PY - "$WORK/run/pretrain.pt" <<'PY' | record local_eval_epoch
import json, sys, torch
state = torch.load(sys.argv[1], weights_only=False)
print(json.dumps({"epoch_seconds": state["history"]["seconds"], "loss": state["history"]["loss"]}))
PY

[ "${SKIP_STORE:-0}" != 1 ] && . scripts/gpu_store_checks.sh  # issue 20: store vs PIL loader

stamp "the whole suite"
timeout ${SUITE_SECONDS:-150} $PY -m pytest -q -x -n 8 -p no:cacheprovider > "$OUT/suite.log" 2>&1
echo "suite exit $?"; tail -25 "$OUT/suite.log"
stamp "done"
