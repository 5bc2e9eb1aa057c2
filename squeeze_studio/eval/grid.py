"""A picture of what the model did: one row per example, reference | target | output(s)."""
from __future__ import annotations

import os

from PIL import Image, ImageDraw

CELL = 128


def save_grid(rows: list[list[Image.Image]], header: list[str], path: str | os.PathLike) -> None:
    """Write ``rows`` (same number of images each) as a grid, cells upscaled to ``CELL`` px, under
    a header naming the columns."""
    columns = len(header)
    grid = Image.new("RGB", (columns * CELL, 16 + len(rows) * CELL), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(header):
        draw.text((c * CELL + 4, 2), name, fill="black")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            grid.paste(image.convert("RGB").resize((CELL, CELL), Image.NEAREST), (c * CELL, 16 + r * CELL))
    grid.save(path)
