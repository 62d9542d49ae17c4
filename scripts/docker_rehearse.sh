#!/usr/bin/env bash
# `make docker-rehearse`: the Dockerfile built and run as the server runs a submission. Packs a small
# trial zip, builds the image on BASE (the real pytorch/pytorch image, or a local stand-in built by
# scripts/docker_standin_base.sh where it cannot be pulled), runs the packed zip inside it with
# --network none writing to a mounted host folder, then validates that dataset on the host.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER=${DOCKER:-docker}
BASE=${BASE:-pytorch/pytorch:2.0.1-cuda11.7-cudnn8-runtime}
IMAGE=${IMAGE:-fractal-server:rehearse}
PY=${PY:-.venv/bin/python}
WORK=build/docker
ZIP=$WORK/submission.zip  # .dockerignore lets exactly this file (and submission/) into the build
CLASSES=3
IMAGES_PER_CLASS=4

fail() { echo "error: $*" >&2; exit 2; }
say() { echo "docker-rehearse: $*"; }
seconds_since() { echo $(( $(date +%s) - $1 )); }

command -v "$DOCKER" >/dev/null 2>&1 \
    || fail "Docker is not installed; as root run \`make docker-engine\` (apt-get install docker.io, then starts dockerd)"
"$DOCKER" info >/dev/null 2>&1 \
    || fail "Docker is installed but its daemon does not answer (\`docker info\` fails); as root run \`make docker-engine\` (starts dockerd)"
[ -x "$PY" ] || fail "no $PY; run \`make venv\` first"
mkdir -p "$WORK"

start=$(date +%s)
"$PY" -m submission pack "$ZIP" --overwrite --classes "$CLASSES" --images-per-class "$IMAGES_PER_CLASS" \
    --image-size 64 --points 2000 --workers 1 >/dev/null
say "packed $ZIP ($CLASSES classes x $IMAGES_PER_CLASS images, 64 px) in $(seconds_since "$start") s"

if ! "$DOCKER" image inspect "$BASE" >/dev/null 2>&1; then
    if pulled=$("$DOCKER" pull "$BASE" 2>&1); then
        say "pulled $BASE"
    else
        say "$BASE cannot be pulled here ($(echo "$pulled" | tail -1 | cut -c1-160)); building a local stand-in base with the server's Python 3.10 and packages instead"
        start=$(date +%s)
        BASE=$(DOCKER=$DOCKER scripts/docker_standin_base.sh | tail -1)
        say "stand-in base $BASE ready in $(seconds_since "$start") s (size $("$DOCKER" image inspect -f '{{.Size}}' "$BASE" | numfmt --to=iec))"
    fi
fi

# A stand-in base has everything the Dockerfile installs, so its build needs no network either.
build_network=()
case "$BASE" in fractal-server-standin:*) build_network=(--network none) ;; esac
previous=$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
start=$(date +%s)
"$DOCKER" build "${build_network[@]}" --build-arg BASE="$BASE" --build-arg ZIP="$ZIP" -t "$IMAGE" .
# The image this target built last time, now untagged, is its own leftover (gigabytes): removed.
if [ -n "$previous" ] && [ "$previous" != "$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE")" ]; then
    "$DOCKER" rmi "$previous" >/dev/null 2>&1 || true
fi
say "built $IMAGE on $BASE in $(seconds_since "$start") s (size $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" | numfmt --to=iec))"

# The image's own command, with --overwrite so a rerun replaces the last run's dataset (only a
# generated tree is ever removed).
out=$(pwd -P)/$WORK/out
mkdir -p "$out"
start=$(date +%s)
"$DOCKER" run --rm --network none -v "$out:/out" "$IMAGE" \
    python -m submission rehearse /submission.zip /out/dataset --overwrite
say "ran the zip in $IMAGE with --network none in $(seconds_since "$start") s"

"$PY" -m submission verify "$WORK/out/dataset" --classes "$CLASSES" --images-per-class "$IMAGES_PER_CLASS"
say "OK: $WORK/out/dataset, written inside the container, passes verify on the host"
