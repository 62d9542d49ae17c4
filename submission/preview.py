"""A contact sheet of a generated dataset: one row per class, a few samples per row."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageDraw

from .errors import UserError
from .fileio import write_atomic

LABEL_WIDTH = 56


def contact_sheet(dataset_dir: Union[str, os.PathLike], out_png: Union[str, os.PathLike], rows: int = 8,
                  samples: int = 8, tile: int = 96) -> Path:
    """Write a PNG grid of `rows` classes (spread evenly over the sorted folders) x `samples` images."""
    root, out = Path(dataset_dir), Path(out_png)
    if rows < 1 or samples < 1 or tile < 8:
        raise UserError(f"rows and samples must be >= 1 and tile >= 8, got {rows}, {samples}, {tile}")
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; pass the folder `generate` wrote")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    if not class_dirs:
        raise UserError(f"{root} holds no class folders; generate a dataset first")
    picks = [class_dirs[i] for i in np.unique(np.linspace(0, len(class_dirs) - 1, min(rows, len(class_dirs))).round().astype(int))]
    sheet = Image.new("RGB", (LABEL_WIDTH + samples * (tile + 2), len(picks) * (tile + 2)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for row, class_dir in enumerate(picks):
        y = row * (tile + 2)
        draw.text((4, y + tile // 2 - 6), class_dir.name, fill=(230, 230, 230))
        for col, image_path in enumerate(sorted(class_dir.iterdir())[:samples]):
            with Image.open(image_path) as image:
                sheet.paste(image.convert("RGB").resize((tile, tile), Image.BILINEAR), (LABEL_WIDTH + col * (tile + 2), y))
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    write_atomic(out, buffer.getvalue())
    return out
