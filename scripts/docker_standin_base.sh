#!/usr/bin/env bash
# Builds a local stand-in for the server's base image (pytorch/pytorch:2.0.1-cuda11.7-cudnn8-runtime) where
# that image cannot be pulled: a minimal Debian root file system (debootstrap), the machine's Python 3.10
# and the site-packages of the repository's .venv-server (torch 2.0.1, torchvision 0.15.2, numpy 1.24.4,
# Pillow 10.0, opencv-python 4.8 and the packed requirements), imported with `docker import`.
# Prints the image tag as its last line. The tag names a hash of every input, so an image is reused
# only when it was built from the same inputs. Root only (debootstrap, chroot).
# Each step logs to build/docker-standin/standin.log; a failing step is named in one `error:` line.
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER=${DOCKER:-docker}
PYTHON310=${PYTHON310:-$(ls -d "$HOME"/.pyenv/versions/3.10.*/bin/python3.10 2>/dev/null | tail -1 || true)}
SERVER_VENV=${SERVER_VENV:-.venv-server}
DEBIAN_SUITE=${DEBIAN_SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Python 3.10's shared-library needs, opencv-python's (libGL, glib) and certificates for pip.
DEBIAN_PACKAGES=ca-certificates,libgl1,libglib2.0-0,libssl3,libffi8,libsqlite3-0,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libgdbm6,libuuid1,zlib1g
WORK=build/docker-standin
LOG=$WORK/standin.log

fail() { echo "error: $*" >&2; exit 2; }
say() { echo "docker-standin: $*" >&2; }
# step NAME COMMAND...: runs COMMAND with its output in the log; on failure names the step.
step() {
    local name=$1; shift
    echo "== step $name: $*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        fail "the stand-in base failed at step '$name' ($(grep -v '^\s*$' "$LOG" | tail -1 | cut -c1-200)); full log: $LOG"
    fi
}

# Inputs first, before any work.
[ "$(id -u)" = 0 ] || fail "building the stand-in base needs root (debootstrap, chroot); run as root, or make the real base image available to docker"
command -v debootstrap >/dev/null || fail "debootstrap is not installed; as root: apt-get install debootstrap (or make docker-engine)"
[ -n "$PYTHON310" ] && [ -x "$PYTHON310" ] || fail "no Python 3.10 found (looked for ~/.pyenv/versions/3.10.*); set PYTHON310=/path/to/python3.10"
"$PYTHON310" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null || fail "PYTHON310=$PYTHON310 is not a working Python 3.10"
[ -f "$SERVER_VENV/.installed" ] || fail "no $SERVER_VENV with the server's packages; run \`make venv-server\` first"
mkdir -p "$WORK"
: >"$LOG"

PY_PREFIX=$(cd "$(dirname "$PYTHON310")/.." && pwd -P)
PY_VERSION=$("$PYTHON310" -c 'import sys; print(sys.version.split()[0])')
FREEZE=$("$SERVER_VENV/bin/python" -m pip freeze --all 2>>"$LOG") || fail "the stand-in base failed at step 'pip freeze' ($SERVER_VENV/bin/python does not run); full log: $LOG"
ROOTFS_KEY=$(printf '%s\n' "$DEBIAN_SUITE" "$DEBIAN_MIRROR" "$DEBIAN_PACKAGES" | sha256sum | cut -c1-12)
KEY=$( { cat "$0"; echo "$ROOTFS_KEY $PY_PREFIX $PY_VERSION"; echo "$FREEZE"; } | sha256sum | cut -c1-12)
TAG=fractal-server-standin:$KEY

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
    say "reusing $TAG (built from the same Debian packages, Python $PY_VERSION and $SERVER_VENV packages)"
    echo "$TAG"
    exit 0
fi
say "building $TAG: Debian $DEBIAN_SUITE (debootstrap) + Python $PY_VERSION from $PY_PREFIX + the packages of $SERVER_VENV"

# The Debian root file system is the slow download: kept per (suite, mirror, packages), written to a
# temp name first so a killed run never leaves a half-made one behind under the final name.
ROOTFS=$WORK/rootfs-$ROOTFS_KEY
STAGE=""
# On any exit: no half-made root file system, stage or unchecked image is left behind.
trap 'rm -rf "$ROOTFS.part" ${STAGE:+"$STAGE"}; "$DOCKER" rmi "$TAG-unchecked" >/dev/null 2>&1 || true' EXIT
if [ ! -d "$ROOTFS" ]; then
    rm -rf "$ROOTFS.part"
    step debootstrap debootstrap --variant=minbase --include="$DEBIAN_PACKAGES" "$DEBIAN_SUITE" "$ROOTFS.part" "$DEBIAN_MIRROR"
    mv "$ROOTFS.part" "$ROOTFS"
fi

STAGE=$(mktemp -d "$WORK/stage.XXXXXX")  # one per run: a concurrent run never shares it
rmdir "$STAGE"
# Hard links where possible: the stage is read once by tar, never edited in place (ldconfig and the
# files below are written anew).
step "copy root file system" cp -al "$ROOTFS" "$STAGE"
step "copy Python $PY_VERSION" cp -a --no-preserve=ownership "$PY_PREFIX" "$STAGE/opt/python3.10"
# The server's packages become Python's own site-packages (the venv's, which has pip and setuptools).
step "remove the stock site-packages" rm -rf "$STAGE/opt/python3.10/lib/python3.10/site-packages"
step "copy $SERVER_VENV packages" bash -c "cp -al '$SERVER_VENV/lib/python3.10/site-packages/.' '$STAGE/opt/python3.10/lib/python3.10/site-packages' 2>/dev/null \
    || cp -a '$SERVER_VENV/lib/python3.10/site-packages/.' '$STAGE/opt/python3.10/lib/python3.10/site-packages'"
step "link python and pip" bash -c "echo /opt/python3.10/lib > '$STAGE/etc/ld.so.conf.d/python3.10.conf' \
    && ln -sf /opt/python3.10/bin/python3.10 '$STAGE/usr/local/bin/python' \
    && ln -sf /opt/python3.10/bin/python3.10 '$STAGE/usr/local/bin/python3' \
    && printf '#!/bin/sh\nexec /opt/python3.10/bin/python3.10 -m pip \"\$@\"\n' > '$STAGE/usr/local/bin/pip' \
    && chmod 755 '$STAGE/usr/local/bin/pip'"
step ldconfig chroot "$STAGE" /sbin/ldconfig
step "docker import" bash -c "set -o pipefail; tar -C '$STAGE' --numeric-owner -cf - . | '$DOCKER' import \
    -c 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'ENV LANG=C.UTF-8' \
    -m 'local stand-in for pytorch/pytorch:2.0.1-cuda11.7-cudnn8-runtime (scripts/docker_standin_base.sh)' - '$TAG-unchecked'"
step "check the stand-in's versions" "$DOCKER" run --rm --network none "$TAG-unchecked" python -c "
import sys, torch, torchvision, numpy, PIL, cv2
got = (sys.version_info[:2], torch.__version__, torchvision.__version__, numpy.__version__, PIL.__version__, cv2.__version__)
print(got)
assert got[0] == (3, 10) and got[1].startswith('2.0.1') and got[2].startswith('0.15.2'), got
assert got[3] == '1.24.4' and got[4].startswith('10.0'), got
"
# Only a checked image gets the tag that is reused; an older stand-in (other inputs) is this script's
# own leftover and is removed.
step "tag the checked image" "$DOCKER" tag "$TAG-unchecked" "$TAG"
"$DOCKER" rmi "$TAG-unchecked" >>"$LOG" 2>&1 || true
for old in $("$DOCKER" images --format '{{.Repository}}:{{.Tag}}' fractal-server-standin); do
    [ "$old" = "$TAG" ] || { "$DOCKER" rmi "$old" >>"$LOG" 2>&1 && say "removed $old, an older stand-in"; } || true
done
say "built $TAG"
echo "$TAG"
