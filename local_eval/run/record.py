"""The JSON record that says what a run folder (run.json) or a comparison folder (plan.json)
holds, and how two such records differ. Torch-free: the command lines name it before importing
anything heavy."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from submission.errors import UserError
from submission.fileio import loads_json

RUN_FILE = "run.json"


# The identity keys that say what the data holds (not where it is or how it is trained on).
# downstream_sha256 changes only with downstream_content (the bytes with the mtimes); a run
# recorded before it existed has None there and still resumes (content_changed).
CONTENT_KEYS = ("data_content", "downstream_content", "downstream_sha256")


# Where the inputs are on this machine, and the path/size/mtime fingerprints of the copies there:
# left out wherever a run must be known on another machine (compare --merge, plan.json's keys).
PLACE_KEYS = ("data", "downstream_path", "downstream_content")


def without_places(identity: Dict[str, Any]) -> Dict[str, Any]:
    """A run's (or a plan preset's) identity without PLACE_KEYS."""
    return {k: v for k, v in identity.items() if k not in PLACE_KEYS}


def without_content(identity: Any) -> Any:
    """`identity` without its CONTENT_KEYS, at any depth."""
    if isinstance(identity, dict):
        return {k: without_content(v) for k, v in identity.items() if k not in CONTENT_KEYS}
    if isinstance(identity, list):
        return [without_content(v) for v in identity]
    return identity


def content_changed(old: Any, new: Any) -> bool:
    """Whether a recorded content fingerprint differs from the current one. A None recorded for
    a set (CIFAR, recorded before the named sets were fingerprinted) is taken as unchanged,
    so that those runs still resume."""
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return any(content_changed(a, b) for a, b in zip(old, new))
    return old is not None and old != new


def differences(old: Dict[str, Any], new: Dict[str, Any], prefix: str = "") -> list:
    keys = sorted(set(old) | set(new))
    found = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, prefix + key + ".")
        elif a != b:
            found.append(f"{prefix}{key} {a!r} -> {b!r}")
    return found


def read_record(out: Path, name: str, what: str) -> Dict[str, Any]:
    """The JSON record `name` that says what a non-empty folder `out` holds (a run's run.json, a
    comparison's plan); refuses a folder without one and a damaged one."""
    record = out / name
    if not record.is_file():
        raise UserError(f"--out {out} is not empty and holds no {what} ({name}); "
                        f"pass a new or empty folder")
    return read_json_object(record, f"remove {out} to start over")


def read_json_object(path: Path, remedy: str) -> Dict[str, Any]:
    """A JSON object a command wrote (a record, a plan, a command line), read strictly
    (`loads_json`: no repeated key); a file that is not one is damaged: UserError naming `remedy`."""
    try:
        data = loads_json(path.read_bytes())
    except ValueError as error:
        raise UserError(f"{path} is damaged ({error}); {remedy}") from error
    if not isinstance(data, dict):
        raise UserError(f"{path} is damaged (it holds a JSON {type(data).__name__}, not an object); {remedy}")
    return data
