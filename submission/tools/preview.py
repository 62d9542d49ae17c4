"""Contact sheets: of a generated dataset (one row per class, a few samples per row), or of named
recipes rendered in memory (rows per recipe, no dataset written)."""
from __future__ import annotations

import io
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw

from ..errors import UserError
from ..fileio import check_writable_target, make_dirs, write_atomic
from ..paths import check_not_inside_a_dataset, check_output_outside_inputs, describe_path

LABEL_WIDTH = 56
MAX_TILE = 1024  # px per tile side
MAX_SHEET_PIXELS = 2**26  # 64 Mpx (192 MB of RGB): bounds memory whatever --rows/--samples/--tile say
SHEET_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # --out's suffix -> the bytes written
# What Pillow raises for a file it cannot decode: not an image, truncated, broken chunks, too big.
UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


class ContactSheet(NamedTuple):
    path: Path
    skipped: List[Path]  # files that could not be read as images; their tiles are left blank


def contact_sheet(dataset_dir: Union[str, os.PathLike], out_png: Union[str, os.PathLike], rows: int = 8,
                  samples: int = 8, tile: int = 96) -> Path:
    """Write a PNG grid of `rows` classes (spread evenly over the sorted folders) x `samples` images.

    An unreadable file leaves its tile blank and is named in a one-line warning on stderr.
    """
    sheet = build_contact_sheet(dataset_dir, out_png, rows=rows, samples=samples, tile=tile)
    if sheet.skipped:
        print(skipped_warning(sheet.skipped), file=sys.stderr, flush=True)
    return sheet.path


def check_sheet(out: Path, rows: int, samples: int, tile: int, label_width: int = LABEL_WIDTH) -> None:
    """Before any image is read or rendered: a known picture format from --out's suffix, and a
    sheet of `rows` x `samples` tiles that fits in memory."""
    if out.suffix.lower() not in SHEET_FORMATS:
        raise UserError(f"--out {out} must end in {', '.join(SHEET_FORMATS)} (the picture is written in that format)")
    if rows < 1 or samples < 1 or not 8 <= tile <= MAX_TILE:
        raise UserError(f"rows and samples must be >= 1 and tile in [8, {MAX_TILE}], got {rows}, {samples}, {tile}")
    pixels = (label_width + samples * (tile + 2)) * rows * (tile + 2)
    if pixels > MAX_SHEET_PIXELS:
        raise UserError(f"a sheet of {rows} rows x {samples} samples of {tile} px tiles is {pixels / 2**20:.0f} Mpx, over "
                        f"the {MAX_SHEET_PIXELS >> 20} Mpx limit; lower --rows, --samples or --tile")


def save_sheet(sheet: Image.Image, out: Path) -> None:
    """Write the sheet atomically, encoded as --out's suffix says."""
    make_dirs(out.parent, "the preview's")
    buffer = io.BytesIO()
    sheet.save(buffer, format=SHEET_FORMATS[out.suffix.lower()])
    write_atomic(out, buffer.getvalue())


def skipped_warning(skipped: List[Path]) -> str:
    return (f"warning: preview skipped {len(skipped)} unreadable image file(s), first {skipped[0]}; "
            "their tiles are blank (`python -m submission verify DIR` checks every file)")


def build_contact_sheet(dataset_dir: Union[str, os.PathLike], out_png: Union[str, os.PathLike], rows: int = 8,
                        samples: int = 8, tile: int = 96) -> ContactSheet:
    """`contact_sheet` without the warning: the written path and the files skipped as unreadable."""
    root, out = Path(dataset_dir), Path(out_png)
    check_sheet(out, rows, samples, tile)
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; pass the folder `generate` wrote")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise UserError(f"{root} holds no class folders; generate a dataset first")
    check_writable_target(out, "the preview")
    check_output_outside_inputs(out, {"the dataset": root}, "--out")  # never a picture among the images it shows
    check_not_inside_a_dataset(out, "--out")
    picks = [class_dirs[i] for i in np.unique(np.linspace(0, len(class_dirs) - 1, min(rows, len(class_dirs))).round().astype(int))]
    sheet = Image.new("RGB", (LABEL_WIDTH + samples * (tile + 2), len(picks) * (tile + 2)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    skipped: List[Path] = []
    for row, class_dir in enumerate(picks):
        y = row * (tile + 2)
        draw.text((4, y + tile // 2 - 6), class_dir.name, fill=(230, 230, 230))
        for col, image_path in enumerate(sorted(class_dir.iterdir())[:samples]):
            if describe_path(image_path) != "a file":  # a FIFO would block the read forever
                skipped.append(image_path)
                continue
            try:
                with Image.open(image_path) as image:
                    thumbnail = image.convert("RGB").resize((tile, tile), Image.BILINEAR)
            except UNREADABLE:
                skipped.append(image_path)
                continue
            sheet.paste(thumbnail, (LABEL_WIDTH + col * (tile + 2), y))
    save_sheet(sheet, out)
    return ContactSheet(out, skipped)


def recipe_contact_sheet(recipes: Sequence[str], out_png: Union[str, os.PathLike], rows: int = 8, samples: int = 8,
                         tile: int = 96, image_size: Optional[int] = None, seed: Optional[int] = None) -> Path:
    """Write a PNG grid of `rows` classes (0 .. rows-1) x `samples` images (0 .. samples-1) of each
    recipe, rendered in memory with exactly the bytes `generate` would write for them (family
    worker, image augmentation, encoding). Several recipes stack their rows, labelled by name."""
    from ..families import create_family
    from ..plan import RunPlan
    from ..recipes import create_recipe
    from ..writer import create_class_writer

    out = Path(out_png)
    if not recipes:
        raise UserError("give at least one recipe, e.g. --recipes fractal,fractal-aug-none")
    check_sheet(out, rows * len(recipes), samples, tile)
    configs = [create_recipe(name, image_size=image_size, seed=seed) for name in recipes]  # unknown names fail here
    for name, config in zip(recipes, configs):
        if rows > config.classes or samples > config.images_per_class:
            raise UserError(f"recipe {name} has {config.classes} classes x {config.images_per_class} images; "
                            f"ask for at most that many --rows and --samples")
    check_writable_target(out, "the preview")
    check_not_inside_a_dataset(out, "--out")
    labelled: List[Tuple[str, List[Image.Image]]] = []
    for name, config in zip(recipes, configs):
        family = create_family(config.family)
        writer = create_class_writer(family.prepare(RunPlan.resolve(config), categories=rows), family)
        for category in range(rows):
            encoded = writer.encode_images(category, range(samples))
            tiles = []
            for data in encoded:
                with Image.open(io.BytesIO(data)) as image:
                    tiles.append(image.convert("RGB").resize((tile, tile), Image.BILINEAR))
            label = name if len(recipes) > 1 and rows == 1 else (f"{name} {category:05d}" if len(recipes) > 1 else f"{category:05d}")
            labelled.append((label, tiles))
    draw_probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = max([LABEL_WIDTH] + [int(draw_probe.textlength(label)) + 8 for label, _ in labelled])
    sheet = Image.new("RGB", (label_width + samples * (tile + 2), len(labelled) * (tile + 2)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for row, (label, tiles) in enumerate(labelled):
        y = row * (tile + 2)
        draw.text((4, y + tile // 2 - 6), label, fill=(230, 230, 230))
        for col, thumbnail in enumerate(tiles):
            sheet.paste(thumbnail, (label_width + col * (tile + 2), y))
    save_sheet(sheet, out)
    return out
