"""A contact sheet of examples, to look at the data: one row per example, references | target."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .dataset import Example

_PAD = 4
_TEXT_WIDTH = 560


def contact_sheet(examples: Sequence[Example], zoom: int = 2, max_refs: int = 3) -> Image.Image:
    """One row per example: up to ``max_refs`` references, a gap, the target, then the instruction and
    the subject's description. Images are enlarged ``zoom`` times with nearest-neighbour."""
    size = examples[0].target.shape[0] * zoom
    width = _PAD + (max_refs + 1) * (size + _PAD) + 3 * _PAD + _TEXT_WIDTH
    height = _PAD + len(examples) * (size + _PAD)
    sheet = Image.new("RGB", (width, height), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, ex in enumerate(examples):
        y = _PAD + row * (size + _PAD)
        for j, ref in enumerate(ex.references[:max_refs]):
            sheet.paste(_zoom(ref, zoom), (_PAD + j * (size + _PAD), y))
        x = _PAD + max_refs * (size + _PAD) + 2 * _PAD
        draw.rectangle([x - 3, y - 2, x + size + 1, y + size + 1], outline=(60, 60, 60))
        sheet.paste(_zoom(ex.target, zoom), (x, y))
        tx = x + size + 3 * _PAD
        tag = f"[{ex.split} {ex.variant}{' held-out' if ex.held_out else ''}] subject {ex.subject.seed}"
        draw.text((tx, y + 2), tag, fill=(90, 90, 90), font=font)
        draw.text((tx, y + 16), ex.instruction, fill=(0, 0, 0), font=font)
        draw.text((tx, y + 30), ex.subject.describe(), fill=(60, 60, 160), font=font)
    return sheet


def _zoom(image: np.ndarray, zoom: int) -> Image.Image:
    h, w = image.shape[:2]
    return Image.fromarray(image).resize((w * zoom, h * zoom), Image.NEAREST)
