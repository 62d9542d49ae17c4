"""Keep torch's compile cache out of $TMPDIR.

Importing torch._dynamo (torchvision.ops and timm do) creates `$TMPDIR/torchinductor_<user>/`
at import time, and nothing ever removes it; local_eval compiles nothing. Unless the user chose
a folder (TORCHINDUCTOR_CACHE_DIR), the cache goes to a folder of this process's own, removed
when it exits. Processes started by this one (loader workers, torchrun ranks' children) inherit
the variable and use the same folder without removing it.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

VARIABLE = "TORCHINDUCTOR_CACHE_DIR"


def use_private_cache_dir() -> None:
    if os.environ.get(VARIABLE):
        return
    folder = os.path.join(tempfile.gettempdir(), f"local_eval-torch-cache-{os.getpid()}")
    os.environ[VARIABLE] = folder
    owner = os.getpid()
    # Only the process that chose the folder removes it (a forked child runs no atexit hooks,
    # but be explicit about it).
    atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))
