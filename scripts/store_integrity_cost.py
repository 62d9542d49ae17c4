"""What a store's content checks cost (local_eval/store/integrity.py), on a store of any size.

    python scripts/store_integrity_cost.py WORK [--images 20000] [--size 384] [--rounds 3]

Writes WORK/store: a store of IMAGES x SIZE x SIZE x 3 random bytes (the default is the 8.85 GB
of docs/performance.md's 20,000 images at 384 px; the checks read bytes, so what the pixels show
does not matter) with its labels and a manifest sealed as a build seals it (the chunk hashes
computed the same way, timed: the decoding workers' share of a build), and WORK/data, a tiny
ImageFolder the manifest names as its source, so that the real command can open it. Then times,
cold (the store's pages dropped from the page cache with posix_fadvise) and warm:
the check on every open (read_store, sampled chunks) and the full check of `store --verify`
(read_store with every chunk), then runs `store --verify` once. Rerunning
reuses the store. Remove WORK afterwards.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_eval.datasets.fingerprint import dataset_fingerprint  # noqa: E402
from local_eval.store.build import CHUNK  # noqa: E402
from local_eval.store.integrity import seal, sha256  # noqa: E402
from local_eval.store.layout import FORMAT_VERSION, IMAGES, LABELS, MANIFEST, read_store  # noqa: E402
from tests.local_eval_fixtures import make_image_folder  # noqa: E402


def make_store(work: Path, images: int, size: int) -> None:
    data, store = work / "data", work / "store"
    if (store / MANIFEST).is_file():
        return
    if not data.is_dir():
        make_image_folder(data, classes=2, images_per_class=1, size=16)
    store.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    per_chunk = CHUNK * size * size * 3
    hashes, hashing = [], 0.0
    with open(store / IMAGES, "wb") as handle:
        for start in range(0, images, CHUNK):
            rows = min(CHUNK, images - start)
            chunk = np.frombuffer(rng.bytes(rows * size * size * 3), dtype=np.uint8)
            began = time.perf_counter()
            hashes.append(sha256(chunk))
            hashing += time.perf_counter() - began
            handle.write(chunk.data)
    labels = np.repeat(np.arange(100), -(-images // 100))[:images].astype(np.int64)
    buffer = io.BytesIO()
    np.save(buffer, labels)
    (store / LABELS).write_bytes(buffer.getvalue())
    manifest = seal({"format": FORMAT_VERSION, "source": str(data.resolve()),
                     "fingerprint": dataset_fingerprint(data), "shape": [images, size, size, 3],
                     "classes": [f"{c:05d}" for c in range(100)],
                     "per_class": np.bincount(labels, minlength=100).tolist(),
                     "chunk_images": CHUNK, "labels_sha256": sha256(buffer.getvalue()),
                     "image_sha256": hashes})
    (store / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    gb = images * size * size * 3 / 1e9
    print(f"build-time hashing: {len(hashes)} chunks of {per_chunk / 1e6:.1f} MB, {gb:.2f} GB, "
          f"{hashing:.2f} s on one core ({gb / hashing:.2f} GB/s)")


def drop_cache(path: Path) -> None:
    with open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def timed(label: str, action) -> None:
    began = time.perf_counter()
    action()
    print(f"{label}: {time.perf_counter() - began:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work", type=Path)
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    make_store(args.work, args.images, args.size)
    store = args.work / "store"
    for _ in range(args.rounds):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        drop_cache(store / IMAGES)
        timed("open, cold (sampled chunks)", lambda: read_store(store))
        timed("open, warm (sampled chunks)", lambda: read_store(store))
        timed("open, no image chunks (labels and manifest only)",
              lambda: read_store(store, images="none"))
        drop_cache(store / IMAGES)
        timed("verify, cold (every chunk)", lambda: read_store(store, images="all"))
        timed("verify, warm (every chunk)", lambda: read_store(store, images="all"))
    # The command itself (its own figure excludes starting Python and importing the libraries).
    subprocess.run([sys.executable, "-m", "local_eval", "store", str(args.work / "data"),
                    "--out", str(store), "--verify", "--no-progress"], check=True)

if __name__ == "__main__":
    main()
