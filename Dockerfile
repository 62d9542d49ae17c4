# Mirrors the Signate server: Python 3.10, torch 2.0.1 + torchvision 0.15.2 (CUDA 11.7),
# numpy 1.24.4, Pillow 10.0, opencv-python 4.8, then the zip's own requirements.txt.
#   python -m submission pack dist/submission.zip
#   docker build -t fractal-server .
#   docker run --gpus all --rm --network none -v "$PWD/rehearsal:/out" fractal-server
# `make docker-rehearse` does all of this on a small trial, on a local stand-in base where this one
# cannot be pulled (--build-arg BASE=...; see scripts/docker_rehearse.sh).
ARG BASE=pytorch/pytorch:2.0.1-cuda11.7-cudnn8-runtime
FROM ${BASE}

# opencv-python (not headless, as on the server) needs libGL and glib; installed only when the base
# lacks them (a stand-in base has them and no network). Unpinned: the base image's release decides
# the versions, and a pin would break when its archive moves on.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN if ! ldconfig -p | grep 'libGL.so.1' >/dev/null || ! ldconfig -p | grep 'libgthread-2.0.so.0' >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
        && rm -rf /var/lib/apt/lists/*; \
    fi

RUN pip install --no-cache-dir torch==2.0.1 torchvision==0.15.2 numpy==1.24.4 pillow==10.0.0 opencv-python==4.8.1.78

# The zip as the server receives it; its requirements.txt is installed exactly as the server does.
ARG ZIP=dist/submission.zip
COPY ${ZIP} /submission.zip
RUN python -m zipfile -e /submission.zip /opt/packed \
    && pip install --no-cache-dir -r /opt/packed/requirements.txt

# The zip carries only what runs on the server, so `rehearse` (a developer tool) comes from the
# repository's package; it unpacks the zip again into a temp folder and runs the server sequence
# from there, importing the packed copy. Mount a host folder on /out for the dataset.
COPY submission /opt/tools/submission
WORKDIR /opt/tools
CMD ["python", "-m", "submission", "rehearse", "/submission.zip", "/out/dataset"]
