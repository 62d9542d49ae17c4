"""The Signate server's entry point; `python -m submission pack` ships this file as `src/generator.py`.

The server puts `src/` on `sys.path`, runs `from generator import Generator`, then calls
`Generator.get_params(<unpacked params/>)` and `Generator.generate(<out_path>)` with Python 3.10
and torch 2.0.1; the working directory is not `src/`. `get_params` does every check that can fail
(imports, the config, the category bank, the renderer) so a broken environment fails in seconds,
not hours into `generate`. This file imports nothing from `submission` at module level: an
import error must surface in `get_params` with a message that says how to fix it.

Standard library only at the top: this module is also a template inside the development package.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any, Optional

CONFIG_FILE = "config.json"
# Always imported by the generation pipeline; the server image has all but tqdm, which the
# packed requirements.txt installs.
REQUIRED_MODULES = ("numpy", "torch", "PIL", "cv2", "tqdm")


class SubmissionSetupError(RuntimeError):
    """The packed submission cannot run in this environment; the message says why and what to do."""


class Generator:
    """The two classmethods the server calls, in order. The config lives on the class because the
    server calls both methods on the class itself, not on an instance."""

    config: Optional[Any] = None  # the loaded `GenerationConfig`, set by `get_params`

    @classmethod
    def get_params(cls, params_path: str) -> None:
        params_dir = Path(params_path).resolve()
        # The server has no internet: keep albumentations from asking PyPI for updates at import
        # (a network wait and a warning). Set before anything imports it; worker processes inherit it.
        os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
        _require_modules(REQUIRED_MODULES, why="the generation pipeline imports it")
        config_cls, user_error = _import_submission()
        config_file = params_dir / CONFIG_FILE
        if not config_file.is_file():
            raise SubmissionSetupError(f"{config_file} is missing; re-pack with `python -m submission pack`")
        try:
            config = config_cls.from_file(config_file, f"params/{CONFIG_FILE}")
        except user_error as exc:
            raise SubmissionSetupError(str(exc)) from None
        try:
            family = importlib.import_module("submission.families").create_family(config.family)
            config = family.from_params(config, params_dir)  # the family's files in params/, checked
            if config.image_augment.enabled:
                _require_modules(("albumentations",), why="image augmentation is on in params/config.json")
                _check_image_augment(config)
            engine = _check_render(config, family)
        except user_error as exc:
            raise SubmissionSetupError(f"params/{CONFIG_FILE}: {exc}") from None
        cls.config = config
        print(f"Generator: {config.classes} classes x {config.images_per_class} images, {config.image_size} px "
              f"{config.image_format}, family {config.family} ({engine}) "
              f"(pytorch3d {'importable' if _importable('pytorch3d.renderer') else 'not importable'}), "
              f"python {sys.version.split()[0]}, torch {importlib.import_module('torch').__version__}", flush=True)

    @classmethod
    def generate(cls, out_path: str) -> None:
        if cls.config is None:
            raise SubmissionSetupError("Generator.generate was called before Generator.get_params")
        import submission  # imported (and checked) by get_params

        submission.generate(out_path, cls.config)


def _import_submission() -> "tuple[type, type]":
    """(GenerationConfig, UserError) from the packed package, which must be the one beside this file."""
    try:
        submission = importlib.import_module("submission")
        config_module = importlib.import_module("submission.config")
        errors_module = importlib.import_module("submission.errors")
    except ImportError as exc:
        raise SubmissionSetupError(f"the packed package failed to import ({exc}); install the zip's "
                                   "requirements.txt, or re-pack with `python -m submission pack`") from None
    packed_dir = Path(__file__).resolve().parent / "submission"
    found_dir = Path(submission.__file__).resolve().parent
    if found_dir != packed_dir:
        raise SubmissionSetupError(f"`import submission` found {found_dir}, not the packed copy {packed_dir}; "
                                   "another package named 'submission' shadows it: uninstall it")
    return config_module.GenerationConfig, errors_module.UserError


def _require_modules(names: "tuple[str, ...]", why: str) -> None:
    missing = [name for name in names if not _importable(name)]
    if missing:
        raise SubmissionSetupError(f"module(s) {missing} cannot be imported ({why}); install the zip's "
                                   "requirements.txt (pip install -r requirements.txt)")


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def _check_image_augment(config: Any) -> None:
    """Build the albumentations recipe and run it once: an API mismatch fails here, not mid-run."""
    import numpy as np

    from submission.augment import build_image_augmenter

    blank = np.zeros((config.image_size, config.image_size, 3), np.uint8)  # (H, W, 3) uint8
    augmented = build_image_augmenter(config.image_augment)(blank, 0)
    if augmented.shape != blank.shape or augmented.dtype != np.uint8:
        raise SubmissionSetupError(f"image augmentation turned a {blank.shape} uint8 image into "
                                   f"{augmented.shape} {augmented.dtype}; install the zip's requirements.txt")


def _check_render(config: Any, family: Any) -> str:
    """Resolve the plan, prepare the family's files for class 0 and render its first image
    with the family's worker, so a missing backend or an incompatible torch fails
    here, in seconds, not hours into `generate`."""
    from submission.plan import RunPlan
    from submission.writer import create_class_writer

    plan = family.prepare(RunPlan.resolve(config), categories=1)
    writer = create_class_writer(plan, family)
    image = writer.images.render(0, [0], writer.images.class_context(0))  # (1, H, W, 3) uint8
    size = config.image_size
    if tuple(image.shape) != (1, size, size, 3) or str(image.dtype) != "uint8":
        torch = importlib.import_module("torch")
        raise SubmissionSetupError(f"{family.engine(plan)} returned {tuple(image.shape)} {image.dtype} images, "
                                   f"expected (1, {size}, {size}, 3) uint8; this torch ({torch.__version__}) may not fit")
    return family.engine(plan)
