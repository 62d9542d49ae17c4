# Issue 20's GPU figures, sourced by scripts/gpu_checks.sh (uses its PY, WORK, DEV, CORES, STEPS,
# EVAL_BATCH, stamp and record): pre-training images/s of the store path vs the PIL path for
# contest (ViT-Tiny), kit-resnet and kit-mobilenet (kit-mobilenet-gpu's step); one real epoch on
# the store; and one whole kit-mobilenet-gpu run (20 generated classes, digits downstream) for its
# wall time.
export LOCAL_EVAL_STORES="$WORK/stores"
stamp "image store of $WORK/cuda_default"
timeout 120 $PY -m local_eval store "$WORK/cuda_default" --workers $CORES --no-progress | tail -1

stamp "local_eval loaders: store vs pil"
VARIANT=$([ $DEV = cuda ] && echo bf16 || echo fp32)
for preset in contest kit-resnet kit-mobilenet; do  # kit-mobilenet: the GPU preset's model, crop, batch
    for loader in store pil; do
        timeout 150 $PY -m local_eval throughput --data "$WORK/cuda_default" --preset $preset \
            --loader $loader --workers $CORES --variants $VARIANT $STEPS --json \
            | record "throughput_${preset}_$loader"
    done
done

epoch_record() {  # run folder, step name: the pre-training epoch seconds and the images/s
    $PY - "$1/pretrain.pt" "$1/run.json" <<'PY' | record "$2"
import json, sys, torch
state = torch.load(sys.argv[1], weights_only=False)
print(json.dumps({"epoch_seconds": state["history"]["seconds"], "loss": state["history"]["loss"],
                  "loader": json.load(open(sys.argv[2]))["loader"]}))
PY
}
stamp "local_eval: one real pre-training epoch on the store (contest preset)"
timeout 150 $PY -m local_eval --data "$WORK/cuda_default" --out "$WORK/run-store" --preset contest \
    --downstream-dir "$WORK/digits" --stop-after-epochs 1 --no-progress --workers $CORES $EVAL_BATCH 2>&1 | tail -3
epoch_record "$WORK/run-store" local_eval_epoch_store

stamp "kit-mobilenet-gpu: one whole run, 20 classes x 1000 images, digits downstream"
began=$(date +%s.%N)
timeout 300 $PY -m local_eval --data "$WORK/cuda_default" --out "$WORK/run-gpu-preset" \
    --preset kit-mobilenet-gpu --pretrain-classes $CLASSES --downstream-dir "$WORK/digits" \
    --no-progress --workers $CORES $EVAL_BATCH 2>&1 | tail -2
ended=$(date +%s.%N)
$PY - "$WORK/run-gpu-preset/report.json" "$($PY -c "print($ended - $began)")" <<'PY' | record kit_mobilenet_gpu_run
import json, sys
report = json.load(open(sys.argv[1]))
print(json.dumps({"wall_s": float(sys.argv[2]), "wall_seconds": report["wall_seconds"],
                  "pretrain_images": report["data"]["pretrain_images"], "score": report["score"]}))
PY
